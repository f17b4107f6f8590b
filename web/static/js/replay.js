// /replay/{id}: asciinema-player (speed, idle-time limit, seek, markers on its progress bar)
// beside the session's audit timeline, kept in step: clicking an event seeks the player, and
// while it plays the current event is highlighted. #t=SECONDS opens the player at that moment.
// Shows the recording's verification result and exports a bundle.
//
// Times: the audit stream and search hits count seconds of the recording. With an idle-time
// limit the player compresses long pauses, so its clock differs; `Timeline` maps between the
// two from the event times of the .cast (the same rule as the player's own limiter).

import { ApiError, api } from "./api.js";
import { requireUser } from "./nav.js";
import {
  formatBytes,
  formatOffset,
  KIND_LABELS,
  snippetNode,
  STREAM_LABELS,
  visible,
} from "./recordings-common.js";
import { commandText, formatDuration, labelsText, modeLabel } from "./sessions-common.js";
import { $, busy, clearMessage, el, errorText, formatTime, goToLogin, showMessage } from "./ui.js";

const POLL_MS = 200;
const EVENT_TIME = /^\[\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*,/;

const error = $("#error");
const status = $("#status");
const recordingId = decodeURIComponent(location.pathname.split("/")[2] || "");
const view = { cast: "", clock: null, player: null, items: [], current: -1, meta: null, polling: 0 };

function fail(err) {
  if (err instanceof ApiError && err.status === 401 && err.code === "unauthenticated") {
    goToLogin();
    return;
  }
  clearMessage(status);
  showMessage(error, errorText(err));
}

/** Recording time <-> player time under an idle-time limit (identity without one). */
class Timeline {
  constructor(castText, idle) {
    this.idle = idle > 0 ? idle : Infinity;
    const times = [];
    const lines = castText.split("\n");
    for (let i = 1; i < lines.length; i++) {
      const m = EVENT_TIME.exec(lines[i]);
      if (m) times.push(Number(m[1]));
    }
    this.rec = Float64Array.from(times);
    this.play = new Float64Array(times.length);
    let prev = 0;
    let shift = 0;
    times.forEach((t, i) => {
      if (t - prev > this.idle) shift += t - prev - this.idle;
      prev = t;
      this.play[i] = t - shift;
    });
  }

  static last(arr, x) {
    let lo = 0;
    let hi = arr.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (arr[mid] <= x) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  toPlayer(t) {
    if (this.idle === Infinity) return t;
    const k = Timeline.last(this.rec, t);
    const [e, p] = k < 0 ? [0, 0] : [this.rec[k], this.play[k]];
    return p + Math.min(t - e, this.idle);
  }

  toRecording(p) {
    if (this.idle === Infinity) return p;
    const k = Timeline.last(this.play, p);
    const [e, q] = k < 0 ? [0, 0] : [this.rec[k], this.play[k]];
    return e + (p - q);
  }
}

function hashTime() {
  const m = /(?:^#|[#&])t=([0-9]+(?:\.[0-9]+)?)/.exec(location.hash);
  return m ? Number(m[1]) : null;
}

function options() {
  return { speed: Number($("#speed").value) || 1, idle: Number($("#idle").value) || 0 };
}

function createPlayer(startAt) {
  const { speed, idle } = options();
  view.clock = new Timeline(view.cast, idle);
  if (view.player) view.player.dispose();
  const box = $("#player");
  box.replaceChildren();
  const opts = { controls: true, preload: true, speed, fit: "width" };
  if (idle > 0) opts.idleTimeLimit = idle;
  // The .cast was fetched once (below) and is handed over as data: no second download.
  view.player = globalThis.AsciinemaPlayer.create({ data: view.cast }, box, opts);
  view.player.addEventListener("marker", () => tick());
  view.player.addEventListener("seeked", () => tick());
  // Not the `startAt` option: it applies only once playing starts. A seek shows that moment now.
  const at = Math.max(0, startAt || 0);
  if (at > 0) Promise.resolve(view.player.seek(view.clock.toPlayer(at))).catch(fail);
  highlight(at, false);
}

async function currentTime() {
  if (!view.player) return 0;
  const p = await Promise.resolve(view.player.getCurrentTime());
  return view.clock.toRecording(Number(p) || 0);
}

async function seek(t) {
  if (!view.player) return;
  await Promise.resolve(view.player.seek(view.clock.toPlayer(Math.max(0, t))));
  highlight(t, true);
}

/** Mark the last event at or before recording time `t` (the one the player has reached). */
function highlight(t, scroll) {
  let k = -1;
  for (let i = 0; i < view.items.length; i++) {
    if (view.items[i].t <= t + 0.001) k = i;
    else break;
  }
  if (k === view.current) return;
  if (view.current >= 0) {
    const prev = view.items[view.current].node;
    prev.classList.remove("current");
    prev.removeAttribute("aria-current");
  }
  view.current = k;
  if (k >= 0) {
    const node = view.items[k].node;
    node.classList.add("current");
    node.setAttribute("aria-current", "true");
    if (scroll) node.scrollIntoView({ block: "nearest" });
  }
}

async function tick() {
  try {
    highlight(await currentTime(), true);
  } catch {
    // the player is being replaced
  }
}

function timelineItem(ev) {
  const label = ev.type === "marker" ? ev.label : [ev.type, ev.actor, ev.outcome].filter(Boolean).join(" · ");
  const button = el(
    "button",
    { type: "button", class: "timeline-event", dataset: { t: String(ev.t), kind: ev.kind } },
    el("span", { class: "tl-time" }, formatOffset(ev.t)),
    el("span", { class: `tl-kind kind-${ev.kind}` }, KIND_LABELS[ev.kind] || ev.kind),
    el("span", { class: "tl-label" }, visible(label)),
  );
  button.addEventListener("click", () => seek(Number(ev.t)).catch(fail));
  const node = el("li", { dataset: { kind: ev.kind } }, button);
  return { t: Number(ev.t), node };
}

function renderTimeline(events) {
  view.items = events.map(timelineItem).sort((a, b) => a.t - b.t);
  view.current = -1;
  $("#timeline").replaceChildren(...view.items.map((i) => i.node));
  $("#timeline-empty").hidden = view.items.length > 0;
}

const VERIFY = {
  intact: ["Intact", "badge-ok"],
  unsigned_tail: ["Unsigned tail", "badge-warn"],
  no_key: ["Not verified", ""],
};

function renderVerification(v) {
  const badge = $("#verify-badge");
  const [text, cls] = VERIFY[v.state] || [`Tampered: ${String(v.state).replace("_", " ")}`, "badge-danger"];
  badge.textContent = v.line ? `${text} (line ${v.line}, ${v.stream})` : text;
  badge.className = `badge ${cls}`;
  badge.dataset.state = v.state;
  const detail = $("#verify-detail");
  detail.textContent = v.state === "intact" ? `Signed by ${v.key || "the gateway"}.` : visible(v.message || "");
  detail.hidden = false;
}

function renderFacts(m) {
  const facts = [
    ["Owner", m.owner],
    ["Host", m.host],
    ["Command", commandText(m.command)],
    ["Directory", m.cwd || "—"],
    ["Started", formatTime(m.start, "—")],
    ["Duration", formatDuration(m.duration)],
    ["Participants", (m.participants || []).join(", ") || "—"],
    ["Modes", (m.modes || []).map(modeLabel).join(", ") || "—"],
    ["Labels", labelsText(m.labels).join(", ") || "—"],
    ["Size", formatBytes(m.size)],
    ["Ended", m.end_reason || (m.live ? "still live" : "no final checkpoint")],
  ];
  $("#facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, visible(v))]));
}

async function loadAll() {
  const base = `/api/recordings/${encodeURIComponent(recordingId)}`;
  const [meta, audit, cast] = await Promise.all([
    api("GET", base),
    api("GET", `${base}/audit`),
    fetch(`${base}/cast`, { credentials: "same-origin", cache: "no-store" }).then(async (r) => {
      if (!r.ok) throw new ApiError(r.status, `http_${r.status}`, "The recording could not be loaded.");
      return r.text();
    }),
  ]);
  view.meta = meta;
  view.cast = cast;
  const title = visible(meta.title || recordingId);
  $("#replay-title").textContent = title;
  document.title = `${title} · Replay · rcgate`;
  $("#live-badge").hidden = !meta.live;
  $("#reload").hidden = !meta.live;
  renderVerification(meta.verification);
  renderFacts(meta);
  renderTimeline(audit.events);
}

async function exportBundle() {
  const res = await fetch(`/api/recordings/${encodeURIComponent(recordingId)}/export`, {
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!res.ok) {
    let message = `Export failed (HTTP ${res.status}).`;
    try {
      message = (await res.json()).message || message;
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, "export_failed", message);
  }
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: `${recordingId}.tar.gz`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  clearMessage(error);
  const state = res.headers.get("X-Rcgate-Verification") || "unknown";
  showMessage(status, `Bundle exported (verification at export: ${state.replace("_", " ")}).`);
}

function hitItem(hit) {
  const button = el(
    "button",
    { type: "button", class: "hit-link" },
    el("span", { class: "hit-where" }, formatOffset(hit.t)),
    el("span", { class: `badge hit-stream hit-${hit.stream}` }, STREAM_LABELS[hit.stream] || hit.stream),
  );
  button.addEventListener("click", () => seek(hit.t).catch(fail));
  return el("li", {}, button, el("div", { class: "hit-snippet" }, snippetNode(hit.snippet)));
}

async function find(event) {
  event.preventDefault();
  const q = $("#find-q").value;
  if (!q.trim()) return;
  await busy($("#find-go"), async () => {
    try {
      const data = await api("GET", `/api/search?${new URLSearchParams({ q, id: recordingId })}`);
      const items = data.hits.map(hitItem);
      $("#find-hits").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "No match.")]));
    } catch (err) {
      fail(err);
    }
  });
}

async function main() {
  const me = await requireUser();
  if (!me) return;
  if (!["reviewer", "admin"].includes(me.user.role)) {
    showMessage(error, "Recordings are for reviewers and admins. Ask an admin for the reviewer role.");
    return;
  }
  if (!globalThis.AsciinemaPlayer) {
    showMessage(error, "The player could not be loaded. Reload the page.");
    return;
  }
  await loadAll();
  $("#replay").hidden = false;
  createPlayer(hashTime() ?? 0);
  view.polling = setInterval(tick, POLL_MS);
  window.addEventListener("hashchange", () => {
    const t = hashTime();
    if (t !== null) seek(t).catch(fail);
  });
  for (const id of ["#speed", "#idle"]) {
    $(id).addEventListener("change", async () => createPlayer(await currentTime()));
  }
  $("#reload").addEventListener("click", () =>
    busy($("#reload"), async () => {
      const at = await currentTime();
      await loadAll();
      createPlayer(at);
    }).catch(fail),
  );
  $("#export").addEventListener("click", () => busy($("#export"), exportBundle).catch(fail));
  $("#find-form").addEventListener("submit", find);
}

main().catch(fail);
