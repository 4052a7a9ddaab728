// Plays camgate's recordings in headless Chromium and reports whether it really played.
//
// usage: node recording.mjs BASE_URL URL MODE     (MODE: export | vod)
//   export: URL is an export.mp4; a <video> loads it, seeks to 70 % of its duration, and
//           must land there and play on from it (Chromium fetches the file with Range).
//   vod:    URL is a VOD index.m3u8; hls.js plays it from the start, then seeks to its middle
//           and plays on from there.
//
// The test page is served from camgate's origin by intercepting /__test/* (as play.mjs does).
// Prints one line `RESULT {json}`; exits 0 when every step held and a canvas sample of the
// video after the seek is not blank, 1 otherwise.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { launch } from "./chromium.mjs";

const [base, url, mode] = process.argv.slice(2);
if (!base || !url || !["export", "vod"].includes(mode)) {
  console.error("usage: node recording.mjs BASE_URL URL export|vod");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const hlsJs = readFileSync(require.resolve("hls.js/dist/hls.min.js"), "utf8");

const players = {
  export: `video.src = ${JSON.stringify(url)};`,
  vod: `
    const hls = new Hls();
    window.__hls = hls;
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.__error = d.type + ": " + d.details; });
    hls.on(Hls.Events.LEVEL_LOADED, (_e, d) => { window.__live = d.details.live; window.__vod_duration = d.details.totalduration; });
    hls.loadSource(${JSON.stringify(url)});
    hls.attachMedia(video);`,
};

const page_html = `<!doctype html><html><body>
<video id="v" muted playsinline width="320" height="240"></video>
<canvas id="c" width="320" height="240"></canvas>
<script src="/__test/hls.js"></script>
<script type="module">
  const video = document.getElementById("v");
  window.__error = null;
  video.addEventListener("error", () => { window.__error = "video error " + (video.error && video.error.code); });
  ${players[mode]}
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
const statuses = [];
let browser;
try {
  browser = await launch("recording");
  const { page } = browser;
  page.on("console", (m) => logs.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => logs.push("pageerror: " + e.message));
  page.on("response", (r) => {
    if (!r.url().includes("/__test/")) statuses.push(r.status());
    if (r.status() >= 400) logs.push(r.status() + ": " + r.url());
  });
  await page.route(`${base}/__test/**`, (route) => {
    if (route.request().url().endsWith("/hls.js")) {
      return route.fulfill({ body: hlsJs, contentType: "text/javascript" });
    }
    return route.fulfill({ body: page_html, contentType: "text/html" });
  });
  await page.goto(`${base}/__test/page.html`);
  const duration = await page
    .waitForFunction(() => { const e = document.getElementById("v"); return e.readyState >= 1 && isFinite(e.duration) && e.duration > 0 && e.duration; }, null, { timeout: 40000 })
    .then((h) => h.jsonValue());
  // Play from the start a little (VOD: hls.js loads its first segments).
  await page.evaluate(() => document.getElementById("v").play().catch((e) => { window.__error = String(e); }));
  const first = await page
    .waitForFunction(() => { const e = document.getElementById("v"); return e.currentTime > 0.3 && e.currentTime; }, null, { timeout: 30000 })
    .then((h) => h.jsonValue());
  // Seek well past what was played, then play on from there.
  const target = duration * 0.7;
  await page.evaluate((t) => { const e = document.getElementById("v"); e.pause(); e.currentTime = t; }, target);
  await page.waitForFunction(() => { const e = document.getElementById("v"); return !e.seeking && e.readyState >= 2; }, null, { timeout: 30000 });
  const landed = await page.evaluate(() => document.getElementById("v").currentTime);
  await page.evaluate(() => document.getElementById("v").play().catch((e) => { window.__error = String(e); }));
  const after = await page
    .waitForFunction((t) => { const e = document.getElementById("v"); return e.currentTime > t + 0.5 && e.currentTime; }, landed, { timeout: 30000 })
    .then((h) => h.jsonValue());
  await page.evaluate(() => document.getElementById("v").pause());
  const sample = await page.evaluate(() => window.sample());
  const error = await page.evaluate(() => window.__error);
  const live = await page.evaluate(() => window.__live);
  const dims = await page.evaluate(() => { const e = document.getElementById("v"); return [e.videoWidth, e.videoHeight]; });
  const partial = statuses.filter((s) => s === 206).length;
  result = {
    mode, duration, first, target, landed, after, sample, error, live, dims, partial,
    ok: Math.abs(landed - target) < 1.5 && after > landed && sample.colors > 2 && sample.bright > 0 && !error,
  };
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
