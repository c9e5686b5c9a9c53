// Interoperability check: Converse.js in headless Chromium (driven by
// playwright-core) against Perch's `http` listener, over WebSocket
// (RFC 7395) and BOSH (XEP-0206).
//
// Usage:
//   node converse.mjs HOST HTTP_PORT SCREENSHOT_PNG \
//       JID_A PASSWORD_A JID_B PASSWORD_B JID_C PASSWORD_C [--debug]
//
// HOST:HTTP_PORT is Perch's plain `http` listener. A and B connect to its
// /xmpp-websocket, C to its /http-bind. The page (converse.html) and
// Converse's dist files (node_modules/converse.js/dist) are served by a
// small HTTP server of this script on 127.0.0.1 (an ephemeral port), so
// the page is a secure context (loopback) of another origin than Perch:
// BOSH needs Perch's CORS answers. Each user has its own browser context
// (its own storage). The browser may fetch nothing but these two servers:
// any other request is blocked and counted in the last line (in
// fullscreen mode Converse's login form, shown until auto_login is done,
// has three sponsor logos from conversejs.org: 3 per page load). Chromium
// is /usr/bin/chromium, or the one PERCH_CHROMIUM names.
//
// Converse's settings: auto_login with the JID and password given, the
// one connection URL, discover_connection_methods and auto_reconnect off,
// messages from non-contacts shown (allow_non_roster_messaging), loglevel
// debug (every element sent and received goes to the browser console),
// no sounds, notifications or provider lists fetched from the internet.
//
// Every check prints exactly one line, `ok NAME (details)` or
// `FAIL NAME: reason`. A check runs only when those it needs passed (the
// list below says which); otherwise it fails as not run. Exit status 0
// only when every check passed. Every wait is bounded; the whole run is
// killed after TOTAL_BUDGET_MS however the server or the browser behave
// (the bounds are multiplied by PERCH_TEST_TIME_SCALE when it is set).
// After a failure the browser consoles (Converse's log) go to stderr;
// `--debug` prints them always, and the static server's requests too.
//
// The checks:
//   ws_login    A and B open the page with websocket_url: Converse reports
//               connected and authenticated, over a WebSocket, as a
//               resource of the JID given, and shows the roster (the
//               <converse-roster> of the control box)
//   bosh_login  C opens the page with bosh_service_url: the same over
//               BOSH
//   chat        (needs ws_login) A opens a chat with B
//               (api.chats.open) and sends a message by typing it into
//               the chat's text area and pressing Enter; Converse on B's
//               page receives it (a chat with A appears in its model),
//               and once B opens that chat the message is in its DOM; B
//               answers through the API (sendMessage) and the answer
//               shows in A's chat
//   muc         (needs ws_login) A opens web@conference.localhost
//               (api.rooms.open, nickname "alice") and enters it; when the
//               room is new (status 201), Converse accepts the default
//               configuration (muc_instant_rooms) and the server's answer
//               to it must arrive before anyone else joins (a new room is
//               locked until then); B ("bob") and C ("carol", if bosh_login
//               passed) enter; A sees them as occupants; A types a
//               message into the room's text area: it shows in B's and
//               C's room; C sends one through the API: it shows in A's and
//               B's. Fails at the end when C could not take part.
//   screenshot  A's page (after the above, whatever happened) saved as
//               SCREENSHOT_PNG, a non-empty PNG

import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

// PERCH_TEST_TIME_SCALE (a whole number, 1 when unset or unreadable): set
// when the server runs under qemu-user, 10-50 times slower.
const SCALE = Math.max(
  1,
  Number.parseInt(process.env.PERCH_TEST_TIME_SCALE ?? "1", 10) || 1,
);
const WAIT_MS = 15_000 * SCALE;
const CHECK_BUDGET_MS = 40_000 * SCALE;
const TOTAL_BUDGET_MS = 120_000 * SCALE;
const CONSOLE_LINES = 4000;

const ROOM = "web@conference.localhost";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const HERE = fileURLToPath(new URL(".", import.meta.url));
const DIST = join(HERE, "node_modules/converse.js/dist");
const PAGE = join(HERE, "converse.html");
const CHROMIUM = process.env.PERCH_CHROMIUM || "/usr/bin/chromium";

const USAGE =
  "usage: node converse.mjs HOST HTTP_PORT SCREENSHOT_PNG JID_A PASSWORD_A JID_B PASSWORD_B JID_C PASSWORD_C [--debug]";
