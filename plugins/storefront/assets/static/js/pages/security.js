// The account's security, loaded only when a page needs it (the first load does not
// carry it): forgotten and reset passwords, editing the profile and proving the phone,
// changing the password, the linked sign-in providers, and the sessions with "sign out
// everywhere".

import { api, session, saveSession, clearSession, ApiError } from "../api.js";
import { h, page, field, formErrors, problem, toast } from "../ui.js";
import { disconnect } from "../live.js";

/** The reset token of a /reset-password?token= link, kept for this tab only (app.js
 * moves it here so it leaves the address bar). */
export const RESET_KEY = "kirana.reset";

function when(ts) {
  return ts ? new Date(ts).toLocaleString("en-IN", { dateStyle: "medium", timeStyle: "short" }) : "—";
}

/** A field error the API did not send (for checks made here first). */
function fieldError(field, message) {
  return new ApiError(400, "validation_failed", message, { fields: [{ field, message }] });
}

/** Takes the field errors off a form that worked. */
function clearErrors(form, box) {
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  box.replaceChildren();
}

/** Stops this browser's push messages: through the API while the session still
 * works (`server`), else only in the browser. */
async function stopPush(server) {
  if (!localStorage.getItem("kirana.push")) return;
  try {
    await (await import("./push.js")).forgetPush(server);
  } catch {
    // The push module could not load; the host drops the subscription once it is gone.
  }
}

/** Forgets the tab's sign-in (the server already ended it). */
async function signedOutHere(message) {
  await stopPush(false);
  disconnect();
  clearSession();
  toast(message);
}

// ---- #/forgot-password ----
export function forgot(view, params) {
  page(view, "Forgot your password?");
  const err = h("div");
  const sent = h("div", { role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "stack" },
    h("p", {}, "Enter your account's email. We will send a link to choose a new password."),
    ...field("email", "Email", { type: "email", autocomplete: "email", required: true, value: params.get("email") || "" }),
    err,
    h("button", { type: "submit" }, "Send reset link"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    sent.replaceChildren();
    try {
      await api("/api/v1/auth/password/forgot", { method: "POST", body: { email: form.elements.email.value } });
      clearErrors(form, err);
      sent.append(
        h("p", { class: "notice" }, "If an account has this email, a reset link is on its way. It works once and only for a short while. "),
        h("p", {}, h("a", { href: "#/reset-password" }, "Enter the reset code by hand")),
      );
    } catch (x) {
      formErrors(form, x, err);
    }
  });
  view.append(form, sent, h("p", {}, h("a", { href: "#/login" }, "Back to sign in")));
}

// ---- #/reset-password (the email's link arrives at /reset-password?token=) ----
export function reset(view, params) {
  page(view, "Choose a new password");
  const token = params.get("token") || sessionStorage.getItem(RESET_KEY) || "";
  const err = h("div");
  const form = h(
    "form",
    { class: "stack" },
    ...field("token", "Reset code (from the email)", { required: true, autocomplete: "off", spellcheck: "false", value: token }),
    ...field("new_password", "New password (8 or more characters)", { type: "password", autocomplete: "new-password", required: true, minlength: "8", maxlength: "128" }),
    ...field("confirm", "New password again", { type: "password", autocomplete: "new-password", required: true }),
    err,
    h("button", { type: "submit" }, "Set new password"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = form.elements;
    if (f.new_password.value !== f.confirm.value) return formErrors(form, fieldError("confirm", "The two passwords differ."), err);
    try {
      await api("/api/v1/auth/password/reset", { method: "POST", body: { token: f.token.value.trim(), new_password: f.new_password.value } });
      sessionStorage.removeItem(RESET_KEY);
      // A reset ends every session of the account, this tab's too.
      if (session()) await signedOutHere("Your password was changed. Sign in with the new one.");
      else toast("Your password was changed. Sign in with the new one.");
      location.hash = "#/login";
    } catch (x) {
      if (x.details && x.details.fields && x.details.fields.some((v) => v.field === "token")) {
        x = fieldError("token", "This reset code is wrong, expired or already used. Ask for a new one.");
      }
      formErrors(form, x, err);
    }
  });
  view.append(form, h("p", {}, h("a", { href: "#/forgot-password" }, "Send a new reset link")));
}

// ---- the account page's sections ----

/** The profile: shown, then editable (name and phone; the email is the account's
 * name and cannot change), with proving the phone by SMS code. */
