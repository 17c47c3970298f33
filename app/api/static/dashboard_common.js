// What every dashboard page shares (loaded before its own script): where the API key lives
// (sessionStorage; taken once from #key=..., which never reaches the server, and removed from the
// address bar at once), the bearer header it makes, and text-only elements (textContent, so no
// job message can inject markup).
"use strict";

const KEY_STORE = "tabjob.apiKey";

function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }
function authHeaders() { return apiKey() ? { Authorization: "Bearer " + apiKey() } : {}; }

function takeKeyFromHash() {
  const match = location.hash.match(/key=([^&]+)/);
  if (match) {
    sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}
