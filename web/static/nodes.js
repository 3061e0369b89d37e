// Harbormaster dashboard: the nodes panel, drawn from the summary's "nodes" (no request of
// its own). Each node is a card: its status (a down node in red), its availability when it
// takes no new instances (paused, draining, drained), bars of the CPU and memory its
// instances reserve of what it offers, its instance count, heartbeat and Docker version.
// dashboard.js calls renderNodes before the instance table, whose node cells use nodeCell.
"use strict";

let nodeStatus = new Map();   // node name -> status, for the instance table's node cells

function bytes(count) {
  let value = count || 0;
  for (const unit of ["B", "KiB", "MiB", "GiB"]) {
    if (value < 1024) return unit === "B" ? `${value} B` : `${+value.toPrecision(3)} ${unit}`;
    value /= 1024;
  }
  return `${+value.toPrecision(3)} TiB`;
}

function cores(value) { return `${+(value || 0).toFixed(2)}`; }

// A bar of `used` of `total` (role meter: the figures are in its aria attributes too).
function meter(kind, label, used, total, shown) {
  const share = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const row = document.createElement("div");
  row.className = `meter ${kind}`;
  const name = document.createElement("span");
  name.className = "meter-label"; name.textContent = label;
  const bar = document.createElement("div");
  bar.className = `bar${share >= 90 ? " full" : ""}`;
  bar.setAttribute("role", "meter");
  bar.setAttribute("aria-label", `${label} reserved`);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", String(total));
  bar.setAttribute("aria-valuenow", String(used));
  const fill = document.createElement("div");
  fill.className = "fill"; fill.style.width = `${share}%`;
  bar.append(fill);
  const figure = document.createElement("span");
  figure.className = "figure"; figure.textContent = `${shown(used)} / ${shown(total)}`;
  row.title = `${label}: ${shown(used)} reserved of ${shown(total)} (${Math.round(share)}%)`;
  row.append(name, bar, figure);
  return row;
}

function badge(text, cls) {
  const span = document.createElement("span");
  span.className = `badge ${cls}`; span.textContent = text;
  return span;
}

// Swarm's availability words, as a person reads them: a drain in progress or done.
function availabilityText(n) {
  if (n.availability === "pause") return "paused";
  if (n.availability === "drain") return n.instances ? "draining" : "drained";
  return null;
}

function nodeCard(n) {
  const card = document.createElement("article");
  card.className = `node-card ${n.status}`;
  card.dataset.name = n.name;
  const head = document.createElement("div");
  head.className = "node-head";
  const name = document.createElement("strong");
  name.className = "node-name"; name.textContent = n.name;
  head.append(name, badge(n.status, `status ${n.status}`));
  const availability = availabilityText(n);
  if (availability) head.append(badge(availability, `availability ${n.availability}`));
  const docker = n.docker || {};
  const facts = document.createElement("p");
  facts.className = "facts";
  const labels = Object.entries(n.labels || {}).map(([k, v]) => `${k}=${v}`).sort().join(", ");
  facts.textContent = [
    `${n.instances} instance${n.instances === 1 ? "" : "s"}`,
    `heartbeat ${Math.round(n.heartbeat_age)} s ago`,
    docker.ok ? `Docker ${docker.version || "?"}`
      : `Docker unusable${docker.error ? ": " + docker.error : ""}`,
    labels,
  ].filter(Boolean).join(" · ");
  card.append(head,
              meter("cpu", "CPU", n.reserved.cpus, n.capacity.cpus, cores),
              meter("memory", "Memory", n.reserved.memory, n.capacity.memory, bytes),
              facts);
  if (n.status === "down" && n.down_since) {
    card.title = `down since ${new Date(n.down_since).toLocaleTimeString()}`;
  }
  return card;
}

function renderNodes(list) {
  nodeStatus = new Map(list.map((n) => [n.name, n.status]));
  $("#nodes").replaceChildren(...list.map(nodeCard));
}

// The instance table's node cell: red when that node is down (its instances are unknown).
function nodeCell(name) { return cell(name, `node ${nodeStatus.get(name) || ""}`); }
