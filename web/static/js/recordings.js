// /recordings: the reviewer's list of recordings (filters, sort, paging, live sessions marked)
// and full-text search whose hits open /replay/{id}#t=SECONDS. The filters live in the page's
// query string, so a filtered list can be bookmarked and the back button works.

import { api, ApiError } from "./api.js";
import { requireUser } from "./nav.js";
import { formatBytes, formatOffset, replayHref, snippetNode, STREAM_LABELS, visible } from "./recordings-common.js";
import { formatDuration, labelsText, modeLabel } from "./sessions-common.js";
import { $, busy, clearMessage, el, errorText, formatTime, goToLogin, showMessage } from "./ui.js";

const PAGE = 25;
const FILTERS = ["owner", "host", "label", "text", "from", "to", "live", "sort"];
const COUNTS = ["joins", "approvals", "denials", "refusals", "tool_calls", "redactions"];

const error = $("#error");
const status = $("#status");
const body = $("#recordings");
const filters = $("#filters");
const state = { offset: 0, total: 0 };

function fail(err) {
  if (err instanceof ApiError && err.status === 401 && err.code === "unauthenticated") {
    goToLogin();
    return;
  }
  clearMessage(status);
  showMessage(error, errorText(err));
}

/** Unix seconds at the start (or the end) of a yyyy-mm-dd date in the browser's time zone. */
function dayBound(value, end) {
  const [y, m, d] = value.split("-").map(Number);
  if (!y || !m || !d) return null;
  const t = end ? new Date(y, m - 1, d, 23, 59, 59) : new Date(y, m - 1, d, 0, 0, 0);
  return Math.floor(t.getTime() / 1000);
}

function readForm() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const v = String(filters.elements[name].value || "").trim();
    if (v && !(name === "sort" && v === "-start")) params.set(name, v);
  }
  return params;
}

function writeForm(params) {
  for (const name of FILTERS) {
    filters.elements[name].value = params.get(name) || (name === "sort" ? "-start" : "");
  }
}

function apiQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of params) {
    if (k === "from" || k === "to") {
      const t = dayBound(v, k === "to");
      if (t !== null) q.set(k, String(t));
    } else {
      q.set(k, v);
    }
  }
  q.set("limit", String(PAGE));
  q.set("offset", String(state.offset));
  return q;
}

function cell(label, ...children) {
  return el("td", { "data-label": label }, ...children);
}

function row(r) {
  const link = el("a", { href: replayHref(r.id) }, r.id);
  const title = el("div", { class: "rec-title" }, visible(r.title || ""));
  const badges = el("div", { class: "rec-badges" });
  if (r.live) badges.append(el("span", { class: "badge badge-live", title: "still being recorded" }, "live"));
  else if (!r.finished) badges.append(el("span", { class: "badge", title: "no final checkpoint" }, "unfinished"));
  const labels = labelsText(r.labels).map((l) => el("span", { class: "badge label-badge" }, visible(l)));
  const counts = COUNTS.map((k) => {
    const n = Number(r.counts?.[k] || 0);
    return cell(k.replace("_", " "), el("span", { class: n ? "count" : "count zero" }, String(n)));
  });
  return el(
    "tr",
    { dataset: { id: r.id } },
    cell("Recording", link, badges, title),
    cell("Owner", visible(r.owner)),
    cell("Participants", visible((r.participants || []).join(", ") || "—")),
    cell("Host", visible(r.host)),
    cell("Labels", ...(labels.length ? labels : ["—"])),
    cell("Start", el("span", { class: "nowrap" }, formatTime(r.start, "—"))),
    cell("Duration", formatDuration(r.duration)),
    cell("Size", formatBytes(r.size)),
    cell("Modes", (r.modes || []).map(modeLabel).join(", ") || "—"),
    ...counts,
  );
}

async function load() {
  const params = readForm();
  const q = apiQuery(params);
  $("#loading").hidden = false;
  try {
    const data = await api("GET", `/api/recordings?${q}`);
    state.total = data.total;
    body.replaceChildren(...data.recordings.map(row));
    $("#empty").hidden = data.total > 0;
    const first = data.total ? state.offset + 1 : 0;
    const last = state.offset + data.recordings.length;
    $("#page-info").textContent = `${first}–${last} of ${data.total}`;
    $("#prev").disabled = state.offset === 0;
    $("#next").disabled = last >= data.total;
    clearMessage(error);
  } catch (err) {
    fail(err);
  } finally {
    $("#loading").hidden = true;
  }
}

function syncUrl() {
  const params = readForm();
  if (state.offset) params.set("offset", String(state.offset));
  const search = params.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

function hitItem(hit) {
  const when = formatOffset(hit.t);
  const link = el(
    "a",
    { href: replayHref(hit.id, hit.t), class: "hit-link" },
    el("span", { class: "hit-where" }, `${hit.id} @ ${when}`),
    el("span", { class: `badge hit-stream hit-${hit.stream}` }, STREAM_LABELS[hit.stream] || hit.stream),
  );
  return el("li", {}, link, el("div", { class: "hit-snippet" }, snippetNode(hit.snippet)));
}

async function search(event) {
  event.preventDefault();
  const q = $("#search-q").value;
  const summary = $("#search-summary");
  if (!q.trim()) {
    showMessage(summary, "Type the text to look for.");
    return;
  }
  await busy($("#search-go"), async () => {
    try {
      const data = await api("GET", `/api/search?${new URLSearchParams({ q })}`);
      $("#search-hits").replaceChildren(...data.hits.map(hitItem));
      let text = `${data.hits.length} hit${data.hits.length === 1 ? "" : "s"} in ${data.searched} recording${
        data.searched === 1 ? "" : "s"
      } (${data.elapsed_s.toFixed(2)} s).`;
      if (data.truncated && data.reason === "hits") text += " Showing the first hits only: search for more precise text.";
      if (data.truncated && data.reason === "time") text += " The search took too long and stopped early.";
      if (data.unindexed) text += ` ${data.unindexed} recording(s) are still being indexed: search again shortly.`;
      showMessage(summary, text);
      clearMessage(error);
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
    $("#loading").hidden = true;
    return;
  }
  $("#workbench").hidden = false;
  const params = new URLSearchParams(location.search);
  writeForm(params);
  state.offset = Math.max(0, Number(params.get("offset")) || 0);
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    state.offset = 0;
    syncUrl();
    load();
  });
  filters.addEventListener("reset", () => {
    setTimeout(() => {
      state.offset = 0;
      syncUrl();
      load();
    });
  });
  $("#f-sort").addEventListener("change", () => filters.requestSubmit());
  $("#f-live").addEventListener("change", () => filters.requestSubmit());
  $("#prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    syncUrl();
    load();
  });
  $("#next").addEventListener("click", () => {
    state.offset += PAGE;
    syncUrl();
    load();
  });
  $("#refresh").addEventListener("click", load);
  $("#search-form").addEventListener("submit", search);
  await load();
}

main().catch(fail);
