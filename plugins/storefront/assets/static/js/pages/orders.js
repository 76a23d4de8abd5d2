// The order page: status and delivery progress kept live over the event stream, the
// agent's path drawn as SVG from the tracking points (no map tiles), and the orders list.

import { api, session, qs } from "../api.js";
import { h, s, page, money, problem, toast } from "../ui.js";
import { bus } from "../live.js";
import { payOnline } from "./cart.js";

const STEPS = [
  ["pending", "Awaiting payment"],
  ["confirmed", "Confirmed"],
  ["preparing", "Packing"],
  ["out_for_delivery", "On the way"],
  ["delivered", "Delivered"],
];
/** The statuses an order can be cancelled from (POST /orders/{id}/cancel). */
const CANCELLABLE = ["pending", "confirmed", "preparing"];
const LABEL = Object.fromEntries([...STEPS, ["cancelled", "Cancelled"]]);

function short(id) {
  return "#" + id.slice(-6).toUpperCase();
}

/** The route so far as an SVG: the path's points and the delivery address, fitted
 * into the box with the same scale on both axes (longitude shrunk by cos(latitude)). */
function trackSvg(points, home) {
  const all = home ? [...points, home] : points;
  const W = 320;
  const H = 220;
  const pad = 24;
  const svg = s("svg", { class: "track", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "track-title" });
  const title = s("title", { id: "track-title" });
  svg.append(title);
  if (!all.length) {
    title.textContent = "The delivery has not started yet.";
    svg.append(s("text", { x: 20, y: H / 2 }, "Waiting for a delivery partner…"));
    return svg;
  }
  const k = Math.cos(((all[0].lat || 0) * Math.PI) / 180);
  const xs = all.map((p) => p.lon * k);
  const ys = all.map((p) => p.lat);
  const minX = Math.min(...xs);
  const minY = Math.min(...ys);
  const span = Math.max(Math.max(...xs) - minX, Math.max(...ys) - minY, 0.002);
  const scale = Math.min(W - 2 * pad, H - 2 * pad) / span;
  const at = (p) => [pad + (p.lon * k - minX) * scale, H - pad - (p.lat - minY) * scale];
  if (home) {
    const [x, y] = at(home);
    svg.append(s("path", { class: "home", d: `M${x} ${y - 9}l8 7v9h-16v-9z` }), s("text", { x: x + 10, y: y + 4 }, "You"));
  }
  if (points.length) {
    svg.append(s("polyline", { class: "path", points: points.map((p) => at(p).map((n) => n.toFixed(1)).join(",")).join(" ") }));
    const [x, y] = at(points[points.length - 1]);
    svg.append(s("circle", { class: "agent", cx: x.toFixed(1), cy: y.toFixed(1), r: 7 }), s("text", { x: x + 10, y: y - 8 }, "Partner"));
  }
  title.textContent = points.length ? `The delivery partner's route: ${points.length} points so far, ending at the dot.` : "The delivery partner has not shared a location yet.";
  return svg;
}

