// /l/{token}: redeem a remote-control link for the signed-in user, then open the terminal page.
// Not signed in: /login?next=/l/{token} first. A stale factor: api.js asks for a step-up.

import { api, ApiError } from "./api.js";
import { requireUser } from "./nav.js";
import { sentence } from "./sessions-common.js";
import { $, busy, clearMessage, errorText, goToLogin, showMessage } from "./ui.js";

const status = $("#status");
const error = $("#error");
const refused = $("#refused");
const retry = $("#retry");

// Why a link is refused, by the server's error code: a heading and what to do next.
const REFUSALS = {
  link_invalid: [
    "This link is not valid",
    "Check that you opened the whole link, or ask the person who shared the session for a new one.",
  ],
  link_used: [
    "This link was already used by someone else",
    "Each link works for one person only. Ask the person who shared the session for a new link.",
  ],
  link_not_yours: [
    "This link was made for another user",
    "Sign in as the user it was made for, or ask for a link for you.",
  ],
  link_expired: [
    "This link has expired",
    "A link must be opened soon after it is made. Ask the person who shared the session for a new one.",
  ],
  link_revoked: ["This link was revoked", "Ask the person who shared the session for a new link."],
  session_not_found: ["The session has ended", "The shared session is not live any more."],
  reauth_cancelled: [
    "Confirm your identity to open this link",
    "Opening a shared session needs a recent sign-in. Try again and confirm it's you.",
  ],
  reauth_required: [
    "Confirm your identity to open this link",
    "Opening a shared session needs a recent sign-in. Try again and confirm it's you.",
  ],
};
const RETRYABLE = new Set(["reauth_cancelled", "reauth_required", "network", "unavailable", "rate_limited", "locked"]);

/** The token: the last segment of /l/{token}. */
function tokenFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  if (parts.length !== 2 || parts[0] !== "l") return "";
  try {
    return decodeURIComponent(parts[1]);
  } catch {
    return "";
  }
}

function showRefusal(err) {
  clearMessage(status);
  clearMessage(error);
  const code = err instanceof ApiError ? err.code : "";
  const [heading, hint] = REFUSALS[code] || ["This link cannot be opened", ""];
  $("#link-heading").textContent = "Cannot open the shared session";
  $("#refused-heading").textContent = heading;
  $("#refused-reason").textContent = sentence(errorText(err));
  $("#refused-hint").textContent = hint;
  retry.hidden = !(RETRYABLE.has(code) || (err instanceof ApiError && err.status >= 500));
  refused.hidden = false;
  if (!retry.hidden) retry.focus();
}

async function redeem(token) {
  // api.js does one step-up; a link for a stronger mode may ask a second time (passkey).
  for (let round = 0; ; round++) {
    try {
      return await api("POST", "/api/links/redeem", { token });
    } catch (err) {
      if (round === 0 && err instanceof ApiError && err.status === 401 && err.code === "reauth_required") continue;
      throw err;
    }
  }
}

async function open(token) {
  refused.hidden = true;
  clearMessage(error);
  showMessage(status, "Checking the link…");
  try {
    const res = await redeem(token);
    if (!res || typeof res.participation !== "string" || !res.participation) {
      throw new ApiError(0, "bad_response", "The gateway gave an unexpected answer. Try again.");
    }
    showMessage(status, "Opening the session…");
    location.replace(`/p/${encodeURIComponent(res.participation)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && err.code === "unauthenticated") {
      goToLogin();
      return;
    }
    showRefusal(err);
  }
}

const token = tokenFromPath();
const me = await requireUser();
if (me) {
  if (!token) {
    showRefusal(new ApiError(404, "link_invalid", "this link is not valid (mistyped or tampered with)"));
  } else {
    retry.addEventListener("click", () => busy(retry, () => open(token)));
    await open(token);
  }
}
