// Plays one camera in a <video> with one of three protocols:
// - "webrtc": WHEP (/webrtc/{path}/whep), the lowest latency; H.264 in every browser with
//   RTCPeerConnection, H.265 only where the browser offers it (camgate answers 406 otherwise,
//   and the player falls back to MSE);
// - "mse": fMP4 over WebSocket into Media Source Extensions (/mse/{path});
// - "hls": the browser's own HLS from /hls/{path} (iOS Safari has no MSE).
// play() returns stop(): closing the socket, the peer connection (and DELETE of the WHEP
// session) or dropping the source is what lets an on-demand camera go idle when nobody looks.

import { wsUrl } from "./api.js";

const RETRY_MS = 2000;
/** Seconds behind the live edge before jumping forward. */
const MAX_LAG = 1.5;
/** Seconds of video kept behind the playhead. */
const KEEP = 10;

export function canPlay() {
  return Boolean(window.MediaSource) || nativeHls(document.createElement("video"));
}

/** The protocols this browser can use, best first, for a stream of `codec` (status: "h264"/"h265"). */
export function protocols(codec) {
  const out = [];
  // H.265 over WebRTC needs the browser to offer it; camgate's 406 makes the player fall
  // back when it does not, so only an unknown codec (not live yet) is tried optimistically.
  if (window.RTCPeerConnection && String(codec || "").toLowerCase() !== "h265") out.push("webrtc");
  if (window.MediaSource) out.push("mse");
  if (nativeHls(document.createElement("video"))) out.push("hls");
  return out;
}

function nativeHls(video) {
  return video.canPlayType("application/vnd.apple.mpegurl") !== "";
}

/**
 * Starts playing `path` in `video` with `protocol` (default: MSE, else native HLS);
 * onError(text) reports trouble; onFallback(protocol) says the player moved to another
 * protocol because the chosen one cannot play this stream. Returns stop().
 */
export function play(video, path, onError = () => {}, protocol = null, onFallback = () => {}) {
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  const p = encodeURIComponent(path);
  if (protocol === "webrtc" && window.RTCPeerConnection) {
    return playWebrtc(video, p, onError, () => {
      onFallback("mse");
      return play(video, path, onError, "mse");
    });
  }
  if ((protocol === "hls" || !window.MediaSource) && nativeHls(video)) {
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
  let mp = p;
  const start = () => {
    retry = null;
    if (stopped) return;
    session = mseSession(video, `/mse/${mp}`, (why, hevc) => {
      if (stopped) return;
      // An H.265 camera in a browser without HEVC: its `~h264` profile (API.md) is the same
      // picture in H.264, so play that instead of retrying what cannot play.
      if (hevc && mp === p && !path.includes("~")) {
        mp = encodeURIComponent(`${path}~h264`);
        session = null;
        start();
        return;
      }
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

/**
 * WHEP: one recvonly peer connection per attempt, retried after RETRY_MS when it fails;
 * `fallback()` (which returns the other player's stop) when camgate says the browser's
 * offer cannot carry the stream (406). Returns stop(), which also DELETEs the session.
 */
function playWebrtc(video, p, onError, fallback) {
  let stopped = false;
  let pc = null;
  let session = null;
  let retry = null;
  let other = null;
  const end = () => {
    if (session) fetch(session, { method: "DELETE", keepalive: true }).catch(() => {});
    session = null;
    if (pc) { pc.onconnectionstatechange = null; pc.close(); }
    pc = null;
  };
  const again = (why) => {
    end();
    if (stopped) return;
    onError(why);
    clearTimeout(retry);
    retry = setTimeout(start, RETRY_MS);
  };
  const start = async () => {
    retry = null;
    if (stopped) return;
    const conn = (pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" }));
    conn.addTransceiver("video", { direction: "recvonly" });
    conn.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); video.play().catch(() => {}); };
    conn.onconnectionstatechange = () => {
      const s = conn.connectionState;
      if (s === "failed" || s === "closed") again(`WebRTC ${s}; retrying`);
    };
    try {
      await conn.setLocalDescription(await conn.createOffer());
      const r = await fetch(`/webrtc/${p}/whep`, {
        method: "POST", headers: { "Content-Type": "application/sdp" }, body: conn.localDescription.sdp,
      });
      if (stopped || pc !== conn) { conn.close(); return; }
      if (r.status === 406) {
        end();
        other = fallback();
        return;
      }
      if (r.status !== 201) {
        let msg = `WebRTC: ${r.status}`;
        try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
        again(msg);
        return;
      }
      session = new URL(r.headers.get("Location"), location.href).href;
      await conn.setRemoteDescription({ type: "answer", sdp: await r.text() });
    } catch (e) {
      again(`WebRTC: ${e.message || e}`);
    }
  };
  start();
  return () => {
    stopped = true;
    clearTimeout(retry);
    end();
    if (other) other();
    video.srcObject = null;
  };
}

/**
 * One MediaSource fed by one WebSocket; calls ended(why, hevc) once if the socket ends by
 * itself; `hevc` is true when it ended because this browser cannot play the stream's H.265.
 */
function mseSession(video, path, ended) {
  const ms = new MediaSource();
  const objectUrl = URL.createObjectURL(ms);
  video.src = objectUrl;
  let ws = null;
  let sb = null;
  let done = false;
  const queue = [];
  let timer = null;

  const finish = (why, hevc = false) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    if (ws) { ws.onclose = null; ws.onerror = null; ws.onmessage = null; ws.close(); }
    URL.revokeObjectURL(objectUrl);
    if (why) ended(why, hevc);
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
          if (!MediaSource.isTypeSupported(m.data)) {
            finish(`this browser cannot play ${m.data}`, /codecs="(hvc1|hev1)/.test(m.data));
            return;
          }
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
