// Headless Chromium as a WHEP client of camgate.
//
// usage: node webrtc_play.mjs BASE_URL STREAM_PATH MODE
//   MODE page:  opens the player page GET /webrtc/{path} twice (a cold start, then a second
//               viewer of the now live camera), checks both play, then closes them.
//   MODE cross: a page on another origin (served by the harness at http://127.0.0.2:PORT2)
//               POSTs to camgate's WHEP URL with fetch (CORS) and plays the answer.
// Prints `RESULT {json}`: per player whether currentTime advanced and a canvas sample of
// the video is not blank, its time to first frame, and camgate's WebRTC viewer counts while
// playing and after the pages closed. Exit 0 when all played.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, path, mode] = process.argv.slice(2);
if (!base || !path || !["page", "cross"].includes(mode)) {
  console.error("usage: node webrtc_play.mjs BASE_URL STREAM_PATH page|cross");
  process.exit(2);
}

const viewers = async () => {
  const r = await fetch(`${base}/streams/${path}/viewers`);
  return (await r.json()).by_protocol.webrtc;
};

// Runs in the page: waits for playback to move by a second and samples the picture.
async function played(page) {
  const start = await page
    .waitForFunction(() => { const v = document.querySelector("video"); return v && v.currentTime > 0 && v.currentTime; }, null, { timeout: 30000 })
    .then((h) => h.jsonValue());
  await page.waitForFunction((s) => document.querySelector("video").currentTime > s + 1, start, { timeout: 20000 });
  return page.evaluate(() => {
    const v = document.querySelector("video");
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set(); let bright = 0;
    for (let i = 0; i < d.length; i += 4 * 97) {
      seen.add((d[i] >> 4) + "," + (d[i + 1] >> 4) + "," + (d[i + 2] >> 4));
      if (d[i] + d[i + 1] + d[i + 2] > 60) bright++;
    }
    const w = window.__webrtc || {};
    return { dims: [v.videoWidth, v.videoHeight], colors: seen.size, bright, ttff: w.ttff ?? null,
      answer_ms: w.answer_ms ?? null, connected_ms: w.connected_ms ?? null };
  });
}

// The cross-origin page: a WHEP client of its own, like a customer's web app would write.
const crossPage = `<!doctype html><html><body><video muted autoplay playsinline></video><script>
  window.__webrtc = { ttff: null };
  (async () => {
    const t0 = performance.now();
    const video = document.querySelector("video");
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
    video.requestVideoFrameCallback(() => { window.__webrtc.ttff = Math.round(performance.now() - t0); });
    await pc.setLocalDescription(await pc.createOffer());
    const r = await fetch(${JSON.stringify(`${base}/webrtc/${path}/whep`)}, {
      method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
    window.__webrtc.status = r.status;
    window.__webrtc.location = r.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  })().catch((e) => { window.__webrtc.error = String(e); });
</script></body></html>`;

const profile = mkdtempSync(join(tmpdir(), "camgate-chromium-"));
let result = { mode, ok: false };
const logs = [];
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // The player page's CSP allows only its own nonce'd script; the harness evaluates its own.
    bypassCSP: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
      "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights",
    ],
  });
  const watch = (page, name) => {
    page.on("console", (m) => logs.push(name + " " + m.type() + ": " + m.text()));
    page.on("pageerror", (e) => logs.push(name + " pageerror: " + e.message));
    page.on("response", (r) => { if (r.status() >= 400) logs.push(name + " " + r.status() + ": " + r.url()); });
  };
  const players = [];
  if (mode === "page") {
    for (const name of ["cold", "warm"]) {
      const page = players.length === 0 && context.pages()[0] ? context.pages()[0] : await context.newPage();
      watch(page, name);
      await page.goto(`${base}/webrtc/${path}`);
      players.push({ name, page, ...(await played(page)) });
    }
  } else {
    const page = context.pages()[0] || (await context.newPage());
    watch(page, "cross");
    const other = "http://cross.test";
    await page.route(`${other}/**`, (route) => route.fulfill({ body: crossPage, contentType: "text/html" }));
    await page.goto(`${other}/player.html`);
    const p = await played(page);
    const w = await page.evaluate(() => window.__webrtc);
    players.push({ name: "cross", page, ...p, status: w.status, location: w.location });
  }
  const playing = await viewers();
  for (const p of players) await p.page.close({ runBeforeUnload: true });
  // The player page DELETEs on pagehide; the cross page just goes: DTLS close or, failing
  // that, ICE consent expiry (15 s without a check, str0m's ICE-lite rule) ends it.
  const closed = Date.now();
  let after = await viewers();
  for (let i = 0; i < 250 && after !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await viewers();
  }
  const summary = players.map(({ page, ...rest }) => rest);
  result = {
    mode, players: summary, viewers_playing: playing, viewers_after: after, ended_ms: Date.now() - closed,
    ok: summary.every((p) => p.colors > 2 && p.bright > 0),
  };
} catch (e) {
  result.error = String(e && e.message ? e.message : e).split("\n")[0];
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
if (!result.ok) result.logs = logs.slice(-30);
console.log("RESULT " + JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