const argv = process.argv.slice(2);
const debug = argv.includes("--debug");
const [
  host,
  port,
  screenshotPath,
  jidA,
  passwordA,
  jidB,
  passwordB,
  jidC,
  passwordC,
] = argv.filter((a) => a !== "--debug");
if (!passwordC) {
  console.error(USAGE);
  process.exit(2);
}

// Each check with the checks it needs.
const CHECKS = [
  ["ws_login", []],
  ["bosh_login", []],
  ["chat", ["ws_login"]],
  ["muc", ["ws_login"]],
  ["screenshot", []],
];

class CheckFailed extends Error {}

function expect(cond, reason) {
  if (!cond)
    throw new CheckFailed(typeof reason === "function" ? reason() : reason);
}

/** A bounded promise: rejects with CheckFailed after `ms`. */
function within(promise, what, ms = WAIT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new CheckFailed(`${what} not within ${ms / 1000} s`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------
// The static server: the page at /, Converse's dist under /dist/.

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".ttf": "font/ttf",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
};

const served = [];
const notFound = [];

/** The file a request path names, or null (outside what is served). */
function fileFor(path) {
  if (path === "/" || path === "/converse.html") return PAGE;
  if (!path.startsWith("/dist/")) return null;
  const file = normalize(
    join(DIST, decodeURIComponent(path.slice("/dist/".length))),
  );
  return file.startsWith(DIST + sep) ? file : null;
}

function startStaticServer() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = fileFor(path);
    let body = null;
    try {
      if (file && (await stat(file)).isFile()) body = await readFile(file);
    } catch {
      body = null;
    }
    if (body === null) {
      notFound.push(path);
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    served.push(path);
    res
      .writeHead(200, {
        "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
        "Cache-Control": "no-store",
      })
      .end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// ---------------------------------------------------------------------
// The users: one browser context and page each.

/** Requests the page may make: the static server and Perch only. */
function isLocal(url) {
  return (
    ["data:", "blob:"].includes(url.protocol) ||
    [pageOrigin, perchOrigin].includes(url.origin)
  );
}

let browser = null;
let pageOrigin = "";
const perchOrigin = `http://${host}:${port}`;
const blocked = [];

class User {
  constructor(label, jid, password, nick, transport) {
    Object.assign(this, { label, jid, password, nick, transport });
    this.page = null;
    this.console = [];
    this.loggedIn = false;
  }

  log(line) {
    this.console.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    if (this.console.length > CONSOLE_LINES) this.console.shift();
  }

  settings() {
    const url =
      this.transport === "websocket"
        ? { websocket_url: `ws://${host}:${port}/xmpp-websocket` }
        : { bosh_service_url: `${perchOrigin}/http-bind` };
    return {
      ...url,
      assets_path: "/dist/",
      authentication: "login",
      auto_login: true,
      jid: this.jid,
      password: this.password,
      discover_connection_methods: false,
      auto_reconnect: false,
      view_mode: "fullscreen",
      loglevel: "debug",
      i18n: "en",
      allow_non_roster_messaging: true,
      muc_instant_rooms: true,
      nickname: this.nick,
      play_sounds: false,
      show_desktop_notifications: false,
      use_system_emojis: true,
      autocomplete_providers_url: "",
      xmpp_providers_url: "",
    };
  }

  async open() {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
    });
    await context.route(
      (url) => !isLocal(url),
      (route) => {
        blocked.push(`${this.label}: ${route.request().url()}`);
        route.abort("blockedbyclient");
      },
    );
    const page = await context.newPage();
    this.page = page;
    page.on("console", (msg) =>
      this.log(`console.${msg.type()}: ${msg.text()}`),
    );
    page.on("pageerror", (err) => this.log(`pageerror: ${err.message}`));
    page.on("requestfailed", (req) =>
      this.log(
        `request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`,
      ),
    );
    page.on("websocket", (ws) => {
      this.log(`websocket opened: ${ws.url()}`);
      ws.on("close", () => this.log(`websocket closed: ${ws.url()}`));
    });
    await page.addInitScript((settings) => {
      window.PERCH_SETTINGS = settings;
    }, this.settings());
    await page.goto(`${pageOrigin}/`, { timeout: WAIT_MS, waitUntil: "load" });
  }

  /** Waits until `fn(arg)`, run in the page, is truthy (it may be
   * async); returns its value. */
  async until(fn, arg, what, ms = WAIT_MS) {
    try {
      const handle = await this.page.waitForFunction(fn, arg, {
        timeout: ms,
        polling: 100,
      });
      return await handle.jsonValue();
    } catch (err) {
      const why =
        err?.name === "TimeoutError"
          ? `not within ${ms / 1000} s`
          : err?.message;
      throw new CheckFailed(
        `${this.label}: ${what} ${why} (${await this.describe()})`,
      );
    }
  }

  /** Runs `fn(arg)` in the page (bounded). */
  run(fn, arg, what) {
    return within(this.page.evaluate(fn, arg), `${this.label}: ${what}`);
  }

  /** Waits until the element `selector` with `text` is visible. */
  async shows(selector, text, what) {
    try {
      await this.page
        .locator(selector, text ? { hasText: text } : {})
        .first()
        .waitFor({ state: "visible", timeout: WAIT_MS });
    } catch (err) {
      const why =
        err?.name === "TimeoutError"
          ? `not within ${WAIT_MS / 1000} s`
          : err?.message;
      throw new CheckFailed(
        `${this.label}: ${what} ${why} (${await this.describe()})`,
      );
    }
  }

  /** What the page says about itself, for failure messages. */
  async describe() {
    if (!this.page) return "no page";
    try {
      return await within(
        this.page.evaluate(() => {
          const p = window.perch;
          if (!p) return "Converse's test plugin never ran";
          const c = p.api?.connection;
          return `connected ${c?.connected() ?? false}, authenticated ${c?.authenticated() ?? false}; events: ${p.events.slice(-8).join(" | ")}`;
        }),
        "the page's state",
        3000,
      );
    } catch (err) {
      return `page state unavailable: ${err?.message}`;
    }
  }

  async login() {
    await this.open();
    const state = await this.until(
      () => {
        const p = window.perch;
        const c = p?.api?.connection;
        // Disconnected before ever connecting: no need to wait any longer.
        if (p?.disconnected && !p.connected)
          return { failed: p.events.join(" | ") };
        if (!p?.connected || !c?.connected() || !c.authenticated()) return null;
        return {
          jid: c.get().jid,
          websocket: c.isType("websocket"),
          bosh: c.isType("bosh"),
        };
      },
      null,
      "Converse connected and authenticated",
    );
    expect(
      !state.failed,
      () => `${this.label}: Converse could not connect: ${state.failed}`,
    );
    expect(
      state.jid?.startsWith(`${this.jid}/`),
      `${this.label}: Converse bound ${state.jid}, not a resource of ${this.jid}`,
    );
    expect(
      state[this.transport],
      `${this.label}: connected, but not over ${this.transport} (${JSON.stringify(state)})`,
    );
    await this.shows("converse-roster", null, "the roster view");
    this.loggedIn = true;
    this.fullJid = state.jid;
    return `${state.jid} over ${this.transport === "websocket" ? "WebSocket" : "BOSH"}`;
  }
}

