// /p/{participation}: the browser terminal of a shared session (xterm.js over the participant
// WebSocket, docs/protocol.md "Browser terminal").
//
// The gateway decides every permission; this page only avoids sending keystrokes in view-only
// mode. For end-to-end tests, window.rcgate = {screenText(), send(obj), sendBinary(bytes), state}:
// send/sendBinary push raw frames through the socket whatever the mode, so a test can prove the
// gateway refuses them.

import { api, ApiError, forgetSession } from "./api.js";
import { requireUser } from "./nav.js";
import { Countdown, commandText, formatDuration, modeLabel, sentence } from "./sessions-common.js";
import { stepUp } from "./stepup.js";
import { $, el, errorText, showMessage } from "./ui.js";
import { installStyleShim } from "./xterm-csp.js";

const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 10_000;
const PING_MS = 20_000;
const REFRESH_MS = 30_000;
const NOTICE_MS = 4_000;
const MIN_FONT = 8; // smallest automatic size (fit to width)
const MIN_FONT_MANUAL = 6;
const MAX_FONT_MANUAL = 28;
const MAX_TERMINAL = 1000;
// Close reasons after which reconnecting makes sense (the participant was not told to go).
const RESUMABLE = new Set(["too slow", "left"]);
const CLOSE_POLICY = 4403;

const error = $("#error");
const closedBanner = $("#closed");
const lostNotice = $("#lost");
const notice = $("#notice");
const connStatus = $("#conn-status");
const reconnectActions = $("#reconnect-actions");
const reconnectButton = $("#reconnect");
const reauthButton = $("#reauth");
const signinAgain = $("#signin-again");
const wrap = $("#terminal-wrap");
const container = $("#terminal");

const participation = participationFromPath();

/** What the page knows; exposed read-only-ish as window.rcgate.state for tests. */
const state = {
  participation,
  sessionId: null,
  participantId: null,
  mode: null,
  socket: "idle", // idle | connecting | open | closed
  connected: false, // open and the hello received
  next: null, // offset of the next output byte expected (resume point)
  cols: null,
  rows: null,
  participants: [],
  closedReason: null,
  final: false,
  reconnects: 0,
  lostBytes: 0,
  refusals: 0,
  errors: 0,
  verdicts: [], // decisions on this participant's actions (approved execution)
};

const idleTimer = new Countdown();
const maxTimer = new Countdown();
const privTimer = new Countdown(); // the latest privileged grant, as broadcast to everyone
let privHolders = []; // names holding privileged mode now
let privTick = null;
let modeRequest = null; // {mode, reason, retried}: the last mode request, resent once after a step-up
let idleTimeoutS = null;
let term = null;
let fit = null;
let ws = null;
let retryTimer = null;
let pingTimer = null;
let noticeTimer = null;
let attempt = 0;
let failedOpens = 0; // sockets refused before the upgrade (the page cannot see why)
let failedJoins = 0; // sockets upgraded but closed before the hello
const MAX_FAILED_JOINS = 3;
let reconnecting = false;
let leaving = false;
let lostMark = 0;
let fontOverride = null; // a size the person chose; null: fit the width automatically

function participationFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  if (parts.length !== 2 || parts[0] !== "p") return "";
  try {
    return decodeURIComponent(parts[1]);
  } catch {
    return "";
  }
}

// ---- header ----

function setConn(text, kind) {
  connStatus.textContent = text;
  connStatus.dataset.state = kind;
}

function setMode(mode) {
  if (!mode) return;
  state.mode = mode;
  const badge = $("#mode-badge");
  badge.textContent = modeLabel(mode);
  badge.dataset.mode = mode;
  badge.hidden = false;
  const hint = $("#mode-hint");
  if (mode === "view_only") {
    hint.textContent = "You can watch this session. Typing is turned off.";
  } else if (mode === "approved_execution") {
    hint.textContent = "Your input is sent only when the owner's policy approves it.";
  } else {
    hint.textContent = "Your keystrokes are sent to the terminal.";
  }
  hint.hidden = false;
  if (term) term.options.disableStdin = mode === "view_only";
  const composer = document.querySelector("#composer-box");
  if (composer) composer.hidden = mode !== "approved_execution";
  const drop = document.querySelector("#privileged-controls");
  if (drop) drop.hidden = mode !== "privileged";
}

