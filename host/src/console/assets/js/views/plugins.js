// Plugins: every plugin with its live version, state, canary weight, and its request
// rate, error rate and p99 from the host's own metrics (GET /admin/plugins, polled);
// install a component or bundle, and per plugin enable, canary, promote, disable, roll
// back and delete versions. Needs the operator token only, so it works with every
// plugin disabled.

import { operator } from "../api.js";
import { alertError, badge, busy, clearAlert, h, inlineField, page, problem, say, scroller, table, when } from "../ui.js";

const POLL_MS = 3000;

/** Requests/s and the 5xx share since the previous poll, from cumulative counters. */
function rates(prev, stats, now) {
  if (!prev || stats.requests < prev.requests || now <= prev.t) return null;
  const dReq = stats.requests - prev.requests;
  const dErr = Math.max(0, stats.errors - prev.errors);
  return { perSec: dReq / ((now - prev.t) / 1000), errorPct: dReq > 0 ? (100 * dErr) / dReq : null };
}

function fmtRate(r) {
  if (!r) return "measuring…";
  return r.perSec.toFixed(r.perSec < 10 ? 2 : 1);
}

function fmtErr(r) {
  if (!r) return "measuring…";
  return r.errorPct === null ? "— (no requests)" : `${r.errorPct.toFixed(1)} %`;
}

function canaryText(p) {
  if (!p.canary) return "none";
  return `${p.canary.version} at ${p.canary.percent} % (${p.canary.requests} requests, ${p.canary.errors} 5xx)`;
}

/** The grants a refused enable asks for (its message names `--grant a,b`). */
function grantsFrom(message) {
  const m = /--grant (\S+?)`/.exec(message || "") || /--grant (\S+)/.exec(message || "");
  return m ? m[1].replace(/[`.;]+$/, "").split(",").filter(Boolean) : [];
}

