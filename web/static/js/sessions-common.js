// Shared by the sessions pages (/sessions, /p/…, /l/…): mode names, durations, commands,
// and countdowns that keep ticking locally between server updates.

export const MODE_LABELS = {
  view_only: "View only",
  approved_execution: "Approved execution",
  privileged: "Privileged",
};

export function modeLabel(mode) {
  return MODE_LABELS[mode] || String(mode || "unknown");
}

/** Seconds -> "m:ss" (under an hour) or "h:mm:ss"; `hours` forces the h:mm:ss form. */
export function formatDuration(seconds, { hours = false } = {}) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "—";
  const total = Math.max(0, Math.ceil(Number(seconds)));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  if (h > 0 || hours) return `${h}:${String(m).padStart(2, "0")}:${ss}`;
  return `${String(m).padStart(2, "0")}:${ss}`;
}

/** A command vector as one readable line (arguments with spaces are quoted). */
export function commandText(command) {
  if (!Array.isArray(command) || command.length === 0) return "—";
  return command
    .map((arg) => {
      const s = String(arg);
      return s === "" || /[\s"'\\$`]/.test(s) ? `'${s.replace(/'/g, "'\\''")}'` : s;
    })
    .join(" ");
}

export function labelsText(labels) {
  if (!labels || typeof labels !== "object") return [];
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

/** Monotonic seconds (unaffected by wall-clock changes). */
export function nowS() {
  return performance.now() / 1000;
}

/**
 * A countdown to a deadline given as "seconds remaining" by the server; `remaining()` keeps
 * going down locally until the next `set()`.
 */
export class Countdown {
  constructor() {
    this.deadline = null;
  }

  set(remainingS) {
    const n = Number(remainingS);
    this.deadline = remainingS === null || remainingS === undefined || !Number.isFinite(n) ? null : nowS() + n;
  }

  clear() {
    this.deadline = null;
  }

  remaining() {
    return this.deadline === null ? null : Math.max(0, this.deadline - nowS());
  }
}

/** A server message as a sentence: first letter capitalised, ending with a full stop. */
export function sentence(text) {
  const s = String(text || "").trim();
  if (!s) return "";
  const first = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}