// ---- privileged mode: a banner everyone attached sees, counting down the grant ----

function renderPrivileged() {
  const banner = document.querySelector("#privileged-banner");
  if (!banner) return;
  if (privHolders.length === 0 || state.final) {
    banner.hidden = true;
    banner.textContent = "";
    clearInterval(privTick);
    privTick = null;
    return;
  }
  const left = privTimer.remaining();
  const when = left === null ? "" : ` — ${Math.ceil(left)} s left`;
  banner.textContent = `Privileged: ${privHolders.join(", ")}${when}`;
  banner.hidden = false;
  if (privTick === null) privTick = setInterval(renderPrivileged, 500);
}

function setPrivileged(holders, grantS) {
  privHolders = Array.isArray(holders) ? holders.map((h) => String(h)) : [];
  if (privHolders.length === 0) privTimer.clear();
  else if (grantS !== null && grantS !== undefined) privTimer.set(grantS);
  state.privileged = { holders: privHolders.slice(), remaining: privTimer.remaining() };
  renderPrivileged();
}

/** Ask the gateway for another mode (an approver may have to grant it). */
function requestMode(mode, reason, { retried = false } = {}) {
  modeRequest = { mode, reason, retried };
  return sendFrame(JSON.stringify({ t: "request_mode", mode, reason }));
}

function setRequestStatus(text) {
  const node = document.querySelector("#privileged-request-status");
  if (node) showMessage(node, text);
}

function setSessionFacts({ owner, host, command }) {
  if (owner !== undefined) $("#session-owner").textContent = owner || "—";
  if (host !== undefined) $("#session-host").textContent = host || "—";
  if (command !== undefined) $("#session-command").textContent = commandText(command);
  if (owner !== undefined || host !== undefined) {
    const who = $("#session-owner").textContent;
    const where = $("#session-host").textContent;
    document.title = `${who} on ${where} · rcgate`;
  }
}

function renderParticipants(list) {
  state.participants = Array.isArray(list) ? list : [];
  const items = state.participants.map((p) => {
    const you = p.id === state.participantId;
    return el(
      "li",
      { dataset: { participantId: p.id } },
      el("span", { class: "participant-name" }, p.name || "unknown"),
      " ",
      el("span", { class: "badge" }, modeLabel(p.mode)),
      you ? el("span", { class: "muted" }, " (you)") : null,
    );
  });
  $("#participants").replaceChildren(...items);
  $("#participant-count").textContent = String(state.participants.length);
  if (state.participants.length > 0 || privHolders.length > 0) {
    const holders = state.participants.filter((p) => p.mode === "privileged").map((p) => p.name || "unknown");
    if (holders.join("\n") !== privHolders.join("\n")) setPrivileged(holders, null);
  }
}

function renderTimers() {
  const idle = idleTimer.remaining();
  const max = maxTimer.remaining();
  $("#idle-timer").textContent = `Idle expiry in ${state.final || idle === null ? "—" : formatDuration(idle)}`;
  $("#max-timer").textContent = `Session ends in ${
    state.final || max === null ? "—" : formatDuration(max, { hours: true })
  }`;
}

function applySession(session) {
  if (!session || typeof session !== "object") return;
  state.sessionId = session.id || state.sessionId;
  setSessionFacts({ owner: session.owner, host: session.host, command: session.command });
  if (!state.connected) {
    // The hello message is the authority while connected; this is the first picture.
    renderParticipants(session.participants);
    if (state.cols === null) setRemoteSize(session.cols, session.rows);
  }
  idleTimer.set(session.idle_remaining_s);
  maxTimer.set(session.max_remaining_s);
  renderTimers();
}

// ---- notices ----

function flash(text) {
  showMessage(notice, text);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => showMessage(notice, ""), NOTICE_MS);
}

