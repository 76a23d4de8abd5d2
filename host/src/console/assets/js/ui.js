// DOM helpers shared by the views. Text always goes in as text, never as HTML, so
// nothing from the API (a product name, an event payload) can become markup.

import { MissingCredential } from "./api.js";

/** Builds an element: h("a", {href: "#/"}, "Home", child, …); `on*` attributes are listeners. */
export function h(tag, attrs = {}, ...children) {
  const svg = attrs.svg || tag === "svg";
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false || k === "svg") continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (!svg && k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** An SVG element. */
export function s(tag, attrs = {}, ...children) {
  return h(tag, { ...attrs, svg: true }, ...children);
}

const inr = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
/** Paise as rupees: 12345 → "₹123.45". */
export function money(paise) {
  return "₹" + inr.format((Number(paise) || 0) / 100);
}

/** A timestamp as local date and time. */
export function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

/** A status word as a badge (its colour comes from the class; the word says it). */
export function badge(state) {
  return h("span", { class: `state state-${String(state).replace(/[^a-z_]/g, "")}` }, String(state).replace(/_/g, " "));
}

let statusTimer;
/** Says something in the polite live region (and clears any old error). */
export function say(text) {
  document.getElementById("alerts").textContent = "";
  const st = document.getElementById("status");
  st.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (st.textContent = ""), 6000);
}

/** Puts a failure in the assertive live region: the API's code and message. */
export function alertError(e, what) {
  document.getElementById("status").textContent = "";
  const box = document.getElementById("alerts");
  box.textContent = describe(e, what);
}

/** Clears the error region (before an action, so an old error does not linger). */
export function clearAlert() {
  document.getElementById("alerts").textContent = "";
}

/** A failure as one sentence. */
export function describe(e, what) {
  if (e instanceof MissingCredential) return e.message;
  if (e && e.unavailable) return `The ${what || "service"} is unavailable right now (${e.status === 0 ? "no answer" : e.code}).`;
  if (e && e.code) return `${e.message} (${e.code}, HTTP ${e.status})`;
  return (e && e.message) || "Something went wrong.";
}

/** What a view shows instead of its content when loading it failed: which credential
 * it needs, or that the plugin behind it is unavailable, or the error. */
export function problem(e, what) {
  if (e instanceof MissingCredential) {
    const cred = e.which === "admin" ? "an admin sign-in (email and password)" : "the operator token";
    return h("div", { class: "notice" }, h("p", {}, `This view needs ${cred}. `, h("a", { href: "#/signin" }, "Sign in")));
  }
  if (e && e.unavailable) {
    return h(
      "div",
      { class: "notice" },
      h("p", {}, h("strong", {}, `The ${what} is unavailable right now.`), " Its plugin may be disabled or failing; check the ", h("a", { href: "#/plugins" }, "plugins"), " view."),
    );
  }
  return h("div", { class: "error" }, h("p", {}, describe(e, what)));
}

/** Sets the title and the view's heading, which takes focus for screen readers. */
export function page(main, title, ...children) {
  document.title = `${title} — Kirana console`;
  const h1 = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(h1, ...children);
  return h1;
}

let fieldSeq = 0;
/** A labelled control: field("Email", {type: "email", name: "email"}) → [label, input]. */
export function field(label, attrs = {}, tag = "input", ...children) {
  const id = attrs.id || `f${++fieldSeq}`;
  return [h("label", { for: id }, label), h(tag, { ...attrs, id }, ...children)];
}

/** A field wrapped for an inline form. */
export function inlineField(label, attrs = {}, tag = "input", ...children) {
  return h("div", { class: "fld" }, ...field(label, attrs, tag, ...children));
}

/** The box a wide table scrolls sideways in on a phone: a named region that takes
 * keyboard focus, so the arrow keys can scroll it. */
export function scroller(name, ...children) {
  return h("div", { class: "table-wrap", role: "region", tabindex: "0", "aria-label": name }, ...children);
}

/** A table with a caption, column headers and rows of cells (nodes or text). */
export function table(caption, headers, rows, numeric = []) {
  return scroller(
    caption,
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : null }, c))))),
    ),
  );
}

/** Runs `fn` with the button disabled; errors go to the live region. Returns fn's result. */
export async function busy(button, fn, what) {
  if (button) button.disabled = true;
  clearAlert();
  try {
    return await fn();
  } catch (e) {
    alertError(e, what);
    return undefined;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

/** Rupees typed by a person ("123.45") as paise, or NaN. */
export function paise(text) {
  const t = String(text).trim();
  if (!/^\d+(\.\d{1,2})?$/.test(t)) return NaN;
  return Math.round(Number(t) * 100);
}

/** Previous/next buttons for a paged list `{page, page_size, total}`. */
export function pager(data, go) {
  const pages = Math.max(1, Math.ceil((data.total || 0) / (data.page_size || 1)));
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", class: "secondary", disabled: data.page <= 1, onclick: () => go(data.page - 1) }, "Previous page"),
    h("span", {}, `Page ${data.page} of ${pages} (${data.total} in all)`),
    h("button", { type: "button", class: "secondary", disabled: data.page >= pages, onclick: () => go(data.page + 1) }, "Next page"),
  );
}