export async function render(main) {
  const rows = new Map(); // name → {tr, cells}
  const prev = new Map(); // name → {t, requests, errors}
  let selected = null;

  const tbody = h("tbody");
  const updated = h("span", {}, "");
  const tableEl = scroller(
    "Plugins table",
    h(
      "table",
      {},
      h("caption", {}, "Every plugin, refreshed every 3 seconds. ", updated),
      h(
        "thead",
        {},
        h("tr", {}, ["Plugin", "State", "Live version", "Canary", "Requests/s", "Errors (5xx)", "p99", "Actions"].map((t, i) => h("th", { scope: "col", class: i >= 4 && i <= 6 ? "num" : null }, t))),
      ),
      tbody,
    ),
  );
  const note = h(
    "p",
    { class: "muted" },
    "Requests/s and errors are computed here from the host's cumulative counters (the stats of GET /admin/plugins) between two polls: new requests ÷ seconds elapsed, and new 5xx answers ÷ new requests. p99 is the host's own, over the plugin's last 2048 requests. The counters are this host process's (each replica counts its own, from its start).",
  );

  const detail = h("section", { class: "panel", "aria-labelledby": "detail-h", hidden: true });
  const install = installForm(async (result) => {
    await refresh();
    select(result.name);
  });
  page(main, "Plugins", note, tableEl, install, detail);

  function row(p) {
    const cells = {
      state: h("td", {}),
      live: h("td", {}),
      canary: h("td", {}),
      rate: h("td", { class: "num" }),
      err: h("td", { class: "num" }),
      p99: h("td", { class: "num" }),
    };
    const manage = h("button", { type: "button", class: "secondary", onclick: () => select(p.name) }, "Manage", h("span", { class: "sr-only" }, ` ${p.name}`));
    const tr = h("tr", {}, h("th", { scope: "row" }, p.name), cells.state, cells.live, cells.canary, cells.rate, cells.err, cells.p99, h("td", { class: "actions-cell" }, manage));
    return { tr, cells };
  }

  function fill(items) {
    const now = performance.now();
    const names = items.map((p) => p.name).join("\n");
    if (names !== [...rows.keys()].join("\n")) {
      rows.clear();
      for (const p of items) rows.set(p.name, row(p));
      tbody.replaceChildren(...[...rows.values()].map((r) => r.tr));
    }
    for (const p of items) {
      const { cells } = rows.get(p.name);
      const stats = p.stats || { requests: 0, errors: 0, p99_ms: 0 };
      const r = rates(prev.get(p.name), stats, now);
      prev.set(p.name, { t: now, requests: stats.requests, errors: stats.errors });
      cells.state.replaceChildren(badge(p.state));
      cells.live.textContent = p.live_version || "—";
      cells.canary.textContent = canaryText(p);
      cells.rate.textContent = fmtRate(r);
      cells.err.textContent = fmtErr(r);
      cells.p99.textContent = stats.requests ? `${stats.p99_ms} ms` : "—";
    }
    updated.textContent = `Last refreshed ${new Date().toLocaleTimeString()}.`;
  }

  async function refresh() {
    const data = await operator("/admin/plugins");
    fill(data.items || []);
    return data.items || [];
  }

  async function select(name) {
    selected = name;
    clearAlert();
    await showDetail(name, true);
  }

  async function showDetail(name, focus) {
    let p;
    try {
      p = await operator(`/admin/plugins/${encodeURIComponent(name)}`);
    } catch (e) {
      detail.hidden = false;
      detail.replaceChildren(h("h2", { id: "detail-h", tabindex: "-1" }, name), problem(e, "operator API"));
      return;
    }
    detail.hidden = false;
    detail.replaceChildren(...detailView(p).filter(Boolean));
    if (focus) detail.querySelector("h2").focus();
  }

  /** Runs an operator action, then refreshes the table and the panel. */
  async function act(button, label, fn) {
    const ok = await busy(
      button,
      async () => {
        await fn();
        return true;
      },
      "operator API",
    );
    if (ok) {
      say(label);
      await refresh().catch((e) => alertError(e, "operator API"));
      await showDetail(selected, true);
    }
  }

  function enableVersion(name, version, extra, button, approvals) {
    return busy(
      button,
      async () => {
        try {
          await operator(`/admin/plugins/${encodeURIComponent(name)}/enable`, { method: "POST", json: { version, ...extra } });
        } catch (e) {
          const grants = e.status === 409 ? grantsFrom(e.message) : [];
          if (grants.length && approvals) approvals(grants, version, extra);
          throw e;
        }
        say(extra.canary_percent ? `${name} ${version} is a canary at ${extra.canary_percent} %.` : `${name} ${version} is live.`);
        await refresh();
        await showDetail(name, true);
      },
      "operator API",
    );
  }

  function detailView(p) {
    const name = p.name;
    const path = `/admin/plugins/${encodeURIComponent(name)}`;
    const approvalBox = h("div", {});
    const approvals = (grants, version, extra) => {
      const boxes = grants.map((g, i) =>
        h("label", { class: "check", for: `grant-${i}` }, h("input", { type: "checkbox", id: `grant-${i}`, value: g }), g),
      );
      const approve = h("button", { type: "button" }, `Approve and enable ${version}`);
      approve.addEventListener("click", () => {
        const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
        enableVersion(name, version, { ...extra, grants: chosen }, approve, approvals);
      });
      approvalBox.replaceChildren(
        h("fieldset", {}, h("legend", {}, `${name} ${version} asks for grants not approved yet`), h("p", {}, "Tick the grants you approve; the host keeps the approval."), ...boxes, approve),
      );
    };
    const actions = h("div", { class: "actions" });
    if (p.state === "live") {
      actions.append(h("button", { type: "button", class: "danger", onclick: (ev) => act(ev.currentTarget, `${name} is disabled.`, () => operator(`${path}/disable`, { method: "POST" })) }, `Disable ${name}`));
    } else if (p.live_version) {
      actions.append(h("button", { type: "button", onclick: (ev) => enableVersion(name, p.live_version, {}, ev.currentTarget, approvals) }, `Enable ${name}`));
    }
    if (p.canary) {
      actions.append(h("button", { type: "button", onclick: (ev) => act(ev.currentTarget, `${name} ${p.canary.version} is promoted.`, () => operator(`${path}/promote`, { method: "POST" })) }, `Promote canary ${p.canary.version}`));
    }
    actions.append(h("button", { type: "button", class: "secondary", onclick: (ev) => act(ev.currentTarget, `${name} is rolled back.`, () => operator(`${path}/rollback`, { method: "POST" })) }, `Roll back ${name}`));

    const others = (p.versions || []).filter((v) => v.version !== p.live_version);
    let canaryForm = null;
    if (p.state === "live" && others.length) {
      canaryForm = h(
        "form",
        { class: "inline", "aria-label": `Canary for ${name}` },
        inlineField("Canary version", { name: "version" }, "select", others.map((v) => h("option", { value: v.version }, v.version))),
        inlineField("Share of requests (%)", { name: "percent", type: "number", min: 1, max: 99, value: 10, required: true }),
        h("button", { type: "submit" }, "Start canary"),
      );
      canaryForm.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const f = canaryForm.elements;
        const pct = Number(f.percent.value);
        if (!Number.isInteger(pct) || pct < 1 || pct > 99) {
          alertError(new Error("The canary share must be a whole number from 1 to 99."));
          return;
        }
        enableVersion(name, f.version.value, { canary_percent: pct }, canaryForm.querySelector("button"), approvals);
      });
    }

    const versionRows = (p.versions || []).map((v) => {
      const live = v.version === p.live_version;
      const cell = h("div", { class: "actions" });
      if (!live || p.state !== "live") {
        cell.append(h("button", { type: "button", class: "secondary", onclick: (ev) => enableVersion(name, v.version, {}, ev.currentTarget, approvals) }, `Enable ${v.version}`));
      }
      if (!live) {
        cell.append(
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: (ev) => {
                if (!confirm(`Delete ${name} ${v.version}? Its component is removed from the registry.`)) return;
                act(ev.currentTarget, `${name} ${v.version} is deleted.`, () => operator(`${path}/versions/${encodeURIComponent(v.version)}`, { method: "DELETE" }));
              },
            },
            `Delete ${v.version}`,
          ),
        );
      }
      return [live ? `${v.version} (live)` : v.version, h("code", {}, (v.sha256 || "").slice(0, 12)), `${Math.round((v.size || 0) / 1024)} KiB`, when(v.installed_at), v.installed_by || "—", cell];
    });

    const history = (p.history || []).slice(0, 15).map((e) => [when(e.at), e.action, e.version || "—", e.actor || "—", e.detail || ""]);
    const stats = p.stats || {};
    return [
      h("h2", { id: "detail-h", tabindex: "-1" }, `Plugin ${name}`),
      h(
        "p",
        {},
        badge(p.state),
        ` Live version ${p.live_version || "none"}; canary: ${canaryText(p)}. Since the host started: ${stats.requests || 0} requests, ${stats.errors || 0} 5xx, p50 ${stats.p50_ms || 0} ms, p99 ${stats.p99_ms || 0} ms.`,
      ),
      actions,
      approvalBox,
      canaryForm ? h("h3", {}, "Canary") : null,
      canaryForm,
      table(`Versions of ${name}`, ["Version", "SHA-256", "Size", "Installed", "By", "Actions"], versionRows),
      h("h3", {}, "Grants of the loaded version"),
      h("p", {}, (p.grants || []).length ? p.grants.join(", ") : "none"),
      table(`Recent history of ${name}`, ["When", "Action", "Version", "Who", "Detail"], history),
    ];
  }

  try {
    await refresh();
  } catch (e) {
    page(main, "Plugins", problem(e, "operator API"));
    return;
  }
  let polling = false;
  const timer = setInterval(async () => {
    if (polling) return;
    polling = true;
    try {
      await refresh();
    } catch (e) {
      updated.textContent = `Refreshing failed: ${e.message}`;
    } finally {
      polling = false;
    }
  }, POLL_MS);
  return () => clearInterval(timer);
}

