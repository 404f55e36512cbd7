// SLOs (#/slos, #/slos/{name}): the summary table; one SLO's error-budget burn-down, SLI, burn rates and alerts.

import { api } from "../api.js";
import { h, fmt, card, badge, table, row, empty, tone } from "../dom.js";
import { chart, PALETTE, RED, yFormats } from "../charts.js";
import { rangeParams, rangePicker, rangeSuffix, rangeStep } from "../range.js";
import { sloTable, burnRates, alerts } from "../slo_table.js";

export async function slosPage(route) {
  const data = await api("slos");
  const node = h(
    "div",
    { testid: "page-slos" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "SLOs"), h("div", { class: "sub" }, `as of ${fmt.time(data.now)}`))),
    card(null, sloTable(data.slos, rangeSuffix(route.query))),
  );
  return { node, refreshMs: 10000 };
}

export async function sloPage(route) {
  const name = decodeURIComponent(route.parts[1]);
  const data = await api(`slos/${encodeURIComponent(name)}`, { ...rangeParams(route.query), step: rangeStep(route.query) });
  const s = data.slo;
  const t = data.t || [];
  const xRange = t.length ? [t[0], t[t.length - 1]] : null;
  const budget = chart({
    testid: "chart-burn-down",
    title: "Error budget remaining (burn-down)",
    note: "1.0 untouched, 0 spent, below 0 overspent",
    t,
    series: [
      { label: "budget remaining", values: data.budget_remaining || [], color: PALETTE[0], width: 2, keep: true },
      { label: "spent", values: t.map(() => 0), color: RED, kind: "threshold" },
    ],
    yFmt: yFormats.pct,
    yMin: 0,
    yMax: 1,
    xRange,
    emptyMessage: "No SLI events in this time range: the burn-down starts with the first request or label the SLO counts.",
  });
  const sli = chart({
    testid: "chart-sli",
    title: "SLI",
    note: `objective ${fmt.pct(s.objective, 2)}`,
    t,
    series: [
      { label: "SLI", values: data.sli || [], color: PALETTE[2], width: 2, spanGaps: true, keep: true },
      { label: "objective", values: t.map(() => s.objective), color: RED, kind: "threshold" },
    ],
    yFmt: yFormats.pct,
    xRange,
    emptyMessage: "No SLI events in this time range.",
  });
  const rates = Object.entries(data.burn_rate || {}).map(([w, values], i) => ({ label: `${w} window`, values, color: PALETTE[(i + 3) % PALETTE.length], keep: true }));
  const burn = chart({
    testid: "chart-burn-rate",
    title: "Burn rate",
    note: "1 spends exactly the budget over the period",
    t,
    series: [...rates, { label: "1×", values: t.map(() => 1), color: "#9aa5b1", kind: "threshold" }],
    yFmt: yFormats.plain,
    yMin: 0,
    xRange,
    emptyMessage: "No burn-rate windows in this time range.",
  });
  const node = h(
    "div",
    { testid: "page-slo", "data-slo": name },
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, name), h("div", { class: "sub" }, `${s.model || ""}${s.version ? ` / ${s.version}` : ""} · ${s.kind || ""} · objective ${fmt.pct(s.objective, 2)} over ${fmt.duration(s.period_s)}`)),
      rangePicker(route.path, route.query),
    ),
    h(
      "div",
      { class: "cards" },
      stat("SLI", fmt.pct(s.sli, 3)),
      stat("budget remaining", fmt.pct(s.budget_remaining, 1), s.budget_remaining !== null && s.budget_remaining < 0.2 ? "var(--bad)" : null, "stat-budget"),
      stat("exhausted in", s.time_to_exhaustion_s === null || s.time_to_exhaustion_s === undefined ? "—" : fmt.duration(s.time_to_exhaustion_s)),
      h("div", { class: "card stat" }, h("div", { class: "value small" }, alerts(s)), h("div", { class: "label" }, "alerts")),
    ),
    card("Burn rates now", burnRates(s.burn_rates)),
    h("div", { class: "grid2" }, card(null, budget), card(null, sli), card(null, burn)),
    card("Alert events", eventsTable(data.events || []), { testid: "slo-events" }),
  );
  return { node, refreshMs: 15000 };
}

function stat(label, value, colour, testid) {
  return h("div", { class: "card stat", testid }, h("div", { class: "value", style: colour ? { color: colour } : null }, value), h("div", { class: "label" }, label));
}

function eventsTable(events) {
  if (!events.length) return empty("No alert fired or resolved in this time range.", "slo-events-empty");
  return table(
    ["when", "severity", "state"],
    events.slice().reverse().map((e) => row([fmt.time(e.t), badge(e.severity, tone.severity(e.severity)), badge(e.state, tone.alert(e.state))], { testid: "slo-event" })),
  );
}
