// A model (#/models/{model}): traffic, latency, tokens and cost per version; the monitoring signals; the registry.

import { api, ApiError } from "../api.js";
import { h, fmt, card, badge, table, row, empty, errorBox, tone } from "../dom.js";
import { chart, PALETTE, yFormats } from "../charts.js";
import { rangeParams, rangePicker, rangeStep } from "../range.js";
import { signalSections } from "./model_signals.js";

const SIGNAL_KINDS = ["drift", "performance", "estimated", "fairness", "importance", "llm"];
const PERCENTILE_DASH = { p50: undefined, p95: [6, 3], p99: [2, 3] };

export async function modelPage(route) {
  const model = decodeURIComponent(route.parts[1]);
  const range = rangeParams(route.query);
  const base = `models/${encodeURIComponent(model)}`;
  const [traffic, registry, ...signals] = await Promise.all([
    api(`${base}/traffic`, { ...range, step: rangeStep(route.query) }),
    section(api(`${base}/registry`)),
    ...SIGNAL_KINDS.map((kind) => section(api(`${base}/signals`, { kind, ...range }))),
  ]);
  const byKind = Object.fromEntries(SIGNAL_KINDS.map((k, i) => [k, signals[i]]));
  const xRange = traffic.t.length ? [traffic.t[0], traffic.t[traffic.t.length - 1] + traffic.step] : null;
  const node = h(
    "div",
    { testid: "page-model", "data-model": model },
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, model),
        h("div", { class: "sub" }, `${fmt.time(traffic.t[0])} → ${fmt.time(xRange ? xRange[1] : traffic.now)} · server time ${fmt.time(traffic.now)}`),
      ),
      rangePicker(route.path, route.query),
    ),
    trafficSection(traffic, xRange),
    signalSections(model, byKind, xRange),
    registrySection(registry),
  );
  return { node, refreshMs: 15000 };
}

/** A section's answer, or its error shown in place (a 401 still goes to the login form). */
async function section(promise) {
  try {
    return await promise;
  } catch (exc) {
    if (exc instanceof ApiError && exc.status !== 401) return { error: exc.message };
    throw exc;
  }
}

function perVersion(traffic, key, { dash, label } = {}) {
  return Object.entries(traffic.versions).map(([v, s], i) => ({
    label: label ? label(v) : v,
    values: s[key] || [],
    color: PALETTE[i % PALETTE.length],
    dash,
  }));
}

function trafficSection(traffic, xRange) {
  const step = `per ${fmt.duration(traffic.step)} bucket`;
  const versions = Object.keys(traffic.versions);
  if (!versions.length) {
    return card("Traffic", empty("No requests recorded for this model in this time range."), { testid: "traffic" });
  }
  const common = { t: traffic.t, xRange };
  const latency = Object.entries(traffic.versions).flatMap(([v, s], i) =>
    ["p50", "p95", "p99"].map((p) => ({
      label: `${v} ${p}`,
      values: s[`latency_${p}_s`] || [],
      color: PALETTE[i % PALETTE.length],
      dash: PERCENTILE_DASH[p],
    })),
  );
  const llmTimes = Object.entries(traffic.versions).flatMap(([v, s], i) => [
    { label: `${v} TTFT p50`, values: s.ttft_p50_s || [], color: PALETTE[i % PALETTE.length] },
    { label: `${v} TPOT p50`, values: s.tpot_p50_s || [], color: PALETTE[i % PALETTE.length], dash: [6, 3] },
  ]);
  const errors = [
    ...perVersion(traffic, "errors", { label: (v) => `${v} errors` }),
    ...perVersion(traffic, "fallbacks", { label: (v) => `${v} fallbacks`, dash: [6, 3] }),
  ];
  const hasTokens = Object.values(traffic.versions).some((s) => (s.tokens || []).some((x) => x > 0));
  // TTFT/TPOT belong to LLM answers (those that count tokens); another model has none to show
  const hasTtft = hasTokens && llmTimes.some((s) => s.values.some((x) => x > 0));
  return h(
    "div",
    { class: "section", testid: "traffic" },
    h("h2", {}, "Traffic and latency"),
    h(
      "div",
      { class: "grid2" },
      card(null, chart({ ...common, testid: "chart-requests", title: "Requests per version", note: step, series: perVersion(traffic, "requests"), yFmt: yFormats.count, yMin: 0 })),
      card(null, chart({ ...common, testid: "chart-errors", title: "Errors and fallbacks", note: `${step}; dashed: answered by the fallback`, series: errors, yFmt: yFormats.count, yMin: 0, emptyMessage: "No errors and no fallback answers in this time range." })),
      card(null, chart({ ...common, testid: "chart-latency", title: "Latency percentiles", note: "solid p50, dashed p95, dotted p99", series: latency, yFmt: yFormats.latency, yMin: 0 })),
      hasTtft
        ? card(null, chart({ ...common, testid: "chart-ttft", title: "Time to first token / per output token", note: "p50; dashed TPOT", series: llmTimes, yFmt: yFormats.latency, yMin: 0 }))
        : null,
      hasTokens
        ? card(null, chart({ ...common, testid: "chart-tokens", title: "Tokens", note: step, series: perVersion(traffic, "tokens"), yFmt: yFormats.count, yMin: 0 }))
        : null,
      hasTokens
        ? card(null, chart({ ...common, testid: "chart-cost", title: "Cost (USD)", note: step, series: perVersion(traffic, "cost_usd"), yFmt: yFormats.usd, yMin: 0, emptyMessage: "No cost recorded: give this model a price (models: … price: {input_per_1m_usd, output_per_1m_usd}) to see its spend." }))
        : card(null, [h("div", { class: "chart-title" }, "Tokens and cost"), empty("No token usage recorded for this model: tokens, cost and TTFT/TPOT come from OpenAI-protocol (LLM) responses.", "tokens-empty")]),
    ),
  );
}

function registrySection(registry) {
  if (registry.error) return card("Registry", errorBox(registry.error), { testid: "registry" });
  const versions = table(
    ["version", "status", "trained", "artifact", "endpoint"],
    (registry.versions || []).map((v) =>
      row([h("strong", {}, v.version), badge(v.status, tone.status(v.status)), fmt.time(v.trained_at), h("span", { class: "mono" }, v.artifact || "—"), h("span", { class: "mono" }, v.endpoint || "—")]),
    ),
    { testid: "registry-versions" },
  );
  const history = (registry.history || []).slice().reverse();
  return card(
    "Registry",
    [
      registry.versions && registry.versions.length ? versions : empty("No version is registered for this model (aisre models register).", "registry-empty"),
      h("h3", {}, "History"),
      history.length
        ? table(
            ["when", "version", "change", "actor", "reason"],
            history.map((e) => row([fmt.time(e.at), e.version, `${e.from || "—"} → ${e.to || "—"}`, e.actor || "—", e.reason || "—"], { testid: "registry-history-row" })),
            { testid: "registry-history" },
          )
        : empty("No registry change recorded yet.", "registry-history-empty"),
    ],
    { testid: "registry", extra: registry.stable ? badge(`stable ${registry.stable}`, "ok") : null },
  );
}
