// Plays one camera in a <video>: fMP4 over WebSocket into Media Source Extensions where the
// browser has them (/mse/{path}), else the browser's own HLS (iOS Safari) from /hls/{path}.
// play() returns stop(): closing the socket or dropping the source is what lets an on-demand
// camera go idle when nobody is looking.

import { wsUrl } from "./api.js";

const RETRY_MS = 2000;
/** Seconds behind the live edge before jumping forward. */
const MAX_LAG = 1.5;
/** Seconds of video kept behind the playhead. */
const KEEP = 10;

export function canPlay() {
  return Boolean(window.MediaSource) || nativeHls(document.createElement("video"));
}

function nativeHls(video) {
  return video.canPlayType("application/vnd.apple.mpegurl") !== "";
}

/** Starts playing `path` in `video`; onError(text) reports trouble. Returns stop(). */
export function play(video, path, onError = () => {}) {
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  const p = encodeURIComponent(path);
  if (!window.MediaSource && nativeHls(video)) {
    video.src = `/hls/${p}/index.m3u8`;
    video.play().catch(() => {});
    return () => { video.removeAttribute("src"); video.load(); };
  }
  if (!window.MediaSource) {
    onError("this browser can play neither Media Source Extensions nor HLS");
    return () => {};
  }
  let stopped = false;
  let session = null;
  let retry = null;
  const start = () => {
    retry = null;
    if (stopped) return;
    session = mseSession(video, `/mse/${p}`, (why) => {
      if (stopped) return;
      onError(why);
      session = null;
      retry = setTimeout(start, RETRY_MS);
    });
  };
  start();
  return () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    if (session) session();
    video.removeAttribute("src");
    video.load();
  };
}

/** One MediaSource fed by one WebSocket; calls ended(why) once if the socket ends by itself. */
function mseSession(video, path, ended) {
  const ms = new MediaSource();
  const objectUrl = URL.createObjectURL(ms);
  video.src = objectUrl;
  let ws = null;
  let sb = null;
  let done = false;
  const queue = [];
  let timer = null;

  const finish = (why) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    if (ws) { ws.onclose = null; ws.onerror = null; ws.onmessage = null; ws.close(); }
    URL.revokeObjectURL(objectUrl);
    if (why) ended(why);
  };

  const pump = () => {
    if (!sb || sb.updating || !queue.length || ms.readyState !== "open") return;
    try {
      sb.appendBuffer(queue[0]);
      queue.shift();
    } catch (e) {
      if (e.name === "QuotaExceededError" && video.currentTime > 1) {
        sb.remove(0, Math.max(0, video.currentTime - 1));
      } else {
        finish(`cannot append video: ${e.name}`);
      }
    }
  };

  ms.addEventListener("sourceopen", () => {
    ws = new WebSocket(wsUrl(path));
    ws.binaryType = "arraybuffer";
    ws.onmessage = (m) => {
      if (typeof m.data === "string") {
        if (m.data.startsWith("video/") && !sb) {
          if (!MediaSource.isTypeSupported(m.data)) { finish(`this browser cannot play ${m.data}`); return; }
          sb = ms.addSourceBuffer(m.data);
          sb.mode = "segments";
          sb.addEventListener("updateend", pump);
        }
        // {"type":"skip"} and other notices need nothing: the next fragment starts at a keyframe.
        return;
      }
      queue.push(m.data);
      if (queue.length > 200) queue.splice(0, queue.length - 200);
      pump();
    };
    ws.onerror = () => {};
    ws.onclose = (e) => finish(e.reason ? `video stream closed: ${e.reason}` : "video stream closed");
  }, { once: true });

  // Stay at the live edge and keep the buffer small.
  timer = setInterval(() => {
    const b = video.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1);
    if (video.currentTime < b.start(0) || end - video.currentTime > MAX_LAG) {
      video.currentTime = Math.max(b.start(b.length - 1), end - 0.3);
    }
    if (video.paused) video.play().catch(() => {});
    if (sb && !sb.updating && video.currentTime - b.start(0) > 2 * KEEP) {
      try { sb.remove(0, video.currentTime - KEEP); } catch (_) { /* retried next tick */ }
    }
  }, 500);

  return () => finish(null);
}
