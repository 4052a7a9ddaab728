// The dashboard's entry point: routes (#/ grid, #/add, #/camera/{id}, #/camera/{id}/edit),
// the header's totals, and the API key prompt.

import { setKeyPrompt, setApiKey, openSession } from "./api.js";
import { setText } from "./dom.js";
import { store, subscribe, connectDashboard, refreshCameras } from "./live.js";
import { renderGrid } from "./grid.js";
import { renderCamera } from "./camera.js";
import { renderForm } from "./form.js";

const view = document.getElementById("view");
let cleanup = () => {};
let generation = 0;

async function route() {
  cleanup();
  cleanup = () => {};
  const mine = ++generation;
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch (_) { return p; }
  });
  let done;
  if (parts.length === 0) {
    document.title = "camgate";
    done = renderGrid(view);
  } else if (parts[0] === "add" && parts.length === 1) {
    document.title = "Add camera · camgate";
    done = await renderForm(view, null);
  } else if (parts[0] === "camera" && parts.length === 2) {
    document.title = `${parts[1]} · camgate`;
    done = await renderCamera(view, parts[1]);
  } else if (parts[0] === "camera" && parts.length === 3 && parts[2] === "edit") {
    document.title = `Edit ${parts[1]} · camgate`;
    done = await renderForm(view, parts[1]);
  } else {
    location.hash = "#/";
    return;
  }
  // A newer navigation happened while this one loaded: undo this one at once.
  if (mine !== generation) done();
  else cleanup = done;
}

function showStats() {
  const el = document.getElementById("stats");
  const s = store.stats;
  if (!s) { setText(el, ""); return; }
  setText(el, `${s.cameras ?? store.cameras.length} cameras · ${s.cameras_online ?? 0} online · ${s.total_viewers ?? 0} viewers`);
}

/** Asks for an API key in a modal dialog; resolves true when one was entered. */
let pending = null;
function askForKey(reason) {
  if (pending) return pending;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  const error = document.getElementById("key-error");
  setText(error, reason || "");
  input.value = "";
  pending = new Promise((resolve) => {
    const form = document.getElementById("key-form");
    const onSubmit = (e) => {
      e.preventDefault();
      if (!input.value) { setText(error, "Enter a key."); return; }
      setApiKey(input.value.trim());
      form.removeEventListener("submit", onSubmit);
      dialog.close();
      pending = null;
      resolve(true);
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("cancel", () => {
      form.removeEventListener("submit", onSubmit);
      pending = null;
      resolve(false);
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return pending;
}

setKeyPrompt(askForKey);
subscribe((what) => { if (what === "stats" || what === "cameras") showStats(); });
window.addEventListener("hashchange", route);
// A key kept from earlier in this tab renews the session cookie before sockets and players
// open (the cookie may have expired); without one, the first 401 asks for a key.
openSession().finally(() => {
  connectDashboard();
  refreshCameras().then(route);
});
