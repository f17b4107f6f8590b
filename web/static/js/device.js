// /device: approve or deny a workstation login started by `rcgate login` (device flow).
// The code arrives as /device#code=XXXX-XXXX (kept out of server logs) or is typed in.

import { api } from "./api.js";
import { requireUser } from "./nav.js";
import { sentence } from "./sessions-common.js";
import { $, busy, clearMessage, errorText, goToLogin, showMessage } from "./ui.js";

const error = $("#error");
const status = $("#status");
const codeCard = $("#code-card");
const codeForm = $("#code-form");
const codeInput = $("#device-code");
const requestCard = $("#request-card");
const approveButton = $("#approve");
const denyButton = $("#deny");

const CODE_ALPHABET = /^[BCDFGHJKLMNPQRSTVWXZ2-9]{8}$/;
const STORAGE_KEY = "rcgate.device_code";
let currentCode = null;

/** "bcdf 2345" -> "BCDF-2345"; null when it cannot be a code. */
function normaliseCode(raw) {
  const compact = String(raw || "")
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, "");
  if (!CODE_ALPHABET.test(compact)) return null;
  return `${compact.slice(0, 4)}-${compact.slice(4)}`;
}

function remember(code) {
  try {
    if (code) sessionStorage.setItem(STORAGE_KEY, code);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage disabled: the code is typed again after signing in.
  }
}

function remembered() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The code from #code=… (then removed from the address bar), or one kept across the sign-in. */
function codeFromPage() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromHash = hash.get("code");
  if (fromHash !== null) {
    history.replaceState(null, "", location.pathname + location.search);
    remember(fromHash);
    return fromHash;
  }
  return remembered();
}

function fail(err) {
  if (err && err.status === 401 && err.code === "unauthenticated") {
    goToLogin();
    return;
  }
  clearMessage(status);
  showMessage(error, errorText(err));
}

function askForCode(prefill = "") {
  requestCard.hidden = true;
  codeCard.hidden = false;
  codeInput.value = prefill;
  codeInput.focus();
}

async function describe(code) {
  clearMessage(error);
  clearMessage(status);
  const normal = normaliseCode(code);
  if (!normal) {
    showMessage(error, "That is not a valid code. Enter the 8 letters and digits that “rcgate login” printed, like BCDF-2345.");
    askForCode(code || "");
    return;
  }
  try {
    const req = await api("GET", `/api/device/${encodeURIComponent(normal)}`);
    currentCode = normal;
    remember(normal);
    $("#device-user-code").textContent = normal;
    $("#device-host").textContent = req && req.host ? req.host : "unknown";
    $("#device-key").textContent = req && req.key ? req.key : "";
    codeCard.hidden = true;
    requestCard.hidden = false;
    $("#request-heading").focus();
  } catch (err) {
    remember(null);
    if (err && err.status === 404) {
      showMessage(
        error,
        `${sentence(errorText(err))} Check the code, or run “rcgate login” again on the workstation for a new one.`,
      );
      askForCode(normal);
      return;
    }
    fail(err);
    askForCode(normal);
  }
}

async function decide(approve) {
  if (!currentCode) return;
  clearMessage(error);
  clearMessage(status);
  try {
    await busy([approveButton, denyButton], () =>
      api("POST", "/api/device/decide", { user_code: currentCode, approve }),
    );
  } catch (err) {
    if (err && err.status === 404) {
      // The request is gone (expired, or decided in another tab).
      remember(null);
      currentCode = null;
      requestCard.hidden = true;
      showMessage(error, `${sentence(errorText(err))} Run “rcgate login” again on the workstation.`);
      return;
    }
    fail(err);
    return;
  }
  remember(null);
  currentCode = null;
  requestCard.hidden = true;
  codeCard.hidden = true;
  showMessage(
    status,
    approve
      ? "This workstation is now connected. You can close this page."
      : "Denied: the workstation was not connected. You can close this page.",
  );
  $("#done").hidden = !approve;
}

codeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const submit = $("#code-submit");
  busy(submit, () => describe(codeInput.value));
});
approveButton.addEventListener("click", () => decide(true));
denyButton.addEventListener("click", () => decide(false));

const initial = codeFromPage();
const me = await requireUser();
if (me) {
  $("#loading").hidden = true;
  if (initial) await describe(initial);
  else askForCode();
}