function noteLost(from, to) {
  const start = Math.max(Number(from) || 0, lostMark);
  const end = Number(to) || 0;
  if (end <= start) return;
  lostMark = end;
  state.lostBytes += end - start;
  showMessage(
    lostNotice,
    `Some output was lost while you were disconnected (${state.lostBytes} bytes). ` +
      "The screen may be incomplete until the program redraws it.",
  );
}

function closedText(reason) {
  const r = String(reason || "").trim();
  if (!r || r === "left") return "Disconnected from the session.";
  if (r === "removed") return "You were removed from the session.";
  if (r === "participant idle timeout") return "Disconnected: participant idle timeout (you were inactive too long).";
  if (/^the session has ended/i.test(r)) return "Session ended.";
  return `Session ended: ${r}`;
}

/** Stop for good: show why, keep the screen, no more reconnects. */
function finish(text, { signIn = false } = {}) {
  if (state.final) return;
  state.final = true;
  state.connected = false;
  clearTimeout(retryTimer);
  stopPing();
  idleTimer.clear();
  maxTimer.clear();
  renderTimers();
  showMessage(error, "");
  showMessage(closedBanner, text);
  setConn("Disconnected", "closed");
  reconnectButton.hidden = true;
  reauthButton.hidden = true;
  signinAgain.hidden = !signIn;
  if (signIn) signinAgain.href = `/login?next=${encodeURIComponent(location.pathname)}`;
  reconnectActions.hidden = !signIn;
  if (term) term.options.disableStdin = true;
  renderPrivileged();
  for (const id of ["#privileged-controls", "#composer-box"]) {
    const node = document.querySelector(id);
    if (node) node.hidden = true;
  }
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
}

// ---- terminal ----

function baseFontSize() {
  return window.matchMedia("(max-width: 40rem)").matches ? 12 : 14;
}

/** Remote size exact; the font shrinks (down to MIN_FONT) so its width fits, then it scrolls. */
function fitTerminal() {
  if (!term) return;
  const base = baseFontSize();
  if (state.cols === null || state.rows === null) {
    if (term.options.fontSize !== base) term.options.fontSize = base;
    fit.fit();
    return;
  }
  if (term.cols !== state.cols || term.rows !== state.rows) term.resize(state.cols, state.rows);
  if (fontOverride !== null) {
    if (term.options.fontSize !== fontOverride) term.options.fontSize = fontOverride;
    return;
  }
  let size = base;
  for (let i = 0; i < 3; i++) {
    if (term.options.fontSize !== size) term.options.fontSize = size;
    const dims = fit.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || dims.cols >= state.cols) break;
    const next = Math.max(MIN_FONT, Math.floor(((size * dims.cols) / state.cols) * 2) / 2);
    if (next >= size) break;
    size = next;
  }
}

function setRemoteSize(cols, rows) {
  const c = Number(cols);
  const r = Number(rows);
  if (!Number.isInteger(c) || !Number.isInteger(r) || c < 1 || r < 1 || c > MAX_TERMINAL || r > MAX_TERMINAL) return;
  state.cols = c;
  state.rows = r;
  fitTerminal();
}

function screenText() {
  if (!term) return "";
  const b = term.buffer.active;
  const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\n").trimEnd();
}

function canType() {
  return Boolean(state.mode) && state.mode !== "view_only" && state.connected && !state.final;
}

function setupTerminal() {
  if (typeof window.Terminal !== "function" || !window.FitAddon) {
    showMessage(error, "The terminal could not be loaded. Reload the page.");
    return false;
  }
  installStyleShim();
  term = new window.Terminal({
    fontSize: baseFontSize(),
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
    cursorBlink: false,
    scrollback: 5000,
    disableStdin: state.mode === null || state.mode === "view_only",
    allowProposedApi: false,
  });
  fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(container);
  fitTerminal();

  term.onData((data) => {
    if (state.mode === "view_only") return;
    if (!canType()) {
      flash("Not connected: your input was not sent.");
      return;
    }
    sendFrame(JSON.stringify({ t: "in", d: data }));
  });
  term.onBinary((data) => {
    if (!canType()) return;
    sendFrame(Uint8Array.from(data, (ch) => ch.charCodeAt(0) & 0xff));
  });

  let pending = false;
  const refit = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fitTerminal();
    });
  };
  window.addEventListener("resize", refit);
  if (typeof ResizeObserver === "function") new ResizeObserver(refit).observe(wrap);
  return true;
}

