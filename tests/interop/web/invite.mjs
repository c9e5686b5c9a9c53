// The invitation landing page in headless Chromium (driven by
// playwright-core), as a relative would meet it on a phone.
//
// Usage:
//   node invite.mjs HOST HTTP_PORT PAGE_PATH SCREENSHOT_PNG USERNAME PASSWORD [--debug]
//
// HOST:HTTP_PORT is Perch's plain `http` listener and PAGE_PATH the
// invitation's `/invite/TOKEN`. The browser has a phone's viewport and may
// fetch nothing but Perch (any other request is blocked and counted; the
// page must need none: no scripts, images or fonts from elsewhere).
// Chromium is /usr/bin/chromium, or the one PERCH_CHROMIUM names.
//
// Every check prints exactly one line, `ok NAME (details)` or
// `FAIL NAME: reason`; a check runs only when those it needs passed.
// Exit status 0 only when every check passed. Every wait is bounded (the
// bounds are multiplied by PERCH_TEST_TIME_SCALE when it is set).
//
// The checks:
//   page        the page loads with status 200 and says who invites
//   qr          (needs page) an inline <svg class="qr"> with a path of
//               modules, as wide as a phone can show
//   links       (needs page) the "Open in your chat app" link is the
//               xmpp: URI with the token, and Conversations (F-Droid,
//               Google Play), Monal, Siskin IM, Dino and Gajim are linked
//   screenshot  (needs page) the whole page saved as SCREENSHOT_PNG
//   register    (needs page) the form filled (username, password twice)
//               and submitted: the answer says the account is ready at
//               USERNAME@domain
//   blocked     no request left Perch's origin

import { chromium } from "playwright-core";

const SCALE = Math.max(
  1,
  Number.parseInt(process.env.PERCH_TEST_TIME_SCALE ?? "1", 10) || 1,
);
const WAIT_MS = 15_000 * SCALE;
const TOTAL_BUDGET_MS = 90_000 * SCALE;
const CHROMIUM = process.env.PERCH_CHROMIUM || "/usr/bin/chromium";

const [host, port, pagePath, screenshotPath, username, password] =
  process.argv.slice(2);
const debug = process.argv.includes("--debug");
if (!password) {
  console.error(
    "usage: node invite.mjs HOST HTTP_PORT PAGE_PATH SCREENSHOT_PNG USERNAME PASSWORD [--debug]",
  );
  process.exit(2);
}
const origin = `http://${host}:${port}`;

const budget = setTimeout(() => {
  console.log(`FAIL run: did not finish within ${TOTAL_BUDGET_MS / 1000} s, killed`);
  process.exit(1);
}, TOTAL_BUDGET_MS);

const blocked = [];
let browser;
let page;
let heading = "";

const checks = {
  async page() {
    const response = await page.goto(`${origin}${pagePath}`, {
      timeout: WAIT_MS,
      waitUntil: "load",
    });
    if (!response || response.status() !== 200)
      throw new Error(`status ${response?.status()}`);
    heading = (await page.locator("h1").first().textContent({ timeout: WAIT_MS })) ?? "";
    if (!heading.includes("invited you")) throw new Error(`heading "${heading}"`);
    return heading;
  },
  async qr() {
    const svg = page.locator("svg.qr");
    if ((await svg.count()) !== 1) throw new Error("no svg.qr");
    const d = (await svg.locator("path").getAttribute("d")) ?? "";
    if (d.length < 200) throw new Error(`a path of ${d.length} characters`);
    const box = await svg.boundingBox();
    if (!box || box.width < 150 || box.width > 400)
      throw new Error(`drawn ${box?.width} px wide`);
    return `${Math.round(box.width)} px, path of ${d.length} characters`;
  },
  async links() {
    const open = page.getByRole("link", { name: "Open in your chat app" });
    const href = (await open.getAttribute("href", { timeout: WAIT_MS })) ?? "";
    const token = pagePath.split("/").pop();
    if (!href.startsWith("xmpp:") || !href.includes(`preauth=${token}`))
      throw new Error(`the button opens ${href}`);
    const names = ["Conversations", "Monal", "Siskin IM", "Dino", "Gajim"];
    const text = await page.locator("body").innerText();
    const missing = names.filter((n) => !text.includes(n));
    if (missing.length) throw new Error(`not named: ${missing.join(", ")}`);
    const stores = await page
      .locator("ul.clients a")
      .evaluateAll((links) => links.map((a) => a.href));
    for (const want of ["f-droid.org", "play.google.com", "apps.apple.com", "dino.im", "gajim.org"]) {
      if (!stores.some((h) => h.includes(want))) throw new Error(`no link to ${want}`);
    }
    return `${href.split("?")[0]}, ${stores.length} store links`;
  },
  async screenshot() {
    await page.screenshot({ path: screenshotPath, fullPage: true, timeout: WAIT_MS });
    return screenshotPath;
  },
  async register() {
    await page.fill("#username", username);
    await page.fill("#password", password);
    await page.fill("#password2", password);
    const [response] = await Promise.all([
      page.waitForNavigation({ timeout: WAIT_MS }),
      page.click("button[type=submit]"),
    ]);
    const status = response?.status();
    const text = await page.locator("body").innerText();
    if (status !== 201 || !text.includes("Your account is ready"))
      throw new Error(`status ${status}: ${text.slice(0, 300)}`);
    const address = await page.locator("code").first().textContent();
    if (!address?.startsWith(`${username.toLowerCase()}@`))
      throw new Error(`the page names ${address}`);
    return address;
  },
  async blocked() {
    if (blocked.length) throw new Error(`requests blocked: ${blocked.join(" ")}`);
    return "none";
  },
};

const CHECKS = [
  ["page", []],
  ["qr", ["page"]],
  ["links", ["page"]],
  ["screenshot", ["page"]],
  ["register", ["page"]],
  ["blocked", []],
];

let setupFailure = null;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
    timeout: WAIT_MS,
  });
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    javaScriptEnabled: false,
  });
  await context.route(
    (url) => url.origin !== origin,
    (route) => {
      blocked.push(route.request().url());
      route.abort("blockedbyclient");
    },
  );
  page = await context.newPage();
  if (debug) page.on("request", (r) => console.error(`request ${r.method()} ${r.url()}`));
} catch (err) {
  setupFailure = `the browser could not start: ${err?.message ?? err}`;
}

const passed = new Set();
let failed = 0;
for (const [name, needs] of CHECKS) {
  const missing = needs.filter((n) => !passed.has(n));
  if (setupFailure || missing.length) {
    console.log(`FAIL ${name}: not run, ${setupFailure ?? `${missing.join(" and ")} failed`}`);
    failed += 1;
    continue;
  }
  try {
    const detail = await checks[name]();
    console.log(`ok ${name} (${detail})`);
    passed.add(name);
  } catch (err) {
    console.log(`FAIL ${name}: ${String(err?.message ?? err).split("\n")[0]}`);
    failed += 1;
  }
}
clearTimeout(budget);
await browser?.close();
process.exit(failed ? 1 : 0);
