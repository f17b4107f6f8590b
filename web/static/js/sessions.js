// /sessions: the live sessions you own (admins: all). Per session: make a remote-control link,
// list and revoke its links, end remote control. Refreshes every 5 seconds, updating the cards
// in place so that a form being filled in is never reset.

import { api, ApiError } from "./api.js";
import { requireUser } from "./nav.js";
import {
  Countdown,
  MODE_LABELS,
  commandText,
  formatDuration,
  labelsText,
  modeLabel,
  sentence,
} from "./sessions-common.js";
import { $, busy, clearMessage, el, errorText, formatTime, goToLogin, showMessage } from "./ui.js";

const REFRESH_MS = 5_000;
const DEFAULT_TTL_MIN = 10;
const MAX_TTL_MIN = 24 * 60;

const error = $("#error");
const status = $("#status");
const list = $("#sessions");
const cards = new Map(); // session id -> card
let counter = 0;
let loading = false;
let refreshFailed = false;
let me = null;

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

/** A small confirmation dialog; resolves true on Confirm. */
function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const ok = el("button", { type: "button", class: "danger" }, confirmLabel);
    const cancel = el("button", { type: "button", class: "secondary" }, "Cancel");
    const dialog = el(
      "dialog",
      { "aria-labelledby": "confirm-title", "aria-describedby": "confirm-desc" },
      el("h2", { id: "confirm-title" }, title),
      el("p", { id: "confirm-desc" }, text),
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

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    say(`${what} copied.`);
  } catch {
    showMessage(error, "Copying is not allowed here: select the text and copy it by hand.");
  }
}

// ---- the newest link (one on the page; it moves to the card it was made for) ----

const result = (() => {
  const summary = el("p", { id: "link-summary" });
  const url = el("code", { id: "link-url", class: "link-url" });
  const ssh = el("code", { id: "link-ssh", class: "link-ssh" });
  const copyUrl = el("button", { type: "button", id: "link-copy", class: "secondary small" }, "Copy link");
  const copySsh = el("button", { type: "button", id: "ssh-copy", class: "secondary small" }, "Copy ssh command");
  const root = el(
    "div",
    { id: "link-result", class: "link-result", role: "region", "aria-labelledby": "link-result-heading" },
    el("h3", { id: "link-result-heading" }, "New link"),
    summary,
    el("p", { class: "field-label", id: "link-url-label" }, "Open in a browser:"),
    url,
    el("p", { class: "field-label", id: "link-ssh-label" }, "Or join with ssh (password and authenticator code):"),
    ssh,
    el("p", { class: "hint" }, "Send it over a channel you trust. It works once, for the first person who opens it."),
    el("div", { class: "actions" }, copyUrl, copySsh),
  );
  url.setAttribute("aria-labelledby", "link-url-label");
  ssh.setAttribute("aria-labelledby", "link-ssh-label");
  copyUrl.addEventListener("click", () => copy(url.textContent, "Link"));
  copySsh.addEventListener("click", () => copy(ssh.textContent, "ssh command"));
  return { root, summary, url, ssh };
})();

function showLink(card, res, forUser) {
  const link = res.link || {};
  const who = forUser ? ` for ${forUser}` : "";
  result.summary.textContent =
    `${modeLabel(link.mode)} link${who} (id ${link.id || "?"}), ` +
    `to be opened before ${formatTime(link.expires_at, "it expires")}.`;
  result.url.textContent = res.url || "";
  result.ssh.textContent = res.ssh || "";
  card.resultSlot.replaceChildren(result.root);
}