// ---- socket ----

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/api/participations/${encodeURIComponent(participation)}/ws`;
}

function sendFrame(data) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(data);
  return true;
}

function startPing() {
  stopPing();
  pingTimer = setInterval(() => sendFrame('{"t":"ping"}'), PING_MS);
}

function stopPing() {
  clearInterval(pingTimer);
  pingTimer = null;
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (state.final || leaving) return;
  if (ws && ws.readyState <= WebSocket.OPEN) return;
  state.socket = "connecting";
  setConn(state.reconnects ? "Reconnecting…" : "Connecting…", "connecting");
  let sock;
  try {
    sock = new WebSocket(wsUrl());
  } catch (err) {
    showMessage(error, errorText(err));
    return;
  }
  sock.binaryType = "arraybuffer";
  ws = sock;
  let opened = false;
  sock.addEventListener("open", () => {
    if (ws !== sock) return;
    opened = true;
    state.socket = "open";
    sock.send(JSON.stringify({ t: "hello", v: 1, resume_from: state.next }));
    startPing();
    setConn("Joining the session…", "connecting");
  });
  sock.addEventListener("message", (event) => {
    if (ws !== sock) return;
    if (typeof event.data === "string") onControl(event.data);
    else onOutput(event.data);
  });
  sock.addEventListener("close", (event) => {
    if (ws !== sock) return;
    ws = null;
    onClose(event, opened);
  });
}

function onOutput(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < 8) return;
  let seq = Number(new DataView(buffer).getBigUint64(0, false));
  let data = new Uint8Array(buffer, 8);
  const end = seq + data.length;
  if (state.next !== null) {
    if (seq > state.next) {
      noteLost(state.next, seq);
    } else if (seq < state.next) {
      if (end <= state.next) return; // already shown
      data = data.subarray(state.next - seq);
      seq = state.next;
    }
  }
  state.next = end;
  if (idleTimeoutS !== null) idleTimer.set(idleTimeoutS); // output is session activity
  if (term && data.length) term.write(data);
}

function onControl(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return;
  }
  if (!m || typeof m !== "object") return;
  switch (m.t) {
    case "hello":
      onHello(m);
      break;
    case "participants":
      renderParticipants(m.participants);
      break;
    case "resize":
      setRemoteSize(m.cols, m.rows);
      break;
    case "refused":
      state.refusals += 1;
      if (m.reason === "view_only") {
        flash(`View-only: your ${m.what === "resize" ? "resize" : "input"} was not sent.`);
      } else {
        flash(`Your ${m.what === "resize" ? "resize" : "input"} was not sent: ${m.reason || "refused"}.`);
      }
      break;
    case "lost":
      noteLost(m.from, m.to);
      if (Number.isInteger(m.to) && (state.next === null || state.next < m.to)) state.next = m.to;
      break;
    case "closed":
      state.closedReason = m.reason || "";
      if (Number.isInteger(m.resume_from) && state.next === null) state.next = m.resume_from;
      if (!RESUMABLE.has(state.closedReason)) finish(closedText(state.closedReason));
      else if (state.closedReason === "too slow") {
        setConn("Your connection fell behind the session. Catching up…", "connecting");
      }
      break;
    case "verdict":
      onVerdict(m);
      break;
    case "mode":
      onMode(m);
      break;
    case "privileged":
      setPrivileged(m.holders, m.grant_s);
      break;
    case "error":
      state.errors += 1;
      flash(`The gateway did not accept a message: ${m.message || "malformed"}`);
      break;
    default:
      break; // pong and anything newer
  }
}

const VERDICT_TEXT = {
  allowed: "allowed: sent to the terminal",
  denied: "denied",
  held: "held for approval",
  approved: "approved: sent to the terminal",
  stepup: "confirm your identity first",
};

const MODE_VERDICT_TEXT = { ...VERDICT_TEXT, approved: "approved", allowed: "allowed" };

/** This participant's mode changed (granted, dropped, or a privileged grant expired). */
function onMode(m) {
  if (m.participant_id && state.participantId && m.participant_id !== state.participantId) return;
  const before = state.mode;
  setMode(m.mode);
  if (m.mode === "privileged" && m.grant_s !== undefined && m.grant_s !== null) privTimer.set(m.grant_s);
  if (before !== m.mode) {
    const why = m.reason ? ` (${m.reason})` : "";
    flash(`Your mode is now ${modeLabel(m.mode)}${why}.`);
    setRequestStatus("");
  }
  if (m.mode === "privileged" && term) term.focus();
}

/** A mode request needs a fresh factor: run the step-up dialog, then ask once more. */
async function onModeStepUp(m) {
  const req = modeRequest;
  if (!req || req.retried || (m.text && m.text !== req.mode)) {
    setRequestStatus(`Not granted: ${m.reason || "confirm your identity first"}.`);
    return;
  }
  setRequestStatus("Confirm your identity to send the request.");
  const factors = Array.isArray(m.factors) ? m.factors : [];
  const passed = await stepUp({ factors, message: m.reason || "" });
  if (!passed) {
    modeRequest = null;
    setRequestStatus("Cancelled: the request needs you to confirm your identity.");
    return;
  }
  forgetSession();
  if (requestMode(req.mode, req.reason, { retried: true })) setRequestStatus("Request sent.");
  else setRequestStatus("Not connected: the request was not sent.");
}

/** A decision on one of this participant's actions: keep one line per action, updated in place. */
function onVerdict(m) {
  state.verdicts.push(m);
  const list = document.querySelector("#verdicts");
  if (!list) return;
  const key = m.action_id || `v${state.verdicts.length}`;
  let item = list.querySelector(`li[data-action="${CSS.escape(key)}"]`);
  if (!item) {
    item = el("li", { dataset: { action: key } });
    list.prepend(item);
  }
  item.dataset.state = m.state;
  // A held mode request comes back as a held "line" whose text is the reason given.
  const heldRequest =
    modeRequest &&
    !modeRequest.actionId &&
    m.state === "held" &&
    (m.text === modeRequest.reason.slice(0, 200) || m.text === `request ${modeRequest.mode}`);
  if (heldRequest) modeRequest.actionId = m.action_id;
  const isMode =
    m.kind === "mode" || Boolean(heldRequest) || Boolean(modeRequest && m.action_id && modeRequest.actionId === m.action_id);
  let what = m.kind === "key" ? `key (${m.text})` : m.text;
  if (m.kind === "mode") what = `${modeLabel(m.text)} mode`;
  const why = m.reason ? ` — ${m.reason}` : "";
  const label = (isMode ? MODE_VERDICT_TEXT : VERDICT_TEXT)[m.state] || m.state;
  item.replaceChildren(
    el("code", {}, what),
    " ",
    el("span", { class: `badge verdict-${m.state}` }, label),
    el("span", { class: "muted" }, m.rule ? ` rule ${m.rule}${why}` : why),
  );
  if (m.state === "denied" && m.kind === "key") flash(`Key not sent: ${m.reason || "denied by policy"}.`);
  if (isMode) {
    if (m.state === "held") setRequestStatus("Waiting for an approver…");
    else if (m.state === "denied") setRequestStatus(`Not granted: ${m.reason || "denied by policy"}.`);
    else if (m.state === "approved") setRequestStatus("Granted.");
    if (m.state === "stepup") onModeStepUp(m).catch((err) => setRequestStatus(errorText(err)));
  }
}

function setupComposer() {
  const box = document.querySelector("#composer-box");
  const form = document.querySelector("#composer");
  const input = document.querySelector("#composer-text");
  if (!box || !form || !input) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.replace(/\r?\n$/, "");
    if (!text) return;
    if (sendFrame(JSON.stringify({ t: "submit", text }))) input.value = "";
    else flash("Not connected: your command was not sent.");
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

function setupPrivileged() {
  const form = document.querySelector("#privileged-request");
  const reason = document.querySelector("#privileged-reason");
  const drop = document.querySelector("#privileged-drop");
  if (form && reason) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const why = reason.value.trim();
      if (!why) {
        setRequestStatus("Say why you need privileged mode.");
        reason.focus();
        return;
      }
      if (requestMode("privileged", why)) {
        setRequestStatus("Request sent.");
        reason.value = "";
      } else {
        setRequestStatus("Not connected: the request was not sent.");
      }
    });
  }
  if (drop) {
    drop.addEventListener("click", () => {
      if (!requestMode("approved_execution", "")) flash("Not connected: the change was not sent.");
    });
  }
}

function onHello(m) {
  state.connected = true;
  state.participantId = m.participant_id || null;
  state.sessionId = m.session_id || state.sessionId;
  state.closedReason = null;
  attempt = 0;
  failedOpens = 0;
  failedJoins = 0;
  setMode(m.mode);
  setSessionFacts({ owner: m.owner, host: m.host, command: m.command });
  if (Number.isInteger(m.seq)) {
    if (state.next !== null && m.seq > state.next) noteLost(state.next, m.seq);
    state.next = m.seq; // the server's resume point is the authority
  }
  idleTimeoutS = Number.isFinite(m.idle_timeout_s) ? m.idle_timeout_s : null;
  idleTimer.set(m.idle_remaining_s);
  maxTimer.set(m.max_remaining_s);
  renderTimers();
  setRemoteSize(m.cols, m.rows);
  renderParticipants(state.participants); // mark "(you)"
  showMessage(error, "");
  reconnectActions.hidden = true;
  state.socket = "open";
  setConn("Connected", "connected");
  if (term && state.mode !== "view_only") term.focus();
}

async function onClose(event, opened) {
  const joined = state.connected;
  stopPing();
  state.socket = "closed";
  state.connected = false;
  if (leaving || state.final) return;
  if (!opened) failedOpens += 1;
  if (opened && !joined) failedJoins += 1;
  const reason = event.reason || state.closedReason || "";
  if (event.code === CLOSE_POLICY && reason && !RESUMABLE.has(reason)) {
    finish(closedText(reason));
    return;
  }
  let why = "Connection lost.";
  if (reason === "too slow") why = "Your connection fell behind the session.";
  else if (event.code === 4400) why = `The gateway closed the connection: ${reason || "malformed messages"}.`;
  else if (event.code === 1009) why = "A message was too large; the gateway closed the connection.";
  else if (!opened) why = "Cannot connect to the session.";
  await scheduleReconnect(why, reason === "too slow");
}

async function loadParticipation() {
  const res = await api("GET", `/api/participations/${encodeURIComponent(participation)}`);
  setMode(res.mode);
  applySession(res.session);
}

/** Ask the API whether this participation is still valid: "ok", "final" (shown) or "retry". */
async function checkParticipation() {
  try {
    await loadParticipation();
    return "ok";
  } catch (err) {
    if (!(err instanceof ApiError)) return "retry";
    if (err.status === 401 && err.code === "unauthenticated") {
      finish("Your sign-in has ended. Sign in again to rejoin the session.", { signIn: true });
      return "final";
    }
    if (err.code === "session_not_found") {
      finish(state.closedReason ? closedText(state.closedReason) : "Session ended: it is not live any more.");
      return "final";
    }
    if (err.code === "link_revoked") {
      finish("Your access ended: the session's owner revoked your link.");
      return "final";
    }
    if (err.status === 410 || err.status === 404 || err.status === 403) {
      finish(`You cannot join this session: ${sentence(errorText(err))}`);
      return "final";
    }
    return "retry";
  }
}

async function scheduleReconnect(why, soon = false) {
  if (reconnecting || state.final || leaving) return;
  reconnecting = true;
  try {
    const check = await checkParticipation();
    if (check === "final" || state.final || leaving) return;
    if (failedJoins >= MAX_FAILED_JOINS) {
      // Upgraded, then closed before the hello, again and again: the gateway does not let
      // this participant in (for example a mode it cannot grant yet). Stop hammering it.
      setConn("Cannot join the session.", "closed");
      showMessage(
        error,
        `The gateway accepts the connection but does not let you join in ${modeLabel(state.mode)} mode. ` +
          "Try again later, or ask the person who shared the session for a new link.",
      );
      reauthButton.hidden = true;
      reconnectButton.hidden = false;
      reconnectActions.hidden = false;
      return;
    }
    const delay = soon
      ? RECONNECT_BASE_MS
      : Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** attempt) * (0.8 + Math.random() * 0.4);
    attempt += 1;
    state.reconnects += 1;
    setConn(`${why} Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`, "reconnecting");
    reconnectButton.hidden = false;
    // The upgrade answers before any message, so the page cannot see why it was refused. The
    // participation is fine (checked above): the likely cause is a factor that is not fresh.
    const suspectFreshness = check === "ok" && failedOpens >= 2;
    reauthButton.hidden = !suspectFreshness;
    if (suspectFreshness) {
      showMessage(
        error,
        "The gateway refused to reconnect. If you were away for a while, confirm your identity to rejoin.",
      );
    }
    reconnectActions.hidden = false;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  } finally {
    reconnecting = false;
  }
}

async function factorKinds() {
  try {
    const { factors } = await api("GET", "/api/factors");
    return [...new Set((factors || []).map((f) => f.kind))];
  } catch {
    return ["passkey", "totp"];
  }
}

async function reauthenticate() {
  const kinds = await factorKinds();
  const needed = state.mode === "view_only" ? kinds.filter((k) => k === "passkey" || k === "totp") : ["passkey"];
  const passed = await stepUp({ factors: needed.length ? needed : kinds });
  if (!passed) return;
  forgetSession();
  showMessage(error, "");
  attempt = 0;
  failedOpens = 0;
  connect();
}

function setFontOverride(size) {
  fontOverride = size;
  $("#font-fit").setAttribute("aria-pressed", String(size === null));
  fitTerminal();
}

// ---- page ----

$("#font-smaller").addEventListener("click", () => {
  if (term) setFontOverride(Math.max(MIN_FONT_MANUAL, Math.floor(term.options.fontSize) - 1));
});
$("#font-larger").addEventListener("click", () => {
  if (term) setFontOverride(Math.min(MAX_FONT_MANUAL, Math.floor(term.options.fontSize) + 1));
});
$("#font-fit").addEventListener("click", () => setFontOverride(null));

reconnectButton.addEventListener("click", () => {
  attempt = 0;
  failedJoins = 0;
  connect();
});
reauthButton.addEventListener("click", () => {
  reauthButton.disabled = true;
  reauthenticate().finally(() => {
    reauthButton.disabled = false;
  });
});
window.addEventListener("pagehide", () => {
  leaving = true;
  clearTimeout(retryTimer);
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && leaving) {
    leaving = false;
    connect();
  }
});

window.rcgate = {
  screenText,
  /** Send one text frame: an object is sent as JSON, a string as is. True if it was sent. */
  send(obj) {
    return sendFrame(typeof obj === "string" ? obj : JSON.stringify(obj));
  },
  /** Send one binary frame: a Uint8Array, an ArrayBuffer, an array of byte values or a string (UTF-8). */
  sendBinary(bytes) {
    let data;
    if (typeof bytes === "string") data = new TextEncoder().encode(bytes);
    else if (bytes instanceof Uint8Array) data = bytes;
    else if (bytes instanceof ArrayBuffer) data = new Uint8Array(bytes);
    else data = Uint8Array.from(bytes || []);
    return sendFrame(data);
  },
  state,
};

const me = await requireUser();
if (me) {
  if (!participation) {
    finish("This address is not a session link. Open the link you were given again.");
  } else if (window.matchMedia("(min-width: 40rem)").matches) {
    $("#participants-box").open = true;
  }
  if (!state.final) {
    const check = await checkParticipation();
    if (check !== "final" && setupTerminal()) {
      setupComposer();
      setupPrivileged();
      setInterval(renderTimers, 1000);
      // Timers and participants stay right even if a control message was missed; errors here
      // are left to the socket (it carries the reason when the session ends).
      setInterval(() => {
        if (!state.final && state.connected) loadParticipation().catch(() => {});
      }, REFRESH_MS);
      connect();
    }
  }
}