export function profile(box, user) {
  let u = user;
  function show() {
    const edit = h("button", { type: "button", class: "secondary" }, "Edit profile");
    edit.addEventListener("click", form);
    box.replaceChildren(
      h("h2", { id: "h-me" }, "Profile"),
      h("p", {}, h("strong", {}, u.name)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Email"),
        h("dd", {}, u.email || "none"),
        h("dt", {}, "Phone"),
        h("dd", {}, u.phone ? `${u.phone} ${u.phone_verified ? "(verified)" : "(not verified)"}` : "none"),
      ),
      h("div", { class: "row" }, edit),
      u.phone && !u.phone_verified ? proveBox() : null,
    );
  }
  function form() {
    const err = h("div");
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const f = h(
      "form",
      { class: "stack", "aria-label": "Edit profile" },
      ...field("name", "Name", { autocomplete: "name", required: true, maxlength: "100", value: u.name }),
      ...field("phone", "Phone (with country code, optional)", { type: "tel", autocomplete: "tel", placeholder: "+919876543210", value: u.phone || "" }),
      h("p", { class: "muted" }, u.email ? `Your email, ${u.email}, cannot be changed.` : "This account has no email."),
      err,
      h("div", { class: "row" }, h("button", { type: "submit" }, "Save profile"), cancel),
    );
    cancel.addEventListener("click", () => {
      show();
      box.querySelector("button")?.focus();
    });
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { name: f.elements.name.value };
      const phone = f.elements.phone.value.trim() || null;
      // Only a changed phone is sent: stating it again would drop its proof.
      if (phone !== (u.phone || null)) body.phone = phone;
      try {
        u = await api("/api/v1/auth/me", { method: "PATCH", auth: true, body });
        const s = session();
        if (s) saveSession({ ...s, user: u });
        toast("Profile saved.");
        show();
        box.querySelector("h2").setAttribute("tabindex", "-1");
        box.querySelector("h2").focus();
      } catch (x) {
        formErrors(f, x, err);
      }
    });
    box.replaceChildren(h("h2", { id: "h-me" }, "Profile"), f);
    f.elements.name.focus();
  }
  function proveBox() {
    const err = h("div");
    const codeField = h("div", { hidden: true }, ...field("code", "6-digit code", { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6" }));
    const button = h("button", { type: "submit", class: "secondary" }, "Verify my phone by SMS");
    const f = h("form", { class: "stack", "aria-label": "Verify your phone" }, h("p", { class: "muted" }, "A verified phone lets you sign in with an SMS code."), codeField, err, button);
    let sent = false;
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        if (!sent) {
          await api("/api/v1/auth/me/phone/request", { method: "POST", auth: true });
          sent = true;
          codeField.hidden = false;
          f.elements.code.required = true;
          button.textContent = "Verify";
          err.replaceChildren(h("p", { class: "notice", role: "status" }, `We sent a code to ${u.phone}.`));
          f.elements.code.focus();
        } else {
          u = await api("/api/v1/auth/me/phone/verify", { method: "POST", auth: true, body: { code: f.elements.code.value.trim() } });
          toast("Your phone is verified.");
          show();
        }
      } catch (x) {
        if (x.code === "invalid_credentials") x = fieldError("code", "That code is wrong or has expired.");
        formErrors(f, x, err);
      }
    });
    return f;
  }
  show();
}

/** Changing the password: the other sessions end, this one stays. */
export function password(onChanged) {
  const err = h("div");
  const f = h(
    "form",
    { class: "stack", "aria-labelledby": "h-pass" },
    h("h2", { id: "h-pass" }, "Password"),
    ...field("current_password", "Current password", { type: "password", autocomplete: "current-password", required: true }),
    ...field("new_password", "New password (8 or more characters)", { type: "password", autocomplete: "new-password", required: true, minlength: "8", maxlength: "128" }),
    err,
    h("button", { type: "submit" }, "Change password"),
    h("p", { class: "muted" }, "No password yet (you signed up by SMS or with a provider)? ", h("a", { href: "#/forgot-password" }, "Set one by email")),
  );
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/api/v1/auth/password", { method: "POST", auth: true, body: { current_password: f.elements.current_password.value, new_password: f.elements.new_password.value } });
      f.reset();
      clearErrors(f, err);
      err.replaceChildren(h("p", { class: "notice", role: "status" }, "Password changed. Your other devices were signed out."));
      onChanged();
    } catch (x) {
      if (x.code === "invalid_credentials") x = fieldError("current_password", "That is not your current password.");
      formErrors(f, x, err);
    }
  });
  return f;
}

