// Glass-to-glass latency in headless Chromium (driven by bench/src/glass.rs).
//
// usage: node bench/glass/glass.mjs BASE_URL STREAM_PATH PLAYERS SECONDS SKIP
//   PLAYERS: comma-separated, of mse, mse-dashboard, hlsjs, native, webrtc; each plays in turn, alone, in a fresh page.
//
// The page (glass.html + page.mjs), the band decoder (crates/sim/js/band.mjs) and hls.js are
// served from camgate's own origin by intercepting /__bench/* in the browser (camgate has no
// such route), so MSE WebSockets and HLS requests are same-origin. Prints one line
// `RESULT {json}`: per player, the raw per-frame latencies and the counts page.mjs keeps.
// Every wait is bounded; the browser is closed on every path (also on SIGTERM).

import { chromium } from "playwright-core";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const [base, path, playersArg, secondsArg, skipArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const skip = Number(skipArg);
const players = (playersArg || "").split(",").filter(Boolean);
if (!base || !path || !players.length || !(seconds > 0) || !(skip >= 0)
    || players.some((p) => !["mse", "mse-dashboard", "hlsjs", "native", "webrtc"].includes(p))) {
  console.error("usage: node glass.mjs BASE_URL STREAM_PATH mse,mse-dashboard,hlsjs,native,webrtc SECONDS SKIP");
  process.exit(2);
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const files = {
  "glass.html": [readFileSync(join(here, "glass.html"), "utf8"), "text/html"],
  "page.mjs": [readFileSync(join(here, "page.mjs"), "utf8"), "text/javascript"],
  "band.mjs": [readFileSync(join(here, "../../crates/sim/js/band.mjs"), "utf8"), "text/javascript"],
  "hls.js": [readFileSync(require.resolve("hls.js/dist/hls.min.js"), "utf8"), "text/javascript"],
};

/** Longest wait for the first frame of a player. */
const START_MS = 30000;

const profile = mkdtempSync(join(tmpdir(), "camgate-glass-"));
let context = null;
let closing = null;
const close = () => {
  if (!closing) {
    closing = (context ? context.close().catch(() => {}) : Promise.resolve())
      .then(() => rmSync(profile, { recursive: true, force: true }));
  }
  return closing;
};
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(sig, () => { close().finally(() => process.exit(1)); });
}
// Self-bound: even if a wait below misbehaves, the whole run ends.
const overall = setTimeout(() => {
  console.error("glass.mjs: overall time limit reached");
  close().finally(() => process.exit(1));
}, players.length * (START_MS + (seconds + skip) * 1000 + 15000) + 20000);
overall.unref();

const out = { players: [] };
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
      // WebRTC: keep ICE on 127.0.0.1, where camgate's host candidate is.
      "--allow-loopback-in-peer-connection",
      // The page is fulfilled by us, so Chromium cannot tell it came from 127.0.0.1 and
      // would block its requests to camgate as "local network access".
      "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights",
    ],
  });
  await context.route(`${base}/__bench/**`, (route) => {
    const name = new URL(route.request().url()).pathname.replace(/^\/__bench\//, "");
    const f = files[name];
    if (!f) return route.fulfill({ status: 404, body: "not found" });
    return route.fulfill({ body: f[0], contentType: f[1] });
  });
  for (const p of players) out.players.push(await runPlayer(p));
} catch (e) {
  out.error = firstLine(e);
} finally {
  await close();
}
console.log("RESULT " + JSON.stringify(out));
process.exit(0);

async function runPlayer(player) {
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") logs.push(m.type() + ": " + m.text()); });
  page.on("pageerror", (e) => logs.push("pageerror: " + e.message));
  page.on("response", (r) => { if (r.status() >= 400) logs.push(r.status() + ": " + r.url()); });
  let result = { player, error: null };
  try {
    const q = new URLSearchParams({ player, path, seconds: String(seconds), skip: String(skip) });
    await page.goto(`${base}/__bench/glass.html?${q}`, { timeout: 15000 });
    await page.waitForFunction(() => window.glass && (window.glass.callbacks > 0 || window.glass.error),
      null, { timeout: START_MS, polling: 100 });
    await page.waitForFunction(() => window.glass.done || window.glass.error,
      null, { timeout: (seconds + skip) * 1000 + 10000, polling: 250 });
  } catch (e) {
    result.error = firstLine(e);
  }
  try {
    const g = await page.evaluate(() => {
      if (window.glass.finish) window.glass.finish();
      const q = document.getElementById("v").getVideoPlaybackQuality();
      return { ...window.glass, finish: undefined, user_agent: navigator.userAgent,
        quality: { total: q.totalVideoFrames, dropped: q.droppedVideoFrames } };
    });
    result = { ...g, error: result.error || g.error };
  } catch (e) {
    result.error = result.error || firstLine(e);
  }
  if (result.error) result.logs = logs.slice(-15);
  await page.close().catch(() => {});
  return result;
}

function firstLine(e) {
  return String(e && e.message ? e.message : e).split("\n")[0];
}
