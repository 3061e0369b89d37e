// Harbormaster dashboard: a client of the HTTP API. The token lives in sessionStorage
// (no cookie, so no CSRF surface); every request sends it as a bearer token.
//
// One request per refresh (GET /api/summary), every INTERVAL while the tab is visible and
// none while it is hidden. Events and followed logs are live streams (streams.js), never
// polled. A 401 signs out; a 429 waits for Retry-After and backs off; a
// 5xx or a network error shows a banner, keeps the last data and backs off.
"use strict";

const INTERVAL = 5000;        // ms between refreshes
const MAX_BACKOFF = 60000;    // ms, the longest wait after repeated failures
const CHART_POINTS = 180;
const COLORS = { passing: "#2e9d50", warning: "#e0a100", critical: "#d93025" };
const $ = (sel) => document.querySelector(sel);
let cy = null;
let chart = null;
let selected = null;          // the instance whose chart is shown
let timer = null;
let inFlight = false;
let failures = 0;             // consecutive failed refreshes
let lastData = null;          // when the data on screen was fetched

class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(`${status}: ${detail}`);
    this.status = status; this.detail = detail; this.retryAfter = retryAfter;
  }
}
class SignedOut extends Error {}

function token() { return sessionStorage.getItem("harbormaster-token"); }

// Retry-After is seconds or an HTTP date; null when absent or unreadable.
function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": `Bearer ${token()}`, "Content-Type": "application/json",
               ...(options.headers || {}) },
  });
  if (response.status === 401) {
    logout("The token was refused (unknown, revoked or expired): sign in again.");
    throw new SignedOut();
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail,
                       retryAfterSeconds(response.headers.get("Retry-After")));
  }
  return response.status === 204 ? null : response.json();
}

// ---- refreshing -------------------------------------------------------------------

function signedIn() { return Boolean(token()) && !$("#app").hidden; }

function schedule(ms) {
  clearTimeout(timer);
  timer = null;
  if (signedIn() && document.visibilityState !== "hidden") timer = setTimeout(refresh, ms);
}

async function refresh() {
  if (inFlight || !signedIn() || document.visibilityState === "hidden") return;
  clearTimeout(timer);
  inFlight = true;
  try {
    render(await api("/api/summary"));
    failures = 0;
    lastData = new Date();
    showBanner(null);
    $("#status").textContent = `updated ${lastData.toLocaleTimeString()}`;
    schedule(INTERVAL);
  } catch (err) {
    if (err instanceof SignedOut) return;
    failures += 1;
    const wait = delayAfter(err);
    showBanner(`${explain(err)} ${kept()}; next try in ${Math.round(wait / 1000)} s.`);
    schedule(wait);
  } finally {
    inFlight = false;
  }
}

// Back off exponentially, and never sooner than the server's Retry-After.
function delayAfter(err) {
  const backoff = Math.min(MAX_BACKOFF, INTERVAL * 2 ** (failures - 1));
  const asked = err instanceof ApiError && err.retryAfter !== null ? err.retryAfter * 1000 : 0;
  return Math.max(backoff, asked);
}

function explain(err) {
  if (err instanceof ApiError && err.status === 429) return `Rate limited by the server (${err.detail}).`;
  if (err instanceof ApiError && err.status >= 500) return `The server answered ${err.status}: ${err.detail}.`;
  if (err instanceof ApiError) return `The server refused the request (${err.status}: ${err.detail}).`;
  if (err instanceof TypeError) return `Cannot reach the server (${err.message}).`;
  return `The update failed: ${err.message}.`;
}

function kept() {
  return lastData ? `Showing the data of ${lastData.toLocaleTimeString()}` : "No data yet";
}

function showBanner(text) {
  $("#banner").hidden = !text;
  $("#banner").textContent = text || "";
}

// ---- rendering --------------------------------------------------------------------

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function percent(value) { return value === null || value === undefined ? "" : `${Math.round(value)}%`; }

function render(s) {
  renderMap(s.map);
  renderNodes(s.nodes);  // nodes.js; before the instances, whose node cells it colours
  renderImages(s.images || [], s.images_truncated);  // images.js
  renderUsage(s.usage);  // usage.js
  renderDeployments(s.deployments);
  renderInstances(s.instances, s.instances_truncated);
  renderJobs(s.jobs);
  extendChart(s.instances);
}