/** The linked sign-in providers (Google, …), each with Unlink. */
export function identities() {
  const sec = h("section", { "aria-labelledby": "h-ids" });
  async function load() {
    sec.replaceChildren(h("h2", { id: "h-ids" }, "Sign-in providers"));
    let items;
    try {
      items = (await api("/api/v1/auth/identities", { auth: true })).items;
    } catch (e) {
      sec.append(problem(e, "sign-in providers"));
      return;
    }
    if (!items.length) {
      sec.append(h("p", { class: "muted" }, "No provider is linked to this account."));
      return;
    }
    const msg = h("div", { "aria-live": "polite" });
    const ul = h("ul", { class: "notes" });
    for (const i of items) {
      const unlink = h("button", { type: "button", class: "link" }, "Unlink", h("span", { class: "sr-only" }, ` ${i.provider}`));
      unlink.addEventListener("click", async () => {
        try {
          await api("/api/v1/auth/identities/" + encodeURIComponent(i.id), { method: "DELETE", auth: true });
          toast(`${i.provider} unlinked.`);
          await load();
          sec.querySelector("h2").setAttribute("tabindex", "-1");
          sec.querySelector("h2").focus();
        } catch (e) {
          msg.replaceChildren(
            e.status === 409
              ? h("p", { class: "warning", role: "alert" }, `${i.provider} is your only way to sign in. Set a password first (`, h("a", { href: "#/forgot-password" }, "by email"), "), then unlink it.")
              : problem(e, "sign-in providers"),
          );
        }
      });
      ul.append(h("li", {}, h("strong", {}, i.provider), i.email ? h("span", {}, ` · ${i.email}`) : null, h("p", { class: "muted" }, `Linked ${when(i.linked_at)}`), unlink));
    }
    sec.append(ul, msg);
  }
  load();
  return sec;
}

/** A short name for a session's browser, from its User-Agent. */
function device(ua) {
  if (!ua) return "Unknown device";
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : null;
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : null;
  return browser || os ? [browser, os].filter(Boolean).join(" on ") : ua.slice(0, 60);
}

/** The account's sessions, each with "End session", and "Log out everywhere" (named
 * apart from the page's own "Sign out" button). */
export function sessions() {
  const sec = h("section", { "aria-labelledby": "h-ses" });
  async function load() {
    sec.replaceChildren(h("h2", { id: "h-ses" }, "Where you are signed in"));
    let items;
    try {
      items = (await api("/api/v1/auth/sessions", { auth: true })).items;
    } catch (e) {
      sec.append(problem(e, "your sessions"));
      return;
    }
    const msg = h("div", { "aria-live": "polite" });
    const ul = h("ul", { class: "notes sessions" });
    for (const s of items) {
      const end = s.current
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: async () => {
                try {
                  await api("/api/v1/auth/sessions/" + encodeURIComponent(s.id), { method: "DELETE", auth: true });
                  toast("That device was signed out.");
                  await load();
                } catch (e) {
                  msg.replaceChildren(problem(e, "your sessions"));
                }
              },
            },
            "End session",
            h("span", { class: "sr-only" }, ` ${device(s.user_agent)}, signed in ${when(s.created_at)}`),
          );
      ul.append(
        h(
          "li",
          { class: s.current ? "current" : "" },
          h("strong", {}, device(s.user_agent)),
          s.current ? h("span", {}, " · this device") : null,
          h("p", { class: "muted" }, `Signed in ${when(s.created_at)} · last used ${when(s.last_used_at)}`),
          end,
        ),
      );
    }
    const all = h("button", { type: "button", class: "secondary" }, "Log out everywhere");
    all.addEventListener("click", async () => {
      await stopPush(true);
      try {
        await api("/api/v1/auth/logout-all", { method: "POST", auth: true });
      } catch (e) {
        msg.replaceChildren(problem(e, "your sessions"));
        return;
      }
      await signedOutHere("You were signed out on every device.");
      location.hash = "#/";
    });
    sec.append(ul, msg, h("p", {}, all));
  }
  load();
  sec.reload = load;
  return sec;
}
