// Small DOM helpers shared by the pages. Text always goes in as text (never as HTML),
// so nothing from the API can become markup.

/** Builds an element: h("a", {href: "#/"}, "Home", child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = tag === "svg" || attrs.svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false || k === "svg") continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k in el && !(el instanceof SVGElement) && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** SVG element (namespaced). */
export function s(tag, attrs = {}, ...children) {
  return h(tag, { ...attrs, svg: true }, ...children);
}

const inr = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
/** Paise as rupees: 12345 → "₹123.45". */
export function money(paise) {
  return "₹" + inr.format((Number(paise) || 0) / 100);
}

/** Price with MRP struck through and the discount, when there is one. */
export function priceTag(price, mrp, discount) {
  return h(
    "p",
    { class: "price" },
    h("span", {}, money(price)),
    mrp > price ? h("s", { class: "mrp" }, h("span", { class: "sr-only" }, "MRP "), money(mrp)) : null,
    discount > 0 ? h("span", { class: "off" }, `${discount}% off`) : null,
  );
}

/** A product's pictures as [{url, thumb, width, height}], same-origin only (the
 * policy and the issue forbid requests to other hosts). */
export function pictures(p) {
  const local = (u) => typeof u === "string" && u.startsWith("/") && !u.startsWith("//");
  const out = (p.images || [])
    .filter((i) => local(i.url))
    .map((i) => ({ url: i.url, thumb: local(i.thumbnail_url) ? i.thumbnail_url : i.url, width: i.width, height: i.height }));
  if (!out.length && local(p.image_url)) out.push({ url: p.image_url, thumb: p.image_url });
  return out;
}

/** A product's picture, or a neutral placeholder drawn in CSS (its initial). */
export function picture(p, size = "thumb", cls = "thumb") {
  const pic = pictures(p)[0];
  if (!pic) return h("div", { class: "ph", role: "img", "aria-label": `${p.name} (no picture)` }, (p.name || "?").trim().charAt(0).toUpperCase());
  return h("img", { class: cls, src: size === "thumb" ? pic.thumb : pic.url, alt: p.name, loading: "lazy", width: pic.width, height: pic.height });
}

/** Stock as words: "Out of stock", "Only 3 left", or nothing. */
export function stockNote(stock) {
  if (stock <= 0) return h("p", { class: "stock-out" }, "Out of stock");
  if (stock <= 5) return h("p", { class: "stock-low" }, `Only ${stock} left`);
  return null;
}

let toastTimer;
/** A short message in the polite live region. */
export function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.textContent = ""), 4000);
}

/** What a failure means to a shopper; `what` names the service ("the cart"). */
export function problem(e, what) {
  if (e && e.unavailable) {
    return h("div", { class: "warning", role: "alert" }, h("strong", {}, `${cap(what)} is unavailable right now.`), " Please try again in a moment; the rest of the shop still works.");
  }
  if (e && e.status === 401) {
    return h("div", { class: "notice", role: "alert" }, "Please ", h("a", { href: "#/login?next=" + encodeURIComponent(location.hash) }, "sign in"), " to continue.");
  }
  if (e && e.status === 404) return h("div", { class: "error", role: "alert" }, `Sorry, we could not find that. `, h("a", { href: "#/" }, "Back to the shop"));
  return h("div", { class: "error", role: "alert" }, (e && e.message) || "Something went wrong.");
}

function cap(t) {
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** Shows an API validation error beside its fields (aria-invalid + described-by);
 * anything else in `box`. */
export function formErrors(form, e, box) {
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  box.replaceChildren();
  const fields = (e.details && e.details.fields) || (e.details && e.details.field ? [{ field: e.details.field, message: e.message }] : []);
  let first = null;
  for (const f of fields) {
    const input = form.elements.namedItem(f.field);
    if (!input || !input.id) continue;
    const id = input.id + "-error";
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    input.after(h("p", { class: "field-error", id }, f.message));
    first = first || input;
  }
  if (first) first.focus();
  else box.append(problem(e, "this service"));
}

/** Sets the page title and main heading, and moves focus there for screen readers. */
export function page(main, title, ...children) {
  document.title = `${title} — Kirana`;
  const h1 = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(h1, ...children);
  return h1;
}

/** A labelled input: field("email", "Email", {type: "email", required: true}). */
export function field(name, label, attrs = {}) {
  const id = "f-" + name;
  return [h("label", { for: id }, label), h("input", { id, name, ...attrs })];
}

/** A random id for Idempotency-Key and sandbox payment ids. */
export function randomId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
