// /account: sign-in methods (list, rename, remove, add), password, signed-in browsers, sign out.

import { api } from "./api.js";
import { setupPasskeyForm, setupTotpForm } from "./factor-forms.js";
import { requireUser } from "./nav.js";
import {
  $,
  KIND_LABELS,
  ROLE_LABELS,
  busy,
  clearMessage,
  describeUserAgent,
  el,
  errorText,
  fillUsernameHints,
  formatTime,
  goToLogin,
  showMessage,
} from "./ui.js";

const error = $("#error");
const status = $("#status");
const factorList = $("#factors");
const loginList = $("#logins");
const state = { hasPassword: false, factors: [] };

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

// ---- sign-in methods ----

async function loadFactors() {
  const res = await api("GET", "/api/factors");
  state.factors = res.factors || [];
  state.hasPassword = Boolean(res.has_password);
  renderFactors();
  $("#password-state").textContent = state.hasPassword
    ? "You have a password. It is used only with an authenticator-app code."
    : "You have no password yet. You need one only to sign in with an authenticator app.";
}

function renderFactors() {
  factorList.replaceChildren(...state.factors.map(factorItem));
  $("#factors-empty").hidden = state.factors.length > 0;
}

function factorItem(f) {
  const li = el("li", { dataset: { factorId: f.id } });
  const title = el(
    "div",
    { class: "item-title" },
    f.name,
    el("span", { class: "badge" }, KIND_LABELS[f.kind] || f.kind),
  );
  const meta = el(
    "div",
    { class: "item-meta" },
    `Added ${formatTime(f.created_at, "—")} · Last used ${formatTime(f.last_used_at)}`,
  );
  const main = el("div", { class: "item-main" }, title, meta);
  const rename = el("button", { type: "button", class: "secondary small", "aria-label": `Rename ${f.name}` }, "Rename");
  const remove = el("button", { type: "button", class: "danger small", "aria-label": `Remove ${f.name}` }, "Remove");
  const actions = el("div", { class: "item-actions" }, rename, remove);
  li.append(main, actions);

  rename.addEventListener("click", () => showRename(li, f, actions));
  remove.addEventListener("click", () => showRemove(li, f, actions));
  return li;
}

function showRename(li, f, actions) {
  clearMessage(error);
  const inputId = `rename-${f.id}`;
  const input = el("input", { type: "text", id: inputId, maxlength: "64", autocomplete: "off", required: true });
  input.value = f.name;
  const save = el("button", { type: "submit", class: "small", "aria-label": `Save name for ${f.name}` }, "Save");
  const cancel = el("button", { type: "button", class: "secondary small" }, "Cancel");
  const form = el(
    "form",
    { novalidate: true },
    el("div", { class: "field" }, el("label", { for: inputId }, `New name for ${f.name}`), input),
    el("div", { class: "actions" }, save, cancel),
  );
  actions.hidden = true;
  li.append(form);
  input.focus();
  input.select();
  cancel.addEventListener("click", () => {
    form.remove();
    actions.hidden = false;
    actions.querySelector("button").focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      showMessage(error, "Enter a name.");
      input.focus();
      return;
    }
    try {
      await busy([save, cancel, input], () =>
        api("PATCH", `/api/factors/${encodeURIComponent(f.id)}`, { name }),
      );
      say(`Renamed “${f.name}” to “${name}”.`);
      await loadFactors();
    } catch (err) {
      fail(err);
    }
  });
}

function showRemove(li, f, actions) {
  clearMessage(error);
  const confirm = el(
    "button",
    { type: "button", class: "danger small", "aria-label": `Confirm removal of ${f.name}` },
    "Remove it",
  );
  const cancel = el("button", { type: "button", class: "secondary small" }, "Keep it");
  const box = el(
    "form",
    { novalidate: true },
    el("p", {}, `Remove “${f.name}”? You will no longer be able to sign in with it.`),
    el("div", { class: "actions" }, confirm, cancel),
  );
  actions.hidden = true;
  li.append(box);
  confirm.focus();
  cancel.addEventListener("click", () => {
    box.remove();
    actions.hidden = false;
    actions.querySelectorAll("button")[1].focus();
  });
  confirm.addEventListener("click", async () => {
    try {
      await busy([confirm, cancel], () => api("DELETE", `/api/factors/${encodeURIComponent(f.id)}`));
      say(`Removed “${f.name}”.`);
      await loadFactors();
    } catch (err) {
      box.remove();
      actions.hidden = false;
      fail(err);
    }
  });
}

// ---- password ----

function setupPasswordForm() {
  const form = $("#password-form");
  const pw = $("#new-password");
  const pw2 = $("#new-password2");
  const save = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage(error);
    clearMessage(status);
    if (pw.value.length < 10) {
      showMessage(error, "Choose a password of at least 10 characters.");
      pw.focus();
      return;
    }
    if (pw.value !== pw2.value) {
      showMessage(error, "The two passwords are not the same.");
      pw2.focus();
      return;
    }
    try {
      await busy(save, () => api("POST", "/api/password", { password: pw.value }));
      form.reset();
      say("Password saved.");
      await loadFactors();
    } catch (err) {
      fail(err);
    }
  });
}

// ---- signed-in browsers ----

async function loadLogins() {
  const res = await api("GET", "/api/logins");
  const logins = (res.logins || []).slice().sort((a, b) => (b.current ? 1 : 0) - (a.current ? 1 : 0));
  loginList.replaceChildren(...logins.map(loginItem));
}

function loginItem(l) {
  const what = describeUserAgent(l.user_agent);
  const title = el(
    "div",
    { class: "item-title" },
    what,
    l.current ? el("span", { class: "badge badge-ok" }, "this browser") : null,
    l.enrolling ? el("span", { class: "badge" }, "enrolment") : null,
  );
  const parts = [
    `Signed in ${formatTime(l.created_at, "—")}`,
    `last active ${formatTime(l.last_seen_at, "—")}`,
    `expires ${formatTime(l.expires_at, "—")}`,
  ];
  if (l.last_factor) {
    parts.push(`last confirmed with ${KIND_LABELS[l.last_factor] || l.last_factor} ${formatTime(l.last_factor_at, "")}`.trim());
  }
  const meta = el("div", { class: "item-meta" }, parts.join(" · "));
  const li = el("li", { dataset: { loginId: l.id } }, el("div", { class: "item-main" }, title, meta));
  if (!l.current) {
    const end = el(
      "button",
      { type: "button", class: "danger small", "aria-label": `End session: ${what}, signed in ${formatTime(l.created_at, "")}` },
      "End session",
    );
    end.addEventListener("click", async () => {
      try {
        await busy(end, () => api("DELETE", `/api/logins/${encodeURIComponent(l.id)}`));
        say(`Ended the session of ${what}.`);
        await loadLogins();
      } catch (err) {
        fail(err);
      }
    });
    li.append(el("div", { class: "item-actions" }, end));
  }
  return li;
}

// ---- page ----

const me = await requireUser();
if (me) {
  fillUsernameHints(me.user.name);
  $("#whoami").textContent = `Signed in as ${me.user.name} (${ROLE_LABELS[me.user.role] || me.user.role})`;
  const onAdded = () => loadFactors().catch(fail);
  setupPasskeyForm({ error, status, onAdded });
  setupTotpForm({ error, status, needPassword: () => !state.hasPassword, onAdded });
  setupPasswordForm();
  $("#logins-refresh").addEventListener("click", () => loadLogins().catch(fail));
  try {
    await Promise.all([loadFactors(), loadLogins()]);
  } catch (err) {
    fail(err);
  }
}
