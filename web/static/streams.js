// Live streams on the dashboard: Server-Sent Events read with fetch(), because EventSource
// cannot send the Authorization header and the token never goes in a URL.
//
// SseFeed connects, parses events and calls onEvent(event) with {event, data, id}; when
// the connection ends or fails it connects again after a growing delay (never sooner than
// the server's Retry-After), resuming after the last id it saw (Last-Event-ID). A 401
// signs out; stop() ends it for good.
"use strict";

class SseFeed {
  constructor(path, onEvent, { resume = true, onEnd = null } = {}) {
    this.path = path; this.onEvent = onEvent; this.resume = resume; this.onEnd = onEnd;
    this.lastId = null; this.failures = 0; this.stopped = false; this.controller = null;
    this.timer = null;
  }

  start() { this.connect(); return this; }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
  }

  async connect() {
    if (this.stopped) return;
    this.controller = new AbortController();
    const headers = { "Authorization": `Bearer ${token()}`, "Accept": "text/event-stream" };
    if (this.resume && this.lastId) headers["Last-Event-ID"] = this.lastId;
    let retryAfter = null;
    try {
      const response = await fetch(this.path, { headers, signal: this.controller.signal });
      if (response.status === 401) { logout("The token was refused: sign in again."); return; }
      if (response.status === 410) this.lastId = null;   // too old: start from now
      if (!response.ok) {
        retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
        throw new Error(`HTTP ${response.status}`);
      }
      this.failures = 0;
      await this.read(response.body.getReader());
      if (!this.resume) { if (this.onEnd) this.onEnd(); return; }   // a log that ended
    } catch (err) {
      if (this.stopped) return;
      this.failures += 1;
    }
    const wait = Math.max(Math.min(60000, 2000 * 2 ** this.failures), (retryAfter || 0) * 1000);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  dispatch(block) {
    const event = { event: "message", data: [], id: null };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") event.data.push(value);
      else if (field === "event") event.event = value;
      else if (field === "id") event.id = value;
    }
    if (!event.data.length) return;
    if (event.id !== null) this.lastId = event.id;
    this.onEvent({ event: event.event, data: JSON.parse(event.data.join("\n")), id: event.id });
  }
}

// ---- the events panel: live from /api/events/stream (no polling) ------------------

const EVENTS_KEPT = 30;
let eventFeed = null;

function startEvents() {
  if (eventFeed) eventFeed.stop();
  $("#events").replaceChildren();
  eventFeed = new SseFeed("/api/events/stream", ({ data }) => addEvent(data)).start();
}

function stopEvents() {
  if (eventFeed) eventFeed.stop();
  eventFeed = null;
}

function addEvent(e) {
  const li = document.createElement("li");
  li.textContent = `${new Date(e.at).toLocaleTimeString()} ${e.kind} ${e.deployment || ""} ` +
    `${e.container || (e.detail || {}).node || ""} ${e.who ? "by " + e.who : ""}`;
  const list = $("#events");
  list.prepend(li);
  while (list.children.length > EVENTS_KEPT) list.lastChild.remove();
}

// ---- the log viewer: one instance's or one deployment's log, followed --------------

const LOG_LINES_KEPT = 500;
let logFeed = null;

function followLogs(kind, name) {
  stopLogs();
  $("#logs-panel").hidden = false;
  $("#logs-title").textContent = `${kind} ${name}`;
  $("#log-lines").replaceChildren();
  const base = kind === "deployment" ? "/api/deployments" : "/api/containers";
  const path = `${base}/${encodeURIComponent(name)}/logs?follow=true&tail=100`;
  logFeed = new SseFeed(path, showLog, { resume: false,
    onEnd: () => addLogLine("-- the stream ended", "note") }).start();
}

function stopLogs() {
  if (logFeed) logFeed.stop();
  logFeed = null;
}

function showLog({ event, data }) {
  const prefix = data.instance ? `${data.instance} | ` : "";
  if (event === "stdout" || event === "stderr") addLogLine(prefix + data.line, event);
  else if (event === "instance") addLogLine(`-- ${data.instance} on ${data.node}: ${data.state}` +
                                            (data.reason ? ` (${data.reason})` : ""), "note");
  else if (event === "end") addLogLine(`-- ${data.reason}`, "note");
  else if (event === "dropped") addLogLine(`-- ${data.lines} lines dropped`, "note");
}

function addLogLine(text, cls) {
  const box = $("#log-lines");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  const div = document.createElement("div");
  div.className = cls;
  div.textContent = text;
  box.append(div);
  while (box.children.length > LOG_LINES_KEPT) box.firstChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;   // follow unless the user scrolled up
}
