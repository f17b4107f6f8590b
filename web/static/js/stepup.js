// Step-up (re-authentication) dialog, opened by api.js when an action answers
// 401 `reauth_required`. Offers the user's passkey and/or an authenticator-app code, calls
// /api/stepup/*, and resolves true when the factor was accepted (false when cancelled).

import { api } from "./api.js";
import { getAssertion } from "./webauthn.js";
import { busy, clearMessage, el, errorText, showMessage } from "./ui.js";

let pending = null;

export function stepUp({ factors = [], message = "" } = {}) {
  // One dialog at a time: concurrent requests share it.
  if (!pending) {
    pending = openDialog(factors, message).finally(() => {
      pending = null;
    });
  }
  return pending;
}

function openDialog(factors, serverMessage) {
  return new Promise((resolve) => {
    const hasPasskey = factors.includes("passkey");
    const hasTotp = factors.includes("totp") || !hasPasskey;

    const error = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    const title = el("h2", { id: "stepup-title" }, "Confirm your identity");
    const intro = el(
      "p",
      { id: "stepup-desc" },
      "This action needs a recent sign-in. Confirm it's you to continue.",
    );

    const passkeyButton = el("button", { type: "button", class: "block" }, "Use your passkey");

    const codeInput = el("input", {
      type: "text",
      id: "stepup-code",
      name: "code",
      class: "code",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      pattern: "[0-9]{6,8}",
      maxlength: "8",
      required: true,
    });
    const codeButton = el("button", { type: "submit" }, "Confirm with code");
    const codeForm = el(
      "form",
      { novalidate: true },
      el(
        "div",
        { class: "field" },
        el("label", { for: "stepup-code" }, "Authentication code"),
        codeInput,
        el("p", { class: "hint" }, "The 6-digit code from your authenticator app."),
      ),
      el("div", { class: "actions" }, codeButton),
    );

    const cancelButton = el("button", { type: "button", class: "secondary" }, "Cancel");

    const dialog = el(
      "dialog",
      { "aria-labelledby": "stepup-title", "aria-describedby": "stepup-desc", class: "stepup" },
      title,
      intro,
      error,
      hasPasskey ? passkeyButton : null,
      hasPasskey && hasTotp ? el("div", { class: "separator" }, "or") : null,
      hasTotp ? codeForm : null,
      el("div", { class: "actions" }, cancelButton),
    );
    document.body.append(dialog);

    let settled = false;
    const finish = (ok) => {
      if (settled) return;
      settled = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(ok);
    };

    const controls = [passkeyButton, codeButton, codeInput, cancelButton];

    passkeyButton.addEventListener("click", async () => {
      clearMessage(error);
      try {
        await busy(controls, async () => {
          const { challenge_id: challengeId, options } = await api(
            "POST",
            "/api/stepup/passkey/options",
            {},
            { stepup: false },
          );
          const credential = await getAssertion(options);
          await api("POST", "/api/stepup/passkey", { challenge_id: challengeId, credential }, { stepup: false });
        });
        finish(true);
      } catch (err) {
        showMessage(error, errorText(err));
      }
    });

    codeForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearMessage(error);
      const code = codeInput.value.replace(/\s+/g, "");
      if (!/^[0-9]{6,8}$/.test(code)) {
        showMessage(error, "Enter the 6-digit code from your authenticator app.");
        codeInput.focus();
        return;
      }
      try {
        await busy(controls, () => api("POST", "/api/stepup/totp", { code }, { stepup: false }));
        finish(true);
      } catch (err) {
        codeInput.value = "";
        showMessage(error, errorText(err));
        codeInput.focus();
      }
    });

    cancelButton.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });

    if (serverMessage && serverMessage !== title.textContent) {
      // Keep the server's own explanation available to assistive technology.
      dialog.setAttribute("data-reason", serverMessage);
    }
    dialog.showModal();
    (hasPasskey ? passkeyButton : codeInput).focus();
  });
}
