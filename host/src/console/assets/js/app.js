// The console's hash router: #/plugins, #/events, #/products, #/orders, #/agents,
// #/analytics, #/signin. A view is `render(main, query)`, which may return a function
// that stops what it started (the plugins view's polling) when another view opens.

import { adminSession, operatorToken, onCredentials } from "./api.js";
import * as signin from "./views/signin.js";
import * as plugins from "./views/plugins.js";
import * as events from "./views/events.js";
import * as products from "./views/products.js";
import * as orders from "./views/orders.js";
import * as agents from "./views/agents.js";
import * as analytics from "./views/analytics.js";

const views = { signin, plugins, events, products, orders, agents, analytics };
const main = document.getElementById("main");
let stop = null;
let generation = 0;

function current() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [name, query = ""] = hash.split("?");
  return { name, query: new URLSearchParams(query) };
}

async function route() {
  // Other anchors (the skip link's #main) are not views.
  if (location.hash && !location.hash.startsWith("#/")) return;
  let { name, query } = current();
  if (!views[name]) {
    // Nothing signed in yet: start at the sign-in form; else the plugins view.
    name = !adminSession() && !operatorToken() ? "signin" : operatorToken() ? "plugins" : "products";
    history.replaceState(null, "", `#/${name}`);
  }
  if (stop) stop();
  stop = null;
  const mine = ++generation;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const result = await views[name].render(main, query);
  if (mine !== generation) {
    if (typeof result === "function") result();
    return;
  }
  stop = typeof result === "function" ? result : null;
  const h1 = main.querySelector("h1");
  if (h1 && document.activeElement !== h1 && !main.contains(document.activeElement)) h1.focus();
}

function updateNav() {
  const a = document.getElementById("nav-signin");
  a.textContent = adminSession() || operatorToken() ? "Credentials" : "Sign in";
}

document.getElementById("skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
onCredentials(updateNav);
window.addEventListener("hashchange", route);
updateNav();
route();
