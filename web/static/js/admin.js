// /admin: users (add, disable, reset factors; shows the enrolment link), the policy (validate, save,
// version history with diffs, explain a decision) and the audit log.

import { api } from "./api.js";
import { requireUser } from "./nav.js";
import { $, busy, clearMessage, el, errorText, formatTimeSeconds, goToLogin, showMessage } from "./ui.js";

const error = $("#error");
const status = $("#status");
const usersBody = $("#users");
const auditBody = $("#audit");
const AUDIT_PAGE = 100;
const AUDIT_MAX_ROWS = 1000;
const audit = { lastSeq: 0, events: [] };
const userNames = new Map(); // user id -> name, to show audit actors and subjects readably
let me = null;

function fail(err) {
  if (err && err.status === 401 && err.code === "unauthenticated") {
    goToLogin();
    return;
  }
  showMessage(error, errorText(err));
}

function say(text) {
  clearMessage(error);
  showMessage(status, text);
}

/** A small confirmation dialog; resolves true on Confirm. */
function confirmDialog(title, text) {
  return new Promise((resolve) => {
    const ok = el("button", { type: "button", class: "danger" }, "Confirm");
    const cancel = el("button", { type: "button", class: "secondary" }, "Cancel");
    const dialog = el(
      "dialog",
      { "aria-labelledby": "confirm-title" },
      el("h2", { id: "confirm-title" }, title),
      el("p", {}, text),
      el("div", { class: "actions" }, ok, cancel),
    );
    document.body.append(dialog);
    const done = (v) => {
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(v);
    };
    ok.addEventListener("click", () => done(true));
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    dialog.showModal();
    cancel.focus();
  });
}

// ---- users ----

async function loadUsers() {
  const { users } = await api("GET", "/api/admin/users");
  userNames.clear();
  for (const u of users) userNames.set(u.id, u.name);
  const sorted = users.slice().sort((a, b) => a.name.localeCompare(b.name));
  usersBody.replaceChildren(...sorted.map(userRow));
}

function userRow(u) {
  const disable = el(
    "button",
    { type: "button", class: "danger small", "aria-label": `Disable ${u.name}` },
    "Disable",
  );
  const reset = el(
    "button",
    { type: "button", class: "secondary small", "aria-label": `Reset factors for ${u.name}` },
    "Reset factors",
  );
  const isSelf = me && me.user.id === u.id;
  disable.hidden = u.disabled || isSelf;
  disable.addEventListener("click", async () => {
    const yes = await confirmDialog(
      `Disable ${u.name}?`,
      `${u.name} will be signed out everywhere and can no longer sign in.`,
    );
    if (!yes) return;
    try {
      await busy([disable, reset], () => api("POST", `/api/admin/users/${encodeURIComponent(u.id)}/disable`, {}));
      say(`${u.name} is disabled.`);
      await Promise.all([loadUsers(), loadAudit()]);
    } catch (err) {
      fail(err);
    }
  });
  reset.addEventListener("click", async () => {
    const yes = await confirmDialog(
      `Reset factors for ${u.name}?`,
      `All passkeys, authenticator apps and the password of ${u.name} are removed, and a new enrolment link is made.`,
    );
    if (!yes) return;
    try {
      const res = await busy([disable, reset], () =>
        api("POST", `/api/admin/users/${encodeURIComponent(u.id)}/reset-factors`, {}),
      );
      showEnrolUrl(res.user || u, res.enrol_url);
      say(`The factors of ${u.name} were reset.`);
      await Promise.all([loadUsers(), loadAudit()]);
    } catch (err) {
      fail(err);
    }
  });
  const groups = (u.groups || []).join(", ");
  return el(
    "tr",
    { dataset: { userId: u.id } },
    el("td", { "data-label": "Name" }, u.name),
    el("td", { "data-label": "Role" }, u.role),
    el("td", { "data-label": "Groups" }, groups || "—"),
    el(
      "td",
      { "data-label": "Status" },
      u.disabled ? el("span", { class: "badge badge-danger" }, "disabled") : "active",
    ),
    el("td", { "data-label": "Actions" }, el("div", { class: "item-actions" }, disable, reset)),
  );
}

function showEnrolUrl(user, url) {
  $("#enrol-for").textContent = `Enrolment link for ${user.name}:`;
  $("#enrol-url").textContent = url || "";
  $("#enrol-result").hidden = !url;
}

