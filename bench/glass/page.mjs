// Glass-to-glass latency in the browser: plays one camgate stream with one player and, for
// every video frame the browser presents (requestVideoFrameCallback), reads the simulator's
// burned-in clock band (crates/sim/js/band.mjs, served as /__bench/band.mjs) from the frame at
// its native size and records Date.now() minus the band's capture time (sim and browser run
// on the same machine, so they share the clock).
//
// Query: player=mse|mse-dashboard|hlsjs|native|webrtc, path=STREAM_PATH, seconds=WINDOW, skip=WARMUP (seconds
// after the first presented frame that are not recorded). Results are in window.glass;
// window.glass.done turns true when the window is over (or window.glass.error is set).

import { decodeBand, bandAgeMs } from "/__bench/band.mjs";

const q = new URLSearchParams(location.search);
const player = q.get("player");
const path = q.get("path");
const windowMs = Number(q.get("seconds") || 10) * 1000;
const skipMs = Number(q.get("skip") || 1) * 1000;
/** An age above this is a misread band (the CRC-4 lets 1 in 16 random patterns through). */
const IMPLAUSIBLE_MS = 60000;

// MSE live-edge policy: when the playhead is more than maxLag seconds behind the end of what
// is buffered, jump to target seconds before it (checked every checkMs). After a jump the
// playhead resumes once the frames from the keyframe up to it are decoded, so it settles
// target + that decoding time behind the end (more on a busy machine). No playback-rate
// catch-up: tried at 1.05x and 1.1x, it caused stalls ("waiting") on the busy 2-core machine.
// "mse" is a tight live player; "mse-dashboard" uses the numbers of
// crates/camgate/web/player.js (MAX_LAG 1.5 s, jump to end - 0.3 s, checked every 500 ms),
// i.e. what the dashboard shows.
const MSE_POLICY = {
  "mse": { maxLag: 0.5, target: 0.1, checkMs: 250 },
  "mse-dashboard": { maxLag: 1.5, target: 0.3, checkMs: 500 },
};
/** Seconds of video kept behind the playhead. */
const MSE_KEEP = 10;

const video = document.getElementById("v");
const g = (window.glass = {
  player,
  error: null,
  done: false,
  settings: {},
  video_size: null,
  first_frame_ms: null, // from page start to the first presented frame
  callbacks: 0, // presented frames seen by requestVideoFrameCallback (warm-up included)
  samples: [], // latency in ms of each frame in the window whose band was read
  display_offsets: [], // expectedDisplayTime - callback time, ms (per recorded frame)
  buffer_ahead: [], // ms of video buffered past the presented frame (per recorded frame)
  delivery: [], // latency minus buffer_ahead: the age of the newest buffered video, ms
  band_failures: 0, // frames in the window whose band failed its check (guards, CRC)
  implausible: 0, // frames in the window whose band passed but gave an age > 60 s
  repeats: 0, // frames in the window with the same band as the previous one
  missed: 0, // frames presented without a callback in the window (presentedFrames gaps)
  seeks: 0, // live-edge jumps made by the page (MSE)
  server_skips: 0, // {"type":"skip"} messages: camgate skipped this viewer ahead (MSE)
  waiting: 0, // "waiting" events (playback stalled for lack of data)
  whep: null, // webrtc: ms from the WHEP POST to its answer, to connected, to the first frame
  window_ms: windowMs,
  skip_ms: skipMs,
});
const t0 = performance.now();
const fail = (why) => { if (!g.error) g.error = String(why); };

