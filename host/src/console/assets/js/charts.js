// Hand-drawn SVG bar charts (no chart library). Each chart is a figure with a caption,
// an SVG described for screen readers (role="img" with a title naming what it shows),
// and the same numbers as a table under "Show the numbers". Colours come from classes.

import { h, s, table } from "./ui.js";

let seq = 0;

/** The drawing's width in SVG units: narrower on a phone, so its text stays legible. */
function width() {
  return document.documentElement.clientWidth < 600 ? 400 : 640;
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`. */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function dataTable(caption, labelHead, valueHead, data, fmt) {
  return h("details", { class: "data" }, h("summary", {}, "Show the numbers"), table(caption, [labelHead, valueHead], data.map((d) => [d.label, fmt(d.value)]), [1]));
}

/**
 * Vertical bars, one per item (days of sales): `{caption, data: [{label, value}],
 * fmt, labelHead, valueHead}`. Labels under every bar when they fit, else every nth.
 */
export function columnChart({ caption, data, fmt = String, labelHead = "Label", valueHead = "Value", minMax = 1 }) {
  const id = `chart${++seq}`;
  const W = width(), H = 240, left = 72, bottom = 36, top = 16, right = 8;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = niceMax(Math.max(minMax, ...data.map((d) => d.value)));
  const band = plotW / Math.max(1, data.length);
  const barW = Math.max(2, band * 0.7);
  const every = Math.ceil(data.length / Math.floor(plotW / 64));
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t` },
    s("title", { id: `${id}-t` }, `${caption}: ${data.map((d) => `${d.label} ${fmt(d.value)}`).join(", ")}`),
    [0, 0.5, 1].map((f) => {
      const y = top + plotH - f * plotH;
      return [
        s("line", { class: "grid-line", x1: left, x2: W - right, y1: y, y2: y }),
        s("text", { class: "chart-label", x: left - 6, y: y + 5, "text-anchor": "end" }, fmt(max * f)),
      ];
    }),
    data.map((d, i) => {
      const bh = max ? (d.value / max) * plotH : 0;
      const x = left + i * band + (band - barW) / 2;
      return [
        s("rect", { class: "bar", x: x.toFixed(1), y: (top + plotH - bh).toFixed(1), width: barW.toFixed(1), height: bh.toFixed(1) }),
        i % every === 0 ? s("text", { class: "chart-label", x: (x + barW / 2).toFixed(1), y: H - bottom + 16, "text-anchor": "middle" }, d.label) : null,
      ];
    }),
    s("line", { class: "axis", x1: left, x2: W - right, y1: top + plotH, y2: top + plotH }),
  );
  return h("figure", { class: "chart" }, h("figcaption", {}, caption), svg, dataTable(caption, labelHead, valueHead, data, fmt));
}

/** Horizontal bars with their label and value beside them (top products, a funnel). */
export function barChart({ caption, data, fmt = String, labelHead = "Label", valueHead = "Value", alt = false }) {
  const id = `chart${++seq}`;
  const W = width(), row = 28, labelW = W < 640 ? 150 : 220, valueW = 90;
  const H = Math.max(row, data.length * row) + 8;
  const plotW = W - labelW - valueW;
  const max = Math.max(0, ...data.map((d) => d.value)) || 1;
  const room = W < 640 ? 18 : 30;
  const clip = (t) => (t.length > room ? t.slice(0, room - 1) + "…" : t);
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t` },
    s("title", { id: `${id}-t` }, `${caption}: ${data.map((d) => `${d.label} ${fmt(d.value)}`).join(", ")}`),
    data.map((d, i) => {
      const y = 4 + i * row;
      const w = (d.value / max) * plotW;
      return [
        s("text", { class: "chart-label", x: labelW - 8, y: y + 18, "text-anchor": "end" }, clip(String(d.label))),
        s("rect", { class: alt ? "bar-alt" : "bar", x: labelW, y: y + 4, width: Math.max(w, d.value > 0 ? 2 : 0).toFixed(1), height: row - 8 }),
        s("text", { class: "chart-value", x: (labelW + w + 6).toFixed(1), y: y + 18 }, fmt(d.value)),
      ];
    }),
    s("line", { class: "axis", x1: labelW, x2: labelW, y1: 0, y2: H }),
  );
  return h("figure", { class: "chart" }, h("figcaption", {}, caption), svg, dataTable(caption, labelHead, valueHead, data, fmt));
}
