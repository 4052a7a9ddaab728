// hls.js on a camgate master playlist: does it move to the lowest level when the network is
// really slow?
//
// usage: node abr.mjs BASE_URL STREAM_PATH     (plays /hls/STREAM_PATH/master.m3u8)
// env:   THROTTLE_KBPS  download limit applied through Chromium's own network emulation (CDP
//                       Network.emulateNetworkConditions) once playback runs above the lowest
//                       level; 0 = never throttle (the control run)
//        WATCH_SECONDS  how long to wait for the switch after that point (default 25)
//
// Throttling happens in the browser's network stack, not through an hls.js setting, so the
// switch is hls.js's ABR reacting to slow fragment loads, as on a phone on a bad link. Prints
// `STARTED` when playback first moves, then one line `RESULT {json}`; exits 0 when, after the
// throttle point, hls.js reported LEVEL_SWITCHED to the lowest-bitrate level and currentTime
// then still advanced, with no fatal error; 1 otherwise (also in the control run, where that
// switch is not expected). A throttled run takes ~20 s here (the switch ~12 s after the
// throttle); each wait is bounded, the whole run by 40 + 20 + WATCH_SECONDS + 20 s.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { launch } from "./chromium.mjs";

const [base, path] = process.argv.slice(2);
if (!base || !path) {
  console.error("usage: node abr.mjs BASE_URL STREAM_PATH");
  process.exit(2);
}
const throttleKbps = Number(process.env.THROTTLE_KBPS || 0);
const watchSeconds = Number(process.env.WATCH_SECONDS || 25);
const require = createRequire(import.meta.url);
const hlsJs = readFileSync(require.resolve("hls.js/dist/hls.min.js"), "utf8");
const master = `/hls/${path}/master.m3u8`;

const page_html = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline width="320" height="240"></video>
<script src="/__test/hls.js"></script>
<script>
  const video = document.getElementById("v");
  window.__error = null;
  window.__levels = null;
  window.__switches = [];
  // Whole segments, not LL-HLS parts: with parts, hls.js's ABR only reconsidered the level
  // after whole segments crawled in part by part, and stepped down 25-31 s after the throttle
  // (12 s without), too close to any bound worth waiting for.
  const hls = new Hls({ lowLatencyMode: false });
  window.hls = hls;
  hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.__error = d.type + ": " + d.details; });
  hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
    window.__levels = hls.levels.map((l) => ({ bitrate: l.bitrate, height: l.height, codecs: l.videoCodec }));
    // Start on the highest level so that a move to the lowest is a real step down.
    let top = 0;
    hls.levels.forEach((l, i) => { if (l.bitrate > hls.levels[top].bitrate) top = i; });
    hls.startLevel = top;
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
    window.__switches.push({ level: d.level, at: performance.now(), t: video.currentTime });
  });
  // The last fragment loads (bytes, ms), so a run that did not switch shows what hls.js saw.
  window.__frags = [];
  hls.on(Hls.Events.FRAG_LOADED, (_e, d) => {
    const st = d.frag.stats || {};
    const ms = st.loading ? Math.round(st.loading.end - st.loading.start) : null;
    window.__frags.push({ level: d.frag.level, part: Boolean(d.part), bytes: st.loaded, ms });
    if (window.__frags.length > 12) window.__frags.shift();
  });
  hls.loadSource(${JSON.stringify(master)});
  hls.attachMedia(video);
  video.play().catch(() => {});
</script></body></html>`;

let result = { ok: false, throttle_kbps: throttleKbps };
const logs = [];
let browser;
try {
  browser = await launch("abr");
  const { page, context } = browser;
  page.on("pageerror", (e) => logs.push("pageerror: " + e.message));
  page.on("response", (r) => { if (r.status() >= 400) logs.push(r.status() + ": " + r.url()); });
  await page.route(`${base}/__test/**`, (route) => {
    const url = route.request().url();
    if (url.endsWith("/hls.js")) return route.fulfill({ body: hlsJs, contentType: "text/javascript" });
    return route.fulfill({ body: page_html, contentType: "text/html" });
  });
  await page.goto(`${base}/__test/page.html`);
  const state = () => page.evaluate(() => ({
    t: document.getElementById("v").currentTime,
    level: window.hls.currentLevel,
    levels: window.__levels,
    switches: window.__switches,
    error: window.__error,
    estimate: Math.round(window.hls.bandwidthEstimate),
    frags: window.__frags,
    now: performance.now(),
  }));
  // Playing, on a level above the lowest (ABR on a fast loopback, started at the top).
  await page.waitForFunction(() => window.__error || document.getElementById("v").currentTime > 0, null, { timeout: 40000 });
  let s = await state();
  if (s.error) throw new Error("fatal player error before playback started: " + s.error);
  console.log("STARTED");
  const lowest = s.levels.reduce((lo, l, i) => (l.bitrate < s.levels[lo].bitrate ? i : lo), 0);
  result.levels = s.levels;
  result.lowest = lowest;
  // Two seconds of playback first, so hls.js has a bandwidth estimate of the fast link.
  const t0 = s.t;
  await page.waitForFunction((t0) => window.__error || document.getElementById("v").currentTime > t0 + 2, t0, { timeout: 20000 });
  s = await state();
  if (s.error) throw new Error("fatal player error before the throttle: " + s.error);
  result.level_before = s.level;
  result.estimate_before = s.estimate;
  if (s.level === lowest) throw new Error("already on the lowest level before the throttle");
  const mark = s.now;
  if (throttleKbps > 0) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 20,
      downloadThroughput: (throttleKbps * 1000) / 8,
      uploadThroughput: (throttleKbps * 1000) / 8,
    });
  }
  // The switch to the lowest level after the throttle point, then playback going on there.
  const switched = await page.waitForFunction(({ mark, lowest }) => {
    if (window.__error) return { error: window.__error };
    const sw = window.__switches.find((x) => x.at > mark && x.level === lowest);
    return sw && { sw };
  }, { mark, lowest }, { timeout: watchSeconds * 1000 }).then((h) => h.jsonValue()).catch(() => null);
  s = await state();
  result.estimate_after = s.estimate;
  result.frags = s.frags;
  result.switches = s.switches.map((x) => ({ level: x.level, after_ms: Math.round(x.at - mark), t: x.t }));
  if (switched && switched.error) throw new Error("fatal player error: " + switched.error);
  if (!switched) {
    result.error = `no LEVEL_SWITCHED to the lowest level (${lowest}) within ${watchSeconds} s`;
  } else {
    result.switched_after_ms = Math.round(switched.sw.at - mark);
    const t1 = (await state()).t;
    const moved = await page.waitForFunction((t1) => window.__error || document.getElementById("v").currentTime > t1 + 1, t1, { timeout: 20000 })
      .then(() => true).catch(() => false);
    s = await state();
    result.level_after = s.level;
    result.error = s.error || (moved ? null : "playback stopped after the switch");
    result.ok = !result.error;
  }
} catch (e) {
  result.error = String(e && e.message ? e.message : e).split("\n")[0];
} finally {
  if (browser) await browser.close();
}
if (!result.ok) result.logs = logs.slice(-20);
console.log("RESULT " + JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