// ---- reading the band --------------------------------------------------------------------
const canvas = document.createElement("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
let full = null; // a full-size RGBA picture; only the band rows are filled in
let w = 0, h = 0, top = 0, bottom = 0;

function readBand() {
  const vw = video.videoWidth, vh = video.videoHeight;
  if (vw !== w || vh !== h) {
    w = vw; h = vh;
    canvas.width = w; canvas.height = h;
    top = Math.floor((h * 10) / 12);
    bottom = Math.floor((h * 11) / 12);
    full = new Uint8ClampedArray(w * h * 4);
    g.video_size = [w, h];
  }
  // Native size, no scaling: copy only the band's rows (what decodeBand reads) to keep the
  // readback small; the decoder sees the same pixels as from a full-frame draw.
  ctx.drawImage(video, 0, top, w, bottom - top, 0, top, w, bottom - top);
  full.set(ctx.getImageData(0, top, w, bottom - top).data, top * w * 4);
  return decodeBand(full, w, h);
}

// ---- per-frame measurement ---------------------------------------------------------------
let windowStart = null, windowEnd = null, lastPresented = null, lastBand = null;

function onFrame(_now, meta) {
  const wall = Date.now();
  g.callbacks++;
  if (windowStart === null) {
    g.first_frame_ms = Math.round(performance.now() - t0);
    if (g.whep) g.whep.first_frame_ms = Math.round(performance.now() - g.whep.posted_at);
    windowStart = wall + skipMs;
    windowEnd = windowStart + windowMs;
    // Ends the window even if frames stop coming (the counts then show it).
    setTimeout(() => { g.done = true; }, skipMs + windowMs + 500);
  }
  if (wall >= windowEnd) {
    g.done = true;
    return;
  }
  if (wall >= windowStart) {
    if (lastPresented !== null && meta.presentedFrames > lastPresented + 1) {
      g.missed += meta.presentedFrames - lastPresented - 1;
    }
    lastPresented = meta.presentedFrames;
    let band = null;
    try { band = readBand(); } catch (e) { fail("reading the canvas: " + e); }
    if (band === null) {
      g.band_failures++;
    } else if (band === lastBand) {
      g.repeats++;
    } else {
      const age = bandAgeMs(band, wall);
      if (age > IMPLAUSIBLE_MS) {
        g.implausible++;
      } else {
        g.samples.push(age);
        g.display_offsets.push(performance.timeOrigin + meta.expectedDisplayTime - wall);
        const b = video.buffered;
        if (b.length) {
          const ahead = Math.round((b.end(b.length - 1) - meta.mediaTime) * 1000);
          g.buffer_ahead.push(ahead);
          g.delivery.push(age - ahead);
        }
      }
    }
    lastBand = band;
  } else {
    lastPresented = meta.presentedFrames;
  }
  video.requestVideoFrameCallback(onFrame);
}

video.addEventListener("waiting", () => { if (windowStart !== null && Date.now() >= windowStart) g.waiting++; });
video.addEventListener("error", () => fail("video error: " + (video.error && video.error.message)));

// ---- players -----------------------------------------------------------------------------
const playlist = `/hls/${encodeURIComponent(path)}/index.m3u8`;

function playHlsJs() {
  if (!window.Hls || !Hls.isSupported()) return fail("hls.js is not supported here");
  const config = { lowLatencyMode: true };
  const hls = new Hls(config);
  g.settings = {
    "hls.js": Hls.version,
    lowLatencyMode: hls.config.lowLatencyMode,
    liveSyncDurationCount: hls.config.liveSyncDurationCount,
    liveSyncDuration: hls.config.liveSyncDuration ?? null,
    liveMaxLatencyDurationCount: hls.config.liveMaxLatencyDurationCount,
    maxLiveSyncPlaybackRate: hls.config.maxLiveSyncPlaybackRate,
    options: "new Hls({ lowLatencyMode: true }), other settings default",
  };
  hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) fail(d.type + ": " + d.details); });
  // What hls.js aims for (PART-HOLD-BACK in LL mode) and where it is, sampled at the end.
  g.finish = () => {
    g.settings.targetLatency = hls.targetLatency;
    g.settings.latency_at_end = hls.latency;
    g.settings.partHoldBack = hls.levels && hls.levels[hls.currentLevel] && hls.levels[hls.currentLevel].details
      ? hls.levels[hls.currentLevel].details.partHoldBack : null;
  };
  hls.loadSource(playlist);
  hls.attachMedia(video);
}

function playNative() {
  const can = video.canPlayType("application/vnd.apple.mpegurl");
  g.settings = { canPlayType: can, options: "video.src = playlist URL (the browser's own HLS)" };
  if (!can) return fail("this Chromium does not play HLS natively");
  video.src = playlist;
}

