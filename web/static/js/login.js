// /login: passkey (discoverable credential, no user name) or user name + password + TOTP code.

import { api } from "./api.js";
import { getAssertion, webauthnAvailable } from "./webauthn.js";
import { $, busy, clearMessage, errorText, safeNext, showMessage } from "./ui.js";

const error = $("#error");
const status = $("#status");
const passkeyButton = $("#passkey-signin");
const form = $("#totp-signin");
const username = $("#username");
const password = $("#password");
const code = $("#code");
const submit = $("#totp-submit");

function destination() {
  return safeNext(new URLSearchParams(location.search).get("next"), "/");
}

function signedIn(user) {
  showMessage(status, user && user.name ? `Signed in as ${user.name}.` : "Signed in.");
  location.assign(destination());
}

if (!webauthnAvailable()) {
  $("#passkey-unavailable").hidden = false;
}

passkeyButton.addEventListener("click", async () => {
  clearMessage(error);
  clearMessage(status);
  try {
    const res = await busy([passkeyButton, submit], async () => {
      const { challenge_id: challengeId, options } = await api("POST", "/api/login/passkey/options", {});
      const credential = await getAssertion(options);
      return api("POST", "/api/login/passkey", { challenge_id: challengeId, credential });
    });
    signedIn(res && res.user);
  } catch (err) {
    showMessage(error, errorText(err));
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessage(error);
  clearMessage(status);
  const name = username.value.trim();
  const otp = code.value.replace(/\s+/g, "");
  if (!name || !password.value) {
    showMessage(error, "Enter your user name and password.");
    (name ? password : username).focus();
    return;
  }
  if (!/^[0-9]{6,8}$/.test(otp)) {
    showMessage(error, "Enter the 6-digit code your authenticator app shows now.");
    code.focus();
    return;
  }
  try {
    const res = await busy([submit, passkeyButton], () =>
      api("POST", "/api/login/totp", { username: name, password: password.value, code: otp }),
    );
    signedIn(res && res.user);
  } catch (err) {
    code.value = "";
    showMessage(error, errorText(err));
    code.focus();
  }
});