// ---- one card per live session ----

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function makeCard(session) {
  const n = ++counter;
  const ids = {
    title: `s${n}-title`,
    mode: `s${n}-mode`,
    forUser: `s${n}-for`,
    forHint: `s${n}-for-hint`,
    ttl: `s${n}-ttl`,
    links: `s${n}-links`,
  };
  const card = {
    id: session.id,
    idle: new Countdown(),
    max: new Countdown(),
    linksOpen: false,
  };

  const command = el("code", { class: "session-command" });
  const host = el("span", { class: "session-host" });
  const online = el("span", { class: "badge" });
  const owner = el("span");
  const cwd = el("code");
  const labels = el("span", { class: "session-labels" });
  const started = el("span");
  const participants = el("span", { class: "session-participants" });
  const idle = el("span", { class: "timer" });
  const max = el("span", { class: "timer" });

  const modeSelect = el(
    "select",
    { id: ids.mode, name: "mode" },
    ...Object.entries(MODE_LABELS).map(([value, label]) => el("option", { value }, label)),
  );
  const forUser = el("input", {
    type: "text",
    id: ids.forUser,
    name: "for_user",
    maxlength: "64",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    "aria-describedby": ids.forHint,
  });
  const ttl = el("input", {
    type: "number",
    id: ids.ttl,
    name: "ttl",
    min: "1",
    max: String(MAX_TTL_MIN),
    step: "1",
    inputmode: "numeric",
    value: String(DEFAULT_TTL_MIN),
    required: true,
  });
  const create = el("button", { type: "submit", "aria-describedby": ids.title }, "Create link");
  const form = el(
    "form",
    { class: "link-form", novalidate: true },
    el("h3", {}, "Make a remote-control link"),
    el(
      "div",
      { class: "form-row" },
      el("div", { class: "field" }, el("label", { for: ids.mode }, "Mode"), modeSelect),
      el(
        "div",
        { class: "field" },
        el("label", { for: ids.forUser }, "For user"),
        forUser,
        el("p", { class: "hint", id: ids.forHint }, "Optional: only this user may open it."),
      ),
      el("div", { class: "field" }, el("label", { for: ids.ttl }, "TTL (minutes)"), ttl),
    ),
    el("div", { class: "actions" }, create),
  );

  const linksButton = el(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-expanded": "false",
      "aria-controls": ids.links,
      "aria-describedby": ids.title,
    },
    "Links",
  );
  const endButton = el("button", { type: "button", class: "danger", "aria-describedby": ids.title }, "End session");
  const linksBody = el("tbody");
  const linksEmpty = el("p", { class: "muted", hidden: true }, "No links yet.");
  const linksPanel = el(
    "div",
    { id: ids.links, class: "links-panel", hidden: true },
    el("h3", {}, "Links"),
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: "stack links-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["Link", "Mode", "For user", "State", "Created", "Open before", "Redeemed by", "Actions"].map((h) =>
              el("th", { scope: "col" }, h),
            ),
          ),
        ),
        linksBody,
      ),
    ),
    linksEmpty,
  );
  const resultSlot = el("div", { class: "link-result-slot" });

  const root = el(
    "article",
    { class: "card session-card", "aria-labelledby": ids.title, dataset: { sessionId: session.id } },
    el("div", { class: "section-head" }, el("h2", { id: ids.title }, command, " on ", host), online),
    el(
      "dl",
      { class: "facts" },
      ...fact("Owner", owner),
      ...fact("Directory", cwd),
      ...fact("Labels", labels),
      ...fact("Started", started),
      ...fact("Participants", participants),
      ...fact("Idle expiry in", idle),
      ...fact("Session ends in", max),
      ...fact("Session id", el("code", {}, session.id)),
    ),
    form,
    resultSlot,
    el("div", { class: "actions session-actions" }, linksButton, endButton),
    linksPanel,
  );

  Object.assign(card, {
    root,
    resultSlot,
    update(s) {
      card.session = s;
      command.textContent = commandText(s.command);
      host.textContent = s.host || "unknown host";
      online.textContent = s.connector_online ? "workstation connected" : "workstation offline";
      online.className = `badge ${s.connector_online ? "badge-ok" : "badge-danger"}`;
      owner.textContent = s.owner || "—";
      cwd.textContent = s.cwd || "—";
      const ls = labelsText(s.labels);
      labels.replaceChildren(...(ls.length ? ls.map((l) => el("span", { class: "badge label-badge" }, l)) : ["—"]));
      started.textContent = formatTime(s.started_at, "—");
      const ps = Array.isArray(s.participants) ? s.participants : [];
      participants.textContent = ps.length
        ? ps.map((p) => `${p.name} (${modeLabel(p.mode)})`).join(", ")
        : "none";
      card.idle.set(s.idle_remaining_s);
      card.max.set(s.max_remaining_s);
      card.tick();
    },
    tick() {
      idle.textContent = formatDuration(card.idle.remaining());
      max.textContent = formatDuration(card.max.remaining(), { hours: true });
    },
    async loadLinks() {
      const { links } = await api("GET", `/api/sessions/${encodeURIComponent(card.id)}/links`);
      const rows = (links || []).slice().sort((a, b) => b.created_at - a.created_at).map(linkRow);
      linksBody.replaceChildren(...rows);
      linksEmpty.hidden = rows.length > 0;
    },
  });

  function linkRow(link) {
    const stateClass = { open: "badge-ok", revoked: "badge-danger" }[link.state] || "";
    const revoke = el(
      "button",
      { type: "button", class: "danger small", "aria-label": `Revoke ${link.id}` },
      "Revoke",
    );
    revoke.hidden = link.state === "revoked" || link.state === "expired";
    revoke.addEventListener("click", async () => {
      try {
        await busy(revoke, () =>
          api(
            "POST",
            `/api/sessions/${encodeURIComponent(card.id)}/links/${encodeURIComponent(link.id)}/revoke`,
            {},
          ),
        );
        say(`Link ${link.id} revoked. Anyone who joined with it was disconnected.`);
        await card.loadLinks();
        await load();
      } catch (err) {
        fail(err);
      }
    });
    return el(
      "tr",
      { dataset: { linkId: link.id, state: link.state } },
      el("td", { "data-label": "Link" }, el("code", {}, link.id)),
      el("td", { "data-label": "Mode" }, modeLabel(link.mode)),
      el("td", { "data-label": "For user" }, link.for_user || "anyone"),
      el("td", { "data-label": "State" }, el("span", { class: `badge link-state ${stateClass}` }, link.state)),
      el("td", { class: "nowrap", "data-label": "Created" }, formatTime(link.created_at, "—")),
      el("td", { class: "nowrap", "data-label": "Open before" }, formatTime(link.expires_at, "—")),
      el("td", { "data-label": "Redeemed by" }, link.redeemed_by || "—"),
      el("td", { "data-label": "Actions" }, el("div", { class: "item-actions" }, revoke)),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage(error);
    clearMessage(status);
    const minutes = Number(ttl.value);
    if (!Number.isFinite(minutes) || minutes < 1 || minutes > MAX_TTL_MIN) {
      showMessage(error, `Enter a TTL between 1 and ${MAX_TTL_MIN} minutes.`);
      ttl.focus();
      return;
    }
    const who = forUser.value.trim();
    const body = { mode: modeSelect.value, ttl_s: Math.round(minutes * 60) };
    if (who) body.for_user = who;
    try {
      const res = await busy(create, () =>
        api("POST", `/api/sessions/${encodeURIComponent(card.id)}/links`, body),
      );
      showLink(card, res, who);
      say("Link created.");
      if (card.linksOpen) await card.loadLinks();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && who) {
        showMessage(error, `${sentence(errorText(err))} Check the user name “${who}”.`);
        forUser.focus();
        return;
      }
      fail(err);
    }
  });

  linksButton.addEventListener("click", async () => {
    card.linksOpen = !card.linksOpen;
    linksButton.setAttribute("aria-expanded", String(card.linksOpen));
    linksPanel.hidden = !card.linksOpen;
    if (!card.linksOpen) return;
    try {
      await busy(linksButton, card.loadLinks);
    } catch (err) {
      fail(err);
    }
  });

  endButton.addEventListener("click", async () => {
    const s = card.session || session;
    const what = `${commandText(s.command)} on ${s.host || "unknown host"}`;
    const yes = await confirmDialog(
      "End this session?",
      `Remote control of ${what} ends now and every participant is disconnected. ` +
        "The program keeps running on the workstation.",
      "End session",
    );
    if (!yes) return;
    try {
      await busy([endButton, create, linksButton], () =>
        api("POST", `/api/sessions/${encodeURIComponent(card.id)}/end`, {}),
      );
      say(`Session ended: ${what}. The program keeps running on the workstation.`);
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.code === "session_not_found") {
        say(`Session ${what} had already ended.`);
        await load();
        return;
      }
      fail(err);
    }
  });

  card.update(session);
  return card;
}

