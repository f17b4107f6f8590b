// /approvals: the approver inbox. Pending actions you may approve (session, requester, the exact
// text, rule, reason, time left), kept live by Server-Sent Events from /api/approvals/stream.
// Approve and Deny run a WebAuthn ceremony over a challenge derived from that exact action,
// then post the assertion. Below, your own held actions and their state.

import { api, ApiError, getMe } from "./api.js";
import { requireUser } from "./nav.js";
import { Countdown, formatDuration, sentence } from "./sessions-common.js";
import { $, busy, clearMessage, el, errorText, formatTime, goToLogin, showMessage } from "./ui.js";
import { getAssertion } from "./webauthn.js";

const RECONNECT_MS = 5_000;
const URGENT_S = 30;
const KIND_LABELS = {
  line: "Command line",
  key: "Key",
  privileged: "Privileged mode request",
  tool: "Assistant tool call",
};
const STATE_LABELS = {
  pending: "waiting",
  approved: "approved",
  denied: "denied",
  timed_out: "timed out",
  cancelled: "withdrawn",
};
// Answers that mean "this action is no longer yours to decide": the card goes away.
const STALE = new Set(["approval_decided", "approval_expired", "approval_cancelled", "approval_unknown"]);

const error = $("#error");
const status = $("#status");
const list = $("#approvals");
const mineList = $("#mine");
const live = $("#live");
const cards = new Map(); // action id -> card
const mine = new Map(); // action id -> row
let counter = 0;

function fail(err) {
  if (err instanceof ApiError && err.status === 401 && err.code === "unauthenticated") {
    goToLogin();
    return;
  }
  clearMessage(status);
  showMessage(error, errorText(err));
}

function say(text) {
  clearMessage(error);
  showMessage(status, text);
}

function shortId(id) {
  const s = String(id || "");
  return s.length > 12 ? `${s.slice(0, 12)}…` : s;
}

function kindLabel(kind) {
  return KIND_LABELS[kind] || String(kind || "action");
}

function firstLine(text) {
  const line = String(text || "").split("\n")[0];
  return line.length > 60 ? `${line.slice(0, 57)}…` : line;
}

// ---- an assistant's tool call, readable: the command, the file and a diff of what would change ----

function parseToolCall(text) {
  try {
    const call = JSON.parse(text);
    if (call && typeof call === "object" && typeof call.tool === "string" && call.input && typeof call.input === "object") {
      return call;
    }
  } catch {
    // not JSON: shown as the exact text only
  }
  return null;
}

function lines(text) {
  return String(text ?? "").split("\n");
}

function diffBlock(label, removed, added) {
  const pre = el("pre", { class: "diff", tabindex: "0", "aria-label": label });
  if (removed !== undefined) for (const line of lines(removed)) pre.append(el("span", { class: "del" }, `- ${line}`));
  if (added !== undefined) for (const line of lines(added)) pre.append(el("span", { class: "add" }, `+ ${line}`));
  return pre;
}

// What the tool would do, from the signed JSON: never innerHTML, every value as text.
function toolView(call) {
  const input = call.input;
  const parts = [el("p", { class: "field-label" }, `Tool: ${call.tool}`)];
  if (call.prompt) {
    parts.push(el("p", { class: "field-label" }, "Prompt that led to it:"), el("pre", { class: "action-text prompt" }, call.prompt));
  }
  const path = input.file_path ?? input.path ?? input.notebook_path;
  if (typeof input.command === "string" || Array.isArray(input.command)) {
    const command = Array.isArray(input.command) ? input.command.join(" ") : input.command;
    parts.push(el("p", { class: "field-label" }, "Command:"), el("pre", { class: "action-text command" }, command));
  }
  if (typeof path === "string") parts.push(el("p", { class: "field-label" }, "File: ", el("code", {}, path)));
  if (typeof input.old_string === "string" || typeof input.new_string === "string") {
    parts.push(diffBlock(`Change to ${path || "the file"}`, input.old_string, input.new_string));
  } else if (Array.isArray(input.edits)) {
    input.edits.forEach((edit, i) => {
      if (edit && typeof edit === "object") {
        parts.push(diffBlock(`Change ${i + 1} to ${path || "the file"}`, edit.old_string, edit.new_string));
      }
    });
  } else if (typeof input.content === "string") {
    parts.push(diffBlock(`New content of ${path || "the file"}`, undefined, input.content));
  }
  return el("div", { class: "tool-view" }, ...parts);
}

