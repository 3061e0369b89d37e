// Harbormaster dashboard: the images panel, drawn from the summary's "images" (no request of
// its own). One table per node, as its engine last listed them: each image's tags (or
// <none>), short id, size, how long ago it was created and last used here, and the
// deployments (else the containers) made from it. An image nothing uses is marked "unused".
// dashboard.js calls renderImages; bytes() comes from nodes.js.
"use strict";

function agoText(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return `${Math.floor(seconds)} s ago`;
}

function usedBy(i) {
  if (i.deployments.length) return i.deployments.join(", ");
  return i.containers.join(", ");
}

function imageRow(i) {
  const tr = document.createElement("tr");
  tr.dataset.node = i.node;
  tr.dataset.id = i.short_id;
  const users = usedBy(i);
  tr.append(cell(i.tags.length ? i.tags.join(", ") : "<none>", "image"),
            cell(i.short_id, "image-id"), cell(bytes(i.size), "size"),
            cell(agoText(i.created), "created"), cell(agoText(i.last_used), "last-used"),
            cell(users || "unused", users ? "used-by" : "used-by unused"));
  return tr;
}

function imageTable(node, list) {
  const section = document.createElement("section");
  section.className = "node-images";
  section.dataset.node = node;
  const title = document.createElement("h3");
  const total = list.reduce((sum, i) => sum + (i.size || 0), 0);
  title.textContent = `${node} · ${list.length} image${list.length === 1 ? "" : "s"} · ` +
    bytes(total);
  const table = document.createElement("table");
  table.className = "images";
  const head = document.createElement("thead");
  head.innerHTML = "<tr><th>tags</th><th>id</th><th>size</th><th>created</th>" +
    "<th>last used</th><th>used by</th></tr>";
  const body = document.createElement("tbody");
  body.append(...list.map(imageRow));
  table.append(head, body);
  section.append(title, table);
  return section;
}

function renderImages(list, truncated) {
  const byNode = new Map();
  for (const i of list) {
    if (!byNode.has(i.node)) byNode.set(i.node, []);
    byNode.get(i.node).push(i);
  }
  $("#images").replaceChildren(...[...byNode.keys()].sort()
    .map((node) => imageTable(node, byNode.get(node))));
  $("#images-truncated").hidden = !truncated;
}
