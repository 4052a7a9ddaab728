// Drives the embedded dashboard in headless Chromium as a user would, against a camgate with
// simulated cameras that tests/dashboard_browser.rs started.
//
// usage: node dashboard.mjs BASE_URL SCREENSHOT.png FLAKY_CAMERA_ID GOOD_RTSP_URL
// Talks to its parent over stdio for the source-death step: prints `KILL`, waits for a line
// `KILLED`; prints `RESTORE`, waits for `RESTORED`. Prints `STEP name` as it goes and a final
// `RESULT {json}`; exits 0 only when every check passed.

import { createInterface } from "node:readline";
import { statSync } from "node:fs";
import { launch } from "./chromium.mjs";

const [base, screenshot, flakyId, goodUrl] = process.argv.slice(2);
if (!base || !screenshot || !flakyId || !goodUrl) {
  console.error("usage: node dashboard.mjs BASE_URL SCREENSHOT FLAKY_ID GOOD_RTSP_URL");
  process.exit(2);
}
const XSS_NAME = "<img src=x onerror=alert(1)>";

const stdin = createInterface({ input: process.stdin });
const lines = [];
let waiter = null;
stdin.on("line", (l) => { lines.push(l.trim()); if (waiter) waiter(); });
async function expectLine(want, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const i = lines.indexOf(want);
    if (i >= 0) { lines.splice(i, 1); return; }
    await new Promise((r) => { waiter = r; setTimeout(r, 200); });
  }
  throw new Error(`parent did not answer ${want}`);
}

const step = (name) => console.log(`STEP ${name}`);
const tile = (id) => `.tile[data-id="${id}"]`;

/** Samples a tile's video into a small canvas: a coarse picture and whether it is blank. */
async function sample(page, id) {
  return page.evaluate((sel) => {
    const v = document.querySelector(`${sel} video`);
    if (!v || !v.videoWidth) return null;
    const c = document.createElement("canvas");
    c.width = 64; c.height = 36;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0, 64, 36);
    const d = g.getImageData(0, 0, 64, 36).data;
    const px = [];
    const colors = new Set();
    let bright = 0;
    for (let i = 0; i < d.length; i += 4) {
      px.push(d[i] + d[i + 1] + d[i + 2]);
      colors.add((d[i] >> 5) + "," + (d[i + 1] >> 5) + "," + (d[i + 2] >> 5));
      if (d[i] + d[i + 1] + d[i + 2] > 60) bright++;
    }
    return { px, colors: colors.size, bright, time: v.currentTime };
  }, tile(id));
}

/** The tile plays moving video: a sample is not blank and changes over 2 s. */
async function expectMoving(page, id) {
  await page.waitForFunction((sel) => {
    const v = document.querySelector(`${sel} video`);
    return v && v.videoWidth > 0 && v.currentTime > 0.2;
  }, tile(id), { timeout: 40000 });
  const a = await sample(page, id);
  await page.waitForTimeout(2000);
  const b = await sample(page, id);
  if (!a || !b) throw new Error(`tile ${id}: no picture`);
  if (a.colors < 3 || a.bright === 0) throw new Error(`tile ${id}: blank picture (${a.colors} colors)`);
  let diff = 0;
  for (let i = 0; i < a.px.length; i++) diff += Math.abs(a.px[i] - b.px[i]);
  if (diff < 500) throw new Error(`tile ${id}: picture did not change over 2 s (diff ${diff})`);
  return { colors: a.colors, diff, advanced: b.time - a.time };
}

async function badge(page, id) {
  return page.textContent(`${tile(id)} .badge`);
}

