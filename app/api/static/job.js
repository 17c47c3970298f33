// The dashboard's page per job: GET /v1/history/{id} (status, steps, timings, parameters,
// metrics, events, error with its hint, links), refreshed while the job has not ended. As on the
// dashboard, everything is written with textContent and the key lives in sessionStorage.
"use strict";

const POLL_MS = 2000;
const ENDED = ["finished", "failed", "canceled"];

function seconds(value) {
  if (value === null || value === undefined) return "";
  return value < 60 ? value.toFixed(2) + " s" : Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
}

function facts(id, pairs) {
  const dl = document.getElementById(id);
  dl.replaceChildren();
  const shown = pairs.filter(([, value]) => value !== null && value !== undefined && value !== "");
  if (shown.length === 0) dl.appendChild(el("dd", "none", "muted"));
  for (const [name, value] of shown) {
    dl.appendChild(el("dt", name));
    const dd = el("dd");
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
    dl.appendChild(dd);
  }
}

function link(path) {
  const a = el("a", path, "code");
  a.href = path;
  return a;
}

function rows(id, items, emptyText, cells) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (items.length === 0) {
    const tr = el("tr", null, "empty");
    const td = el("td", emptyText);
    td.colSpan = document.querySelectorAll("#" + id + " thead th").length;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  for (const item of items) {
    const tr = el("tr");
    for (const cell of cells(item)) tr.appendChild(el("td", cell));
    body.appendChild(tr);
  }
}

function span(start, end) {
  return start && end ? seconds((Date.parse(end) - Date.parse(start)) / 1000) : "";
}

function render(record) {
  const job = record.job;
  document.title = "tabjob " + job.id;
  document.getElementById("job-id").textContent = job.id;
  const status = document.getElementById("job-status");
  status.textContent = job.status + (job.phase && job.phase !== job.status ? " (" + job.phase + ")" : "");
  status.className = "status-" + job.status;
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  facts("facts", [
    ["status", job.status], ["kind", job.kind], ["model family", job.kind === "fit" ? job.model : ""],
    ["lane", job.lane], ["tenant", job.tenant], ["attempts", job.attempts],
    ["progress", job.progress === null ? "" : Math.round(job.progress * 100) + "%"],
    ["created", new Date(job.created_at).toLocaleString()],
    ["started", job.started_at ? new Date(job.started_at).toLocaleString() : ""],
    ["ended", job.ended_at ? new Date(job.ended_at).toLocaleString() : ""],
    ["why it waits", job.queue ? job.queue.reason : ""],
    ["expected start", expectedStart(job.expected_start)],
    ["dataset", record.links.dataset ? link(record.links.dataset) : ""],
    ["model", record.links.model ? link(record.links.model) : ""],
  ]);
  const error = document.getElementById("error");
  document.getElementById("error-section").hidden = !job.error;
  if (job.error) {
    error.replaceChildren(el("strong", job.error.code), document.createTextNode(": " + job.error.message));
    if (job.error.hint) error.appendChild(el("div", "What to do: " + job.error.hint, "hint"));
  }
  rows("steps", job.steps || [], "one step", (s) =>
    [s.name, s.lane, s.status, s.device || "", s.attempts, span(s.started_at, s.ended_at)]);
  const phases = Object.entries(record.timings.phases || {}).map(([name, value]) => [name, seconds(value)]);
  facts("timings", [["waited", seconds(record.timings.waited_s)], ["ran", seconds(record.timings.ran_s)], ...phases]);
  facts("params", Object.entries(job.params || {}).map(([name, value]) => [name, JSON.stringify(value)]));
  const result = job.result || {};
  const validation = result.validation || {};
  facts("metrics", [
    [validation.metric || "score", validation.score], ["split", validation.split], ["rows", result.rows],
    ["iterations", result.iterations], ["classes", result.classes ? result.classes.length : ""],
    ["duration", seconds(result.duration_s)], ["model size (bytes)", result.model_bytes],
  ]);
  rows("events", record.events, "no events", (e) =>
    [e.seq, new Date(e.at).toLocaleTimeString(), e.type, e.step || "", e.phase || "", e.message || ""]);
  document.getElementById("logs-command").textContent = "tabjob logs " + job.id + (ENDED.includes(job.status) ? "" : " -f");
  return ENDED.includes(job.status);
}

// "in 2 min 5 s (12:03:10, between 12:02:50 and 12:04:00)", or why there is no time.
function expectedStart(expected) {
  if (!expected) return "";
  if (!expected.at) return expected.reason;
  const at = (value) => new Date(value).toLocaleTimeString();
  let text = "in " + seconds(expected.in_s) + " (" + at(expected.at) + ", between " + at(expected.low) +
    " and " + at(expected.high) + ")";
  if (expected.unestimated) text += "; " + expected.unestimated + " job(s) ahead have no estimate yet";
  return text;
}

// The job's log lines, read from where the last read ended (GET /v1/history/{id}/logs?since=).
let logSince = null;
let logComplete = false;

async function refreshLogs(id, headers) {
  const query = logSince ? "?since=" + encodeURIComponent(logSince) : "";
  const response = await fetch("/v1/history/" + encodeURIComponent(id) + "/logs" + query, { headers, cache: "no-store" });
  if (!response.ok) return;
  const page = await response.json();
  const body = document.querySelector("#log tbody");
  if (logSince === null) body.replaceChildren();
  if (logSince === null && page.items.length === 0) {
    const tr = el("tr", null, "empty");
    const td = el("td", "no log lines yet");
    td.colSpan = 6;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  if (page.items.length > 0) body.querySelectorAll("tr.empty").forEach((tr) => tr.remove());
  for (const line of page.items) {
    const tr = el("tr", null, "level-" + line.level);
    const time = line.time ? new Date(line.time).toLocaleTimeString() : "";
    for (const cell of [time, line.attempt, line.step || "", line.source, line.level, line.message]) {
      tr.appendChild(el("td", String(cell)));
    }
    body.appendChild(tr);
  }
  logSince = page.next_since || logSince;
  logComplete = page.complete;
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

async function refresh() {
  const id = new URLSearchParams(location.search).get("id") || "";
  const headers = authHeaders();
  let ended = false;
  try {
    const response = await fetch("/v1/history/" + encodeURIComponent(id), { headers, cache: "no-store" });
    const body = await response.json();
    if (!response.ok) {
      const error = body.error || {};
      showProblem((error.message || response.statusText) + (error.hint ? " " + error.hint : "") +
        (response.status === 401 ? " Open the dashboard and enter an API key." : ""));
    } else {
      showProblem("");
      ended = render(body);
      await refreshLogs(id, headers);
    }
  } catch (err) {
    showProblem("Cannot reach the API: " + err);
  }
  // An ended job's last log lines are written just after its end: read until they are all in.
  if (!ended || !logComplete) setTimeout(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromHash();
  refresh();
});
