// The aisre dashboard: one page, hash routes, each page built from the JSON API (docs/dashboard.md) and redrawn
// on a timer. No framework and no build step; charts are uPlot (static/vendor/).

import { api, ApiError, Unauthorized, logout } from "./js/api.js";
import { h, fmt, errorBox } from "./js/dom.js";
import { mountCharts, destroyCharts } from "./js/charts.js";
import { overviewPage } from "./js/pages/overview.js";
import { modelPage } from "./js/pages/model.js";
import { slosPage, sloPage } from "./js/pages/slos.js";
import { incidentsPage, incidentPage } from "./js/pages/incidents.js";
import { loginPage } from "./js/pages/login.js";

const ROUTES = [
  [/^\/$/, overviewPage, "overview"],
  [/^\/models\/[^/]+$/, modelPage, "model"],
  [/^\/slos$/, slosPage, "slos"],
  [/^\/slos\/[^/]+$/, sloPage, "slos"],
  [/^\/incidents$/, incidentsPage, "incidents"],
  [/^\/incidents\/\d+$/, incidentPage, "incidents"],
];

const main = document.getElementById("main");
let generation = 0;
let timer = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search] = raw.split("?");
  const clean = path.length > 1 ? path.replace(/\/+$/, "") : "/";
  return { path: clean, parts: clean.split("/").filter(Boolean), query: new URLSearchParams(search || "") };
}

async function show() {
  clearTimeout(timer);
  const mine = ++generation;
  const route = parseHash();
  const match = ROUTES.find(([re]) => re.test(route.path));
  let page;
  try {
    if (!match) page = { node: notFound(route.path), refreshMs: 0 };
    else page = await match[1](route);
  } catch (exc) {
    if (exc instanceof Unauthorized) page = loginPage(exc.message, signedIn);
    else if (exc instanceof ApiError) page = { node: errorPage(exc), refreshMs: exc.status === 0 ? 5000 : 0 };
    else throw exc;
  }
  if (mine !== generation) return; // the user moved on while this page loaded
  swap(page.node);
  const heading = page.node.querySelector("h1");
  document.title = heading ? `${heading.textContent} · aisre` : "aisre dashboard";
  markNav(match ? match[2] : null, route);
  if (page.data && page.data.models) drawNav(page.data);
  if (page.refreshMs) timer = setTimeout(refresh, page.refreshMs);
  return page;
}

function refresh() {
  // A hidden tab does not poll; it redraws when it is shown again.
  if (document.hidden) document.addEventListener("visibilitychange", show, { once: true });
  else show();
}

/** Replace the page, keeping open <details> and the scroll position (a refresh must not jump). */
function swap(node) {
  const open = new Set([...main.querySelectorAll("details[open][data-key]")].map((d) => d.dataset.key));
  for (const d of node.querySelectorAll("details[data-key]")) if (open.has(d.dataset.key)) d.open = true;
  const scroll = window.scrollY;
  destroyCharts(main);
  main.replaceChildren(node);
  mountCharts(main);
  window.scrollTo(0, scroll);
  main.dataset.ready = String(generation);
}

function notFound(path) {
  return h("div", { testid: "page-not-found" }, h("h1", {}, "Not found"), errorBox(`No dashboard page at #${path}: try the overview.`));
}

function errorPage(exc) {
  return h("div", { testid: "page-error" }, h("h1", {}, exc.status === 404 ? "Not found" : "Error"), errorBox(exc.message));
}

function markNav(name, route) {
  for (const a of document.querySelectorAll(".sidebar a")) {
    const model = a.dataset.model;
    const active = model ? route.parts[0] === "models" && decodeURIComponent(route.parts[1]) === model : a.dataset.nav === name;
    a.classList.toggle("active", active);
  }
}

function drawNav(overview) {
  const list = document.querySelector(".nav-models");
  list.replaceChildren(
    ...overview.models.map((m) =>
      h("a", { href: `#/models/${encodeURIComponent(m.model)}`, "data-model": m.model, testid: `nav-model-${m.model}` }, m.model),
    ),
  );
  document.querySelector("[data-testid=server-clock]").textContent = `server time ${fmt.time(overview.now)}`;
  const route = parseHash();
  const match = ROUTES.find(([re]) => re.test(route.path));
  markNav(match ? match[2] : null, route);
}

/** After a login: redraw, and offer to sign out (the session cookie is httponly: only the server clears it). */
function signedIn() {
  const foot = document.querySelector(".sidebar-foot");
  if (!document.querySelector("[data-testid=logout]")) {
    const button = h("button", { class: "link", testid: "logout", onclick: () => logout().then(show) }, "sign out");
    foot.after(h("div", { class: "sidebar-foot-actions" }, button));
  }
  show().then(loadNav);
}

async function loadNav() {
  try {
    drawNav(await api("overview"));
  } catch {
    // the page itself shows the error or the login form
  }
}

window.addEventListener("hashchange", show);
show().then((page) => {
  if (page && !page.login && parseHash().path !== "/") loadNav();
});
