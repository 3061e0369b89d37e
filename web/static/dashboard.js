// Harbormaster dashboard: a client of the HTTP API. The token lives in sessionStorage
// (no cookie, so no CSRF surface); every request sends it as a bearer token.
"use strict";

const COLORS = { passing: "#2e9d50", warning: "#e0a100", critical: "#d93025" };
const $ = (sel) => document.querySelector(sel);
let cy = null;
let chart = null;
let selectedInstance = null;

function token() { return sessionStorage.getItem("harbormaster-token"); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": `Bearer ${token()}`, "Content-Type": "application/json",
               ...(options.headers || {}) },
  });
  if (response.status === 401) { logout("the token was refused"); throw new Error("401"); }
  return response;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

async function refreshMap() {
  const graph = await (await api("/api/services/map")).json();
  const elements = [
    ...graph.nodes.map((n) => ({ data: { id: n.id, label: `${n.id}\n${n.ready}/${n.instances}`,
                                         health: n.health } })),
    ...graph.edges.filter((e) => graph.nodes.some((n) => n.id === e.to) &&
                                 graph.nodes.some((n) => n.id === e.from))
      .map((e) => ({ data: { id: `${e.from}->${e.to}`, source: e.from, target: e.to,
                             health: e.health } })),
  ];
  if (!cy) {
    cy = cytoscape({
      container: $("#graph"), elements,
      style: [
        { selector: "node", style: { "label": "data(label)", "text-wrap": "wrap",
          "background-color": (n) => COLORS[n.data("health")] || "#999",
          "color": "#1d2330", "font-size": 11, "text-valign": "bottom" } },
        { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle",
          "line-color": (e) => COLORS[e.data("health")] || "#999",
          "target-arrow-color": (e) => COLORS[e.data("health")] || "#999", "width": 2 } },
      ],
      layout: { name: "breadthfirst", directed: true, padding: 20 },
      maxZoom: 1.5,
    });
    window.cy = cy;
  } else {
    const ids = new Set(elements.map((e) => e.data.id));
    cy.elements().filter((e) => !ids.has(e.id())).remove();
    for (const el of elements) {
      const existing = cy.getElementById(el.data.id);
      if (existing.nonempty()) existing.data(el.data); else cy.add(el);
    }
    cy.layout({ name: "breadthfirst", directed: true, padding: 20 }).run();
  }
}

async function refreshDeployments() {
  const list = await (await api("/api/deployments")).json();
  fill($("#deployments tbody"), list.items.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.name = d.name;
    tr.append(cell(d.name), cell(d.image), cell(d.replicas, "desired"),
              cell(d.status.running, "running-count"), cell(d.status.ready, "ready-count"),
              cell(d.status.state, d.status.state));
    const td = document.createElement("td");
    const input = document.createElement("input");
    input.type = "number"; input.min = d.min_replicas; input.max = d.max_replicas;
    input.value = d.replicas; input.className = "scale";
    const button = document.createElement("button");
    button.textContent = "Scale"; button.className = "scale-button";
    button.addEventListener("click", async () => {
      const r = await api(`/api/deployments/${d.name}/scale`, {
        method: "POST", body: JSON.stringify({ replicas: Number(input.value) }) });
      if (!r.ok) alert((await r.json()).detail);
      refreshAll();
    });
    td.append(input, button);
    tr.append(td);
    return tr;
  }));
}

async function refreshInstances() {
  const list = await (await api("/api/containers?limit=200")).json();
  fill($("#instances tbody"), list.items.map((c) => {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.append(cell(c.name), cell(c.state, c.state), cell(c.health, c.health),
              cell(c.endpoint));
    tr.addEventListener("click", () => { selectedInstance = c.name; refreshChart(); });
    return tr;
  }));
}

async function refreshChart() {
  if (!selectedInstance) return;
  $("#instance-panel").hidden = false;
  $("#instance-name").textContent = selectedInstance;
  const series = await (await api(`/api/metrics/${selectedInstance}?since=15m&step=5s`)).json();
  const labels = series.items.map((p) => new Date(p.at).toLocaleTimeString());
  const cpu = series.items.map((p) => p.cpu_percent);
  const memory = series.items.map((p) => p.memory_percent);
  if (!chart) {
    chart = new Chart($("#instance-chart"), {
      type: "line", data: { labels, datasets: [
        { label: "CPU %", data: cpu, borderColor: "#3366cc", tension: 0.2 },
        { label: "Memory %", data: memory, borderColor: "#dc3912", tension: 0.2 }] },
      options: { animation: false, scales: { y: { beginAtZero: true } } },
    });
  } else {
    chart.data.labels = labels;
    chart.data.datasets[0].data = cpu;
    chart.data.datasets[1].data = memory;
    chart.update();
  }
}

async function refreshJobs() {
  const list = await (await api("/api/jobs?limit=15")).json();
  fill($("#jobs tbody"), list.items.map((j) => {
    const tr = document.createElement("tr");
    const progress = j.progress ? `${j.progress.done}/${j.progress.total}` : "";
    tr.append(cell(j.kind), cell(j.target), cell(j.status, j.status), cell(progress),
              cell(j.requested_by));
    return tr;
  }));
}

async function refreshEvents() {
  const since = new Date(Date.now() - 15 * 60 * 1000).toISOString();
  const list = await (await api(`/api/events?since=${encodeURIComponent(since)}&limit=1000`)).json();
  $("#events").replaceChildren(...list.items.slice(-40).reverse().map((e) => {
    const li = document.createElement("li");
    li.textContent = `${new Date(e.at).toLocaleTimeString()} ${e.kind} ` +
      `${e.deployment || ""} ${e.container || ""} ${e.who ? "by " + e.who : ""}`;
    return li;
  }));
}

async function refreshAll() {
  try {
    await Promise.all([refreshMap(), refreshDeployments(), refreshInstances(), refreshJobs(),
                       refreshEvents(), refreshChart()]);
    $("#status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("#status").textContent = `update failed: ${err.message}`;
  }
}

let timer = null;
function start() {
  $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  refreshAll();
  timer = setInterval(refreshAll, 2000);  // live: polling every 2 s
}

function logout(reason) {
  sessionStorage.removeItem("harbormaster-token");
  clearInterval(timer);
  $("#login").hidden = false; $("#app").hidden = true; $("#logout").hidden = true;
  $("#login-error").textContent = reason || "";
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem("harbormaster-token", $("#token").value.trim());
  const r = await fetch("/api/jobs?limit=1", { headers: { "Authorization": `Bearer ${token()}` } });
  if (r.ok) start(); else logout("that token was refused");
});
$("#logout").addEventListener("click", () => logout());
if (token()) start();
