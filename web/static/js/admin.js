// /admin: users (add, disable, reset factors; shows the enrolment link) and the audit log.

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
      await loadAudit();
    } catch (err) {
      fail(err);
    }
  }
}
