// Plays a camgate stream in headless Chromium and reports whether it really played.
//
// usage: node play.mjs BASE_URL STREAM_PATH MODE     (MODE: hlsjs | native | mse)
//
// The test page is served from camgate's own origin by intercepting /__test/* in the browser
// (camgate has no such route), so the player talks to camgate same-origin, as a page served by
// camgate's web UI would. Prints `STARTED` once currentTime first moves (so a test can break
// the stream from then on), then one line `RESULT {json}`; exits 0 when currentTime advanced by
// PLAY_SECONDS (default 1), a canvas sample of the video is not blank and the player reported
// no fatal error at any time, 1 otherwise. A fatal error (hls.js `fatal`, the MSE player's
// onError, a MediaError on the <video>) ends the wait at once, before or after playback
// started: a player that broke after its first second must not pass.
// `audio_bytes` in the result is how many encoded audio bytes the browser decoded
// (webkitAudioDecodedByteCount).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { launch } from "./chromium.mjs";

const [base, path, mode] = process.argv.slice(2);
if (!base || !path || !["hlsjs", "native", "mse"].includes(mode)) {
  console.error("usage: node play.mjs BASE_URL STREAM_PATH hlsjs|native|mse");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const hlsJs = readFileSync(require.resolve("hls.js/dist/hls.min.js"), "utf8");

const playlist = `/hls/${path}/index.m3u8`;
const players = {
  hlsjs: `
    const hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.__error = d.type + ": " + d.details; });
    hls.loadSource(${JSON.stringify(playlist)});
    hls.attachMedia(video);`,
  native: `video.src = ${JSON.stringify(playlist)};`,
  // The dashboard's own player (web/player.js, served by camgate): MSE over `WS /mse`, its
  // append pump and its live-edge policy, so the test plays what users get.
  mse: `
    const { play } = await import("/ui/player.js");
    play(video, ${JSON.stringify(path)}, (why) => { window.__error = why; });`,
};

const page_html = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline width="320" height="240"></video>
<canvas id="c" width="320" height="240"></canvas>
<script src="/__test/hls.js"></script>
<script type="module">
  const video = document.getElementById("v");
  window.__error = null;
  video.addEventListener("error", () => {
    const e = video.error;
    window.__error = window.__error || ("video element: " + (e ? e.code + " " + e.message : "error"));
  });
  ${players[mode]}
  video.play().catch(() => {});
  window.sample = () => {
    const c = document.getElementById("c").getContext("2d");
    c.drawImage(video, 0, 0, 320, 240);
    const d = c.getImageData(0, 0, 320, 240).data;
    const seen = new Set();
    let bright = 0;
    for (let i = 0; i < d.length; i += 4 * 97) {
      seen.add((d[i] >> 4) + "," + (d[i + 1] >> 4) + "," + (d[i + 2] >> 4));
      if (d[i] + d[i + 1] + d[i + 2] > 60) bright++;
    }
    return { colors: seen.size, bright };
  };
</script></body></html>`;

let result = { mode, ok: false };
const logs = [];
let browser;
try {
  browser = await launch("chromium");
  const { page } = browser;
  page.on("console", (m) => logs.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => logs.push("pageerror: " + e.message));
  page.on("response", (r) => { if (r.status() >= 400) logs.push(r.status() + ": " + r.url()); });
  page.on("requestfailed", (r) => logs.push("failed: " + r.url() + " " + (r.failure() || {}).errorText));
  await page.route(`${base}/__test/**`, (route) => {
    const url = route.request().url();
    if (url.endsWith("/hls.js")) {
      return route.fulfill({ body: hlsJs, contentType: "text/javascript" });
    }
    return route.fulfill({ body: page_html, contentType: "text/html" });
  });
  await page.goto(`${base}/__test/page.html`);
  // Playing: currentTime moves by more than a second past where it first started moving.
  // Each wait also ends when the player reports a fatal error, which then fails the run.
  // `until(null)`: currentTime above 0; `until(t)`: above t. Resolves to {t} or {error}.
  const until = (after, timeout) => page
    .waitForFunction((after) => {
      const v = document.getElementById("v");
      if (window.__error) return { error: window.__error };
      return (after === null ? v.currentTime > 0 : v.currentTime > after) && { t: v.currentTime };
    }, after, { timeout })
    .then((h) => h.jsonValue());
  const first = await until(null, 40000);
  if (first.error) throw new Error("fatal player error before playback started: " + first.error);
  const start = first.t;
  console.log("STARTED");
  const seconds = Number(process.env.PLAY_SECONDS || 1);
  const next = await until(start + seconds, 30000 + seconds * 1000);
  if (next.error) throw new Error("fatal player error after playback started: " + next.error);
  const later = next.t;
  const sample = await page.evaluate(() => window.sample());
  const error = await page.evaluate(() => window.__error);
  const dims = await page.evaluate(() => { const v = document.getElementById("v"); return [v.videoWidth, v.videoHeight]; });
  // Encoded audio bytes Chromium's decoder consumed (0 without audio); muting does not stop it.
  const audio_bytes = await page.evaluate(() => document.getElementById("v").webkitAudioDecodedByteCount);
  result = { mode, start, later, sample, error, dims, audio_bytes, ok: !error && sample.colors > 2 && sample.bright > 0 };
} catch (e) {
  result.error = String(e && e.message ? e.message : e).split("\n")[0];
  try {
    const page = browser && browser.page;
    if (page) result.page_error = await page.evaluate(() => window.__error);
  } catch (_) { /* page gone */ }
} finally {
  if (browser) await browser.close();
}
if (!result.ok) result.logs = logs.slice(-20);
console.log("RESULT " + JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