// As the dashboard (crates/camgate/web/player.js) does, with the live-edge policy given.
function playMse({ maxLag, target, checkMs }) {
  g.settings = {
    options: `MediaSource, SourceBuffer mode "segments", every binary message appended in order`,
    live_edge: `every ${checkMs} ms: if buffered end - currentTime > ${maxLag} s, seek to end - ${target} s; playback rate 1`,
    keep_behind_s: MSE_KEEP,
  };
  const ms = new MediaSource();
  video.src = URL.createObjectURL(ms);
  let sb = null;
  const queue = [];
  const pump = () => {
    if (!sb || sb.updating || !queue.length || ms.readyState !== "open") return;
    try {
      sb.appendBuffer(queue[0]);
      queue.shift();
    } catch (e) {
      fail("append: " + e.name);
    }
  };
  ms.addEventListener("sourceopen", () => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + `/mse/${encodeURIComponent(path)}`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (m) => {
      if (typeof m.data === "string") {
        if (m.data.startsWith("video/") && !sb) {
          if (!MediaSource.isTypeSupported(m.data)) return fail("cannot play " + m.data);
          g.settings.mime = m.data;
          sb = ms.addSourceBuffer(m.data);
          sb.mode = "segments";
          sb.addEventListener("updateend", pump);
        }
        if (m.data.includes('"skip"')) g.server_skips++;
        return; // {"type":"skip"}: the next fragment starts at a keyframe
      }
      queue.push(m.data);
      pump();
    };
    ws.onerror = () => fail("websocket error");
    ws.onclose = () => { if (!g.done) fail("websocket closed"); };
  }, { once: true });
  setInterval(() => {
    const b = video.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1);
    if (video.currentTime < b.start(0) || end - video.currentTime > maxLag) {
      video.currentTime = Math.max(b.start(b.length - 1), end - target);
      if (windowStart !== null && Date.now() >= windowStart) g.seeks++;
    }
    if (video.paused) video.play().catch(() => {});
    if (sb && !sb.updating && video.currentTime - b.start(0) > 2 * MSE_KEEP) {
      try { sb.remove(0, video.currentTime - MSE_KEEP); } catch (_) { /* retried next tick */ }
    }
  }, checkMs);
}

// WHEP, as camgate's player page (crates/camgate/src/webrtc/player.html) does: a recvonly
// video transceiver, the offer POSTed as is (camgate is ICE-lite and answers with its host
// candidate; the browser's own candidates reach it in STUN checks), no jitter-buffer tuning.
async function playWebrtc() {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); video.play().catch(() => {}); };
  g.settings = { options: "RTCPeerConnection, recvonly video, WHEP POST of the offer; browser defaults" };
  await pc.setLocalDescription(await pc.createOffer());
  const posted = performance.now();
  g.whep = { posted_at: posted, answer_ms: null, connected_ms: null, first_frame_ms: null };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected" && g.whep.connected_ms === null) g.whep.connected_ms = Math.round(performance.now() - posted);
    if (pc.connectionState === "failed") fail("WebRTC connection failed");
  };
  const r = await fetch(`/webrtc/${encodeURIComponent(path)}/whep`, {
    method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
  });
  if (r.status !== 201) return fail("WHEP POST answered " + r.status + ": " + (await r.text()).slice(0, 200));
  g.whep.answer_ms = Math.round(performance.now() - posted);
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  g.finish = () => { g.settings.whep = { ...g.whep, posted_at: undefined }; };
}

try {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) {
    fail("requestVideoFrameCallback is not available");
  } else {
    video.requestVideoFrameCallback(onFrame);
    if (player === "hlsjs") playHlsJs();
    else if (player === "native") playNative();
    else if (player === "webrtc") playWebrtc().catch(fail);
    else if (MSE_POLICY[player]) playMse(MSE_POLICY[player]);
    else fail("unknown player " + player);
    video.play().catch(() => {});
  }
} catch (e) {
  fail(e);
}