export async function order(view, _params, id) {
  page(view, `Order ${short(id)}`);
  if (!session()) {
    view.append(h("p", {}, h("a", { href: "#/login?next=" + encodeURIComponent(location.hash) }, "Sign in"), " to see this order."));
    return;
  }
  const statusLine = h("p", { role: "status", "aria-live": "polite", class: "notice", tabindex: "-1" });
  const steps = h("ol", { class: "steps", "aria-label": "Progress" });
  const payBox = h("div");
  const trackBox = h("section", { "aria-labelledby": "h-track" }, h("h2", { id: "h-track" }, "Delivery"));
  const details = h("section", { "aria-labelledby": "h-items" });
  view.append(statusLine, steps, payBox, trackBox, details);

  let o;
  let track = null;
  function renderStatus(announce) {
    const cancelled = o.status === "cancelled";
    const shown = o.payment_method === "online" ? STEPS : STEPS.slice(1);
    const idx = shown.findIndex(([k]) => k === o.status);
    steps.replaceChildren(
      ...shown.map(([k, t], i) => h("li", { class: !cancelled && i < idx ? "done" : "", "aria-current": !cancelled && i === idx ? "step" : null }, t)),
    );
    const eta = o.estimated_delivery_at && !["delivered", "cancelled"].includes(o.status) ? ` · arriving by ${new Date(o.estimated_delivery_at).toLocaleTimeString("en-IN", { hour: "2-digit", minute: "2-digit" })}` : "";
    statusLine.textContent = `Status: ${LABEL[o.status] || o.status}${cancelled && o.cancel_reason ? ` (${o.cancel_reason.replace(/_/g, " ")})` : ""}${eta}`;
    if (announce) toast(`Order ${short(o.id)}: ${LABEL[o.status] || o.status}`);
    payBox.replaceChildren();
    if (o.status === "pending" && o.payment_status === "awaiting") {
      const b = h("button", { type: "button" }, `Pay ${money(o.total)} now`);
      b.addEventListener("click", async () => {
        if (await payOnline(o)) await reload(true);
      });
      payBox.append(h("p", { class: "warning" }, "This order waits for its payment. "), b);
    }
    if (CANCELLABLE.includes(o.status)) payBox.append(cancelBox());
  }

  /** "Cancel order", then a confirm step; the API allows it until the order leaves. */
  function cancelBox() {
    const box = h("div", { class: "stack" });
    const start = h("button", { type: "button", class: "secondary" }, "Cancel order");
    box.append(start);
    start.addEventListener("click", () => {
      const msg = h("div");
      const yes = h("button", { type: "button", class: "danger" }, "Yes, cancel the order");
      const no = h("button", { type: "button", class: "secondary" }, "Keep the order");
      const confirm = h(
        "div",
        { role: "group", "aria-labelledby": "h-cancel", class: "confirm" },
        h("p", { id: "h-cancel" }, h("strong", {}, `Cancel order ${short(o.id)}?`), o.payment_status === "captured" ? " Your payment will be refunded in full." : ""),
        msg,
        h("div", { class: "row" }, yes, no),
      );
      box.replaceChildren(confirm);
      yes.focus();
      no.addEventListener("click", () => {
        box.replaceChildren(start);
        start.focus();
      });
      yes.addEventListener("click", async () => {
        yes.disabled = true;
        try {
          o = await api("/api/v1/orders/" + encodeURIComponent(o.id) + "/cancel", { method: "POST", auth: true });
          renderStatus(true);
          statusLine.focus();
          loadTrack();
        } catch (e) {
          yes.disabled = false;
          if (e.code === "invalid_transition") {
            msg.replaceChildren(h("p", { class: "warning", role: "alert" }, "This order can no longer be cancelled."));
            reload(true).catch(() => {});
          } else msg.replaceChildren(problem(e, "orders"));
        }
      });
    });
    return box;
  }

  function renderTrack() {
    trackBox.replaceChildren(h("h2", { id: "h-track" }, "Delivery"));
    if (!track) return;
    const home = o.address && Number.isFinite(o.address.lat) ? { lat: o.address.lat, lon: o.address.lon } : null;
    trackBox.append(
      track.agent ? h("p", {}, `${track.agent.name} is delivering your order.`) : h("p", { class: "muted" }, track.status === "cancelled" ? "The delivery was cancelled." : "A delivery partner will be assigned when your order is packed."),
      trackSvg(track.path || [], home),
    );
  }

  async function loadTrack() {
    try {
      track = await api("/api/v1/delivery/track/" + encodeURIComponent(id), { auth: true });
      renderTrack();
    } catch (e) {
      track = null;
      trackBox.replaceChildren(h("h2", { id: "h-track" }, "Delivery"), problem(e, "delivery tracking"));
    }
  }

  async function reload(announce) {
    const before = o && o.status;
    o = await api("/api/v1/orders/" + encodeURIComponent(id), { auth: true });
    renderStatus(announce && before !== o.status);
  }

  try {
    await reload(false);
  } catch (e) {
    statusLine.remove();
    view.append(problem(e, "orders"));
    return;
  }
  const items = o.items.map((i) => h("li", {}, h("span", {}, `${i.quantity} × ${i.name} (${i.unit})`), h("strong", {}, money(i.line_total))));
  details.append(
    h("h2", { id: "h-items" }, "Items"),
    h("ul", { class: "lines" }, ...items),
    h(
      "div",
      { class: "totals" },
      h(
        "dl",
        {},
        h("dt", {}, "Subtotal"),
        h("dd", {}, money(o.subtotal)),
        h("dt", {}, "Delivery"),
        h("dd", {}, o.delivery_fee ? money(o.delivery_fee) : "Free"),
        o.discount ? [h("dt", {}, `Coupon ${o.coupon_code}`), h("dd", {}, "−" + money(o.discount))] : null,
        h("dt", { class: "grand" }, "Total"),
        h("dd", { class: "grand" }, money(o.total)),
        h("dt", {}, "Payment"),
        h("dd", {}, o.payment_method === "cod" ? "Cash on delivery" : `Online (${o.payment_status})`),
      ),
    ),
    h("p", { class: "muted" }, `To ${o.address.label}: ${[o.address.line1, o.address.line2, o.address.city, o.address.pincode].filter(Boolean).join(", ")}`),
  );
  await loadTrack();

  // Live: status changes reload the order; locations extend the drawn path.
  const mine = (e) => e.detail && e.detail.order_id === id;
  const onStatus = (e) => mine(e) && reload(true).then(loadTrack).catch(() => {});
  const onPaid = (e) => mine(e) && reload(true).catch(() => {});
  const onDelivery = (e) => mine(e) && loadTrack();
  const onMove = (e) => {
    if (!mine(e) || !track) return;
    track.path = [...(track.path || []), { lat: e.detail.lat, lon: e.detail.lon, at: e.detail.at }];
    renderTrack();
  };
  const subs = [
    ["order.status_changed", onStatus],
    ["order.cancelled", onStatus],
    ["payment.captured", onPaid],
    ["payment.refunded", onPaid],
    ["delivery.assigned", onDelivery],
    ["delivery.status_changed", onDelivery],
    ["delivery.location_updated", onMove],
  ];
  subs.forEach(([t, f]) => bus.addEventListener(t, f));
  return () => subs.forEach(([t, f]) => bus.removeEventListener(t, f));
}

export async function orders(view, params) {
  page(view, "Your orders");
  if (!session()) {
    view.append(h("p", {}, h("a", { href: "#/login?next=%23%2Forders" }, "Sign in"), " to see your orders."));
    return;
  }
  try {
    const r = await api("/api/v1/orders" + qs({ page: params.get("page"), page_size: 20 }), { auth: true });
    if (!r.items.length) {
      view.append(h("p", {}, "No orders yet. ", h("a", { href: "#/" }, "Start shopping")));
      return;
    }
    view.append(
      h(
        "ul",
        { class: "notes" },
        ...r.items.map((o) =>
          h(
            "li",
            {},
            h("a", { href: `#/orders/${o.id}` }, `Order ${short(o.id)}`),
            h("p", {}, `${LABEL[o.status] || o.status} · ${money(o.total)} · ${new Date(o.created_at).toLocaleString("en-IN")}`),
          ),
        ),
      ),
    );
  } catch (e) {
    view.append(problem(e, "orders"));
  }
}
