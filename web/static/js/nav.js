// The top bar of signed-in pages: who is signed in, the Admin link for admins, Sign out.

import { api, getMe } from "./api.js";
import { $, errorText, goToLogin } from "./ui.js";

/**
 * Resolve /api/me for a page that needs a signed-in user; when there is none, go to /login
 * (with ?next=) and return null.
 */
export async function requireUser() {
  let me;
  try {
    me = await getMe();
  } catch (err) {
    const error = document.querySelector("#error");
    if (error) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
    return null;
  }
  if (!me || !me.user) {
    goToLogin();
    return null;
  }
  setupNav(me);
  return me;
}

function setupNav(me) {
  for (const a of document.querySelectorAll(".topbar nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
  }
  const admin = document.querySelector("#nav-admin");
  if (admin) admin.hidden = me.user.role !== "admin";
  const signout = $("#signout");
  signout.hidden = false;
  signout.addEventListener("click", async () => {
    signout.disabled = true;
    try {
      await api("POST", "/api/logout", {});
    } catch (err) {
      // Signed out already (401) is fine; anything else is shown.
      if (err.status !== 401) {
        signout.disabled = false;
        const error = document.querySelector("#error");
        if (error) {
          error.textContent = errorText(err);
          error.hidden = false;
        }
        return;
      }
    }
    location.assign("/login");
  });
}
