// Charts of the monitoring jobs' signals (one point per checked window): threshold lines, breached windows marked.

import { chart, align, PALETTE, RED, yFormats } from "./charts.js";

const isNum = (x) => typeof x === "number" && Number.isFinite(x);
const QUIET_LABELS = new Set(["monitor", "method", "kind"]);

export function groupBy(list, key) {
  const out = new Map();
  for (const item of list) {
    const k = key(item);
    if (!out.has(k)) out.set(k, []);
    out.get(k).push(item);
  }
  return out;
}

/** "v2 feature=mean_radius": the version and the labels that tell series of one signal apart. */
export function seriesLabel(s, { version = true, omit = [] } = {}) {
  const skip = new Set([...QUIET_LABELS, ...omit]);
  const labels = Object.entries(s.labels || {}).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${v}`);
  return [version ? s.version : null, ...labels].filter(Boolean).join(" ") || s.name;
}

/** A legend namer for a group of series: the version and only the labels whose values differ between them. */
export function distinctLabels(group) {
  const keys = new Set(group.flatMap((s) => Object.keys(s.labels || {})));
  const varying = [...keys].filter(
    (k) => group.every((s) => s.labels && k in s.labels) && new Set(group.map((s) => s.labels[k])).size > 1,
  );
  return (s) => [s.version, ...varying.map((k) => (k === "feature" ? s.labels[k] : `${k}=${s.labels[k]}`))].join(" ");
}

/** The `limit` series worth seeing first: most breached windows, then the largest values. */
export function topSeries(series, limit) {
  return series
    .map((s) => ({ s, breached: (s.breached || []).filter(Boolean).length, max: Math.max(...s.value.filter(Number.isFinite)) }))
    .sort((a, b) => b.breached - a.breached || b.max - a.max)
    .slice(0, limit)
    .map((x) => x.s);
}

/** Indices of a series' breached windows, for uPlot's points.filter. */
function breachedIndices(t, s) {
  const at = new Set(s.t.filter((_, i) => s.breached && s.breached[i]));
  return t.map((x, i) => (at.has(x) ? i : -1)).filter((i) => i >= 0);
}

/**
 * One chart of several signal series: a line each, breached windows marked with a red ring, the threshold dashed.
 * `label(s)` names a series in the legend; `dash(s)` may dash some (estimated vs realised).
 */
export function signalChart({ testid, title, note, series, label, dash, yFmt, xRange, emptyMessage, yMin, yMax, limit = 8 }) {
  label = label || distinctLabels(series);
  if (series.length > limit) {
    note = [note, `the ${limit} of ${series.length} series with the most breached windows, then the highest`].filter(Boolean).join(" · ");
    series = topSeries(series, limit);
  }
  const { t, columns } = align(series.map((s) => ({ t: s.t, value: s.value })));
  const lines = series.map((s, i) => {
    const marks = breachedIndices(t, s);
    return {
      label: label(s),
      values: columns[i],
      color: PALETTE[i % PALETTE.length],
      dash: dash ? dash(s) : undefined,
      breached: marks,
      spanGaps: true,
      keep: true, // a 0 drift score or rate is a finding
    };
  });
  const thresholdSource = series.find((s) => (s.threshold || []).some(isNum));
  if (thresholdSource) {
    const values = fillForward(thresholdSource.t, thresholdSource.threshold, t);
    lines.push({ label: "threshold", values, color: RED, kind: "threshold" });
  }
  const breachedCount = lines.reduce((n, l) => n + (l.breached ? l.breached.length : 0), 0);
  const spec = {
    testid,
    title,
    note: [note, breachedCount ? `${breachedCount} breached window(s) ringed in red` : null].filter(Boolean).join(" · "),
    t,
    series: lines,
    yFmt: yFmt || yFormats.plain,
    xRange,
    emptyMessage,
    yMin,
    yMax,
  };
  const el = chart(spec);
  el.dataset.breached = String(breachedCount);
  return el;
}

/** The threshold on every time of `t` (a threshold holds from the window it was given for). */
function fillForward(times, values, t) {
  const byTime = new Map(times.map((x, i) => [x, values[i]]));
  let last = null;
  return t.map((x) => {
    const v = byTime.get(x);
    if (isNum(v)) last = v;
    return last;
  });
}