const token = Math.random().toString(16).slice(2, 8);
const alice = new User("A", jidA, passwordA, "alice", "websocket");
const bob = new User("B", jidB, passwordB, "bob", "websocket");
const carol = new User("C", jidC, passwordC, "carol", "bosh");
const users = [alice, bob, carol];

/** The chat (one-on-one) or room message texts in a page's view of `jid`. */
const messageIn = (kind, jid) =>
  `converse-${kind}[jid="${jid}"] .chat-msg__text`;
const textareaIn = (kind, jid) =>
  `converse-${kind}[jid="${jid}"] textarea.chat-textarea`;

/** Types `text` into the text area of `jid`'s view and presses Enter. */
async function type(user, kind, jid, text) {
  const area = user.page.locator(textareaIn(kind, jid)).first();
  try {
    await area.waitFor({ state: "visible", timeout: WAIT_MS });
    await area.fill(text, { timeout: WAIT_MS });
    await area.press("Enter", { timeout: WAIT_MS });
  } catch (err) {
    throw new CheckFailed(
      `${user.label}: typing into ${kind} ${jid}: ${err?.message} (${await user.describe()})`,
    );
  }
}

/** Sends `text` to `jid`'s chat or room through Converse's API. */
function sendThroughApi(user, kind, jid, text) {
  return user.run(
    async ([kind, jid, text]) => {
      const api = window.perch.api;
      const model =
        kind === "muc" ? await api.rooms.get(jid) : await api.chats.get(jid);
      await model.sendMessage({ body: text });
      return true;
    },
    [kind, jid, text],
    `sending to ${jid} through the API`,
  );
}

