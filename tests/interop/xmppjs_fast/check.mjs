// Interoperability check: xmpp.js (@xmpp/client) logging in to Perch with
// SASL2 (XEP-0388) and Bind 2 (XEP-0386), getting a FAST token (XEP-0484)
// and logging in with it on its next connection.
//
// Usage:
//   node check.mjs HOST C2S_PORT JID PASSWORD [--debug]
//
// The client connects to HOST:C2S_PORT over plain TCP (the test server
// allows logins there); as in ../xmppjs_sm/check.mjs it drops <starttls/>
// from the features it reads, since xmpp.js cannot be told to accept the
// test server's self-signed certificate. Without TLS xmpp.js picks
// SCRAM-SHA-1 (not PLAIN) for its password login by itself.
//
// Every check prints exactly one line, `ok NAME (details)` or
// `FAIL NAME: reason`; each builds on the one before, so after a failure
// the rest are reported as not run. Exit status 0 only when every check
// passed. Every wait is bounded (times PERCH_TEST_TIME_SCALE when set).
// `--debug` prints every element sent and received to stderr.
//
// The checks:
//   password_login  a client logs in with its password over SASL2: its
//                   <authenticate/> names SCRAM-SHA-1 and carries a Bind 2
//                   request and a FAST token request; the <success/> binds
//                   a resource made of its tag, enables stream management
//                   inline and carries a token, which xmpp.js keeps
//   fast_login      a new client instance with the same user-agent id and
//                   that token logs in with HT-SHA-256-NONE, without the
//                   password: one round trip, the same resource, a working
//                   session (a message to itself comes back)
//   stale_token     a client with a token the server never issued is
//                   refused (not-authorized), and xmpp.js falls back to the
//                   password by itself, getting a new token

import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

import { client, xml } from "@xmpp/client";

const SCALE = Math.max(
  1,
  Number.parseInt(process.env.PERCH_TEST_TIME_SCALE ?? "1", 10) || 1,
);
const WAIT_MS = 10_000 * SCALE;
const TOTAL_BUDGET_MS = 45_000 * SCALE;

const NS_STREAMS = "http://etherx.jabber.org/streams";
const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_BIND2 = "urn:xmpp:bind:0";
const NS_FAST = "urn:xmpp:fast:0";
const NS_SM = "urn:xmpp:sm:3";
const TAG = "xmppjs-fast";

const argv = process.argv.slice(2);
const debug = argv.includes("--debug");
const [host, port, jid, password] = argv.filter((a) => a !== "--debug");
if (!password) {
  console.error("usage: node check.mjs HOST C2S_PORT JID PASSWORD [--debug]");
  process.exit(2);
}
const [username, domain] = jid.split("@");
const CHECKS = ["password_login", "fast_login", "stale_token"];
const clients = [];

const budget = setTimeout(() => {
  console.log(`FAIL run: did not finish within ${TOTAL_BUDGET_MS / 1000} s, killed`);
  for (const c of clients) c.xmpp.socket?.destroy();
  process.exit(1);
}, TOTAL_BUDGET_MS);

class CheckFailed extends Error {}

function expect(cond, reason) {
  if (!cond) throw new CheckFailed(reason);
}

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

/** One xmpp.js client instance: an app start, with its stored token. */
class App {
  constructor(label, agentId, token) {
    this.label = label;
    this.sent = [];
    this.received = [];
    this.errors = [];
    this.saved = [];
    const xmpp = client({
      service: `xmpp://${host}:${port}`,
      domain,
      username,
      password,
      resource: TAG,
      timeout: 2000 * SCALE,
      userAgent: xml(
        "user-agent",
        { id: agentId },
        xml("software", {}, "perch interop check"),
        xml("device", {}, "CI"),
      ),
    });
    this.xmpp = xmpp;
    // The app's token storage.
    let stored = token;
    xmpp.fast.fetchToken = async () => stored;
    xmpp.fast.saveToken = async (t) => {
      stored = t;
      this.saved.push(t);
    };
    xmpp.fast.deleteToken = async () => {
      stored = null;
    };
    xmpp.reconnect.stop();
    xmpp.prependListener("element", (el) => {
      if (el.is("features", NS_STREAMS) && el.getChild("starttls", NS_TLS)) {
        el.remove("starttls", NS_TLS);
      }
    });
    xmpp.on("element", (el) => {
      this.received.push(el);
      if (debug) console.error(`${label} IN  ${el}`);
    });
    xmpp.on("send", (el) => {
      this.sent.push(el);
      if (debug) console.error(`${label} OUT ${el}`);
    });
    xmpp.on("error", (err) => this.errors.push(String(err?.message ?? err)));
    clients.push(this);
  }

  async start() {
    await within(this.xmpp.start(), `${this.label}: login`);
  }

  authenticates() {
    return this.sent.filter((el) => el.is("authenticate", NS_SASL2));
  }

  outcomes() {
    return this.received.filter(
      (el) => el.getNS() === NS_SASL2 && ["success", "failure"].includes(el.name),
    );
  }

  async stop() {
    await within(this.xmpp.stop(), `${this.label}: stop`, 3000 * SCALE).catch(() =>
      this.xmpp.socket?.destroy(),
    );
  }

