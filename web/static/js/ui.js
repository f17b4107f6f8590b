// Small DOM helpers shared by every page. Server-provided strings always go through
// textContent (never innerHTML): see el() and setText().

/** Create an element: el("button", {type: "button", class: "small", "aria-label": "…"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "hidden") node.hidden = Boolean(value);
    else if (key === "disabled") node.disabled = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  const node = root.querySelector(selector);
  if (!node) throw new Error(`page element missing: ${selector}`);
  return node;
}

export function setText(node, text) {
  node.textContent = text ?? "";
}

/** Show a message in a role="alert" / role="status" element (hidden when empty). */
export function showMessage(node, text) {
  node.textContent = text ?? "";
  node.hidden = !text;
}

export function clearMessage(node) {
  showMessage(node, "");
}

/** A readable message for any thrown value (ApiError, WebAuthnError, Error). */
export function errorText(err) {
  if (err && typeof err.message === "string" && err.message) return err.message;
  return "Something went wrong. Please try again.";
}

/** Unix seconds (float) -> local date and time; null -> fallback. */
export function formatTime(ts, fallback = "never") {
  if (ts === null || ts === undefined || Number.isNaN(Number(ts))) return fallback;
  const d = new Date(Number(ts) * 1000);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatTimeSeconds(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(Number(ts) * 1000);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/**
 * Run an async action with a button (or several) disabled while it runs; aria-busy on the form.
 * Returns the action's result; rethrows its error.
 */
export async function busy(controls, action) {
  const list = (Array.isArray(controls) ? controls : [controls]).filter(Boolean);
  const before = list.map((c) => c.disabled);
  for (const c of list) {
    c.disabled = true;
    c.setAttribute("aria-busy", "true");
  }
  try {
    return await action();
  } finally {
    list.forEach((c, i) => {
      c.disabled = before[i];
      c.removeAttribute("aria-busy");
    });
  }
}

/** A "next" path is accepted only if it is a same-origin absolute path ("/x", not "//x" or "/\x"). */
export function safeNext(raw, fallback = "/") {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > 2048) return fallback;
  if (!raw.startsWith("/") || raw.startsWith("//") || raw.startsWith("/\\")) return fallback;
  if (/[\u0000-\u001f\\]/.test(raw)) return fallback;
  return raw;
}

/** Fill the hidden username fields of password forms (for password managers). */
export function fillUsernameHints(name) {
  for (const input of document.querySelectorAll("input.username-hint")) input.value = name;
}

export function goToLogin() {
  const next = location.pathname + location.search;
  location.replace(`/login?next=${encodeURIComponent(next)}`);
}

export const ROLE_LABELS = { admin: "admin", reviewer: "reviewer", member: "member" };

export const KIND_LABELS = { passkey: "Passkey", totp: "Authenticator app" };

/** A default name for a new passkey, from the platform this browser reports. */
export function defaultPasskeyName() {
  const ua = navigator.userAgent || "";
  const platform = (navigator.userAgentData && navigator.userAgentData.platform) || "";
  const pick = [
    [/iPhone/, "iPhone"],
    [/iPad/, "iPad"],
    [/Android/, "Android"],
    [/Mac/, "Mac"],
    [/Win/, "Windows"],
    [/CrOS/, "ChromeOS"],
    [/Linux/, "Linux"],
  ];
  for (const [re, name] of pick) {
    if (re.test(platform) || re.test(ua)) return `Passkey on ${name}`;
  }
  return "Passkey";
}

/** A short human description of a user agent string ("Chrome on Linux"). */
export function describeUserAgent(ua) {
  if (!ua) return "Unknown browser";
  const browsers = [
    [/Edg\//, "Edge"],
    [/OPR\//, "Opera"],
    [/Firefox\//, "Firefox"],
    [/Chrom(e|ium)\//, "Chrome"],
    [/Safari\//, "Safari"],
    [/curl\//, "curl"],
    [/rcgate/i, "rcgate CLI"],
  ];
  const systems = [
    [/iPhone|iPad/, "iOS"],
    [/Android/, "Android"],
    [/Mac OS X|Macintosh/, "macOS"],
    [/Windows/, "Windows"],
    [/CrOS/, "ChromeOS"],
    [/Linux/, "Linux"],
  ];
  const browser = browsers.find(([re]) => re.test(ua));
  const system = systems.find(([re]) => re.test(ua));
  if (!browser) return ua.length > 60 ? `${ua.slice(0, 57)}…` : ua;
  return system ? `${browser[1]} on ${system[1]}` : browser[1];
}
