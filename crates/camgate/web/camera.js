// One camera's page: its live video, its status in detail, its last error in words, the URLs
// a user can copy, its settings, and the way to edit or delete it.

import { api, wsUrl } from "./api.js";
import { h, setText, clear, updateBadge, fmtRate } from "./dom.js";
import { play } from "./player.js";
import { store, subscribe, watchCamera, refreshCameras, byId } from "./live.js";
import { recordingsSection } from "./recordings.js";

const STATE_WORDS = {
  idle: "Idle: on demand, nobody is watching, so the camera is not connected.",
  starting: "Connecting to the camera.",
  live: "Live: video is flowing.",
  reconnecting: "The camera was lost; camgate is reconnecting.",
  unauthorized: "The camera refused the user name or password.",
  unreachable: "The camera cannot be reached (address, port or network).",
  error: "The camera failed; see the last error.",
};

export async function renderCamera(root, id) {
  clear(root);
  if (!byId(id)) await refreshCameras();
  const camera = byId(id);
  if (!camera) {
    root.append(h("p", { class: "empty" }, `There is no camera with the id “${id}”. `, h("a", { href: "#/" }, "Back to the grid")));
    return () => {};
  }
  const path = encodeURIComponent(camera.stream_path);
  const origin = location.origin;
  const urls = [
    ["HLS", `${origin}/hls/${path}/index.m3u8`],
    ["MSE (WebSocket)", wsUrl(`/mse/${path}`)],
    ["WebRTC (WHEP)", `${origin}/webrtc/${path}/whep`],
    ["Snapshot", `${origin}/cameras/${encodeURIComponent(id)}/snapshot.jpg`],
    ["Events (WebSocket)", wsUrl(`/ws/events/${path}`)],
  ];

  const title = h("h1", {}, camera.name);
  const state = h("span", { class: "badge" });
  const words = h("p", { class: "state-words" });
  const video = h("video", { muted: true, playsinline: true, autoplay: true, "aria-label": `Live video of ${camera.name}` });
  video.muted = true;
  const problem = h("p", { class: "problem" });
  const statusList = h("dl", { class: "facts" });
  const del = h("button", { type: "button", class: "danger" }, "Delete camera");
  // "Snapshot": the current picture as JPEG, shown here with a link to the file (a grid of
  // idle cameras, a report); it starts an idle on-demand camera for a moment.
  const snapButton = h("button", { type: "button", class: "snapshot" }, "Snapshot");
  const snapBox = h("figure", { class: "snapshot-box", hidden: true });
  const snapError = h("p", { class: "field-error", role: "alert" });
  snapButton.addEventListener("click", async () => {
    setText(snapError, "");
    snapButton.disabled = true;
    const url = `/cameras/${encodeURIComponent(id)}/snapshot.jpg?t=${Date.now()}`;
    try {
      const res = await fetch(url);
      if (!res.ok) {
        let why = `snapshot failed (${res.status})`;
        try { why = (await res.json()).error.message; } catch (_) { /* not JSON */ }
        setText(snapError, why);
        return;
      }
      const blobUrl = URL.createObjectURL(await res.blob());
      clear(snapBox);
      snapBox.append(
        h("img", { src: blobUrl, alt: `Snapshot of ${camera.name}` }),
        h("figcaption", {}, `Frame of ${res.headers.get("x-frame-time") || "now"} `,
          h("a", { href: blobUrl, download: `${camera.camera_id}.jpg` }, "Download")));
      snapBox.hidden = false;
    } catch (e) {
      setText(snapError, `snapshot failed: ${e.message}`);
    } finally {
      snapButton.disabled = false;
    }
  });
  const delError = h("p", { class: "field-error", role: "alert" });

  const settings = [
    ["Camera id", camera.camera_id],
    ["Name", camera.name],
    ["RTSP URL", camera.rtsp_url],
    ["Stream path", camera.stream_path],
    ["On demand", camera.on_demand ? "yes" : "no (always connected)"],
    ["Record", camera.record ? "yes" : "no"],
    ["Transport", camera.transport],
    ["Idle timeout", camera.idle_timeout_seconds == null ? "server default" : `${camera.idle_timeout_seconds} s`],
    ["Created", camera.created_at],
    ["Updated", camera.updated_at],
  ];

  // Recorded video takes the page's video over until "Live" (recordings.js).
  let recordedUrl = null;
  const recordings = camera.record ? recordingsSection(camera, video, {
    recorded(url) {
      if (stopPlay) { stopPlay(); stopPlay = null; }
      recordedUrl = url;
      video.src = url;
      video.play().catch(() => {});
    },
    live() {
      recordedUrl = null;
      video.removeAttribute("src");
      video.load();
      sync();
    },
  }) : null;

  root.append(
    h("p", {}, h("a", { href: "#/" }, "← All cameras")),
    h("div", { class: "camera-head" }, title, state,
      h("a", { class: "button", href: `#/camera/${encodeURIComponent(id)}/edit` }, "Edit"), snapButton, del),
    delError,
    snapError,
    snapBox,
    words,
    h("div", { class: "camera-body" },
      h("div", { class: "video-box large" }, video),
      h("section", { "aria-label": "Status" }, h("h2", {}, "Status"), statusList)),
    problem,
    ...(recordings ? [recordings.el] : []),
    h("section", { "aria-label": "URLs" }, h("h2", {}, "URLs"),
      h("ul", { class: "urls" }, urls.map(([label, url]) => urlRow(label, url)))),
    h("section", { "aria-label": "Settings" }, h("h2", {}, "Settings"),
      h("dl", { class: "facts" }, settings.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
  );

  del.addEventListener("click", async () => {
    if (!confirm(`Delete camera “${camera.name}”? Its recordings stay on disk until retention removes them.`)) return;
    const r = await api("DELETE", `/cameras/${encodeURIComponent(id)}`);
    if (r.ok || r.status === 404) { await refreshCameras(); location.hash = "#/"; }
    else setText(delError, r.error.message);
  });

  function update() {
    const s = store.status.get(id) || {};
    updateBadge(state, s.state);
    setText(words, STATE_WORDS[s.state] || "");
    clear(statusList);
    const facts = [
      ["State", s.state || "unknown"],
      ["Rate", fmtRate(s) || "—"],
      ["Viewers", s.viewers ?? "—"],
      ["Codec", s.codec || "—"],
      ["Resolution", s.resolution || "—"],
      ["Uptime", s.uptime_seconds != null ? `${s.uptime_seconds} s` : "—"],
      ["Dropped frames", s.dropped_frames ?? "—"],
      ["Last frame", s.last_frame_at || "—"],
      ["Last error", s.last_error || "none"],
    ];
    for (const [k, v] of facts) statusList.append(h("dt", {}, k), h("dd", {}, v));
  }
  const unsubscribe = subscribe((what) => { if (what === id) update(); });
  update();
  const stopWatch = watchCamera(camera);
  let stopPlay = null;
  const sync = () => {
    if (recordedUrl) return;
    if (!document.hidden && !stopPlay) stopPlay = play(video, camera.stream_path, (why) => setText(problem, why));
    else if (document.hidden && stopPlay) { stopPlay(); stopPlay = null; }
  };
  video.addEventListener("playing", () => setText(problem, ""));
  document.addEventListener("visibilitychange", sync);
  sync();
  return () => {
    unsubscribe();
    stopWatch();
    if (stopPlay) stopPlay();
    if (recordings) recordings.stop();
    document.removeEventListener("visibilitychange", sync);
  };
}

function urlRow(label, url) {
  const input = h("input", { type: "text", readonly: true, value: url, "aria-label": `${label} URL` });
  const done = h("span", { class: "copied", "aria-live": "polite" });
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(url);
      setText(done, "copied");
    } catch (_) {
      input.select();
      setText(done, "selected: press Ctrl+C");
    }
    setTimeout(() => setText(done, ""), 2000);
  });
  return h("li", {}, h("span", { class: "url-label" }, label), input, copy, done);
}
