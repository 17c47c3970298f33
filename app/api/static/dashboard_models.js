// The dashboard's "Models" section: the key's tenant's newest models (GET /v1/models) with what
// each learned and every metric on its held-out rows and evaluation dataset. Its own file and
// poll beside dashboard.js (which renders /v1/overview); the key and its header come from
// dashboard_common.js.
// Text only (textContent): nothing from the API is ever parsed as markup.
"use strict";

const MODELS_POLL_MS = 5000;
const MODELS_SHOWN = 20;
const METRIC_KEYS = ["accuracy", "log_loss", "roc_auc", "f1", "r2", "rmse", "mae"];

function metricText(scores) {
  if (!scores) return "";
  return METRIC_KEYS.filter((k) => k in scores)
    .map((k) => k + " " + (scores[k] === null ? "n/a" : Number(scores[k]).toFixed(4)))
    .join(", ");
}

function modelCell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function modelRow(model) {
  const tr = document.createElement("tr");
  tr.setAttribute("data-model-id", model.id);
  const validation = model.validation || {};
  const learned = model.task === "regression"
    ? "regression" : (model.classes || []).length + " classes";
  const heldOut = validation.split === "early_stopping"
    ? metricText(validation) + " (" + validation.rows + " rows)" : "no rows held out";
  const evaluation = validation.evaluation
    ? metricText(validation.evaluation) + " (" + validation.evaluation.dataset_id + ", " +
      validation.evaluation.rows + " rows)" : "";
  const cells = [model.id, model.target, learned, model.family, model.rows, heldOut, evaluation,
    model.trained_at ? model.trained_at.replace("T", " ").slice(0, 19) : ""];
  cells.forEach((text, i) => tr.appendChild(modelCell(text, i === 4 ? "num" : "")));
  return tr;
}

async function refreshModels() {
  const headers = authHeaders();  // dashboard_common.js
  const body = document.querySelector("#models tbody");
  try {
    const response = await fetch("/v1/models?limit=" + MODELS_SHOWN, { headers, cache: "no-store" });
    if (response.ok) {
      const items = (await response.json()).items;
      body.replaceChildren(...items.map(modelRow));
      if (items.length === 0) {
        const tr = document.createElement("tr");
        const td = modelCell("No models yet.");
        td.colSpan = document.querySelectorAll("#models thead th").length;
        tr.className = "empty";
        tr.appendChild(td);
        body.appendChild(tr);
      }
    }
  } catch (err) {
    // dashboard.js already says when the API cannot be reached
  }
  setTimeout(refreshModels, MODELS_POLL_MS);
}

document.addEventListener("DOMContentLoaded", refreshModels);
