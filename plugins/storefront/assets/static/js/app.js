// The storefront's entry: a hash router (#/, #/search?q=, #/c/slug, #/p/id, #/cart,
// #/login, #/signup, #/forgot-password, #/reset-password, #/account, #/checkout,
// #/orders/id, #/notifications), the header's search-as-you-type, the live counts, and
// the return from a provider's sign-in.

import { api, session, onSession, saveSession } from "./api.js";
import { h, page, toast } from "./ui.js";
import { connect, disconnect, refreshCartCount, refreshUnread, loadCategories } from "./live.js";
import { home, search, category, product } from "./pages/catalog.js";
import { cart, checkout } from "./pages/cart.js";
import { login, signup, account, notifications } from "./pages/account.js";
import { order, orders } from "./pages/orders.js";

/** A page in a module loaded on first use, so the first load does not carry it. */
function lazy(module, name) {
  return async (...args) => (await import(module))[name](...args);
}

const routes = [
  [/^\/?$/, home],
  [/^\/search$/, search],
  [/^\/c\/([\w-]+)$/, category],
  [/^\/p\/([\w-]+)$/, product],
  [/^\/cart$/, cart],
  [/^\/checkout$/, checkout],
  [/^\/login$/, login],
  [/^\/signup$/, signup],
  [/^\/forgot-password$/, lazy("./pages/security.js", "forgot")],
  [/^\/reset-password$/, lazy("./pages/security.js", "reset")],
  [/^\/account$/, account],
  [/^\/orders$/, orders],
  [/^\/orders\/([\w-]+)$/, order],
  [/^\/notifications$/, notifications],
];

let cleanup = null;
let first = true;

async function route() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  if (cleanup) cleanup();
  cleanup = null;
  closeSuggest();
  // Each visit renders into its own section: a slow answer for a page already left
  // lands in a detached node, never over the next page.
  const section = h("section", { class: "view" });
  document.getElementById("main").replaceChildren(section);
  markCategory(path);
  const found = routes.find(([re]) => re.test(path));
  const run = found ? found[1](section, params, ...path.match(found[0]).slice(1)) : notFound(section);
  const focus = !first;
  if (focus) section.querySelector("h1")?.focus();
  first = false;
  try {
    const done = await run;
    // A page loaded on demand has its heading only now.
    if (focus && section.isConnected && !section.contains(document.activeElement)) section.querySelector("h1")?.focus();
    if (typeof done === "function") cleanup = done;
  } catch (e) {
    section.append(h("p", { class: "error", role: "alert" }, e.message || "Something went wrong."));
  }
}

function notFound(section) {
  page(section, "Page not found", h("p", {}, "There is no such page. ", h("a", { href: "#/" }, "Back to the shop")));
}

