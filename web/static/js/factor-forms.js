// The "add a passkey" and "set up an authenticator app" forms, shared by the enrolment page
// and the account page (same markup ids in both pages).

import { api } from "./api.js";
import { createCredential, webauthnAvailable } from "./webauthn.js";
import { $, busy, clearMessage, defaultPasskeyName, errorText, showMessage } from "./ui.js";

const MIN_PASSWORD = 10;

/**
 * Wire form#passkey-form (input#passkey-name, submit "Add a passkey").
 * onAdded(factor) runs after the server stored the new passkey.
 */
export function setupPasskeyForm({ error, status, onAdded }) {
  const form = $("#passkey-form");
  const nameInput = $("#passkey-name");
  const submit = form.querySelector("button[type=submit]");
  if (!nameInput.value) nameInput.value = defaultPasskeyName();
  if (!webauthnAvailable()) {
    $("#passkey-unavailable").hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage(error);
    clearMessage(status);
    const name = nameInput.value.trim();
    if (!name) {
      showMessage(error, "Give the passkey a name, for example the device it is on.");
      nameInput.focus();
      return;
    }
    try {
      const factor = await busy([submit, nameInput], async () => {
        const { challenge_id: challengeId, options } = await api("POST", "/api/factors/passkey/options", {});
        const credential = await createCredential(options);
        const res = await api("POST", "/api/factors/passkey", { challenge_id: challengeId, credential, name });
        return res.factor;
      });
      showMessage(status, `Passkey “${factor ? factor.name : name}” added.`);
      nameInput.value = defaultPasskeyName();
      await onAdded(factor);
    } catch (err) {
      showMessage(error, errorText(err));
    }
  });
}

/** Show the secret in groups of four for reading; the raw value stays in data-secret. */
function groupSecret(secret) {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}

/**
 * Wire button#totp-start and section#totp-setup (QR, secret, form#totp-form).
 * needPassword() tells whether the password fields are shown and required (enrolment, or an
 * account without a password); the password is saved first (POST /api/password), then the
 * authenticator is confirmed with its current code (POST /api/factors/totp).
 */
export function setupTotpForm({ error, status, needPassword, onAdded }) {
  const start = $("#totp-start");
  const setup = $("#totp-setup");
  const qr = $("#totp-qr");
  const secretEl = $("#totp-secret");
  const link = $("#totp-link");
  const form = $("#totp-form");
  const nameInput = $("#totp-name");
  const pwFields = $("#totp-password-fields");
  const pw = $("#totp-password");
  const pw2 = $("#totp-password2");
  const codeInput = $("#totp-code");
  const save = form.querySelector("button[type=submit]");
  const cancel = $("#totp-cancel");
  let challengeId = null;

  const reset = () => {
    challengeId = null;
    setup.hidden = true;
    start.hidden = false;
    qr.removeAttribute("src");
    secretEl.textContent = "";
    delete secretEl.dataset.secret;
    link.removeAttribute("href");
    form.reset();
  };

  start.addEventListener("click", async () => {
    clearMessage(error);
    clearMessage(status);
    try {
      const res = await busy(start, () => api("POST", "/api/factors/totp/options", {}));
      challengeId = res.challenge_id;
      if (typeof res.qr_svg === "string" && res.qr_svg.startsWith("data:image/")) {
        qr.src = res.qr_svg;
      }
      secretEl.dataset.secret = res.secret;
      secretEl.textContent = groupSecret(res.secret);
      if (typeof res.otpauth_uri === "string" && res.otpauth_uri.startsWith("otpauth://")) {
        link.href = res.otpauth_uri;
      }
      const askPassword = needPassword();
      pwFields.hidden = !askPassword;
      pw.required = askPassword;
      pw2.required = askPassword;
      if (!nameInput.value) nameInput.value = "Authenticator app";
      start.hidden = true;
      setup.hidden = false;
      (askPassword ? pw : codeInput).focus();
    } catch (err) {
      showMessage(error, errorText(err));
    }
  });

  cancel.addEventListener("click", () => {
    clearMessage(error);
    reset();
    start.focus();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessage(error);
    clearMessage(status);
    const name = nameInput.value.trim() || "Authenticator app";
    const code = codeInput.value.replace(/\s+/g, "");
    const askPassword = !pwFields.hidden;
    if (askPassword) {
      if (pw.value.length < MIN_PASSWORD) {
        showMessage(error, `Choose a password of at least ${MIN_PASSWORD} characters.`);
        pw.focus();
        return;
      }
      if (pw.value !== pw2.value) {
        showMessage(error, "The two passwords are not the same.");
        pw2.focus();
        return;
      }
    }
    if (!/^[0-9]{6,8}$/.test(code)) {
      showMessage(error, "Enter the 6-digit code your authenticator app shows now.");
      codeInput.focus();
      return;
    }
    if (!challengeId) {
      showMessage(error, "The setup has expired. Start again.");
      reset();
      return;
    }
    try {
      const factor = await busy([save, cancel], async () => {
        if (askPassword) await api("POST", "/api/password", { password: pw.value });
        const res = await api("POST", "/api/factors/totp", { challenge_id: challengeId, code, name });
        return res.factor;
      });
      reset();
      showMessage(status, `Authenticator app “${factor ? factor.name : name}” added.`);
      await onAdded(factor);
    } catch (err) {
      codeInput.value = "";
      showMessage(error, errorText(err));
      codeInput.focus();
    }
  });
}