const checks = {
  async ws_login() {
    const done = await Promise.all([alice.login(), bob.login()]);
    return `${done.join(", ")}; the roster view shows`;
  },

  async bosh_login() {
    return `${await carol.login()}; the roster view shows`;
  },

  async chat() {
    const hello = `hello bob from converse ${token}`;
    await alice.run(
      (jid) => window.perch.api.chats.open(jid, {}, true).then(() => true),
      bob.jid,
      `opening a chat with ${bob.jid}`,
    );
    await type(alice, "chat", bob.jid, hello);
    await alice.shows(
      messageIn("chat", bob.jid),
      hello,
      "its own message in the chat",
    );
    await bob.until(
      async ([jid, text]) => {
        const chat = await window.perch.api.chats.get(jid);
        return Boolean(chat?.messages?.findWhere({ body: text }));
      },
      [alice.jid, hello],
      `A's message in a chat with ${alice.jid}`,
    );
    await bob.run(
      (jid) => window.perch.api.chats.open(jid, {}, true).then(() => true),
      alice.jid,
      `opening the chat with ${alice.jid}`,
    );
    await bob.shows(
      messageIn("chat", alice.jid),
      hello,
      "A's message in the chat view",
    );

    const back = `hello alice from converse ${token}`;
    await sendThroughApi(bob, "chat", alice.jid, back);
    await alice.shows(
      messageIn("chat", bob.jid),
      back,
      "B's answer in the chat view",
    );
    return "A typed a message B's page shows; B's answer (API) shows on A's page";
  },

  async muc() {
    const enter = async (user) => {
      await user.run(
        ([room, nick]) =>
          window.perch.api.rooms.open(room, { nick }, true).then(() => true),
        [ROOM, user.nick],
        `opening ${ROOM}`,
      );
      await user.until(
        async (room) => (await window.perch.api.rooms.get(room))?.isEntered(),
        ROOM,
        `entering ${ROOM}`,
      );
    };

    await enter(alice);
    // A new room (status 201) stays locked until its owner configures
    // it: the server's answer to Converse's instant-room form must have
    // arrived before the others join.
    const created = await alice.until(
      ([room, nsUser, nsOwner]) => {
        const p = window.perch;
        const own = p.received
          .flatMap((el) => [el, ...el.querySelectorAll("presence")])
          .find(
            (el) =>
              el.nodeName === "presence" &&
              el.getAttribute("from") === `${room}/alice` &&
              [...el.getElementsByTagNameNS(nsUser, "status")].some(
                (s) => s.getAttribute("code") === "110",
              ),
          );
        if (!own) return null;
        const isNew = [...own.getElementsByTagNameNS(nsUser, "status")].some(
          (s) => s.getAttribute("code") === "201",
        );
        if (!isNew) return "existing";
        const all = (list) =>
          list.flatMap((el) => [el, ...el.querySelectorAll("iq")]);
        const form = all(p.sent).find(
          (el) =>
            el.nodeName === "iq" &&
            el.getAttribute("type") === "set" &&
            el.getAttribute("to") === room &&
            el.getElementsByTagNameNS(nsOwner, "query").length,
        );
        if (!form) return null;
        const answer = all(p.received).find(
          (el) =>
            el.nodeName === "iq" &&
            el.getAttribute("id") === form.getAttribute("id"),
        );
        if (!answer) return null;
        return answer.getAttribute("type") === "result"
          ? "created"
          : `refused: ${answer.outerHTML}`;
      },
      [ROOM, NS_MUC_USER, NS_MUC_OWNER],
      "its own presence in the room and, for a new room, the answer to the instant-room form",
    );
    expect(
      !created.startsWith("refused"),
      `A's instant-room form was ${created}`,
    );

    const others = carol.loggedIn ? [bob, carol] : [bob];
    await Promise.all(others.map(enter));
    // The room's presence of each joiner, as received by A: the room
    // sends it only once it has taken the join, so A's message cannot
    // overtake it. (Converse's occupant list may show a nick earlier, and
    // the joiners ask for no history: a message before their join would
    // rightly never reach them.)
    await alice.until(
      ([room, nicks]) => {
        const presences = window.perch.received
          .flatMap((el) => [el, ...el.querySelectorAll("presence")])
          .filter((el) => el.nodeName === "presence" && !el.getAttribute("type"));
        return nicks.every((nick) =>
          presences.some((el) => el.getAttribute("from") === `${room}/${nick}`),
        );
      },
      [ROOM, others.map((u) => u.nick)],
      `the room's presence of ${others.map((u) => u.nick).join(" and ")}`,
    );

    const fromA = `hello room from alice ${token}`;
    await type(alice, "muc", ROOM, fromA);
    for (const user of [alice, ...others]) {
      await user.shows(
        messageIn("muc", ROOM),
        fromA,
        "A's message in the room",
      );
    }
    const sender = carol.loggedIn ? carol : bob;
    const fromOther = `hello room from ${sender.nick} ${token}`;
    await sendThroughApi(sender, "muc", ROOM, fromOther);
    for (const user of [alice, ...others]) {
      await user.shows(
        messageIn("muc", ROOM),
        fromOther,
        `${sender.nick}'s message in the room`,
      );
    }
    const summary =
      `${ROOM} ${created === "created" ? "created (201, instant room)" : "already there"}; ` +
      `${["alice", ...others.map((u) => u.nick)].join(", ")} entered; A's typed message and ` +
      `${sender.nick}'s (API) shown on every page`;
    expect(
      carol.loggedIn,
      `C (BOSH) could not take part, bosh_login failed; otherwise: ${summary}`,
    );
    return summary;
  },

  async screenshot() {
    expect(alice.page, "A's page was never opened");
    await within(
      alice.page.screenshot({ path: screenshotPath, timeout: WAIT_MS }),
      "the screenshot",
    );
    const { size } = await stat(screenshotPath);
    const head = readFileSync(screenshotPath).subarray(0, 8).toString("latin1");
    expect(
      size > 1000 && head === "\x89PNG\r\n\x1a\n",
      `${screenshotPath} is not a PNG (${size} bytes)`,
    );
    return `${screenshotPath}, ${Math.round(size / 1024)} KiB`;
  },
};