/** Install: a component (.wasm, application/wasm) or a bundle (.tar, application/x-tar). */
function installForm(done) {
  const result = h("div", {});
  const form = h(
    "form",
    { class: "inline", "aria-labelledby": "install-h" },
    inlineField("Component (.wasm) or bundle (.tar)", { type: "file", name: "file", accept: ".wasm,.tar,application/wasm,application/x-tar", required: true }),
    h("button", { type: "submit" }, "Install"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) {
      alertError(new Error("Choose a .wasm or .tar file first."));
      return;
    }
    const type = /\.tar$/i.test(file.name) || file.type === "application/x-tar" ? "application/x-tar" : "application/wasm";
    const r = await busy(form.querySelector("button"), () => operator("/admin/plugins", { method: "POST", raw: file, type }), "operator API");
    if (!r) return;
    say(`Installed ${r.name} ${r.version}. It does not serve until it is enabled.`);
    result.replaceChildren(
      h(
        "p",
        {},
        `Installed ${r.name} ${r.version} (sha256 ${String(r.sha256).slice(0, 12)}…). Asks for: ${(r.requested_grants || []).join(", ") || "no grants"}. Not approved yet: ${(r.unapproved_grants || []).join(", ") || "none"}. Enable it from its panel below.`,
      ),
    );
    form.reset();
    await done(r);
  });
  return h("section", { class: "panel", "aria-labelledby": "install-h" }, h("h2", { id: "install-h" }, "Install a version"), form, result);
}
