// The model page's quality sections, from the monitoring jobs' signals: drift, accuracy, fairness, importance, LLM.

import { apiUrl } from "../api.js";
import { h, fmt, card, badge, table, row, empty, errorBox } from "../dom.js";
import { yFormats } from "../charts.js";
import { signalChart, groupBy, seriesLabel, distinctLabels, topSeries } from "../signal_charts.js";

const TOP_FEATURES = 8;

export function signalSections(model, byKind, xRange) {
  return [
    driftSection(model, byKind.drift, xRange),
    accuracySection(byKind.performance, byKind.estimated, xRange),
    genericSection("Fairness per group", "fairness", byKind.fairness, xRange,
      "No fairness signal in this time range. Fairness per group comes from a monitoring job: if none checks this model, add a monitors: entry with checks: [fairness] and its sensitive feature."),
    genericSection("Feature-importance shift", "importance", byKind.importance, xRange,
      "No feature-importance signal in this time range. If no monitoring job checks this model's importances, add a monitors: entry with checks: [importance]."),
    genericSection("LLM quality", "llm", byKind.llm, xRange,
      "No LLM quality signal in this time range. If no monitoring job checks this model's answers, add a monitors: entry with checks: [llm_quality] (OpenAI-protocol models)."),
  ];
}

function driftSection(model, drift, xRange) {
  if (drift.error) return card("Drift", errorBox(drift.error), { testid: "drift" });
  const series = drift.series || [];
  if (!series.length) {
    return card("Drift", empty("No drift signal in this time range. If no monitoring job checks drift for this model, add a monitors: entry with checks: [data_drift]; a job's first window is checked once its reference range is complete.", "drift-empty"), { testid: "drift" });
  }
  const byVersion = groupBy(series, (s) => s.version);
  return h(
    "div",
    { class: "section", testid: "drift" },
    h("h2", {}, "Drift"),
    [...byVersion].map(([version, list]) => driftOfVersion(model, version, list, xRange)),
  );
}

function driftOfVersion(model, version, list, xRange) {
  const scores = list.filter((s) => s.name === "data_drift_score");
  const share = list.filter((s) => s.name === "data_drift_share");
  const others = list.filter((s) => !["data_drift_score", "data_drift_share", "dataset_drift"].includes(s.name));
  const shown = topSeries(scores, TOP_FEATURES);
  const featureNote = scores.length > TOP_FEATURES
    ? `the ${TOP_FEATURES} of ${scores.length} features with the most breached windows; every feature is in each window's report`
    : `${scores.length} feature(s)`;
  const charts = [
    share.length
      ? card(null, signalChart({ testid: `chart-drift-share-${version}`, title: "Share of drifted features", note: "dataset drift when above the threshold", series: share, label: (s) => `${s.version} share`, yFmt: yFormats.pct, xRange, yMin: 0 }))
      : null,
    scores.length
      ? card(null, signalChart({ testid: `chart-drift-features-${version}`, title: "Drift score per feature", note: featureNote, series: shown, label: (s) => (s.labels && s.labels.feature) || seriesLabel(s), xRange }))
      : null,
    ...[...groupBy(others, (s) => s.name)].map(([name, group]) =>
      card(null, signalChart({ testid: `chart-drift-${name}-${version}`, title: name.replaceAll("_", " "), series: group, xRange }))),
  ];
  return card(`Version ${version}`, [h("div", { class: "grid2" }, charts), windowsTable(model, version, list)], { testid: `drift-${version}` });
}

/** One row per checked window: drifted share, dataset verdict, the drifted features, a link to its HTML report. */
function windowsTable(model, version, list) {
  const reference = list.find((s) => s.name === "data_drift_share") || list.find((s) => s.name === "dataset_drift") || list[0];
  const dataset = list.find((s) => s.name === "dataset_drift");
  const scores = list.filter((s) => s.name === "data_drift_score");
  const windows = reference.t.map((end, i) => ({ end, start: reference.window_start ? reference.window_start[i] : null, i }));
  if (!windows.length) return null;
  const rows = windows.slice().reverse().map(({ end, start, i }) => {
    const drifted = scores.filter((s) => s.t.some((t, j) => t === end && s.breached && s.breached[j])).map((s) => s.labels.feature || seriesLabel(s));
    const j = dataset ? dataset.t.indexOf(end) : -1;
    const verdict = j >= 0 ? (dataset.breached[j] ? badge("drift", "bad") : badge("no drift", "ok")) : "—";
    const monitor = reference.labels && reference.labels.monitor;
    const href = apiUrl(`models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/drift-report`, {
      since: start ?? undefined,
      until: end,
      monitor,
    });
    return row(
      [
        `${fmt.time(start)} → ${fmt.time(end)}`,
        reference.name === "data_drift_share" ? fmt.pct(reference.value[i], 1) : "—",
        verdict,
        drifted.length ? h("span", { class: "small" }, drifted.slice(0, 6).join(", ") + (drifted.length > 6 ? ` +${drifted.length - 6}` : "")) : h("span", { class: "muted" }, "none"),
        h("a", { href, target: "_blank", rel: "noopener", testid: "drift-report-link" }, "report"),
      ],
      { testid: `drift-window-${version}` },
    );
  });
  return [h("h3", {}, "Checked windows"), table(["window", "drifted share", "dataset", "drifted features", "HTML report"], rows, { testid: `drift-windows-${version}`, numeric: [1] })];
}

function accuracySection(performance, estimated, xRange) {
  const errors = [performance, estimated].filter((x) => x.error).map((x) => errorBox(x.error));
  if (errors.length) return card("Realised and estimated performance", errors, { testid: "performance" });
  const realised = (performance.series || []).map((s) => ({ ...s, metric: s.name, estimated: false }));
  const guessed = (estimated.series || []).map((s) => ({ ...s, metric: s.name.replace(/^estimated_/, ""), estimated: true }));
  const all = [...realised, ...guessed];
  if (!all.length) {
    return card("Realised and estimated performance", empty("No realised or estimated performance in this time range. If no monitoring job measures it, add a monitors: entry with checks: [performance] (needs late labels) or [estimated_performance] (CBPE, no labels needed).", "performance-empty"), { testid: "performance" });
  }
  const charts = [...groupBy(all, (s) => s.metric)].map(([metric, group]) =>
    card(null, signalChart({
      testid: `chart-performance-${metric}`,
      title: metric.replaceAll("_", " "),
      note: "solid: realised from labels; dashed: estimated (CBPE)",
      series: group,
      label: ((named) => (s) => `${named(s)}${s.estimated ? " estimated" : ""}`)(distinctLabels(group)),
      dash: (s) => (s.estimated ? [6, 3] : undefined),
      xRange,
    })));
  return h("div", { class: "section", testid: "performance" }, h("h2", {}, "Realised and estimated performance"), h("div", { class: "grid2" }, charts));
}

function genericSection(title, kind, answer, xRange, emptyMessage) {
  if (answer.error) return card(title, errorBox(answer.error), { testid: kind });
  const series = answer.series || [];
  if (!series.length) return card(title, empty(emptyMessage, `${kind}-empty`), { testid: kind });
  const charts = [...groupBy(series, (s) => s.name)].map(([name, group]) =>
    card(null, signalChart({ testid: `chart-${kind}-${name}`, title: name.replaceAll("_", " "), series: group, xRange })));
  return h("div", { class: "section", testid: kind }, h("h2", {}, title), h("div", { class: "grid2" }, charts));
}
