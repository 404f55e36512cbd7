// The SLO summary table (overview and SLO list): budget bar, burn rates, alert states.

import { h, fmt, badge, table, row, bar, tone, empty } from "./dom.js";

export function sloTable(slos, suffix = "") {
  if (!slos.length) {
    return empty(
      "No SLOs are defined: add an slos: entry to aisre.yaml (an objective and an SLI such as availability, latency or correctness).",
      "slos-empty",
    );
  }
  const rows = slos.map((s) =>
    row(
      [
        h("a", { href: `#/slos/${encodeURIComponent(s.name)}${suffix}` }, s.name),
        `${s.model || "—"}${s.version ? ` / ${s.version}` : ""}`,
        s.kind || "—",
        fmt.pct(s.objective, 2),
        fmt.pct(s.sli, 3),
        bar(s.budget_remaining, `budget-${s.name}`),
        burnRates(s.burn_rates),
        alerts(s),
        s.time_to_exhaustion_s === null || s.time_to_exhaustion_s === undefined ? "—" : fmt.duration(s.time_to_exhaustion_s),
      ],
      { testid: `slo-row-${s.name}`, numeric: [3, 4] },
    ),
  );
  return table(
    ["SLO", "model / version", "SLI kind", "objective", "SLI", "budget remaining", "burn rates", "alerts", "exhausted in"],
    rows,
    { testid: "slo-table", numeric: [3, 4] },
  );
}

export function burnRates(rates) {
  const entries = Object.entries(rates || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "badges mono" },
    entries.map(([w, r]) => h("span", { title: `burn rate over ${w}`, class: r > 1 ? "" : "muted" }, `${w} ${fmt.ratio(r)}`)),
  );
}

export function alerts(s) {
  const list = [];
  if (s.problem) list.push(badge(s.problem, "warn"));
  for (const a of s.alerts || []) {
    list.push(badge(`${a.severity} ${a.state}`, a.state === "firing" ? tone.severity(a.severity) || "bad" : tone.alert(a.state)));
  }
  if (s.freeze_promotions) list.push(badge("freezes promotions", "info"));
  if (!list.length) list.push(badge("ok", "ok"));
  return h("span", { class: "badges", testid: `slo-alerts-${s.name}` }, list);
}
