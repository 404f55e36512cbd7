// Time charts over the vendored uPlot (global `uPlot`, static/vendor/). A chart is declared while a page is built
// (detached from the document) and drawn by mountCharts once it is attached, when its width is known.

import { h, empty } from "./dom.js";

export const PALETTE = ["#2f6fde", "#e0702f", "#1f8a4c", "#8e44ad", "#c62f2f", "#0e8a8a", "#b58900", "#5d6d7e"];
export const RED = "#c62f2f";
const pending = new WeakMap();

const isNum = (x) => typeof x === "number" && Number.isFinite(x);

/**
 * chart({testid, title, note, t, series: [{label, values, color, dash, kind: "line"|"marks"|"threshold"}],
 *        yFmt, yMin, yMax, xRange: [since, until], height, emptyMessage}) -> element
 * With no point to draw, the element is the empty state (emptyMessage says what is missing).
 */
export function chart(spec) {
  // A series with nothing to show (no value, or only zeros) would only crowd the legend.
  spec = { ...spec, series: spec.series.filter((s) => s.kind === "threshold" || s.keep || s.values.some((v) => isNum(v) && v !== 0)) };
  if (!spec.series.some((s) => s.kind !== "threshold")) spec.series = [];
  const points = spec.series
    .filter((s) => s.kind !== "threshold")
    .reduce((n, s) => n + s.values.filter(isNum).length, 0);
  const head = [
    spec.title ? h("div", { class: "chart-title" }, spec.title) : null,
    spec.note ? h("div", { class: "chart-note" }, spec.note) : null,
  ];
  if (!points) {
    return h("div", { testid: spec.testid, "data-points": "0" }, head, empty(spec.emptyMessage || "no data in this time range"));
  }
  const plot = h("div", { class: "chart-plot" });
  pending.set(plot, spec);
  return h("div", { class: "chart", testid: spec.testid, "data-points": String(points) }, head, plot);
}

/** Draw every declared chart under root (now in the document). */
export function mountCharts(root) {
  for (const plot of root.querySelectorAll(".chart-plot")) {
    const spec = pending.get(plot);
    if (!spec || plot.uplot) continue;
    const u = new uPlot(options(spec, Math.max(plot.clientWidth, 300)), data(spec), plot);
    plot.uplot = u;
    u.kinds = spec.series.map((s) => s.kind || "line"); // which series are data (tests and tools read this)
    plot.parentElement.uplot = u;
    const observer = new ResizeObserver(() => {
      const width = Math.max(plot.clientWidth, 300);
      if (Math.abs(width - u.width) > 2) u.setSize({ width, height: u.height });
    });
    observer.observe(plot);
    plot.observer = observer;
  }
}

/** Free the charts under root (the page is being replaced). */
export function destroyCharts(root) {
  for (const plot of root.querySelectorAll(".chart-plot")) {
    if (plot.observer) plot.observer.disconnect();
    if (plot.uplot) plot.uplot.destroy();
    plot.uplot = null;
  }
}

function data(spec) {
  return [spec.t, ...spec.series.map((s) => s.values.map((v) => (isNum(v) ? v : null)))];
}

function options(spec, width) {
  const yFmt = spec.yFmt || ((v) => String(+v.toPrecision(4)));
  const series = [
    { value: (u, v) => (v === null ? "—" : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ")) },
    ...spec.series.map((s, i) => seriesOptions(s, i, yFmt)),
  ];
  const y = {};
  if (isNum(spec.yMin) || isNum(spec.yMax)) {
    y.range = (u, min, max) => [isNum(spec.yMin) ? Math.min(spec.yMin, min) : min, isNum(spec.yMax) ? Math.max(spec.yMax, max) : max];
  }
  const x = { time: true };
  if (spec.xRange && isNum(spec.xRange[0]) && isNum(spec.xRange[1])) x.range = () => spec.xRange;
  return {
    width,
    height: spec.height || 220,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x, y },
    series,
    axes: [
      { stroke: "#616e7c", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e1e5ea" } },
      {
        stroke: "#616e7c",
        grid: { stroke: "#eef0f3" },
        ticks: { stroke: "#e1e5ea" },
        size: 64,
        values: (u, splits) => splits.map((v) => (v === null ? "" : yFmt(v))),
      },
    ],
    cursor: { points: { size: 6 } },
    legend: { live: true },
  };
}

function seriesOptions(s, i, yFmt) {
  const colour = s.color || PALETTE[i % PALETTE.length];
  const base = { label: s.label, stroke: colour, width: s.width || 1.5, value: (u, v) => (v === null ? "—" : yFmt(v)) };
  if (s.dash) base.dash = s.dash;
  if (s.kind === "threshold") return { ...base, dash: [6, 4], width: 1, points: { show: false } };
  if (s.kind === "marks") {
    return { ...base, paths: () => null, points: { show: true, size: 10, width: 2, stroke: s.color || RED, fill: "#fff" } };
  }
  // a value with no neighbour (sparse buckets) has no line to sit on: draw the series' points then
  const points = s.points === undefined ? (isolated(s.values) ? { show: true, size: 4 } : { size: 5 }) : { show: s.points, size: 5 };
  if (s.breached && s.breached.length) {
    // only the breached windows get a point: a red ring on the series' line
    Object.assign(points, { size: 9, width: 2, stroke: RED, fill: "#fff", filter: () => s.breached });
  }
  return { ...base, spanGaps: !!s.spanGaps, points };
}

function isolated(values) {
  return values.some((v, i) => isNum(v) && !isNum(values[i - 1]) && !isNum(values[i + 1]));
}

/** Align several {t, value} series on the union of their times (nulls where a series has no point). */
export function align(list) {
  const times = [...new Set(list.flatMap((s) => s.t))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = list.map((s) => {
    const out = new Array(times.length).fill(null);
    s.t.forEach((t, i) => (out[index.get(t)] = s.value[i]));
    return out;
  });
  return { t: times, columns };
}

export const yFormats = {
  count: (v) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(+v.toFixed(2))),
  pct: (v) => `${+(v * 100).toFixed(1)}%`,
  latency: (v) => (v < 1 ? `${+(v * 1000).toFixed(1)} ms` : `${+v.toFixed(2)} s`),
  usd: (v) => `$${+v.toPrecision(3)}`,
  plain: (v) => String(+v.toPrecision(3)),
};
