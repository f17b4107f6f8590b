// The one way pages talk to the gateway: JSON in and out, CSRF header, errors as ApiError,
// and step-up (re-authentication) when the server answers 401 `reauth_required`.
//
//   import { api, getMe, ApiError } from "/static/js/api.js";
//   const { factors } = await api("GET", "/api/factors");
//   await api("POST", "/api/admin/users", { name, role, groups });

import { stepUp } from "./stepup.js";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// Requests after which the login session (and so the CSRF token) has changed.
const SESSION_CHANGING = [
  "/api/login/passkey",
  "/api/login/totp",
  "/api/logout",
  "/api/enrol/start",
  "/api/stepup/passkey",
  "/api/stepup/totp",
];

export class ApiError extends Error {
  constructor(status, code, message, detail = {}) {
    super(message || defaultMessage(status, code));
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function defaultMessage(status, code) {
  switch (code) {
    case "network":
      return "Cannot reach the gateway. Check your connection and try again.";
    case "unauthenticated":
      return "You are not signed in, or your sign-in has expired.";
    case "reauth_required":
      return "This action needs you to confirm your identity again.";
    case "reauth_cancelled":
      return "Cancelled: the action needs you to confirm your identity.";
    case "forbidden":
      return "You are not allowed to do this.";
    case "csrf":
      return "The page is out of date. Reload it and try again.";
    case "not_found":
      return "Not found.";
    case "conflict":
      return "This conflicts with the current state. Reload the page and try again.";
    case "locked":
      return "Too many failed attempts. Wait a moment and try again.";
    case "rate_limited":
      return "Too many requests. Wait a moment and try again.";
    case "payload_too_large":
      return "The request is too large.";
    case "unavailable":
      return "The gateway is temporarily unavailable. Try again shortly.";
    default:
      return status ? `The gateway answered with an error (HTTP ${status}).` : "Request failed.";
  }
}

let mePromise = null;
let csrfToken = null;

/** GET /api/me, cached; `refresh` forces a new request (and a new CSRF token). */
export function getMe({ refresh = false } = {}) {
  if (refresh || !mePromise) {
    const p = request("GET", "/api/me").then((me) => {
      csrfToken = me && typeof me.csrf_token === "string" ? me.csrf_token : null;
      return me;
    });
    // A failed /api/me must not stay cached.
    p.catch(() => {
      if (mePromise === p) mePromise = null;
    });
    mePromise = p;
  }
  return mePromise;
}

/** Forget the cached /api/me and CSRF token (the login session changed). */
export function forgetSession() {
  mePromise = null;
  csrfToken = null;
}

async function ensureCsrf() {
  if (csrfToken === null) await getMe({ refresh: true });
  return csrfToken;
}

async function request(method, path, body, csrf) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, "network", "", { cause: String(exc) });
  }
  let data = null;
  if (res.status !== 204) {
    const type = res.headers.get("Content-Type") || "";
    const text = await res.text();
    if (type.includes("json") && text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    } else if (text && !res.ok) {
      data = { message: text.length > 300 ? "" : text };
    }
  }
  if (!res.ok) {
    const { error, message, ...rest } = data && typeof data === "object" ? data : {};
    throw new ApiError(res.status, error || `http_${res.status}`, message || "", rest);
  }
  return data;
}

/**
 * Call the API. Options: `stepup: false` never prompts for re-authentication (used by the
 * step-up dialog itself). Retries once after a CSRF refresh and once after a step-up.
 */
export async function api(method, path, body, { stepup = true } = {}) {
  method = method.toUpperCase();
  const unsafe = !SAFE_METHODS.has(method);
  let csrfRetried = false;
  let stepupDone = false;
  for (;;) {
    try {
      const csrf = unsafe ? await ensureCsrf() : null;
      const data = await request(method, path, body, csrf);
      if (unsafe && SESSION_CHANGING.includes(path)) forgetSession();
      return data;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 403 && err.code === "csrf" && !csrfRetried) {
        csrfRetried = true;
        forgetSession();
        continue;
      }
      if (err.status === 401 && err.code === "reauth_required" && stepup && !stepupDone) {
        stepupDone = true;
        const factors = Array.isArray(err.detail.factors) ? err.detail.factors : [];
        const passed = await stepUp({ factors, maxAgeS: err.detail.max_age_s, message: err.message });
        if (!passed) throw new ApiError(401, "reauth_cancelled", "", err.detail);
        forgetSession();
        continue;
      }
      throw err;
    }
  }
}
