// /: who is signed in, with links to the account and admin pages; /login when signed out.

import { requireUser } from "./nav.js";
import { $, ROLE_LABELS } from "./ui.js";

const me = await requireUser();
if (me) {
  const { user, login } = me;
  $("#whoami").textContent = `Signed in as ${user.name} (${ROLE_LABELS[user.role] || user.role})`;
  $("#admin-card").hidden = user.role !== "admin";
  $("#enrolling").hidden = !(login && login.enrolling && !login.last_factor);
  $("#loading").hidden = true;
  $("#home").hidden = false;
}