// ---------------------------------------------------------------------

let staticServer = null;

async function shutdown() {
  await Promise.allSettled([
    browser ? within(browser.close(), "closing the browser", 5000) : null,
    staticServer ? new Promise((resolve) => staticServer.close(resolve)) : null,
  ]);
}

function printConsoles() {
  for (const user of users) {
    if (!user.console.length) continue;
    console.error(
      `--- browser console of ${user.label} (${user.jid}, ${user.transport}) ---`,
    );
    for (const line of user.console) console.error(line);
  }
  if (debug)
    console.error(
      `--- static server: served ${served.length}: ${served.join(" ")}`,
    );
  if (notFound.length)
    console.error(`--- static server: not found: ${notFound.join(" ")}`);
  if (blocked.length)
    console.error(`--- blocked requests: ${blocked.join(" ")}`);
}

const budget = setTimeout(() => {
  console.log(
    `FAIL run: did not finish within ${TOTAL_BUDGET_MS / 1000} s, killed`,
  );
  printConsoles();
  // Playwright kills the browser it launched when this process exits.
  process.exit(1);
}, TOTAL_BUDGET_MS);

let setupFailure = null;
try {
  staticServer = await startStaticServer();
  pageOrigin = `http://127.0.0.1:${staticServer.address().port}`;
  browser = await within(
    chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // Containers often have a small /dev/shm, which crashes tabs.
        "--disable-dev-shm-usage",
      ],
      timeout: WAIT_MS,
    }),
    `starting ${CHROMIUM}`,
  );
} catch (err) {
  setupFailure = `the browser could not start: ${err?.message ?? err}`;
}

const passed = new Set();
let failed = 0;
for (const [name, needs] of CHECKS) {
  const missing = needs.filter((n) => !passed.has(n));
  if (setupFailure || missing.length) {
    console.log(
      `FAIL ${name}: not run, ${setupFailure ?? `${missing.join(" and ")} failed`}`,
    );
    failed += 1;
    continue;
  }
  try {
    const detail = await within(
      checks[name](),
      `check ${name}`,
      CHECK_BUDGET_MS,
    );
    console.log(`ok ${name} (${detail})`);
    passed.add(name);
  } catch (err) {
    failed += 1;
    const reason =
      err instanceof CheckFailed
        ? err.message
        : `unexpected ${err?.name}: ${err?.message ?? err}`;
    console.log(`FAIL ${name}: ${reason}`);
  }
}
if (failed || debug) printConsoles();
const browserVersion = browser?.version() ?? "not started";
await shutdown();
clearTimeout(budget);
const { version } = JSON.parse(
  readFileSync(
    new URL("./node_modules/converse.js/package.json", import.meta.url),
  ),
);
console.log(
  `Converse.js ${version} in Chromium ${browserVersion}: ${CHECKS.length - failed} passed, ` +
    `${failed} failed; requests outside the two servers blocked: ${blocked.length}`,
);
process.exit(failed ? 1 : 0);
