// Signing in (password or SMS code), signing up, the account page with addresses, and
// the notifications list.

import { api, session, saveSession, clearSession } from "../api.js";
import { h, page, field, formErrors, problem, toast } from "../ui.js";
import { bus, refreshUnread, disconnect } from "../live.js";

/** Where to go after signing in: the page that asked (only a local hash). */
function next(params) {
  const n = params.get("next") || "";
  return /^#\/[\w/?=&%.-]*$/.test(n) && !n.startsWith("#/login") && !n.startsWith("#/signup") ? n : "#/";
}

function signedIn(pair, params) {
  saveSession(pair);
  toast(`Welcome, ${pair.user.name}.`);
  location.hash = next(params);
}

/** One link per sign-in provider the shop offers (none: the section stays hidden). The
 * provider sends the browser back to `/?next=<page>` with the tokens in the fragment
 * (app.js takes them). A failure to list them only hides the section. */
async function providerButtons(section, after) {
  let items = [];
  try {
    ({ items } = await api("/api/v1/auth/oidc/providers"));
  } catch {
    return;
  }
  if (!items.length) return;
  const back = "/?next=" + encodeURIComponent(after);
  for (const p of items) {
    const label = p.name.charAt(0).toUpperCase() + p.name.slice(1);
    section.append(h("a", { class: "button", href: `${p.start_url}?redirect_uri=${encodeURIComponent(back)}` }, `Continue with ${label}`));
  }
  section.hidden = false;
}