// ---- the list ----

async function load() {
  if (loading) return;
  loading = true;
  try {
    const { sessions } = await api("GET", "/api/sessions");
    const live = (sessions || []).slice().sort((a, b) => b.started_at - a.started_at);
    const seen = new Set();
    for (const s of live) {
      seen.add(s.id);
      const card = cards.get(s.id);
      if (card) card.update(s);
      else cards.set(s.id, makeCard(s));
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.root.remove();
        cards.delete(id);
      }
    }
    // Keep the DOM order (newest first) without re-creating nodes.
    live.forEach((s, i) => {
      const node = cards.get(s.id).root;
      if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
    });
    $("#sessions-empty").hidden = live.length > 0;
    await Promise.all(
      [...cards.values()].filter((c) => c.linksOpen).map((c) => c.loadLinks().catch(() => {})),
    );
    if (refreshFailed) {
      refreshFailed = false;
      clearMessage(error);
    }
  } catch (err) {
    refreshFailed = true;
    fail(err);
  } finally {
    loading = false;
    $("#loading").hidden = true;
  }
}

me = await requireUser();
if (me) {
  if (me.user.role === "admin") {
    $("#sessions-heading").textContent = "Live sessions";
    $("#sessions-scope").textContent = "As an admin you see every live session. This list refreshes every 5 seconds.";
  }
  const refresh = $("#sessions-refresh");
  refresh.addEventListener("click", () => busy(refresh, load));
  await load();
  setInterval(load, REFRESH_MS);
  setInterval(() => {
    for (const card of cards.values()) card.tick();
  }, 1000);
}
