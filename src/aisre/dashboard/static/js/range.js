// The time-range picker: 1h … 30d back from the server's now, or an absolute since/until carried in the hash.

import { h, fmt } from "./dom.js";

export const RANGES = ["1h", "6h", "24h", "7d", "30d"];
// Buckets of a chart (seconds): at most ~180 points, about one per 4 pixels of a half-width chart.
const STEPS = { "1h": 60, "6h": 120, "24h": 600, "7d": 3600, "30d": 14400 };
const MAX_POINTS = 180;

/** The API's since/until for a page's hash query (`?range=6h`, or `?since=<epoch>&until=<epoch>`). */
export function rangeParams(query, fallback = "24h") {
  if (query.get("since")) return { since: query.get("since"), until: query.get("until") || undefined };
  const range = query.get("range");
  return { since: RANGES.includes(range) ? range : fallback };
}

/** The bucket (seconds) for a range's series; undefined lets the server choose (a relative custom range). */
export function rangeStep(query, fallback = "24h") {
  if (query.get("since")) {
    const since = Number(query.get("since"));
    const until = query.get("until") ? Number(query.get("until")) : NaN;
    if (!Number.isFinite(since) || !Number.isFinite(until) || until <= since) return undefined;
    return Math.max(60, Math.ceil((until - since) / MAX_POINTS / 60) * 60);
  }
  const range = query.get("range");
  return STEPS[RANGES.includes(range) ? range : fallback];
}

export function rangePicker(path, query, fallback = "24h") {
  const custom = query.get("since");
  const current = custom ? null : RANGES.includes(query.get("range")) ? query.get("range") : fallback;
  const links = RANGES.map((r) =>
    h("a", { href: `#${path}?range=${r}`, class: r === current ? "active" : "", testid: `range-${r}` }, r),
  );
  if (custom) {
    const label = `${show(custom)} → ${query.get("until") ? show(query.get("until")) : "now"}`;
    links.push(h("a", { href: location.hash, class: "active", testid: "range-custom", title: "absolute range from the link" }, label));
  }
  return h("div", { class: "range", testid: "range-picker" }, links);
}

function show(x) {
  return /^\d+(\.\d+)?$/.test(x) ? fmt.time(Number(x)).replace(" UTC", "") : x;
}

/** Keep the page's absolute or relative range when linking to another page. */
export function rangeSuffix(query) {
  const keep = new URLSearchParams();
  for (const k of ["range", "since", "until"]) if (query.get(k)) keep.set(k, query.get(k));
  const s = keep.toString();
  return s ? `?${s}` : "";
}