function renderMap(graph) {
  const names = new Set(graph.nodes.map((n) => n.id));
  const elements = [
    ...graph.nodes.map((n) => ({ data: { id: n.id, label: `${n.id}\n${n.ready}/${n.desired}`,
                                         condition: n.condition } })),
    ...graph.edges.filter((e) => names.has(e.from) && names.has(e.to))
      .map((e) => ({ data: { id: `${e.from}->${e.to}`, source: e.from, target: e.to,
                             condition: e.health } })),
  ];
  const colour = (el) => COLORS[el.data("condition")] || "#999";
  if (!cy) {
    cy = cytoscape({
      container: $("#graph"), elements, maxZoom: 1.5,
      style: [
        { selector: "node", style: { "label": "data(label)", "text-wrap": "wrap",
          "background-color": colour, "color": "#1d2330", "font-size": 11,
          "text-valign": "bottom" } },
        { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle",
          "line-color": colour, "target-arrow-color": colour, "width": 2 } },
      ],
      layout: { name: "breadthfirst", directed: true, padding: 20 },
    });
    window.cy = cy;
    return;
  }
  const ids = new Set(elements.map((e) => e.data.id));
  const gone = cy.elements().filter((e) => !ids.has(e.id()));
  const added = elements.filter((e) => cy.getElementById(e.data.id).empty());
  gone.remove();
  for (const el of elements) {
    const existing = cy.getElementById(el.data.id);
    if (existing.nonempty()) existing.data(el.data); else cy.add(el);
  }
  cy.style().update();  // colours are functions of the data that just changed
  // lay out again only when the graph changed shape: a still map is easier to read
  if (gone.nonempty() || added.length) cy.layout({ name: "breadthfirst", directed: true, padding: 20 }).run();
}

function renderDeployments(list) {
  const tbody = $("#deployments tbody");
  const rows = new Map([...tbody.rows].map((tr) => [tr.dataset.name, tr]));
  tbody.replaceChildren(...list.map((d) => {
    // rows are kept across refreshes, so a count being typed is not wiped
    const tr = rows.get(d.name) || deploymentRow(d);
    tr.querySelector(".image").textContent = d.image;
    tr.querySelector(".desired").textContent = d.status.desired;
    tr.querySelector(".running-count").textContent = d.status.running;
    // the warm pool apart, under the replicas' ready count (no wider a table): paused
    // members that can serve / the pool's size
    const warm = document.createElement("span");
    warm.className = "warm-count";
    warm.title = "warm pool: paused members / its size";
    warm.textContent = d.warm_pool ? `warm ${d.status.warm ?? 0}/${d.warm_pool}` : "";
    tr.querySelector(".ready-count").replaceChildren(String(d.status.ready), warm);
    const state = tr.querySelector(".state");
    state.textContent = d.status.state;
    state.className = `state ${d.status.state}`;
    state.title = d.status.reason || "";
    const load = tr.querySelector(".load");
    load.textContent = d.load || "";
    load.className = `load ${d.load || ""}`;
    const input = tr.querySelector("input.scale");
    input.min = d.min_replicas ?? 0;
    if (d.max_replicas !== null && d.max_replicas !== undefined) input.max = d.max_replicas;
    if (document.activeElement !== input) input.value = d.replicas;
    return tr;
  }));
}

function deploymentRow(d) {
  const tr = document.createElement("tr");
  tr.dataset.name = d.name;
  const name = cell(d.name, "name");
  const logs = document.createElement("button");   // under the name: no wider a table
  logs.textContent = "logs"; logs.className = "logs-button";
  logs.addEventListener("click", () => followLogs("deployment", d.name));  // streams.js
  name.append(document.createElement("br"), logs);
  tr.append(name, cell("", "image"), cell("", "desired"), cell("", "running-count"),
            cell("", "ready-count"), cell("", "state"), cell("", "load"));
  const td = document.createElement("td");
  td.className = "scale";
  const input = document.createElement("input");
  input.type = "number"; input.className = "scale";
  const button = document.createElement("button");
  button.textContent = "Scale"; button.className = "scale-button";
  button.addEventListener("click", () => scale(d.name, Number(input.value)));
  td.append(input, button);
  tr.append(td);
  return tr;
}

async function scale(name, replicas) {
  try {
    await api(`/api/deployments/${encodeURIComponent(name)}/scale`, {
      method: "POST", body: JSON.stringify({ replicas }) });
  } catch (err) {
    if (!(err instanceof SignedOut)) showBanner(`Scaling ${name} failed. ${explain(err)}`);
    return;
  }
  refresh();
}

