// Dead letters: event deliveries that ran out of attempts (GET /admin/events), with
// what each event says, and a retry (POST /admin/events/{id}/retry). Operator token.

import { operator, qs } from "../api.js";
import { badge, busy, h, inlineField, page, problem, say, when } from "../ui.js";

const STATUSES = ["dead", "pending", "done"];

export async function render(main, query) {
  const status = STATUSES.includes(query.get("status")) ? query.get("status") : "dead";
  const filter = h(
    "form",
    { class: "inline", "aria-label": "Which deliveries" },
    inlineField("Status", { name: "status" }, "select", STATUSES.map((s) => h("option", { value: s, selected: s === status }, s))),
    h("button", { type: "submit" }, "Show"),
  );
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/events${qs({ status: filter.elements.status.value })}`;
  });
  const list = h("div", {}, h("p", {}, "Loading…"));
  page(main, "Dead letters", h("p", { class: "muted" }, "Event deliveries by status (the newest 500). A dead delivery failed every attempt; retrying starts it again from attempt 1."), filter, list);
  await load();

  async function load() {
    let data;
    try {
      data = await operator(`/admin/events${qs({ status })}`);
    } catch (e) {
      list.replaceChildren(problem(e, "operator API"));
      return;
    }
    const items = data.items || [];
    if (!items.length) {
      list.replaceChildren(h("p", {}, `No ${status} deliveries.`));
      return;
    }
    list.replaceChildren(
      h("p", {}, `${items.length} ${status} ${items.length === 1 ? "delivery" : "deliveries"}.`),
      h(
        "ul",
        { class: "plain" },
        items.map((ev) => {
          const retry =
            ev.status === "dead"
              ? h(
                  "button",
                  {
                    type: "button",
                    onclick: async (e) => {
                      const ok = await busy(e.currentTarget, () => operator(`/admin/events/${encodeURIComponent(ev.id)}/retry`, { method: "POST" }).then(() => true), "operator API");
                      if (ok) {
                        say(`Event ${ev.id} will be delivered to ${ev.subscriber} again.`);
                        await load();
                        main.querySelector("h1").focus();
                      }
                    },
                  },
                  "Retry",
                  h("span", { class: "sr-only" }, ` ${ev.topic} to ${ev.subscriber}`),
                )
              : null;
          return h(
            "li",
            { class: "panel" },
            h("h2", {}, `${ev.topic} → ${ev.subscriber}`),
            h(
              "dl",
              { class: "facts" },
              h("dt", {}, "Status"),
              h("dd", {}, badge(ev.status), ev.in_progress ? " (running now)" : ""),
              h("dt", {}, "Event"),
              h("dd", {}, h("code", {}, ev.id), ` from ${ev.source}${ev.source_version ? " " + ev.source_version : ""}, ${when(ev.created_at)}`),
              h("dt", {}, "Attempts"),
              h("dd", {}, String(ev.attempts), ev.status === "pending" ? `; next ${when(ev.next_attempt_at)}` : ""),
              h("dt", {}, "Last error"),
              h("dd", {}, ev.last_error || "none"),
            ),
            h("details", {}, h("summary", {}, "What the event says"), h("pre", {}, JSON.stringify(ev.payload, null, 2))),
            retry,
          );
        }),
      ),
    );
  }
}
