// Delivery agents: their profiles and status (GET /api/v1/admin/delivery-agents), new
// agents (POST /api/v1/admin/users with role delivery_agent), and the deliveries in
// progress (GET /api/v1/admin/deliveries). Needs an admin sign-in.

import { qs, shop } from "../api.js";
import { badge, busy, field, h, inlineField, page, problem, say, table, when } from "../ui.js";

const AGENT_STATUSES = ["offline", "available", "busy"];

export async function render(main, query) {
  const status = AGENT_STATUSES.includes(query.get("status")) ? query.get("status") : "";
  const filter = h(
    "form",
    { class: "inline", "aria-label": "Filter agents" },
    inlineField("Agent status", { name: "status" }, "select", h("option", { value: "" }, "any"), AGENT_STATUSES.map((s) => h("option", { value: s, selected: s === status }, s))),
    h("button", { type: "submit" }, "Show"),
  );
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/agents${qs({ status: filter.elements.status.value })}`;
  });
  const list = h("div", {}, h("p", {}, "Loading…"));
  const deliveries = h("div", {});
  const create = h(
    "form",
    { class: "stack", "aria-labelledby": "new-h" },
    h("h2", { id: "new-h" }, "Add a delivery agent"),
    ...field("Name", { name: "name", required: true, autocomplete: "off" }),
    ...field("Email", { name: "email", type: "email", required: true, autocomplete: "off" }),
    ...field("Phone (optional, with country code)", { name: "phone", type: "tel", autocomplete: "off" }),
    ...field("Password (8 or more characters)", { name: "password", type: "password", minlength: 8, required: true, autocomplete: "new-password" }),
    h("button", { type: "submit" }, "Add agent"),
  );
  create.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = create.elements;
    const body = { name: f.name.value.trim(), email: f.email.value.trim(), password: f.password.value, role: "delivery_agent" };
    if (f.phone.value.trim()) body.phone = f.phone.value.trim();
    const u = await busy(create.querySelector("button"), () => shop("/api/v1/admin/users", { method: "POST", json: body }), "auth service");
    if (u) {
      say(`${u.name} (${u.email}) can now sign in as a delivery agent.`);
      create.reset();
      // The delivery plugin makes the profile from the user.created event, a moment later.
      for (let i = 0; i < 20 && !(await load()).some((a) => a.user_id === u.id); i++) {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  });
  page(main, "Delivery agents", filter, list, create, h("h2", {}, "Deliveries in progress"), deliveries);
  await load();

  /** Shows the agents and the deliveries; returns the agents shown. */
  async function load() {
    let agents = [];
    try {
      const data = await shop(`/api/v1/admin/delivery-agents${qs({ status, page_size: 100 })}`);
      agents = data.items || [];
      const rows = agents.map((a) => [
        a.name,
        a.phone || "—",
        badge(a.status),
        a.last_location ? `${a.last_location.lat.toFixed(4)}, ${a.last_location.lon.toFixed(4)} at ${when(a.last_location.at)}` : "not known",
        h("code", {}, a.id),
      ]);
      list.replaceChildren(rows.length ? table(`Agents (${data.total})`, ["Name", "Phone", "Status", "Last location", "Profile id"], rows) : h("p", {}, "No agents yet."));
    } catch (e) {
      list.replaceChildren(problem(e, "delivery service"));
    }
    try {
      const parts = await Promise.all(["unassigned", "assigned", "picked_up", "in_transit"].map((s) => shop(`/api/v1/admin/deliveries${qs({ status: s, page_size: 50 })}`)));
      const items = parts.flatMap((p) => p.items || []);
      deliveries.replaceChildren(
        items.length
          ? table("Deliveries not yet delivered", ["Delivery", "Order", "Status", "Agent", "Since"], items.map((d) => [h("code", {}, d.id), h("code", {}, d.order_id), badge(d.status), d.agent_id || "none", when(d.created_at)]))
          : h("p", {}, "No deliveries in progress."),
      );
    } catch (e) {
      deliveries.replaceChildren(problem(e, "delivery service"));
    }
    return agents;
  }
}
