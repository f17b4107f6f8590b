// Shared by /recordings and /replay/{id}: text from terminals made visible and inert, times,
// sizes, marker kinds, search hits. Everything here returns strings or nodes built with
// textContent: nothing a terminal or a user wrote is ever parsed as HTML.

import { el } from "./ui.js";

const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

/**
 * Terminal text shown as text: every control character is written out as an escape (ESC ->
 * "\x1b", BEL -> "\x07", C1 CSI -> "\x9b"), so an escape sequence is seen, never acted on, and
 * reads the same whatever fonts the browser has. Newlines become " ⏎ ".
 */
export function visible(text) {
  return String(text ?? "")
    .replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
    .replace(/\n/g, " ⏎ ");
}

/** Seconds from the start -> "m:ss" or "h:mm:ss". */
export function formatOffset(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(sec).padStart(2, "0")}`;
}

export function formatBytes(n) {
  const v = Number(n) || 0;
  if (v < 1024) return `${v} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i += 1;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

export const KIND_LABELS = {
  join: "join",
  leave: "leave",
  approval_request: "approval requested",
  approval: "approved",
  denial: "denied",
  allowed: "allowed",
  refusal: "refused",
  mode: "mode change",
  tool_call: "tool call",
  redaction: "redaction",
  end: "end",
  event: "event",
  other: "marker",
};

export const STREAM_LABELS = { o: "shown", i: "typed", m: "marker" };

export function replayHref(id, t) {
  const base = `/replay/${encodeURIComponent(id)}`;
  return t === undefined || t === null ? base : `${base}#t=${Number(t).toFixed(3)}`;
}

/** A search hit's snippet: text before, the match in <mark>, text after (all inert). */
export function snippetNode(snippet) {
  const s = snippet || {};
  return el(
    "span",
    { class: "snippet" },
    visible(s.before),
    el("mark", {}, visible(s.match)),
    visible(s.after),
  );
}
