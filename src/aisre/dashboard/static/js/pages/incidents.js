// Incidents (#/incidents, #/incidents/{id}): the list; one incident's timeline of trigger, evidence, actions, outcomes.

import { api } from "../api.js";
import { h, fmt, card, badge, table, row, empty, tone } from "../dom.js";

const STATUSES = ["unresolved", "open", "acknowledged", "resolved"];
const KIND_TONE = { trigger: "bad", retrigger: "bad", evidence: "info", action: "info", outcome: "ok", ack: "warn", resolve: "ok" };

export async function incidentsPage(route) {
  const status = STATUSES.includes(route.query.get("status")) ? route.query.get("status") : null;
  const model = route.query.get("model");
  const data = await api("incidents", { status, model });
  const filter = h(
    "div",
    { class: "range", testid: "incident-filter" },
    [null, ...STATUSES].map((s) => h("a", { href: `#/incidents${s ? `?status=${s}` : ""}`, class: s === status ? "active" : "" }, s || "all")),
  );
  const rows = data.incidents.map((i) =>
    row(
      [
        h("a", { href: `#/incidents/${i.id}` }, `#${i.id}`),
        h("a", { href: `#/incidents/${i.id}` }, i.title),
        `${i.model || "—"}${i.version ? ` / ${i.version}` : ""}`,
        badge(i.severity, tone.severity(i.severity)),
        badge(i.status, tone.incident(i.status)),
        fmt.time(i.opened_at),
        String(i.events ?? "—"),
      ],
      { testid: `incident-row-${i.id}`, numeric: [6] },
    ),
  );
  const node = h(
    "div",
    { testid: "page-incidents" },
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Incidents"), h("div", { class: "sub" }, `as of ${fmt.time(data.now)}`)), filter),
    card(
      null,
      rows.length
        ? table(["id", "title", "model / version", "severity", "status", "opened", "events"], rows, { testid: "incident-table", numeric: [6] })
        : empty(status ? `No ${status} incident.` : "No incident yet: breakers, playbooks and `aisre incidents open` open them.", "incidents-empty"),
    ),
  );
  return { node, refreshMs: 5000 };
}

export async function incidentPage(route) {
  const id = route.parts[1];
  const i = await api(`incidents/${encodeURIComponent(id)}`);
  const timeline = i.timeline || [];
  const node = h(
    "div",
    { testid: "page-incident", "data-incident": String(i.id) },
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("div", { class: "sub" }, h("a", { href: "#/incidents" }, "Incidents"), ` / #${i.id}`), h("h1", {}, i.title)),
      h("span", { class: "badges" }, badge(i.severity, tone.severity(i.severity)), badge(i.status, tone.incident(i.status), "incident-status")),
    ),
    h(
      "div",
      { class: "cards" },
      fact("model / version", i.model ? h("a", { href: `#/models/${encodeURIComponent(i.model)}` }, `${i.model}${i.version ? ` / ${i.version}` : ""}`) : "—"),
      fact("opened", fmt.time(i.opened_at)),
      fact("acknowledged", fmt.time(i.acked_at)),
      fact("resolved", fmt.time(i.resolved_at)),
    ),
    card(
      "Timeline",
      timeline.length
        ? h("ol", { class: "timeline", testid: "timeline" }, timeline.map((e, n) => event(e, n)))
        : empty("No event recorded on this incident.", "timeline-empty"),
    ),
  );
  return { node, refreshMs: 10000 };
}

function fact(label, value) {
  return h("div", { class: "card stat" }, h("div", { class: "value small" }, value), h("div", { class: "label" }, label));
}

function event(e, n) {
  const data = e.data && Object.keys(e.data).length ? e.data : null;
  return h(
    "li",
    { class: `k-${e.kind}`, testid: "timeline-event", "data-kind": e.kind },
    h("div", {}, h("span", { class: "when" }, fmt.time(e.at)), badge(e.kind, KIND_TONE[e.kind] || ""), " ", h("span", { class: "muted small" }, `by ${e.actor || "—"}`)),
    h("div", { class: "summary" }, e.summary),
    data ? h("details", { "data-key": `event-${n}` }, h("summary", {}, "details"), h("pre", {}, JSON.stringify(data, null, 2))) : null,
  );
}