export function login(view, params) {
  page(view, "Sign in");
  const err1 = h("div");
  const pw = h(
    "form",
    { class: "stack", "aria-labelledby": "h-pw" },
    h("h2", { id: "h-pw" }, "With your password"),
    ...field("email", "Email", { type: "email", autocomplete: "email", required: true }),
    ...field("password", "Password", { type: "password", autocomplete: "current-password", required: true }),
    err1,
    h("button", { type: "submit" }, "Sign in"),
  );
  pw.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const pair = await api("/api/v1/auth/login", { method: "POST", body: { email: pw.elements.email.value, password: pw.elements.password.value } });
      signedIn(pair, params);
    } catch (x) {
      formErrors(pw, x.code === "invalid_credentials" ? { ...x, details: {}, message: "That email and password do not match." } : x, err1);
    }
  });

  const err2 = h("div");
  const codeField = h("div", { hidden: true }, ...field("code", "6-digit code", { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6" }));
  const otpButton = h("button", { type: "submit" }, "Send code");
  const otp = h(
    "form",
    { class: "stack", "aria-labelledby": "h-otp" },
    h("h2", { id: "h-otp" }, "With a code by SMS"),
    ...field("phone", "Phone (with country code)", { type: "tel", autocomplete: "tel", placeholder: "+919876543210", required: true }),
    codeField,
    err2,
    otpButton,
  );
  let sent = false;
  otp.addEventListener("submit", async (e) => {
    e.preventDefault();
    const phone = otp.elements.phone.value.trim();
    try {
      if (!sent) {
        await api("/api/v1/auth/otp/request", { method: "POST", body: { phone } });
        sent = true;
        codeField.hidden = false;
        otpButton.textContent = "Verify and sign in";
        err2.replaceChildren(h("p", { class: "notice", role: "status" }, `We sent a code to ${phone}.`));
        otp.elements.code.focus();
      } else {
        const pair = await api("/api/v1/auth/otp/verify", { method: "POST", body: { phone, code: otp.elements.code.value.trim() } });
        signedIn(pair, params);
      }
    } catch (x) {
      if (x.code === "invalid_credentials") x = { ...x, details: { fields: [{ field: "code", message: "That code is wrong or has expired." }] } };
      formErrors(otp, x, err2);
    }
  });
  pw.append(h("p", {}, h("a", { href: "#/forgot-password" }, "Forgot your password?")));
  const providers = h("section", { class: "stack", "aria-labelledby": "h-providers", hidden: true }, h("h2", { id: "h-providers" }, "With another account"));
  providerButtons(providers, next(params));
  view.append(providers, pw, otp, h("p", {}, "New here? ", h("a", { href: "#/signup" + (params.get("next") ? "?next=" + encodeURIComponent(params.get("next")) : "") }, "Create an account")));
}

export function signup(view, params) {
  page(view, "Create your account");
  const err = h("div");
  const form = h(
    "form",
    { class: "stack" },
    ...field("name", "Name", { autocomplete: "name", required: true, maxlength: "100" }),
    ...field("email", "Email", { type: "email", autocomplete: "email", required: true }),
    ...field("password", "Password (8 or more characters)", { type: "password", autocomplete: "new-password", required: true, minlength: "8" }),
    ...field("phone", "Phone (optional, with country code)", { type: "tel", autocomplete: "tel", placeholder: "+919876543210" }),
    err,
    h("button", { type: "submit" }, "Create account"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: form.elements.name.value, email: form.elements.email.value, password: form.elements.password.value };
    if (form.elements.phone.value.trim()) body.phone = form.elements.phone.value.trim();
    try {
      signedIn(await api("/api/v1/auth/signup", { method: "POST", body }), params);
    } catch (x) {
      if (x.code === "already_exists") x = { ...x, details: { fields: [{ field: "email", message: "An account with this email exists. Sign in instead." }] } };
      formErrors(form, x, err);
    }
  });
  view.append(form, h("p", {}, "Have an account? ", h("a", { href: "#/login" }, "Sign in")));
}

/** A form to add (or, given `a`, edit) an address; `saved()` runs after it is stored. */
export function addressForm(a, saved) {
  const err = h("div");
  const v = (k, d = "") => (a && a[k] != null ? String(a[k]) : d);
  const form = h(
    "form",
    { class: "stack", "aria-label": a ? `Edit ${a.label}` : "New address" },
    ...field("label", "Label (Home, Office…)", { required: true, maxlength: "50", value: v("label", "Home") }),
    ...field("line1", "Address line 1", { required: true, maxlength: "200", autocomplete: "address-line1", value: v("line1") }),
    ...field("line2", "Address line 2 (optional)", { maxlength: "200", autocomplete: "address-line2", value: v("line2") }),
    ...field("city", "City", { required: true, maxlength: "100", autocomplete: "address-level2", value: v("city", "Bengaluru") }),
    ...field("pincode", "Pincode", { required: true, inputmode: "numeric", pattern: "[0-9]{6}", maxlength: "6", autocomplete: "postal-code", value: v("pincode") }),
    h(
      "fieldset",
      {},
      h("legend", {}, "Location on the map"),
      ...field("lat", "Latitude", { type: "number", step: "any", min: "-90", max: "90", required: true, value: v("lat", "12.9716") }),
      ...field("lon", "Longitude", { type: "number", step: "any", min: "-180", max: "180", required: true, value: v("lon", "77.5946") }),
      navigator.geolocation
        ? h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () =>
                navigator.geolocation.getCurrentPosition(
                  (p) => {
                    form.elements.lat.value = p.coords.latitude.toFixed(6);
                    form.elements.lon.value = p.coords.longitude.toFixed(6);
                  },
                  () => toast("Your location is not available; type it in."),
                ),
            },
            "Use my location",
          )
        : null,
    ),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "is_default", checked: a ? a.is_default : false }), "Make this my default address"),
    err,
    h("button", { type: "submit" }, a ? "Save address" : "Add address"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = {
      label: f.label.value,
      line1: f.line1.value,
      line2: f.line2.value || null,
      city: f.city.value,
      pincode: f.pincode.value.trim(),
      lat: Number(f.lat.value),
      lon: Number(f.lon.value),
    };
    if (f.is_default.checked || a) body.is_default = f.is_default.checked;
    try {
      await api(a ? "/api/v1/addresses/" + encodeURIComponent(a.id) : "/api/v1/addresses", { method: a ? "PUT" : "POST", auth: true, body });
      toast(a ? "Address saved." : "Address added.");
      saved();
    } catch (x) {
      formErrors(form, x, err);
    }
  });
  return form;
}