function renderInstances(list, truncated) {
  $("#instances-truncated").hidden = !truncated;
  $("#instances tbody").replaceChildren(...list.map((i) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.name = i.name;
    tr.dataset.deployment = i.deployment || "";
    const exit = i.exit_code !== null && i.state !== "running" ? ` (exit ${i.exit_code})` : "";
    // a warm pool member is no replica: its row says so
    let state = i.role === "warm" ? `warm pool (${i.state})` : `${i.state}${exit}`;
    if (i.backoff_until) {
      // the slot's container is gone until its backoff ends: say so rather than "removed"
      const seconds = Math.max(0, Math.round((Date.parse(i.backoff_until) - Date.now()) / 1000));
      state = `crash loop${exit}, next start in ${seconds} s`;
    }
    tr.append(cell(i.name, "name"), cell(state, `state ${i.backoff_until ? "crashloop" : i.state}`),
              cell(i.health, i.health), cell(i.restarts, "restarts"), nodeCell(i.node),
              cell(percent(i.cpu_percent), `cpu ${i.load || ""}`),
              cell(percent(i.memory_percent), `memory ${i.load || ""}`),
              cell(i.endpoint, "endpoint"));
    tr.addEventListener("click", () => showChart(i.name));
    return tr;
  }));
}

function renderJobs(list) {
  $("#jobs tbody").replaceChildren(...list.map((j) => {
    const tr = document.createElement("tr");
    const progress = j.progress ? `${j.progress.done}/${j.progress.total}` : "";
    tr.append(cell(j.kind), cell(j.target, "target"), cell(j.status, j.status), cell(progress),
              cell(j.requested_by));
    if (j.error) tr.title = j.error;
    return tr;
  }));
}


// ---- one instance's chart: its history once, then the summary's samples ------------

async function showChart(name) {
  selected = name;
  $("#instance-panel").hidden = false;
  $("#instance-name").textContent = name;
  let series;
  try {
    series = await api(`/api/metrics/${encodeURIComponent(name)}?since=15m&step=5s`);
  } catch (err) {
    if (!(err instanceof SignedOut)) showBanner(`The history of ${name} is unavailable. ${explain(err)}`);
    return;
  }
  if (selected !== name) return;  // another instance was clicked meanwhile
  const points = series.items.map((p) => ({ at: p.at, cpu: p.cpu_percent, memory: p.memory_percent }));
  if (!chart) {
    chart = new Chart($("#instance-chart"), {
      type: "line", data: { labels: [], datasets: [
        { label: "CPU %", data: [], borderColor: "#3366cc", tension: 0.2 },
        { label: "Memory %", data: [], borderColor: "#dc3912", tension: 0.2 }] },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    });
  }
  chart.$points = points;
  drawChart();
}

function extendChart(instances) {
  if (!chart || !selected) return;
  const now = instances.find((i) => i.name === selected);
  const last = chart.$points[chart.$points.length - 1];
  if (!now || !now.sampled_at || (last && Date.parse(last.at) >= Date.parse(now.sampled_at))) return;
  chart.$points.push({ at: now.sampled_at, cpu: now.cpu_percent, memory: now.memory_percent });
  chart.$points = chart.$points.slice(-CHART_POINTS);
  drawChart();
}

function drawChart() {
  chart.data.labels = chart.$points.map((p) => new Date(p.at).toLocaleTimeString());
  chart.data.datasets[0].data = chart.$points.map((p) => p.cpu);
  chart.data.datasets[1].data = chart.$points.map((p) => p.memory);
  chart.update();
}

// ---- signing in and out, visibility -------------------------------------------------

function start() {
  $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  $("#login-error").textContent = "";
  failures = 0;
  refresh();
  startEvents();  // streams.js: the events panel, live
}

function logout(reason) {
  sessionStorage.removeItem("harbormaster-token");
  clearTimeout(timer);
  timer = null;
  stopEvents(); stopLogs();
  showBanner(null);
  $("#login").hidden = false; $("#app").hidden = true; $("#logout").hidden = true;
  $("#login-error").textContent = reason || "";
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("harbormaster-token", $("#token").value.trim());
  $("#token").value = "";
  start();
});
$("#logout").addEventListener("click", () => logout());
$("#instance-logs").addEventListener("click", () => { if (selected) followLogs("instance", selected); });
$("#logs-stop").addEventListener("click", () => { stopLogs(); $("#logs-panel").hidden = true; });
// a hidden tab does not poll; coming back into view refreshes at once
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") { clearTimeout(timer); timer = null; } else refresh();
});
if (token()) start();
