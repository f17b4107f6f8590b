// /replay/{id}: asciinema-player (speed, idle-time limit, seek, markers on its progress bar)
// beside the session's audit timeline, kept in step: clicking an event seeks the player, and
// while it plays the current event is highlighted. #t=SECONDS opens the player at that moment.
// Shows the recording's verification result and exports a bundle.
//
// A live recording is followed as it is written: the player reads
// /api/recordings/{id}/live with its `eventsource` driver (output appears within about a second
// of the session), and the audit timeline grows from /api/recordings/{id}/audit/live, the newest
// event highlighted. Clicking an event, a #t= link or "Replay from the start" switches to the
// replay of what was recorded so far ("Follow live" goes back); when the session ends the page
// turns into the replay of the finished recording by itself.
//
// Times: the audit stream and search hits count seconds of the recording. With an idle-time
// limit the player compresses long pauses, so its clock differs; `Timeline` maps between the
// two from the event times of the .cast (the same rule as the player's own limiter).
//
// For end-to-end tests: window.rcgate = {ready, following(), currentTime()} (recording seconds).

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
// A link's #t= has millisecond precision (search hits are rounded): open at the end of that
// millisecond, so the event the hit points at is on the screen, not the one just before it.
const LINK_PRECISION_S = 0.0005;
const EVENT_TIME = /^\[\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*,/;
const END_SETTLE_TRIES = 15; // after a live session ends, wait this many polls for its final checkpoint
const END_SETTLE_MS = 200;

const error = $("#error");
const status = $("#status");
const recordingId = decodeURIComponent(location.pathname.split("/")[2] || "");
const base = `/api/recordings/${encodeURIComponent(recordingId)}`;
const view = {
  cast: "",
  clock: null,
  player: null,
  items: [],
  current: -1,
  meta: null,
  polling: 0,
  following: false, // the player shows the live stream
  audit: null, // the timeline's EventSource while following
};

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
  return m ? Number(m[1]) + LINK_PRECISION_S : null;
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
  if (view.following) {
    await replayAt(t);
    return;
  }
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
  if (view.following) return; // the newest event is highlighted as it arrives
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

/** A record that arrived on the live stream: in time order, and highlighted if it is the newest. */
function addLiveEvent(ev) {
  const item = timelineItem(ev);
  let k = view.items.length;
  while (k > 0 && view.items[k - 1].t > item.t) k -= 1;
  if (k < view.items.length) view.items[k].node.before(item.node);
  else $("#timeline").append(item.node);
  view.items.splice(k, 0, item);
  if (view.current >= k) view.current += 1;
  $("#timeline-empty").hidden = true;
  highlight(view.items[view.items.length - 1].t, true);
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

async function fetchCast() {
  const r = await fetch(`${base}/cast`, { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) throw new ApiError(r.status, `http_${r.status}`, "The recording could not be loaded.");
  return r.text();
}

function renderMeta(meta) {
  view.meta = meta;
  const title = visible(meta.title || recordingId);
  $("#replay-title").textContent = title;
  document.title = `${title} · Replay · rcgate`;
  renderVerification(meta.verification);
  renderFacts(meta);
  renderLiveState();
}

/** Metadata, verification and timeline, and the .cast unless the live stream will bring it. */
async function loadAll({ cast = true } = {}) {
  const [meta, audit, text] = await Promise.all([
    api("GET", base),
    api("GET", `${base}/audit`),
    cast ? fetchCast() : Promise.resolve(""),
  ]);
  view.cast = text;
  renderMeta(meta);
  renderTimeline(audit.events);
}

/** The badge, the follow button and the replay options for following / replaying / finished. */
function renderLiveState() {
  const live = Boolean(view.meta?.live) || view.following;
  const badge = $("#live-badge");
  badge.hidden = !live;
  badge.textContent = view.following ? "Live" : "Live (replaying)";
  badge.dataset.state = view.following ? "following" : "replaying";
  badge.title = view.following
    ? "Following the session: output appears as it is recorded"
    : "Still being recorded: Follow live to watch it";
  const follow = $("#follow");
  follow.hidden = !live;
  follow.textContent = view.following ? "Replay from the start" : "Follow live";
  for (const id of ["#speed", "#idle"]) $(id).disabled = view.following;
}

function stopLive() {
  view.following = false;
  if (view.audit) view.audit.close();
  view.audit = null;
}

/** Follow the recording as it is written: the player on the live stream, the timeline growing. */
function startLive() {
  stopLive();
  view.following = true;
  view.clock = new Timeline("", 0); // no idle-time limit: the player's clock is the recording's
  if (view.player) view.player.dispose();
  const box = $("#player");
  box.replaceChildren();
  // bufferTime 0: each event is shown as it arrives (the backlog at once, then live).
  const src = { driver: "eventsource", url: `${base}/live`, bufferTime: 0 };
  const player = globalThis.AsciinemaPlayer.create(src, box, { autoPlay: true, fit: "width" });
  view.player = player;
  player.addEventListener("ended", () => {
    if (view.player === player) liveEnded().catch(fail);
  });
  const source = new EventSource(`${base}/audit/live`);
  view.audit = source;
  source.addEventListener("reset", () => renderTimeline([]));
  source.addEventListener("audit", (e) => addLiveEvent(JSON.parse(e.data)));
  source.addEventListener("done", () => {
    source.close();
    if (view.audit === source) liveEnded().catch(fail);
  });
  source.addEventListener("error", () => {
    // The browser reconnects by itself unless the gateway refused (signed out, no longer a reviewer).
    if (source.readyState === EventSource.CLOSED && view.audit === source) {
      stopLive();
      renderLiveState();
      showMessage(error, "The live view stopped: reload the page (you may have to sign in again).");
    }
  });
  renderLiveState();
}

/** The session ended while followed: the page becomes the replay of the finished recording. */
async function liveEnded() {
  if (!view.following) return;
  stopLive();
  await loadAll();
  for (let i = 0; i < END_SETTLE_TRIES && view.meta.live; i++) {
    await new Promise((resolve) => setTimeout(resolve, END_SETTLE_MS));
    renderMeta(await api("GET", base));
  }
  createPlayer(Number(view.meta.duration) || 0);
  clearMessage(error);
  showMessage(status, "The session has ended: this is the replay of its recording.");
}

/** Stop following and replay what was recorded so far, from recording time `t`. */
async function replayAt(t) {
  stopLive();
  await loadAll();
  createPlayer(t);
}

async function exportBundle() {
  const res = await fetch(`${base}/export`, {
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
  const at = hashTime();
  const meta = await api("GET", base);
  // A live recording is followed, unless a link asks for a moment of it.
  const follow = Boolean(meta.live) && at === null;
  await loadAll({ cast: !follow });
  $("#replay").hidden = false;
  if (follow) startLive();
  else createPlayer(at ?? 0);
  view.polling = setInterval(tick, POLL_MS);
  window.rcgate.ready = true;
  window.addEventListener("hashchange", () => {
    const t = hashTime();
    if (t !== null) seek(t).catch(fail);
  });
  for (const id of ["#speed", "#idle"]) {
    $(id).addEventListener("change", async () => {
      if (!view.following) createPlayer(await currentTime());
    });
  }
  $("#follow").addEventListener("click", () =>
    busy($("#follow"), async () => {
      clearMessage(status);
      if (view.following) await replayAt(0);
      else startLive();
    }).catch(fail),
  );
  $("#export").addEventListener("click", () => busy($("#export"), exportBundle).catch(fail));
  $("#find-form").addEventListener("submit", find);
}

window.rcgate = { ready: false, currentTime, following: () => view.following };

main().catch(fail);