function approvalsText(a) {
  const who = a.approved_by && a.approved_by.length ? ` (${a.approved_by.join(", ")})` : "";
  return `${a.approvals} of ${a.quorum}${who}`;
}

// ---- one card per pending action ----

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function makeCard(action) {
  const n = ++counter;
  const ids = { title: `a${n}-title`, text: `a${n}-text` };
  const title = el("h2", { id: ids.title });
  const session = el("code");
  const requester = el("span");
  const kind = el("span");
  const rule = el("code");
  const reason = el("span");
  const approvals = el("span");
  const timer = el("span", { class: "timer" });
  const text = el("pre", { class: "action-text", tabindex: "0", "aria-labelledby": ids.text });
  const tool = el("div", { class: "tool-slot" });
  const approveBtn = el("button", { type: "button", "aria-describedby": ids.title });
  const denyBtn = el("button", { type: "button", class: "danger", "aria-describedby": ids.title });
  const root = el(
    "li",
    { class: "card approval-card", dataset: { actionId: action.id } },
    title,
    el(
      "dl",
      { class: "facts" },
      ...fact("Session", session),
      ...fact("Requested by", requester),
      ...fact("Kind", kind),
      ...fact("Rule", rule),
      ...fact("Reason", reason),
      ...fact("Approvals", approvals),
      ...fact("Time left", timer),
    ),
    tool,
    el("p", { class: "field-label", id: ids.text }, "Exact text to run:"),
    text,
    el("div", { class: "actions" }, approveBtn, denyBtn),
  );
  const card = { id: action.id, root, countdown: new Countdown(), action };

  card.update = (a) => {
    card.action = a;
    title.textContent = `Action ${a.seq} on session ${shortId(a.session_id)}`;
    session.textContent = a.session_id;
    requester.textContent = a.requester || a.requester_id;
    kind.textContent = kindLabel(a.kind);
    rule.textContent = a.rule;
    reason.textContent = a.reason || "—";
    approvals.textContent = approvalsText(a);
    text.textContent = a.text; // never innerHTML: the text is exactly what was submitted
    const call = a.kind === "tool" ? parseToolCall(a.text) : null;
    tool.replaceChildren(...(call ? [toolView(call)] : []));
    approveBtn.textContent = `Approve ${a.seq}`;
    denyBtn.textContent = `Deny ${a.seq}`;
    card.countdown.set(a.time_left_s);
    card.tick();
  };
  card.tick = () => {
    const left = card.countdown.remaining();
    timer.textContent = left > 0 ? formatDuration(left) : "expired";
    timer.dataset.urgent = String(left !== null && left <= URGENT_S);
    const expired = left !== null && left <= 0;
    if (expired && !approveBtn.hasAttribute("aria-busy")) {
      approveBtn.disabled = true;
      denyBtn.disabled = true;
    }
  };

  approveBtn.addEventListener("click", () => decide(card, true, [approveBtn, denyBtn]));
  denyBtn.addEventListener("click", () => decide(card, false, [approveBtn, denyBtn]));
  card.update(action);
  return card;
}

async function decide(card, approve, buttons) {
  clearMessage(error);
  clearMessage(status);
  const a = card.action;
  const what = `action ${a.seq} (“${firstLine(a.text)}”)`;
  const path = `/api/approvals/${encodeURIComponent(card.id)}`;
  try {
    const res = await busy(buttons, async () => {
      const { options } = await api("POST", `${path}/options`, {});
      const credential = await getAssertion(options);
      return api("POST", `${path}/decide`, { approve, credential });
    });
    if (res.action) apply(res.action);
    else removeCard(card.id);
    const state = res.action ? res.action.state : res.decision.state_after;
    if (!approve) say(`You denied ${what}. It will not run.`);
    else if (state === "approved") say(`You approved ${what}. It goes to the session now.`);
    else {
      const more = Math.max(1, (res.decision.quorum || 1) - (res.decision.approvals || 0));
      say(`Your approval of ${what} is recorded. It waits for ${more} more approval${more === 1 ? "" : "s"}.`);
    }
  } catch (err) {
    if (err instanceof ApiError && STALE.has(err.code)) {
      removeCard(card.id);
      clearMessage(status);
      showMessage(error, `${sentence(err.message)} Nothing was changed by your ${approve ? "approval" : "denial"}.`);
      return;
    }
    fail(err);
  }
}

