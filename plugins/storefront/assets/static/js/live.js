// What every page shares: the live event stream (SSE), the cart and unread counts in
// the header, the category list, and adding to the cart.

import { api, session, freshToken, ApiError } from "./api.js";
import { toast } from "./ui.js";

/** Live events by topic: bus.addEventListener("order.status_changed", e => e.detail). */
export const bus = new EventTarget();

const TOPICS = [
  "order.created", "order.status_changed", "order.cancelled",
  "payment.captured", "payment.failed", "payment.refunded",
  "delivery.assigned", "delivery.status_changed", "delivery.location_updated",
  "notification.created",
];

let stream = null;
let retry = null;

/** Opens the caller's event stream (closing any other); reconnects with a fresh
 * token when it ends (the host ends it when the token expires). */
export async function connect() {
  disconnect();
  const token = await freshToken();
  if (!token || !session()) return;
  const es = new EventSource("/api/v1/realtime?access_token=" + encodeURIComponent(token));
  stream = es;
  for (const topic of TOPICS) {
    es.addEventListener(topic, (ev) => {
      let detail = {};
      try {
        detail = JSON.parse(ev.data);
      } catch {
        return;
      }
      bus.dispatchEvent(new CustomEvent(topic, { detail }));
    });
  }
  es.addEventListener("ready", () => bus.dispatchEvent(new CustomEvent("ready")));
  es.onerror = () => {
    if (stream !== es) return;
    es.close();
    stream = null;
    retry = setTimeout(connect, 5000);
  };
}

export function disconnect() {
  clearTimeout(retry);
  if (stream) stream.close();
  stream = null;
}

/** Shows count `n` on a header link; its accessible name starts with what it shows
 * ("Alerts, 2 unread"), so a speech user can say what they see. */
function badge(id, linkId, n, label, unit = "") {
  const b = document.getElementById(id);
  const link = document.getElementById(linkId);
  b.textContent = n > 0 ? String(n) : "";
  link.setAttribute("aria-label", n > 0 ? `${label}, ${n}${unit ? ` ${unit}` : ""}` : label);
}

/** Sets the header's cart count. */
export function setCartCount(n) {
  badge("cart-count", "nav-cart", n, "Cart");
}

/** Reads the cart's item count into the header (silently empty when unknown). */
export async function refreshCartCount() {
  const s = session();
  if (!s || !s.user || s.user.role !== "customer") return setCartCount(0);
  try {
    setCartCount((await api("/api/v1/cart", { auth: true })).item_count);
  } catch {
    setCartCount(0);
  }
}

/** Reads the unread notification count into the header. */
export async function refreshUnread() {
  if (!session()) return badge("unread", "nav-notes", 0, "Alerts");
  try {
    const r = await api("/api/v1/notifications?page_size=1", { auth: true });
    badge("unread", "nav-notes", r.unread_count, "Alerts", "unread");
  } catch {
    badge("unread", "nav-notes", 0, "Alerts");
  }
}

let categories = null;
/** The categories (cached for the visit); [] when the catalog cannot be asked. */
export async function loadCategories() {
  if (categories) return categories;
  const r = await api("/api/v1/categories");
  categories = r.items || [];
  return categories;
}

/** Sends a signed-out shopper to sign in, coming back here afterwards. */
export function toLogin() {
  location.hash = "#/login?next=" + encodeURIComponent(location.hash || "#/");
}

/** Adds to the cart and updates the count; true when it worked. */
export async function addToCart(product, quantity = 1) {
  const s = session();
  if (!s) {
    toLogin();
    return false;
  }
  if (s.user && s.user.role !== "customer") {
    toast("Only customer accounts have a cart.");
    return false;
  }
  try {
    const cart = await api("/api/v1/cart/items", { method: "POST", auth: true, body: { product_id: product.id, quantity } });
    setCartCount(cart.item_count);
    toast(`Added ${product.name} to your cart.`);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.unavailable) toast("The cart is unavailable right now. Please try again shortly.");
    else if (e.code === "insufficient_stock") toast(`Sorry, not enough ${product.name} in stock.`);
    else if (e.status === 401) toLogin();
    else toast(e.message);
    return false;
  }
}

bus.addEventListener("notification.created", () => refreshUnread());