function setupAddUser() {
  const form = $("#add-user");
  const name = $("#new-name");
  const role = $("#new-role");
  const groupsInput = $("#new-groups");
  const submit = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage(error);
    clearMessage(status);
    const n = name.value.trim();
    if (!n) {
      showMessage(error, "Enter a user name.");
      name.focus();
      return;
    }
    const groups = groupsInput.value
      .split(",")
      .map((g) => g.trim())
      .filter((g) => g.length > 0);
    try {
      const res = await busy(submit, () => api("POST", "/api/admin/users", { name: n, role: role.value, groups }));
      showEnrolUrl(res.user, res.enrol_url);
      say(`User ${res.user.name} added.`);
      form.reset();
      await Promise.all([loadUsers(), loadAudit()]);
    } catch (err) {
      fail(err);
    }
  });
  $("#enrol-copy").addEventListener("click", async () => {
    const url = $("#enrol-url").textContent;
    try {
      await navigator.clipboard.writeText(url);
      say("Link copied.");
    } catch {
      showMessage(error, "Copying is not allowed here: select the link and copy it by hand.");
    }
  });
}

// ---- policy ----

const policyState = { editable: false, selectedVersion: null };

function showPolicyResult(summary, problems = [], kind = "ok") {
  const box = $("#policy-result");
  const summaryNode = $("#policy-result-summary");
  summaryNode.textContent = summary;
  box.dataset.state = kind;
  $("#policy-problems").replaceChildren(...problems.map((text) => el("li", {}, text)));
  box.hidden = false;
}

function problemText(p) {
  const parts = [];
  if (p.line !== null && p.line !== undefined) parts.push(`line ${p.line}`);
  if (p.field) parts.push(String(p.field));
  parts.push(String(p.message || ""));
  return parts.join(": ");
}

async function loadPolicy({ keepText = false } = {}) {
  const res = await api("GET", "/api/admin/policy");
  if (!keepText) $("#policy-text").value = res.text || "";
  $("#policy-version").textContent = res.version || "—";
  $("#policy-source").textContent = res.source || "—";
  showMessage($("#policy-load-error"), res.error ? `The last load was refused: ${res.error}` : "");
  policyState.editable = Boolean(res.editable);
  $("#policy-save").hidden = !policyState.editable;
  renderVersions(Array.isArray(res.versions) ? res.versions : []);
}

function renderVersions(names) {
  const list = $("#policy-versions");
  // Newest first (the API lists them oldest first).
  const items = names
    .slice()
    .reverse()
    .map((name) => {
      const show = el("button", { type: "button", class: "secondary small" }, `Show ${name}`);
      show.addEventListener("click", async () => {
        try {
          const res = await busy(show, () =>
            api("GET", `/api/admin/policy/versions/${encodeURIComponent(name)}`),
          );
          $("#policy-diff-heading").textContent = `Diff of ${name}`;
          $("#policy-diff").textContent = res.diff || "(no change from the version before)";
          $("#policy-diff-box").hidden = false;
          policyState.selectedVersion = name;
        } catch (err) {
          fail(err);
        }
      });
      return el("li", { dataset: { version: name } }, show);
    });
  list.replaceChildren(...items);
  $("#policy-versions-empty").hidden = items.length > 0;
}

function setupPolicy() {
  const text = $("#policy-text");
  const validate = $("#policy-validate");
  const save = $("#policy-save");
  const form = $("#policy-form");
  const reload = $("#policy-reload");

  validate.addEventListener("click", async () => {
    clearMessage(error);
    try {
      const res = await busy(validate, () => api("POST", "/api/admin/policy/validate", { text: text.value }));
      if (res.valid) {
        const warnings = (res.warnings || []).map((w) => `warning: ${w.rule ? `${w.rule}: ` : ""}${w.message}`);
        showPolicyResult(`valid, version ${res.version}`, warnings, "ok");
      } else {
        const problems = (res.problems || []).map(problemText);
        if (problems.length === 0 && res.message) problems.push(String(res.message));
        showPolicyResult("not valid", problems, "error");
      }
    } catch (err) {
      fail(err);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!policyState.editable) return;
    clearMessage(error);
    try {
      const res = await busy([save, validate], () => api("POST", "/api/admin/policy", { text: text.value }));
      showPolicyResult(`saved, version ${res.version} is in force`, [], "ok");
      say(`Policy version ${res.version} is in force.`);
      await Promise.all([loadPolicy({ keepText: true }), loadAudit()]);
    } catch (err) {
      if (err && err.code === "policy_invalid") {
        // The message lists each problem on its own line ("source:line: field: message").
        showPolicyResult("not saved: the policy is not valid", String(err.message || "").split("\n"), "error");
        return;
      }
      if (err && err.code === "reauth_cancelled") {
        showPolicyResult("not saved: confirming your identity was cancelled", [], "error");
        return;
      }
      showPolicyResult(`not saved: ${errorText(err)}`, [], "error");
      fail(err);
    }
  });

  reload.addEventListener("click", async () => {
    try {
      await busy(reload, () => loadPolicy());
      $("#policy-result").hidden = true;
    } catch (err) {
      fail(err);
    }
  });
}