function removeCard(id) {
  const card = cards.get(id);
  if (!card) return;
  card.root.remove();
  cards.delete(id);
  updateEmpty();
}

function updateEmpty() {
  $("#approvals-empty").hidden = cards.size > 0;
}

// ---- your own held actions ----

function mineRow(a) {
  const state = STATE_LABELS[a.state] || a.state;
  const badge = { approved: "badge-ok", denied: "badge-danger", timed_out: "badge-danger", cancelled: "badge-danger" };
  const left = el("span", { class: "timer" });
  const countdown = new Countdown();
  countdown.set(a.state === "pending" ? a.time_left_s : null);
  const root = el(
    "li",
    { dataset: { actionId: a.id, state: a.state } },
    el(
      "div",
      { class: "item-main" },
      el(
        "div",
        { class: "item-title" },
        `Action ${a.seq} on session ${shortId(a.session_id)}`,
        el("span", { class: `badge ${badge[a.state] || ""}` }, state),
      ),
      el("code", { class: "mine-text" }, a.text),
      el(
        "div",
        { class: "item-meta" },
        ...(a.state === "pending"
          ? [`Rule ${a.rule} · approvals ${approvalsText(a)} · time left `, left]
          : [`${sentence(a.outcome)} ${formatTime(a.decided_at, "")}`]),
      ),
    ),
  );
  return {
    root,
    tick() {
      const r = countdown.remaining();
      if (r !== null) left.textContent = formatDuration(r);
    },
  };
}

function applyMine(a) {
  const row = mineRow(a);
  const old = mine.get(a.id);
  if (old) old.root.replaceWith(row.root);
  else mineList.prepend(row.root);
  mine.set(a.id, row);
  row.tick();
  $("#mine-section").hidden = mine.size === 0;
}

// ---- live state ----

function apply(a) {
  if (a.mine) applyMine(a);
  const card = cards.get(a.id);
  if (a.state === "pending" && a.can_decide) {
    if (card) card.update(a);
    else {
      const fresh = makeCard(a);
      cards.set(a.id, fresh);
      list.append(fresh.root);
      updateEmpty();
    }
  } else if (card) {
    removeCard(a.id);
    if (a.state !== "pending") say(`Action ${a.seq} on session ${shortId(a.session_id)}: ${a.outcome || a.state}.`);
  }
}

function applySnapshot(snapshot) {
  const pending = new Set((snapshot.approvals || []).map((a) => a.id));
  for (const id of [...cards.keys()]) if (!pending.has(id)) removeCard(id);
  for (const a of snapshot.approvals || []) apply(a);
  for (const a of snapshot.mine || []) applyMine(a);
  updateEmpty();
  $("#loading").hidden = true;
}

function setLive(state) {
  live.dataset.state = state;
  live.textContent = { live: "Live", reconnecting: "Reconnecting…", connecting: "Connecting…" }[state];
}

function connect() {
  const source = new EventSource("/api/approvals/stream");
  const data = (handler) => (event) => {
    try {
      handler(JSON.parse(event.data));
    } catch (err) {
      fail(err);
    }
  };
  source.addEventListener("snapshot", data(applySnapshot));
  for (const kind of ["held", "updated", "decided"]) source.addEventListener(kind, data((d) => apply(d.action)));
  source.addEventListener("open", () => setLive("live"));
  source.addEventListener("error", async () => {
    setLive("reconnecting");
    if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
    // Refused (signed out, or the gateway restarted): check the sign-in, then try again.
    try {
      const me = await getMe({ refresh: true });
      if (!me || !me.user) {
        goToLogin();
        return;
      }
    } catch {
      // unreachable for now: retry below
    }
    setTimeout(connect, RECONNECT_MS);
  });
}

const me = await requireUser();
if (me) {
  try {
    applySnapshot(await api("GET", "/api/approvals"));
  } catch (err) {
    fail(err);
  }
  connect();
  setInterval(() => {
    for (const card of cards.values()) card.tick();
    for (const row of mine.values()) row.tick();
  }, 1000);
}
