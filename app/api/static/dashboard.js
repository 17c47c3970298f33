// The tabjob dashboard: polls GET /v1/overview and renders it. No framework, no build step,
// nothing loaded from anywhere but this API. Data is written with textContent only, so job
// messages can never inject markup. The API key (if the API needs one) is kept in
// sessionStorage: typed into the form, or passed once as #key=... in the URL, which is never
// sent to the server and is removed from the address bar at once.
"use strict";

const POLL_MS = 2000;

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function progressCell(progress) {
  const td = el("td");
  if (progress === null || progress === undefined) return td;
  const bar = el("span", null, "bar");
  const fill = el("span");
  fill.style.width = Math.round(progress * 100) + "%";
  bar.appendChild(fill);
  td.appendChild(bar);
  td.appendChild(document.createTextNode(Math.round(progress * 100) + "%"));
  return td;
}

function fillTable(id, rows, emptyText, makeRow) {
  const body = document.querySelector("#" + id + " tbody");
  const columns = document.querySelectorAll("#" + id + " thead th").length;
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = el("tr", null, "empty");
    const td = el("td", emptyText);
    td.colSpan = columns;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const row of rows) body.appendChild(makeRow(row));
}

function row(cells, attrs) {
  const tr = el("tr");
  for (const [name, value] of Object.entries(attrs || {})) tr.setAttribute(name, value);
  for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function num(value) { return el("td", value, "num"); }
function admin(value) { return el("td", value, "admin"); }

function render(view) {
  document.body.classList.toggle("admin", view.viewer.admin);
  document.getElementById("scope").textContent =
    view.viewer.admin ? "all tenants (admin)" : "tenant " + view.viewer.tenant;
  document.getElementById("updated").textContent =
    "updated " + new Date(view.generated_at * 1000).toLocaleTimeString();
  document.getElementById("running-count").textContent = "(" + view.running.length + ")";
  document.getElementById("waiting-count").textContent = "(" + view.waiting.length + ")";
  document.getElementById("failure-window").textContent =
    "(last " + duration(view.failure_window_s) + ", by error code)";

  fillTable("lanes", view.lanes, "no lanes", (l) => row(
    [el("td", l.lane, "code"), num(l.queued), num(l.running), num(l.messages), num(l.delayed_messages),
     num(duration(l.oldest_queued_age_s)), num(l.busy_workers + " / " + l.workers)],
    { "data-lane": l.lane }));
  fillTable("running", view.running, "nothing runs", (j) => row(
    [el("td", j.id, "code"), el("td", j.kind), el("td", j.lane), el("td", j.step), el("td", j.phase),
     progressCell(j.progress), num(duration(j.for_s)), num(j.attempts), el("td", j.worker, "code"),
     admin(j.tenant)],
    { "data-job-id": j.id }));
  fillTable("waiting", view.waiting, "nothing waits", (j) => row(
    [el("td", j.id, "code"), el("td", j.kind), el("td", j.lane), num(j.queue ? j.queue.position : ""),
     num(duration(j.for_s)), el("td", j.queue ? j.queue.reason : ""), admin(j.tenant)],
    { "data-job-id": j.id }));
  fillTable("failures", view.failures, "no failures", (f) => row(
    [el("td", f.code, "code"), num(f.count), el("td", new Date(f.last_at * 1000).toLocaleString()),
     el("td", f.lanes.join(", ")), el("td", f.message), el("td", f.hint || ""),
     el("td", f.job_ids.join(" "), "code")],
    { "data-code": f.code }));
  fillTable("workers", view.workers, "no live worker", (w) => row(
    [el("td", w.id, "code"), el("td", w.lane), el("td", w.busy ? "busy" : "idle", w.busy ? "busy" : "idle"),
     el("td", w.busy ? (w.job_id || "another tenant's job") : "", "code"), num(duration(w.heartbeat_age_s) + " ago")],
    { "data-worker": w.id }));
}

// ---- history: recent jobs of every status, filtered and paged (GET /v1/history)
const historyState = { cursor: null, older: [], next: null };

function jobLink(id) {
  const td = el("td", null, "code");
  const a = el("a", id);
  a.href = "/dashboard/job?id=" + encodeURIComponent(id);
  td.appendChild(a);
  return td;
}

function historyQuery() {
  const params = new URLSearchParams();
  for (const field of document.getElementById("history-filter").elements) {
    if (field.name && field.value) params.set(field.name, field.value.trim());
  }
  if (historyState.cursor) params.set("cursor", historyState.cursor);
  params.set("limit", "25");
  return params.toString();
}

function outcome(job) {
  if (job.error) return job.error.code + ": " + job.error.message;
  if (job.queue) return job.queue.reason;
  return job.phase || "";
}

function renderHistory(page) {
  historyState.next = page.next_cursor;
  document.getElementById("history-count").textContent =
    "(" + page.items.length + (page.next_cursor ? ", more older" : "") + ")";
  document.getElementById("history-older").disabled = !page.next_cursor;
  fillTable("history", page.items, "no job matches", (j) => {
    const ran = j.started_at && j.ended_at ? (Date.parse(j.ended_at) - Date.parse(j.started_at)) / 1000 : null;
    return row(
      [jobLink(j.id), el("td", j.status, "status-" + j.status), el("td", j.kind), el("td", j.kind === "fit" ? j.model : ""),
       el("td", j.lane), el("td", new Date(j.created_at).toLocaleString()), num(duration(ran)), el("td", outcome(j)),
       admin(j.tenant)],
      { "data-history-id": j.id, "data-status": j.status });
  });
}

async function refreshHistory(headers) {
  const response = await fetch("/v1/history?" + historyQuery(), { headers, cache: "no-store" });
  if (response.ok) renderHistory(await response.json());
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

async function refresh() {
  const headers = authHeaders();
  try {
    const response = await fetch("/v1/overview", { headers, cache: "no-store" });
    const body = await response.json();
    if (!response.ok) {
      const error = body.error || {};
      showProblem((error.message || response.statusText) + (error.hint ? " " + error.hint : "") +
        (response.status === 401 ? " Enter an API key above." : ""));
    } else {
      showProblem("");
      render(body);
      await refreshHistory(headers);
    }
  } catch (err) {
    showProblem("Cannot reach the API: " + err);
  }
  setTimeout(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromHash();
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key-input");
    if (input.value.trim()) sessionStorage.setItem(KEY_STORE, input.value.trim());
    input.value = "";
  });
  document.getElementById("key-forget").addEventListener("click", () => sessionStorage.removeItem(KEY_STORE));
  document.getElementById("history-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    historyState.cursor = null;
    historyState.older = [];
    refreshHistory(authHeaders());
  });
  document.getElementById("history-newest").addEventListener("click", () => {
    historyState.cursor = null;
    historyState.older = [];
    refreshHistory(authHeaders());
  });
  document.getElementById("history-older").addEventListener("click", () => {
    if (!historyState.next) return;
    historyState.older.push(historyState.cursor);
    historyState.cursor = historyState.next;
    refreshHistory(authHeaders());
  });
  // Filters can come in the address (/dashboard?status=failed&lane=large), to share a view.
  const wanted = new URLSearchParams(location.search);
  for (const field of document.getElementById("history-filter").elements) {
    if (field.name && wanted.get(field.name)) field.value = wanted.get(field.name);
  }
  refresh();
});
