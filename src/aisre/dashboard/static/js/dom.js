// Small DOM and formatting helpers shared by every page (no framework: elements are built directly).

/** h("div", {class: "card", testid: "x", onclick: fn}, child, "text", [more]) -> HTMLElement */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function card(title, body, { testid, extra, cls } = {}) {
  return h(
    "section",
    { class: `card ${cls || ""}`, testid },
    title ? h("div", { class: "card-head" }, h("h2", {}, title), extra || null) : null,
    body,
  );
}

/** An empty state that says what is missing and how to get it, never a blank box. */
export function empty(message, testid) {
  return h("div", { class: "empty", testid: testid || "empty" }, message);
}

export function errorBox(message, testid = "error") {
  return h("div", { class: "error-box", testid, role: "alert" }, message);
}

export function badge(text, tone = "", testid) {
  return h("span", { class: `badge ${tone}`, testid }, text);
}

export function table(headers, rows, { testid, numeric = [] } = {}) {
  const num = new Set(numeric);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { testid },
      h("thead", {}, h("tr", {}, headers.map((x, i) => h("th", { class: num.has(i) ? "num" : "" }, x)))),
      h("tbody", {}, rows),
    ),
  );
}

export function row(cells, { numeric = [], testid } = {}) {
  const num = new Set(numeric);
  return h("tr", { testid }, cells.map((x, i) => h("td", { class: num.has(i) ? "num" : "" }, x)));
}

/** A 0..1 bar (budget remaining): green above half, amber above a fifth, red below. */
export function bar(fraction, testid) {
  if (fraction === null || fraction === undefined) return h("span", { class: "muted", testid }, "—");
  const clipped = Math.max(0, Math.min(1, fraction));
  const colour = fraction > 0.5 ? "var(--ok)" : fraction > 0.2 ? "var(--warn)" : "var(--bad)";
  return h(
    "span",
    { testid, "data-value": String(fraction) },
    h("span", { class: "bar" }, h("span", { style: { width: `${clipped * 100}%`, background: colour } })),
    h("span", { class: "bar-label" }, fmt.pct(fraction, 1)),
  );
}

const isNum = (x) => typeof x === "number" && Number.isFinite(x);

export const fmt = {
  num(x, digits = 0) {
    if (!isNum(x)) return "—";
    if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
    if (Math.abs(x) >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
    return x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  },
  pct(x, digits = 2) {
    return isNum(x) ? `${(x * 100).toFixed(digits)}%` : "—";
  },
  /** A latency in seconds, shown in ms below a second. */
  latency(x) {
    if (!isNum(x)) return "—";
    return x < 1 ? `${(x * 1000).toFixed(x < 0.01 ? 1 : 0)} ms` : `${x.toFixed(2)} s`;
  },
  usd(x) {
    return isNum(x) ? `$${x < 1 ? x.toFixed(4) : x.toFixed(2)}` : "—";
  },
  /** A duration in seconds: 90 -> "1m30s", 7200 -> "2h". */
  duration(s) {
    if (!isNum(s)) return "—";
    if (s < 60) return `${Math.round(s)}s`;
    const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return [d ? `${d}d` : "", hh ? `${hh}h` : "", m && !d ? `${m}m` : ""].join("") || "0m";
  },
  /** An epoch (seconds) as an ISO-like UTC time: the server's clock may be a drill's or a demo's. */
  time(t) {
    if (!isNum(t)) return "—";
    return new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  },
  ratio(x) {
    return isNum(x) ? x.toFixed(2) : "—";
  },
};

export const tone = {
  breaker: (state) => ({ closed: "ok", half_open: "warn", open: "bad" })[state] || "",
  status: (s) => ({ stable: "ok", canary: "info", shadow: "info", candidate: "", retired: "", archived: "" })[s] || "",
  severity: (s) => ({ page: "bad", critical: "bad", high: "bad", ticket: "warn", medium: "warn", low: "info" })[s] || "",
  incident: (s) => ({ open: "bad", acknowledged: "warn", resolved: "ok" })[s] || "",
  alert: (s) => ({ firing: "bad", pending: "warn", resolved: "ok", inactive: "ok" })[s] || "",
};
