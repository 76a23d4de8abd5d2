// Sign in: an admin's email and password (the shop views) and the operator token (the
// plugin views). Either may be given alone; both are kept in sessionStorage only.

import { adminSession, checkOperator, login, operatorToken, signOut } from "../api.js";
import { alertError, field, h, page, say } from "../ui.js";

export function render(main) {
  const admin = adminSession();
  const op = operatorToken();
  const state = h(
    "ul",
    { class: "state-list" },
    h("li", {}, admin ? `Shop views: signed in as ${admin.user ? admin.user.email : "an admin"}.` : "Shop views: not signed in."),
    h("li", {}, op ? "Plugin views: the operator token is set." : "Plugin views: no operator token."),
  );

  const adminForm = h(
    "form",
    { class: "stack", "aria-labelledby": "admin-h" },
    h("h2", { id: "admin-h" }, "Admin sign-in (products, orders, agents, analytics)"),
    ...field("Admin email", { type: "email", name: "email", autocomplete: "username", required: true }),
    ...field("Password", { type: "password", name: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Sign in as admin"),
  );
  adminForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = adminForm.querySelector("button");
    btn.disabled = true;
    try {
      const user = await login(adminForm.elements.email.value.trim(), adminForm.elements.password.value);
      say(`Signed in as ${user.email}.`);
      render(main);
      main.querySelector("h1").focus();
    } catch (e) {
      alertError(e, "auth service");
    } finally {
      btn.disabled = false;
    }
  });

  const opForm = h(
    "form",
    { class: "stack", "aria-labelledby": "op-h" },
    h("h2", { id: "op-h" }, "Operator token (plugins, dead letters)"),
    h("p", { class: "muted" }, "The [admin] operator_token of the host; kirana up keeps one in data/operator-token."),
    ...field("Operator token", { type: "password", name: "token", autocomplete: "off", required: true }),
    h("button", { type: "submit" }, "Use operator token"),
  );
  opForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = opForm.querySelector("button");
    btn.disabled = true;
    try {
      await checkOperator(opForm.elements.token.value.trim());
      say("The operator token works.");
      render(main);
      main.querySelector("h1").focus();
    } catch (e) {
      alertError(e, "operator API");
    } finally {
      btn.disabled = false;
    }
  });

  const out = h(
    "button",
    {
      type: "button",
      class: "secondary",
      disabled: !admin && !op,
      onclick: async () => {
        await signOut();
        say("Signed out: both credentials are forgotten.");
        render(main);
        main.querySelector("h1").focus();
      },
    },
    "Sign out",
  );

  page(main, "Sign in to the console", state, h("div", { class: "grid2" }, adminForm, opForm), h("h2", {}, "Sign out"), h("p", {}, "Forgets both credentials in this tab."), out);
}
