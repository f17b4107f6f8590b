// /enrol#token=…: redeem a one-time enrolment link, then add a passkey and/or an
// authenticator app + password. The token lives only in the fragment (never sent to a server
// log or a Referer) and is removed from the address bar at once.

import { api, getMe } from "./api.js";
import { setupPasskeyForm, setupTotpForm } from "./factor-forms.js";
import { $, errorText, fillUsernameHints, showMessage } from "./ui.js";

const error = $("#error");
const status = $("#status");
const loading = $("#loading");

function takeToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return token ? token.trim() : null;
}

function linkProblem(message) {
  loading.hidden = true;
  showMessage(error, message);
  $("#link-problem").hidden = false;
}

function showEnrolment(user) {
  loading.hidden = true;
  $("#welcome").textContent = `Welcome, ${user.name}.`;
  fillUsernameHints(user.name);
  $("#enrol").hidden = false;
}

function complete() {
  $("#enrol").hidden = true;
  $("#title").textContent = "You are all set";
  $("#done").hidden = false;
  $("#done-heading").focus();
}

async function start() {
  const token = takeToken();
  let user = null;
  if (token) {
    try {
      ({ user } = await api("POST", "/api/enrol/start", { token }));
    } catch (err) {
      const msg =
        err.status === 400 || err.status === 404 || err.status === 409 || err.status === 410
          ? errorText(err)
          : `The enrolment link could not be checked: ${errorText(err)}`;
      linkProblem(msg);
      return;
    }
  } else {
    // A reload after the fragment was removed: continue an enrolment already started here.
    try {
      const me = await getMe();
      if (me.user && me.login && me.login.enrolling) user = me.user;
    } catch {
      // fall through to the message below
    }
    if (!user) {
      linkProblem("This page needs the full enrolment link your administrator sent you (it ends in #token=…).");
      return;
    }
  }
  showEnrolment(user);
  const onAdded = () => complete();
  setupPasskeyForm({ error, status, onAdded });
  setupTotpForm({ error, status, needPassword: () => true, onAdded });
}

start();
