// The one headless Chromium launch of the browser tests (play.mjs, dashboard.mjs): its flags,
// a throwaway profile, and closing both. Knows nothing of the pages the tests open.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
  // WebRTC (the dashboard's default player): keep ICE on 127.0.0.1, where camgate listens.
  "--allow-loopback-in-peer-connection",
  // A test page fulfilled by the harness (play.mjs) does not come from 127.0.0.1 as far as
  // Chromium can tell, so it would block the page's requests to camgate as "local network
  // access". Pages camgate serves itself (the dashboard) are unaffected.
  "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights",
];

/**
 * Launches Chromium (CHROMIUM, else /usr/bin/chromium) in a fresh profile named after `name`,
 * with playwright's `options` (viewport, bypassCSP...). Resolves to {context, page, close};
 * close() ends the browser and removes the profile, and never rejects.
 */
export async function launch(name, options = {}) {
  const profile = mkdtempSync(join(tmpdir(), `camgate-${name}-`));
  const removeProfile = () => rmSync(profile, { recursive: true, force: true });
  let context;
  let page;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      ...options,
      args: FLAGS,
    });
    page = context.pages()[0] || (await context.newPage());
  } catch (e) {
    if (context) await context.close().catch(() => {});
    removeProfile();
    throw e;
  }
  const close = async () => {
    await context.close().catch(() => {});
    removeProfile();
  };
  return { context, page, close };
}