  /** A message to its own full JID comes back: the session works. */
  async echo() {
    const body = `echo ${randomUUID()}`;
    const back = new Promise((resolve) => {
      this.xmpp.on("stanza", (st) => {
        if (st.is("message") && st.getChildText("body") === body) resolve();
      });
    });
    await this.xmpp.send(
      xml("message", { to: this.xmpp.jid.toString(), type: "chat" }, xml("body", {}, body)),
    );
    await within(back, `${this.label}: its message to itself`);
  }
}

const agentId = randomUUID();
let token = null;
let firstJid = "";

const checks = {
  async password_login() {
    const app = new App("A", agentId, null);
    await app.start();
    const [auth] = app.authenticates();
    expect(auth, "no SASL2 <authenticate/> was sent (SASL1 used?)");
    expect(
      auth.attrs.mechanism === "SCRAM-SHA-1",
      `mechanism ${auth.attrs.mechanism}, expected SCRAM-SHA-1`,
    );
    expect(auth.getChild("bind", NS_BIND2), `no Bind 2 request: ${auth}`);
    expect(auth.getChild("request-token", NS_FAST), `no token request: ${auth}`);
    const success = app.outcomes().at(-1);
    expect(success?.name === "success", `no <success/>: ${success}`);
    const bound = success.getChild("bound", NS_BIND2);
    expect(bound, `no <bound/> in ${success}`);
    expect(bound.getChild("enabled", NS_SM), `SM not enabled inline: ${success}`);
    firstJid = app.xmpp.jid.toString();
    expect(
      firstJid.startsWith(`${jid}/${TAG}/`),
      `resource ${firstJid} is not ${TAG}/…`,
    );
    expect(app.xmpp.streamManagement.enabled, "xmpp.js has SM off");
    expect(app.saved.length === 1, `saved ${app.saved.length} tokens`);
    token = app.saved[0];
    expect(token.mechanism === "HT-SHA-256-NONE", `token for ${token.mechanism}`);
    await app.echo();
    await app.stop();
    expect(app.errors.length === 0, `errors: ${JSON.stringify(app.errors)}`);
    return `${firstJid}, token until ${token.expiry}`;
  },

  async fast_login() {
    const app = new App("B", agentId, token);
    await app.start();
    const auths = app.authenticates();
    expect(auths.length === 1, `${auths.length} <authenticate/> sent`);
    expect(
      auths[0].attrs.mechanism === "HT-SHA-256-NONE",
      `mechanism ${auths[0].attrs.mechanism}, expected HT-SHA-256-NONE`,
    );
    expect(auths[0].getChild("fast", NS_FAST), `no <fast/>: ${auths[0]}`);
    const success = app.outcomes().at(-1);
    expect(success?.name === "success", `no <success/>: ${success}`);
    expect(
      app.xmpp.jid.toString() === firstJid,
      `resource changed from ${firstJid} to ${app.xmpp.jid}`,
    );
    await app.echo();
    await app.stop();
    expect(app.errors.length === 0, `errors: ${JSON.stringify(app.errors)}`);
    return `logged in with the token as ${app.xmpp.jid}`;
  },

  async stale_token() {
    const bogus = { ...token, token: "bm90IGEgdG9rZW4gdGhpcyBzZXJ2ZXIgaXNzdWVk".repeat(2) };
    const app = new App("C", agentId, bogus);
    await app.start();
    const outcomes = app.outcomes().map((el) => el.name);
    expect(
      JSON.stringify(outcomes) === JSON.stringify(["failure", "success"]),
      `outcomes ${JSON.stringify(outcomes)}, expected a failure then a success`,
    );
    const failure = app.outcomes()[0];
    expect(
      failure.getChild("not-authorized"),
      `expected not-authorized: ${failure}`,
    );
    const mechanisms = app.authenticates().map((el) => el.attrs.mechanism);
    expect(
      JSON.stringify(mechanisms) === JSON.stringify(["HT-SHA-256-NONE", "SCRAM-SHA-1"]),
      `mechanisms ${JSON.stringify(mechanisms)}`,
    );
    expect(app.saved.length === 1, "no new token after the fallback");
    await app.stop();
    return "refused, fell back to the password, got a new token";
  },
};

let failed = 0;
let broken = null;
for (const name of CHECKS) {
  if (broken !== null) {
    console.log(`FAIL ${name}: not run, ${broken} failed`);
    failed += 1;
    continue;
  }
  try {
    const detail = await within(checks[name](), `check ${name}`, WAIT_MS * 2);
    console.log(`ok ${name} (${detail})`);
  } catch (err) {
    failed += 1;
    broken = name;
    const reason =
      err instanceof CheckFailed ? err.message : `unexpected ${err?.name}: ${err?.message ?? err}`;
    console.log(`FAIL ${name}: ${reason}`);
    for (const c of clients) {
      console.error(`  | ${c.label} errors: ${JSON.stringify(c.errors)}`);
    }
  }
}
for (const c of clients) c.xmpp.socket?.destroy();
clearTimeout(budget);
const { version } = JSON.parse(
  readFileSync(new URL("./node_modules/@xmpp/client/package.json", import.meta.url)),
);
console.log(`@xmpp/client ${version}: ${CHECKS.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