function markCategory(path) {
  for (const a of document.querySelectorAll("#cats a")) {
    if (a.getAttribute("href") === "#" + path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function categoryNav() {
  const nav = document.getElementById("cats");
  try {
    const cats = await loadCategories();
    nav.replaceChildren(...cats.map((c) => h("a", { href: `#/c/${c.slug}` }, c.name)));
    markCategory((location.hash.replace(/^#/, "") || "/").split("?")[0]);
  } catch {
    nav.replaceChildren(h("span", { class: "muted" }, "Categories are unavailable right now."));
  }
}

// ---- header search: suggestions as you type (a combobox with a listbox) ----
const input = document.getElementById("q");
const list = document.getElementById("suggest");
let suggestTimer = null;
let suggestSeq = 0;
let active = -1;

function closeSuggest() {
  list.hidden = true;
  list.replaceChildren();
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
  active = -1;
}

function setActive(i) {
  const items = list.querySelectorAll("li");
  if (!items.length) return;
  active = (i + items.length) % items.length;
  items.forEach((li, n) => li.setAttribute("aria-selected", String(n === active)));
  input.setAttribute("aria-activedescendant", items[active].id);
}

async function suggest() {
  const q = input.value.trim();
  const seq = ++suggestSeq;
  if (!q) return closeSuggest();
  let items = [];
  try {
    items = (await api("/api/v1/products/suggest?q=" + encodeURIComponent(q))).items || [];
  } catch {
    items = [];
  }
  if (seq !== suggestSeq) return;
  if (!items.length) return closeSuggest();
  list.replaceChildren(
    ...items.map((p, i) =>
      h(
        "li",
        { id: "sg-" + i, role: "option", "aria-selected": "false", onmousedown: (e) => e.preventDefault(), onclick: () => pick(p) },
        h("span", {}, p.name, p.unit ? ` · ${p.unit}` : ""),
      ),
    ),
  );
  list.hidden = false;
  input.setAttribute("aria-expanded", "true");
  active = -1;
}

function pick(p) {
  closeSuggest();
  location.hash = "#/p/" + p.id;
}

input.addEventListener("input", () => {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(suggest, 150);
});
input.addEventListener("keydown", (e) => {
  if (e.key === "ArrowDown") {
    e.preventDefault();
    setActive(active + 1);
  } else if (e.key === "ArrowUp") {
    e.preventDefault();
    setActive(active - 1);
  } else if (e.key === "Escape") {
    closeSuggest();
  } else if (e.key === "Enter" && active >= 0) {
    e.preventDefault();
    list.querySelectorAll("li")[active].click();
  }
});
input.addEventListener("blur", () => setTimeout(closeSuggest, 100));
document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  clearTimeout(suggestTimer);
  suggestSeq++;
  closeSuggest();
  const q = input.value.trim();
  location.hash = "#/search" + (q ? "?q=" + encodeURIComponent(q) : "");
});

// ---- the session: header link, counts, live stream ----
function sessionChanged(s) {
  const link = document.getElementById("nav-account");
  link.textContent = s ? "Account" : "Sign in";
  link.setAttribute("href", s ? "#/account" : "#/login");
  refreshCartCount();
  refreshUnread();
  if (s) connect();
  else disconnect();
}

// ---- arriving from elsewhere: a provider's sign-in, a password-reset email ----

/** A provider's sign-in comes back as `<redirect_uri>#access_token=…&refresh_token=…`:
 * keep the pair, take the tokens out of the address bar and the history, and go to the
 * page the sign-in was started for. That page rides in the redirect_uri's query
 * (`redirect_uri=/?next=%23%2Fcart`), so nothing is kept between the two visits; without
 * one it is the account page, which lists the linked providers. */
async function providerReturn() {
  const frag = new URLSearchParams(location.hash.replace(/^#/, ""));
  const access = frag.get("access_token");
  const refreshToken = frag.get("refresh_token");
  if (!access || !refreshToken) return;
  const back = new URLSearchParams(location.search).get("next") || "";
  history.replaceState(null, "", "/" + (/^#\/[\w/?=&%.-]*$/.test(back) ? back : "#/account"));
  saveSession({ access_token: access, refresh_token: refreshToken });
  try {
    const user = await api("/api/v1/auth/me", { auth: true });
    saveSession({ ...session(), user });
    toast(`Welcome, ${user.name}.`);
  } catch {
    // The session stays; the account page shows what failed.
  }
}

/** The reset email links to `/reset-password?token=…`: the token moves to this tab's
 * storage and the address becomes `/#/reset-password`, so it is not kept in history. */
function resetLink() {
  if (location.pathname !== "/reset-password") return;
  const token = new URLSearchParams(location.search).get("token");
  if (token) sessionStorage.setItem("kirana.reset", token);
  history.replaceState(null, "", "/#/reset-password");
}

resetLink();
await providerReturn();

let lastToken = session() && session().access_token;
onSession((s) => {
  // A refresh changes the token, not who is signed in.
  const signedIn = !!s;
  if (signedIn === !!lastToken) {
    lastToken = s && s.access_token;
    return;
  }
  lastToken = s && s.access_token;
  sessionChanged(s);
});
window.addEventListener("storage", (e) => {
  if (e.key === "kirana.session") sessionChanged(session());
});

// The skip link moves focus to the content without touching the router's hash.
document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main").focus();
});

window.addEventListener("hashchange", route);
categoryNav();
sessionChanged(session());
route();