function parseLabels(raw) {
  const labels = {};
  for (const part of raw.split(",")) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`A label is written k=v: “${item}”.`);
    labels[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return labels;
}

function setupExplain() {
  const form = $("#explain-form");
  const submit = $("#explain-submit");
  const result = $("#explain-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage(error);
    const user = $("#explain-user").value.trim();
    if (!user) {
      showMessage(error, "Enter the user whose action to explain.");
      $("#explain-user").focus();
      return;
    }
    const owner = $("#explain-owner").value.trim();
    const mode = $("#explain-mode").value || null;
    const input = $("#explain-input").value;
    const tool = $("#explain-tool").value.trim();
    let labels;
    let toolInput = null;
    try {
      labels = parseLabels($("#explain-labels").value);
      if (tool) toolInput = input.trim() ? JSON.parse(input) : {};
      if (toolInput !== null && (typeof toolInput !== "object" || Array.isArray(toolInput))) {
        throw new Error("With a tool, Input is the tool's JSON input (an object).");
      }
    } catch (err) {
      showMessage(error, err instanceof SyntaxError ? `Input is not JSON: ${err.message}` : errorText(err));
      return;
    }
    const body = { user, labels, mode };
    if (owner) body.owner = owner;
    if (tool) {
      body.tool = tool;
      body.tool_input = toolInput;
    } else if (input) {
      body.input = input;
    } else {
      body.request = true;
    }
    try {
      const res = await busy(submit, () => api("POST", "/api/admin/policy/explain", body));
      result.textContent = res.text || res.summary || "";
      result.dataset.decision = res.decision || "";
      result.hidden = false;
    } catch (err) {
      result.hidden = true;
      fail(err);
    }
  });
}

// ---- audit log ----

function who(id) {
  if (id === null || id === undefined || id === "") return "—";
  const name = userNames.get(id);
  return name ? `${name} (${id})` : String(id);
}

async function loadAudit() {
  for (let page = 0; page < 20; page++) {
    const { events } = await api("GET", `/api/admin/audit?after=${audit.lastSeq}&limit=${AUDIT_PAGE}`);
    if (!events || events.length === 0) break;
    for (const ev of events) {
      if (typeof ev.seq === "number" && ev.seq > audit.lastSeq) audit.lastSeq = ev.seq;
    }
    audit.events.push(...events);
    if (events.length < AUDIT_PAGE) break;
  }
  audit.events.sort((a, b) => b.seq - a.seq);
  if (audit.events.length > AUDIT_MAX_ROWS) audit.events.length = AUDIT_MAX_ROWS;
  auditBody.replaceChildren(...audit.events.map(auditRow));
  $("#audit-empty").hidden = audit.events.length > 0;
}

function auditRow(ev) {
  const outcome = ev.outcome || "";
  const detail = ev.detail && typeof ev.detail === "object" ? JSON.stringify(ev.detail) : "";
  return el(
    "tr",
    { title: detail || null },
    el("td", { class: "num", "data-label": "Seq" }, ev.seq),
    el("td", { class: "nowrap", "data-label": "Time" }, formatTimeSeconds(ev.ts ?? ev.time)),
    el("td", { "data-label": "Type" }, ev.type || ""),
    el("td", { "data-label": "Actor" }, who(ev.actor)),
    el("td", { "data-label": "Subject" }, who(ev.subject)),
    el("td", { class: `outcome-${outcome}`, "data-label": "Outcome" }, outcome),
  );
}

// ---- page ----

me = await requireUser();
if (me) {
  if (me.user.role !== "admin") {
    showMessage(error, "This page is for administrators. Your role is " + me.user.role + ".");
  } else {
    setupAddUser();
    setupPolicy();
    setupExplain();
    const refresh = $("#audit-refresh");
    refresh.addEventListener("click", async () => {
      try {
        await busy(refresh, loadAudit);
      } catch (err) {
        fail(err);
      }
    });
    try {
      await loadUsers();
      $("#admin").hidden = false;
      await Promise.all([loadPolicy(), loadAudit()]);
    } catch (err) {
      fail(err);
    }
  }
}