export async function account(view) {
  page(view, "Your account");
  const s = session();
  if (!s) {
    view.append(h("p", {}, h("a", { href: "#/login?next=%23%2Faccount" }, "Sign in"), " to see your account."));
    return;
  }
  const me = h("section", { "aria-labelledby": "h-me" }, h("h2", { id: "h-me" }, "Profile"));
  const addrs = h("section", { "aria-labelledby": "h-addr" }, h("h2", { id: "h-addr" }, "Addresses"));
  const signOut = h("button", { type: "button", class: "secondary" }, "Sign out");
  signOut.addEventListener("click", async () => {
    if (localStorage.getItem("kirana.push")) {
      try {
        await (await import("./push.js")).forgetPush();
      } catch {
        // The push module could not load; the subscription stays until the next one.
      }
    }
    try {
      await api("/api/v1/auth/logout", { method: "POST", auth: true });
    } catch {
      // Signed out here whatever the server said; the token simply expires.
    }
    disconnect();
    clearSession();
    location.hash = "#/";
  });
  // Editing, password, providers, push and sessions live in modules loaded only here.
  const more = Promise.all([import("./security.js"), import("./push.js")]);
  const extra = h("div");
  view.append(me, h("p", {}, h("a", { href: "#/orders" }, "Your orders"), " · ", h("a", { href: "#/notifications" }, "Notifications")), addrs, extra, signOut);
  let u = null;
  try {
    u = await api("/api/v1/auth/me", { auth: true });
    me.append(h("p", {}, u.name), h("p", { class: "muted" }, [u.email, u.phone].filter(Boolean).join(" · ")));
  } catch (e) {
    me.append(problem(e, "your account"));
  }
  try {
    const [sec, push] = await more;
    if (u) sec.profile(me, u);
    const sessions = sec.sessions();
    extra.append(sec.password(() => sessions.reload()), sec.identities(), push.pushSection(), sessions);
  } catch (e) {
    extra.append(problem(e, "account settings"));
  }
  if (s.user && s.user.role !== "customer") {
    addrs.remove();
    return;
  }
  async function list() {
    addrs.replaceChildren(h("h2", { id: "h-addr" }, "Addresses"));
    let items;
    try {
      items = (await api("/api/v1/addresses", { auth: true })).items;
    } catch (e) {
      addrs.append(problem(e, "addresses"));
      return;
    }
    const ul = h("ul", { class: "notes" });
    for (const a of items) {
      const li = h(
        "li",
        {},
        h("strong", {}, a.label),
        a.is_default ? h("span", { class: "muted" }, " (default)") : null,
        h("p", {}, [a.line1, a.line2, `${a.city} ${a.pincode}`].filter(Boolean).join(", ")),
        h(
          "div",
          { class: "row" },
          h("button", { type: "button", class: "link", onclick: () => li.replaceChildren(addressForm(a, list)) }, "Edit", h("span", { class: "sr-only" }, ` ${a.label}`)),
          h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: async () => {
                try {
                  await api("/api/v1/addresses/" + encodeURIComponent(a.id), { method: "DELETE", auth: true });
                  toast("Address removed.");
                  list();
                } catch (e) {
                  li.append(problem(e, "addresses"));
                }
              },
            },
            "Delete",
            h("span", { class: "sr-only" }, ` ${a.label}`),
          ),
        ),
      );
      ul.append(li);
    }
    const add = h("details", {}, h("summary", {}, "Add an address"), addressForm(null, list));
    addrs.append(items.length ? ul : h("p", {}, "No addresses yet."), add);
  }
  await list();
}

export async function notifications(view) {
  page(view, "Notifications");
  if (!session()) {
    view.append(h("p", {}, h("a", { href: "#/login?next=%23%2Fnotifications" }, "Sign in"), " to see your notifications."));
    return;
  }
  const ul = h("ul", { class: "notes", "aria-live": "polite" });
  const allRead = h("button", { type: "button", class: "secondary" }, "Mark all as read");
  const box = h("div");
  view.append(h("p", {}, allRead), box, ul);
  import("./push.js")
    .then((m) => view.append(m.pushSection()))
    .catch(() => {});

  function item(n) {
    const li = h(
      "li",
      { class: n.read ? "" : "unread" },
      h("strong", {}, n.title),
      n.read ? null : h("span", { class: "sr-only" }, " (unread)"),
      h("p", {}, n.body),
      h("p", { class: "muted" }, new Date(n.created_at).toLocaleString("en-IN")),
      n.data && n.data.order_id ? h("a", { href: `#/orders/${n.data.order_id}` }, "View order") : null,
      n.read
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: async (e) => {
                try {
                  await api(`/api/v1/notifications/${encodeURIComponent(n.id)}/read`, { method: "POST", auth: true });
                  li.classList.remove("unread");
                  li.querySelector(".sr-only")?.remove();
                  e.target.remove();
                  refreshUnread();
                } catch (x) {
                  box.replaceChildren(problem(x, "notifications"));
                }
              },
            },
            "Mark as read",
          ),
    );
    return li;
  }
  allRead.addEventListener("click", async () => {
    try {
      await api("/api/v1/notifications/read-all", { method: "POST", auth: true });
      await load();
      refreshUnread();
    } catch (x) {
      box.replaceChildren(problem(x, "notifications"));
    }
  });
  async function load() {
    try {
      const r = await api("/api/v1/notifications?page_size=50", { auth: true });
      ul.replaceChildren(...r.items.map(item));
      if (!r.items.length) ul.append(h("li", {}, "Nothing yet."));
      box.replaceChildren();
    } catch (e) {
      box.replaceChildren(problem(e, "notifications"));
    }
  }
  await load();
  const onNew = (e) => ul.prepend(item(e.detail));
  bus.addEventListener("notification.created", onNew);
  return () => bus.removeEventListener("notification.created", onNew);
}