const result = { ok: false, checks: {} };
const logs = [];
let browser;
try {
  browser = await launch("dashboard", {
    viewport: { width: 1280, height: 860 },
    // Playwright's waits evaluate code in the page, which the dashboard's CSP forbids. The
    // name check below does not rely on the CSP: it looks for injected elements directly.
    bypassCSP: true,
  });
  const { page } = browser;
  const alerts = [];
  page.on("dialog", (d) => {
    if (d.type() === "alert") { alerts.push(d.message()); d.dismiss(); }
    else d.accept();
  });
  page.on("console", (m) => logs.push(m.type() + ": " + m.text()));
  page.on("pageerror", (e) => { logs.push("pageerror: " + e.message); result.pageerrors = (result.pageerrors || 0) + 1; });

  step("grid");
  await page.goto(`${base}/`);
  await page.waitForSelector(tile("1"), { timeout: 20000 });
  await page.click('button[title="Layout 3x3"]');
  result.checks.moving = {};
  for (const id of ["1", "2"]) result.checks.moving[id] = await expectMoving(page, id);
  // H.264 tiles play over WebRTC by default; the tile's choice switches to MSE, plays, and
  // is remembered across a reload.
  const protocolOf = (id) => page.$eval(tile(id), (e) => e.dataset.protocol);
  result.checks.protocols = { default: await protocolOf("1") };
  if (result.checks.protocols.default !== "webrtc") {
    throw new Error(`tile 1 plays with ${result.checks.protocols.default}, not WebRTC`);
  }
  await page.selectOption(`${tile("1")} select.protocol`, "mse");
  result.checks.protocols.switched = await expectMoving(page, "1");
  await page.reload();
  await page.waitForSelector(tile("1"), { timeout: 20000 });
  result.checks.protocols.remembered = await expectMoving(page, "1");
  const after = await protocolOf("1");
  if (after !== "mse") throw new Error(`tile 1's choice was not remembered: ${after}`);
  if (await protocolOf("2") !== "webrtc") throw new Error("tile 2 lost its default (WebRTC)");

  step("xss");
  const xss = await page.waitForSelector(tile("xss"), { timeout: 10000 });
  const shown = await xss.$eval(".name", (e) => e.textContent);
  const injected = await page.$$eval(".tile img", (imgs) => imgs.length);
  if (shown !== XSS_NAME || injected !== 0 || alerts.length) {
    throw new Error(`camera name not shown as text: ${JSON.stringify({ shown, injected, alerts })}`);
  }
  result.checks.xss = shown;

  step("screenshot");
  await page.waitForTimeout(500);
  await page.screenshot({ path: screenshot });
  // Phone width: one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the grid is ${overflow}px wider than a phone screen`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png") });
  await page.setViewportSize({ width: 1280, height: 860 });

  step("bad-url");
  await page.goto(`${base}/#/add`);
  await page.fill("#f-camera_id", "added");
  await page.fill("#f-name", "Added from the form");
  await page.fill("#f-rtsp_url", "http://example.com/stream");
  await page.click('form.camera-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("e-rtsp_url").textContent !== "", null, { timeout: 10000 });
  const shownError = await page.textContent("#e-rtsp_url");
  const apiError = await page.evaluate(async () => {
    const r = await fetch("/cameras/provision", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ camera_id: "added", rtsp_url: "http://example.com/stream" }) });
    return (await r.json()).error.message;
  });
  if (shownError !== apiError) throw new Error(`beside the URL field: ${shownError}; API said: ${apiError}`);
  if ((await page.getAttribute("#f-rtsp_url", "aria-invalid")) !== "true") throw new Error("URL field not marked invalid");
  result.checks.bad_url = shownError;

  step("add");
  await page.fill("#f-rtsp_url", goodUrl);
  await page.click('form.camera-form button[type="submit"]');
  await page.waitForSelector(tile("added"), { timeout: 10000 });
  result.checks.added = await expectMoving(page, "added");
  if ((await page.textContent(`${tile("added")} .name`)) !== "Added from the form") throw new Error("added tile has the wrong name");

  step("snapshot");
  await page.goto(`${base}/#/camera/added`);
  await page.click("button.snapshot");
  await page.waitForSelector(".snapshot-box img", { timeout: 15000 });
  const snapWidth = await page.$eval(".snapshot-box img", (img) => img.decode().then(() => img.naturalWidth));
  if (!(snapWidth > 0)) throw new Error(`the snapshot button showed no picture (${snapWidth})`);
  result.checks.snapshot_width = snapWidth;

  step("delete");
  await page.goto(`${base}/#/camera/added`);
  await page.click("text=Delete camera");
  await page.waitForFunction(() => location.hash === "#/", null, { timeout: 10000 });
  await page.waitForSelector(tile("1"), { timeout: 10000 });
  if (await page.$(tile("added"))) throw new Error("deleted camera's tile is still there");
  const gone = await page.evaluate(async () => (await fetch("/cameras/added/info")).status);
  if (gone !== 404) throw new Error(`deleted camera still answers ${gone}`);
  result.checks.deleted = true;

  step("source-dies");
  await page.waitForFunction((sel) => document.querySelector(`${sel} .badge`)?.textContent === "live",
    tile(flakyId), { timeout: 30000 });
  console.log("KILL");
  await expectLine("KILLED", 30000);
  await page.waitForFunction((sel) => document.querySelector(`${sel} .badge`)?.textContent === "reconnecting",
    tile(flakyId), { timeout: 10000 });
  result.checks.reconnecting = await badge(page, flakyId);
  console.log("RESTORE");
  await expectLine("RESTORED", 30000);
  await page.waitForFunction((sel) => document.querySelector(`${sel} .badge`)?.textContent === "live",
    tile(flakyId), { timeout: 30000 });
  result.checks.live_again = await badge(page, flakyId);

  // The recorded camera's page: its timeline plays recorded video from a click, "Live"
  // returns to live, and the export form downloads an MP4 or says why not.
  step("timeline");
  await page.goto(`${base}/#/camera/rec`);
  await page.waitForSelector(".recordings .rec-range", { timeout: 30000 });
  await page.click(".recordings .rec-range");
  await page.waitForFunction(() => {
    const v = document.querySelector(".video-box video");
    return v && v.src.includes("/recordings/") && v.currentTime > 0.5 && v.videoWidth > 0;
  }, null, { timeout: 30000 });
  const showing = await page.textContent(".rec-showing");
  if (!showing.includes("recording from")) throw new Error(`after a timeline click: ${showing}`);
  const recorded = await page.evaluate(() => {
    const v = document.querySelector(".video-box video");
    const c = document.createElement("canvas");
    c.width = 64; c.height = 36;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0, 64, 36);
    const d = g.getImageData(0, 0, 64, 36).data;
    const colors = new Set();
    for (let i = 0; i < d.length; i += 4) colors.add((d[i] >> 5) + "," + (d[i + 1] >> 5) + "," + (d[i + 2] >> 5));
    return { src: v.src.replace(location.origin, ""), colors: colors.size, time: v.currentTime };
  });
  if (recorded.colors < 3) throw new Error(`recorded video is blank: ${JSON.stringify(recorded)}`);
  result.checks.timeline = recorded;
  await page.click("button.rec-live");
  await page.waitForFunction(() => {
    const v = document.querySelector(".video-box video");
    return v && !v.src.includes("/recordings/") && v.readyState >= 2 && !v.paused;
  }, null, { timeout: 30000 });
  result.checks.back_to_live = await page.textContent(".rec-showing");

  step("export");
  await page.waitForFunction(() => document.getElementById("rec-start").value !== "", null, { timeout: 10000 });
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: 30000 }),
    page.click('form.rec-export button[type="submit"]'),
  ]);
  const file = download.suggestedFilename();
  const size = statSync(await download.path()).size;
  if (!/^cam_rec_.*\.mp4$/.test(file) || size < 10000) throw new Error(`export download: ${file}, ${size} bytes`);
  result.checks.export = { file, size };
  await page.fill("#rec-end", await page.inputValue("#rec-start"));
  await page.click('form.rec-export button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("rec-export-error").textContent !== "", null, { timeout: 10000 });
  result.checks.export_refused = await page.textContent("#rec-export-error");

  if (alerts.length) throw new Error(`alerts: ${alerts}`);
  if (result.pageerrors) throw new Error("uncaught errors on the page");
  result.ok = true;
} catch (e) {
  result.error = String(e && e.message ? e.message : e).split("\n")[0];
} finally {
  if (browser) await browser.close();
}
if (!result.ok) result.logs = logs.slice(-30);
console.log("RESULT " + JSON.stringify(result));
stdin.close();
process.exit(result.ok ? 0 : 1);
