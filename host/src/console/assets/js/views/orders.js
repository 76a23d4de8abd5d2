// Orders: every order (GET /api/v1/admin/orders) filtered by status; one order with
// its lines, address and history, and the status changes its state machine allows
// (PATCH /api/v1/orders/{id}/status). Needs an admin sign-in.

import { qs, shop } from "../api.js";
import { badge, busy, h, inlineField, money, page, pager, problem, say, table, when } from "../ui.js";

const SERVICE = "orders service";
const STATUSES = ["pending", "confirmed", "preparing", "out_for_delivery", "delivered", "cancelled"];
/** The steps an admin may take from each status (docs/api.md, Orders). */
const NEXT = {
  pending: ["confirmed", "cancelled"],
  confirmed: ["preparing", "cancelled"],
  preparing: ["out_for_delivery", "cancelled"],
  out_for_delivery: ["delivered"],
  delivered: [],
  cancelled: [],
};
const words = (s) => s.replace(/_/g, " ");

export async function render(main, query) {
  const status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
  const pageNo = Math.max(1, Number(query.get("page")) || 1);
  const filter = h(
    "form",
    { class: "inline", "aria-label": "Filter orders" },
    inlineField("Status", { name: "status" }, "select", h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s, selected: s === status }, words(s)))),
    h("button", { type: "submit" }, "Show"),
  );
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/orders${qs({ status: filter.elements.status.value })}`;
  });
  const list = h("div", {}, h("p", {}, "Loading…"));
  const detail = h("section", { class: "panel", "aria-labelledby": "order-h", hidden: true });
  page(main, "Orders", filter, list, detail);

  let data;
  try {
    data = await shop(`/api/v1/admin/orders${qs({ status, page: pageNo, page_size: 20 })}`);
  } catch (e) {
    list.replaceChildren(problem(e, SERVICE));
    return;
  }
  const rows = (data.items || []).map((o) => [
    h("code", {}, o.id),
    when(o.created_at),
    money(o.total),
    badge(o.status),
    `${o.payment_method} (${o.payment_status})`,
    h("button", { type: "button", class: "secondary", onclick: () => open(o.id, true) }, "Open", h("span", { class: "sr-only" }, ` order ${o.id}`)),
  ]);
  list.replaceChildren(
    rows.length ? table(status ? `Orders that are ${words(status)}` : "All orders, newest first", ["Order", "Placed", "Total", "Status", "Payment", "Actions"], rows, [2]) : h("p", {}, "No orders."),
    pager(data, (n) => (location.hash = `#/orders${qs({ status, page: n })}`)),
  );

  async function open(id, focus) {
    let o;
    try {
      o = await shop(`/api/v1/orders/${encodeURIComponent(id)}`);
    } catch (e) {
      detail.hidden = false;
      detail.replaceChildren(h("h2", { id: "order-h", tabindex: "-1" }, "Order"), problem(e, SERVICE));
      return;
    }
    detail.hidden = false;
    detail.replaceChildren(...view(o));
    if (focus) detail.querySelector("h2").focus();
  }

  function view(o) {
    const a = o.address || {};
    const buttons = (NEXT[o.status] || []).map((to) =>
      h(
        "button",
        {
          type: "button",
          class: to === "cancelled" ? "danger" : null,
          onclick: async (ev) => {
            const r = await busy(ev.currentTarget, () => shop(`/api/v1/orders/${encodeURIComponent(o.id)}/status`, { method: "PATCH", json: { status: to } }), SERVICE);
            if (r) {
              say(`Order ${o.id} is now ${words(r.status)}.`);
              await open(o.id, true);
            }
          },
        },
        to === "cancelled" ? "Cancel order" : `Mark ${words(to)}`,
      ),
    );
    return [
      h("h2", { id: "order-h", tabindex: "-1" }, `Order ${o.id}`),
      h("p", {}, badge(o.status), ` ${money(o.total)} · ${o.payment_method} (${o.payment_status}) · placed ${when(o.created_at)}`, o.cancel_reason ? ` · cancelled: ${o.cancel_reason}` : ""),
      buttons.length ? h("div", { class: "actions", role: "group", "aria-label": "Status changes" }, buttons) : h("p", {}, "No further status changes are possible."),
      table(
        "Items",
        ["Product", "Unit", "Price", "Quantity", "Line total"],
        (o.items || []).map((i) => [i.name, i.unit, money(i.unit_price), String(i.quantity), money(i.line_total)]),
        [2, 3, 4],
      ),
      h("p", {}, `Subtotal ${money(o.subtotal)} + delivery ${money(o.delivery_fee)} − discount ${money(o.discount)}${o.coupon_code ? ` (${o.coupon_code})` : ""} = ${money(o.total)}`),
      h("p", {}, `Deliver to: ${[a.label, a.line1, a.line2, a.city, a.pincode].filter(Boolean).join(", ")}`, o.notes ? ` · Notes: ${o.notes}` : ""),
      h("p", {}, `Agent: ${o.agent_user_id || "none yet"} · Customer: ${o.user_id}`),
      table("Status history", ["Status", "At"], (o.status_history || []).map((s) => [words(s.status), when(s.at)])),
    ];
  }
}
