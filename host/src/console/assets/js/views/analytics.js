// Analytics: today's figures (GET /api/v1/analytics/dashboard), sales by day
// (/sales?from&to), top products (/products/top), customers (/users) and today's order
// funnel, drawn as SVG bar charts. Needs an admin sign-in.

import { qs, shop } from "../api.js";
import { barChart, columnChart } from "../charts.js";
import { h, inlineField, money, page, problem } from "../ui.js";

const SERVICE = "analytics service";
const day = (d) => d.toISOString().slice(0, 10);

/** Today's orders by the furthest stage each reached: every order placed today, then
 * those confirmed or further, preparing or further, out for delivery or further, and
 * delivered. A cancelled order counts as placed only (where it stopped is not known). */
export function funnel(byStatus) {
  const n = (k) => Number(byStatus[k]) || 0;
  const delivered = n("delivered");
  const out = delivered + n("out_for_delivery");
  const preparing = out + n("preparing");
  const confirmed = preparing + n("confirmed");
  const placed = confirmed + n("pending") + n("cancelled");
  return [
    { label: "Placed", value: placed },
    { label: "Confirmed", value: confirmed },
    { label: "Preparing", value: preparing },
    { label: "Out for delivery", value: out },
    { label: "Delivered", value: delivered },
  ];
}

export async function render(main, query) {
  const today = new Date();
  const before = new Date(today.getTime() - 13 * 86400000);
  const from = /^\d{4}-\d{2}-\d{2}$/.test(query.get("from") || "") ? query.get("from") : day(before);
  const to = /^\d{4}-\d{2}-\d{2}$/.test(query.get("to") || "") ? query.get("to") : day(today);

  const range = h(
    "form",
    { class: "inline", "aria-label": "Sales dates" },
    inlineField("From (UTC day)", { type: "date", name: "from", value: from, required: true }),
    inlineField("To (UTC day)", { type: "date", name: "to", value: to, required: true }),
    h("button", { type: "submit" }, "Show sales"),
  );
  range.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/analytics${qs({ from: range.elements.from.value, to: range.elements.to.value })}`;
  });
  const figures = h("div", {}, h("p", {}, "Loading…"));
  const sales = h("div", {});
  const top = h("div", {});
  const flow = h("div", {});
  page(main, "Analytics", h("h2", {}, "Today"), figures, h("h2", {}, "Order funnel"), flow, h("h2", {}, "Sales by day"), range, sales, h("h2", {}, "Top products"), top);

  const [dash, sold, best, users] = await Promise.allSettled([
    shop("/api/v1/analytics/dashboard"),
    shop(`/api/v1/analytics/sales${qs({ from, to })}`),
    shop("/api/v1/analytics/products/top?limit=10"),
    shop("/api/v1/analytics/users"),
  ]);

  if (dash.status === "fulfilled") {
    const d = dash.value;
    const u = users.status === "fulfilled" ? users.value : null;
    const fig = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));
    figures.replaceChildren(
      h(
        "dl",
        { class: "figures" },
        fig("Orders today", String(d.orders_today)),
        fig("Revenue today", money(d.revenue_today)),
        fig("Average order", money(d.avg_order_value)),
        fig("Active deliveries", String(d.active_deliveries)),
        fig("New customers today", String(d.new_users_today)),
        u ? fig("Customers in all", String(u.total)) : null,
        u ? fig("Repeat customers", String(u.repeat_customers)) : null,
      ),
    );
    flow.replaceChildren(
      h("p", { class: "muted" }, "Today's orders by the furthest stage they reached (a later stage counts in every earlier one; a cancelled order counts as placed only)."),
      barChart({ caption: "Today's order funnel", data: funnel(d.orders_by_status || {}), labelHead: "Stage", valueHead: "Orders" }),
    );
  } else {
    figures.replaceChildren(problem(dash.reason, SERVICE));
    flow.replaceChildren();
  }

  if (sold.status === "fulfilled") {
    const sv = sold.value;
    const points = (sv.points || []).map((p) => ({ label: p.date.slice(5), value: p.revenue, orders: p.orders }));
    sales.replaceChildren(
      h("p", {}, `${sv.from} to ${sv.to}: ${sv.total_orders} counted orders, ${money(sv.total_revenue)}.`),
      columnChart({ caption: `Revenue by day, ${sv.from} to ${sv.to}`, data: points, fmt: (v) => money(v).replace(/\.00$/, ""), labelHead: "Day", valueHead: "Revenue", minMax: 100000 }),
      columnChart({ caption: `Orders by day, ${sv.from} to ${sv.to}`, data: points.map((p) => ({ label: p.label, value: p.orders })), fmt: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)), labelHead: "Day", valueHead: "Orders", minMax: 2 }),
    );
  } else {
    sales.replaceChildren(problem(sold.reason, SERVICE));
  }

  if (best.status === "fulfilled") {
    const items = best.value.items || [];
    top.replaceChildren(
      items.length
        ? barChart({ caption: "Top products by units sold (counted orders, all time)", data: items.map((i) => ({ label: i.name, value: i.units })), labelHead: "Product", valueHead: "Units", alt: true })
        : h("p", {}, "No counted orders yet."),
    );
  } else {
    top.replaceChildren(problem(best.reason, SERVICE));
  }
}
