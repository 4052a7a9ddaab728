// What the page knows about the cameras, kept current: the list from GET /cameras, each
// camera's status, and the totals. Updates come from WS /ws/dashboard (states, camera
// changes, totals) and WS /ws/events/{path} (status, viewers) while a camera is shown; when a
// socket cannot be opened the same data is polled from the REST API instead.

import { api, wsUrl } from "./api.js";

export const store = {
  cameras: [],           // camera info objects, in the API's order
  status: new Map(),     // camera_id -> status object
  stats: null,           // /ws/dashboard totals (or GET /stats)
  error: null,           // why the list could not be loaded
};

const listeners = new Set();
export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function changed(what) { for (const fn of [...listeners]) fn(what); }

const POLL_MS = 3000;
const STATUS_MS = 2000;

export function byId(id) { return store.cameras.find((c) => c.camera_id === id); }

export async function refreshCameras() {
  const r = await api("GET", "/cameras");
  if (r.ok && Array.isArray(r.data)) {
    store.cameras = r.data;
    store.error = null;
    const ids = new Set(r.data.map((c) => c.camera_id));
    for (const id of [...store.status.keys()]) if (!ids.has(id)) store.status.delete(id);
  } else {
    store.error = r.error ? r.error.message : "cannot load the cameras";
  }
  changed("cameras");
}

export async function refreshStatus(id) {
  const r = await api("GET", `/cameras/${encodeURIComponent(id)}/status`);
  if (r.ok && r.data) mergeStatus(id, r.data);
}

function mergeStatus(id, patch) {
  const old = store.status.get(id) || {};
  store.status.set(id, { ...old, ...patch });
  changed(id);
}

async function refreshStats() {
  const r = await api("GET", "/stats");
  if (r.ok && r.data) { store.stats = r.data; changed("stats"); }
}

/** Keeps the list, the states and the totals current for the life of the page. */
export function connectDashboard() {
  let poll = null;
  const startPolling = () => {
    if (poll) return;
    poll = setInterval(async () => {
      await refreshCameras();
      await refreshStats();
      await Promise.all(store.cameras.map((c) => refreshStatus(c.camera_id)));
    }, POLL_MS);
  };
  const open = () => {
    let ws;
    try { ws = new WebSocket(wsUrl("/ws/dashboard")); } catch (_) { startPolling(); return; }
    ws.onopen = () => {
      if (poll) { clearInterval(poll); poll = null; }
      refreshCameras().then(() => Promise.all(store.cameras.map((c) => refreshStatus(c.camera_id))));
    };
    ws.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      if (e.type === "stats" && e.data) { store.stats = e.data; changed("stats"); }
      else if (e.type === "state" && e.camera_id) {
        mergeStatus(e.camera_id, { state: e.state, online: e.online, reason: e.reason });
      } else if (e.type === "camera") {
        refreshCameras();
        if (e.action !== "deleted" && e.camera_id) refreshStatus(e.camera_id);
      }
    };
    ws.onerror = () => {};
    ws.onclose = () => { startPolling(); setTimeout(open, POLL_MS * 2); };
  };
  refreshCameras().then(() => Promise.all(store.cameras.map((c) => refreshStatus(c.camera_id))));
  refreshStats();
  open();
}

/** Follows one camera's status and viewers while it is on screen; returns stop(). */
export function watchCamera(camera) {
  const id = camera.camera_id;
  let stopped = false;
  let ws = null;
  let timer = null;
  const poll = () => {
    clearInterval(timer);
    refreshStatus(id);
    timer = setInterval(() => refreshStatus(id), STATUS_MS);
  };
  try {
    ws = new WebSocket(wsUrl(`/ws/events/${encodeURIComponent(camera.stream_path)}`));
  } catch (_) {
    poll();
  }
  if (ws) {
    ws.onopen = () => {
      ws.send("status");
      timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("status"), STATUS_MS);
    };
    ws.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      if (e.type === "status") {
        const { type: _t, ts: _ts, ...status } = e;
        mergeStatus(id, status);
      } else if (e.type === "state") {
        mergeStatus(id, { state: e.state, online: e.online, reason: e.reason });
      } else if (e.type === "viewers") {
        mergeStatus(id, { viewers: e.viewers });
      }
    };
    ws.onerror = () => {};
    ws.onclose = () => { if (!stopped) poll(); };
  }
  return () => {
    stopped = true;
    clearInterval(timer);
    if (ws) { ws.onclose = null; ws.close(); }
  };
}
