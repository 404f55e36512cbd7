// Overview (#/): every model's versions with route weight, breaker and last hour; the SLOs; open incidents.

import { api } from "../api.js";
import { h, fmt, card, badge, table, row, empty, tone } from "../dom.js";
import { sloTable } from "../slo_table.js";

export async function overviewPage() {
  const data = await api("overview");
  const firing = data.slos.filter((s) => (s.alerts || []).some((a) => a.state === "firing")).length;
  const open = (data.incidents && data.incidents.open) || 0;
  const acked = (data.incidents && data.incidents.acknowledged) || 0;
  const node = h(
    "div",
    { testid: "page-overview" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Overview"), h("div", { class: "sub" }, `as of ${fmt.time(data.now)}`))),
    h(
      "div",
      { class: "cards" },
      stat("models", data.models.length, "stat-models"),
      stat("SLOs alerting", firing, "stat-slos-firing", firing ? "var(--bad)" : null),
      h("a", { href: "#/incidents?status=unresolved", class: "card stat", testid: "stat-incidents" },
        h("div", { class: "value", style: { color: open ? "var(--bad)" : "inherit" } }, String(open)),
        h("div", { class: "label" }, `open incidents${acked ? ` (+${acked} acknowledged)` : ""}`)),
    ),
    data.models.length
      ? data.models.map(modelCard)
      : card("Models", empty("No models are configured: add a models: entry to aisre.yaml.", "models-empty")),
    card("SLOs", sloTable(data.slos), { testid: "overview-slos" }),
  );
  return { node, refreshMs: 5000, data };
}

function stat(label, value, testid, colour) {
  return h(
    "div",
    { class: "card stat", testid },
    h("div", { class: "value", style: colour ? { color: colour } : null }, String(value)),
    h("div", { class: "label" }, label),
  );
}

function modelCard(m) {
  const title = h("a", { href: `#/models/${encodeURIComponent(m.model)}` }, m.model);
  const extra = h(
    "span",
    { class: "badges" },
    badge(m.protocol || "?", ""),
    m.stable ? badge(`stable ${m.stable}`, "ok") : badge("no stable version", "warn"),
    m.promotions_frozen ? badge("promotions frozen", "warn", `frozen-${m.model}`) : null,
  );
  const versions = m.versions || [];
  const body = versions.length
    ? table(
        ["version", "status", "route weight", "breaker", "requests (1h)", "error rate", "fallbacks", "p50", "p99", "tokens", "cost"],
        versions.map((v) => versionRow(m.model, v)),
        { testid: `versions-${m.model}`, numeric: [2, 4, 5, 6, 7, 8, 9, 10] },
      )
    : empty("This model has no versions yet: register one (aisre models register) or list it under models: in aisre.yaml.");
  return card(title, body, { testid: `model-card-${m.model}`, extra });
}

function versionRow(model, v) {
  const last = v.last_hour || {};
  return row(
    [
      h("strong", {}, v.version),
      badge(v.status || "—", tone.status(v.status)),
      v.weight === null || v.weight === undefined ? "—" : `${fmt.num(v.weight, 1)}%`,
      breakerBadge(model, v),
      fmt.num(last.requests),
      h("span", { style: last.error_rate > 0.01 ? { color: "var(--bad)" } : null }, fmt.pct(last.error_rate)),
      fmt.num(last.fallbacks),
      fmt.latency(last.latency_p50_s),
      fmt.latency(last.latency_p99_s),
      last.tokens ? fmt.num(last.tokens) : "—",
      last.cost_usd ? fmt.usd(last.cost_usd) : "—",
    ],
    { testid: `version-row-${model}-${v.version}`, numeric: [2, 4, 5, 6, 7, 8, 9, 10] },
  );
}

function breakerBadge(model, v) {
  const testid = `breaker-${model}-${v.version}`;
  if (!v.breaker) return h("span", { class: "muted", testid, title: "no breaker configured for this version" }, "none");
  const b = v.breaker;
  const parts = [b.reason, b.since ? `since ${fmt.time(b.since)}` : null, b.fallback ? `fallback ${b.fallback}` : null];
  return h(
    "span",
    { class: `badge ${tone.breaker(b.state)}`, testid, title: parts.filter(Boolean).join("; ") || b.state, "data-state": b.state },
    b.state.replace("_", "-"),
  );
}
