// Interoperability check: xmpp.js (@xmpp/client, its built-in stream
// management, XEP-0198) resuming a session on Perch after its socket is cut.
//
// Usage:
//   node check.mjs HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B [--debug]
//
// Both clients connect to HOST:C2S_PORT over plain TCP and log in with
// SASL PLAIN (the test server allows it). xmpp.js upgrades with STARTTLS
// whenever it is offered and has no switch to verify the test server's
// self-signed certificate differently, so each client drops <starttls/>
// from the features it reads (a listener ahead of xmpp.js's own), as if
// the server had no TLS; xmpp.js picks no PLAIN without TLS by itself,
// so the credentials callback names it.
//
// A sends no iq of its own: in @xmpp/client 0.14.0 the reply to an iq it
// sent is taken by the iq caller's middleware, which runs before stream
// management's and does not pass it on, so the reply is never counted in
// `streamManagement.inbound`; every such reply makes the `h` of A's
// <resume/> one short and the server (rightly) sends that many stanzas
// again. A's round trips are messages to itself instead.
//
// Every check prints exactly one line, `ok NAME (details)` or
// `FAIL NAME: reason`; each check builds on the one before, so after a
// failure the rest are reported as not run. Exit status 0 only when every
// check passed. Every wait is bounded; the whole run is killed after
// TOTAL_BUDGET_MS however the server behaves (the bounds are multiplied by
// PERCH_TEST_TIME_SCALE when it is set: under qemu). `--debug` prints every
// element sent and received to stderr.
//
// The checks:
//   sm_enabled        A logs in; xmpp.js enables SM after binding and the
//                     server's <enabled/> gives it a resumption id
//   resume_after_cut  B sends A messages 1-10; when the 10th arrives A
//                     stops reading its socket (socket.pause()); B sends
//                     11-25, which the server writes to A's socket but A
//                     never handles; A's socket is reset
//                     (resetAndDestroy(): a TCP RST, no </stream:stream>);
//                     B sends 26-50 while A is away; xmpp.js reconnects
//                     by itself (its reconnect module, after 1 s) and
//                     resumes: streamManagement emits
//                     "resumed", no new "online" (no new bind), the id and
//                     the full JID are unchanged, and A ends up with bodies
//                     1-50, each exactly once, in order
//   after_resume      B sends 5 more: they arrive exactly once, in order;
//                     A's own stanzas are acknowledged by the server
//                     (xmpp.js's outbound queue empties after its <r/>; an
//                     h above what A sent would make xmpp.js throw, which
//                     shows as an error event); A saw no error at all

import { readFileSync } from "node:fs";

import { client, xml } from "@xmpp/client";

// PERCH_TEST_TIME_SCALE (a whole number, 1 when unset or unreadable): set
// when the server runs under qemu-user, 10-50 times slower.
const SCALE = Math.max(
  1,
  Number.parseInt(process.env.PERCH_TEST_TIME_SCALE ?? "1", 10) || 1,
);
const WAIT_MS = 10_000 * SCALE;
const CHECK_BUDGET_MS = 25_000 * SCALE;
const TOTAL_BUDGET_MS = 50_000 * SCALE;
const PAUSE_AT = 10;
const BEFORE_CUT = 25;
const TOTAL = 50;
const AFTER = 5;

const NS_STREAMS = "http://etherx.jabber.org/streams";
const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";

const argv = process.argv.slice(2);
const debug = argv.includes("--debug");
const [host, port, jidA, passwordA, jidB, passwordB] = argv.filter(
  (a) => a !== "--debug",
);
if (!passwordB) {
  console.error(
    "usage: node check.mjs HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B [--debug]",
  );
  process.exit(2);
}

const CHECKS = ["sm_enabled", "resume_after_cut", "after_resume"];
let clients = [];

const budget = setTimeout(() => {
  console.log(
    `FAIL run: did not finish within ${TOTAL_BUDGET_MS / 1000} s, killed`,
  );
  for (const c of clients) c.xmpp.socket?.destroy();
  process.exit(1);
}, TOTAL_BUDGET_MS);

class CheckFailed extends Error {}

function expect(cond, reason) {
  if (!cond) throw new CheckFailed(reason);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until pred() holds, polling; fails after `ms` with `what`. */
async function waitUntil(pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() >= deadline) {
      throw new CheckFailed(
        `${typeof what === "function" ? what() : what} not within ${ms / 1000} s`,
      );
    }
    await sleep(10);
  }
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

/** An xmpp.js client plus what the checks look at. */
class Client {
  constructor(label, jid, password, resource) {
    this.label = label;
    const [username, domain] = jid.split("@");
    this.domain = domain;
    this.events = [];
    this.errors = [];
    this.bodies = [];
    this.onlines = 0;
    this.resumes = 0;
    this.pauseAt = null;
    this.paused = false;
    this.cutInfo = null;
    const xmpp = client({
      service: `xmpp://${host}:${port}`,
      domain,
      resource,
      // xmpp.js's own bound on opening and closing a stream (2 s).
      timeout: 2000 * SCALE,
      // Called with (authenticate, mechanisms): PLAIN, named explicitly,
      // since xmpp.js only picks it by itself on a secure connection.
      credentials: async (authenticate, mechanisms) => {
        if (!mechanisms.includes("PLAIN")) {
          throw new Error(`PLAIN not offered (offered: ${mechanisms})`);
        }
        await authenticate({ username, password }, "PLAIN");
      },
    });
    this.xmpp = xmpp;
    // Ahead of xmpp.js's own listeners: no STARTTLS (see the top).
    xmpp.prependListener("element", (el) => {
      if (el.is("features", NS_STREAMS) && el.getChild("starttls", NS_TLS)) {
        el.remove("starttls", NS_TLS);
      }
    });
    xmpp.on("status", (status) => this.note(`status:${status}`));
    xmpp.on("error", (err) => {
      this.errors.push(String(err?.message ?? err));
      this.note(`error:${err?.message ?? err}`);
    });
    xmpp.on("online", (jid) => {
      this.onlines += 1;
      this.note(`online:${jid}`);
    });
    xmpp.streamManagement.on("resumed", () => {
      this.resumes += 1;
      this.note("sm:resumed");
    });
    xmpp.reconnect.on("reconnecting", () => this.note("reconnecting"));
    if (debug) {
      xmpp.on("element", (el) => console.error(`${label} IN  ${el}`));
      xmpp.on("send", (el) => console.error(`${label} OUT ${el}`));
    }
    xmpp.on("stanza", (st) => {
      if (!st.is("message") || st.attrs.type === "error") return;
      const text = st.getChildText("body");
      if (text === null) return;
      this.bodies.push(text);
      if (this.pauseAt !== null && text === this.pauseAt) {
        this.pauseAt = null;
        this.pause();
      }
    });
  }

  note(what) {
    this.events.push(what);
    if (this.events.length > 200) this.events.shift();
  }

  get sm() {
    return this.xmpp.streamManagement;
  }

  /** Stops reading the socket: what the server sends from now on is
   * never handled (and is lost with the cut). */
  pause() {
    this.xmpp.socket?.pause();
    this.paused = true;
    this.note(`paused reading after ${this.bodies.at(-1)}`);
  }

  /** Resets the TCP connection: no stream close, unsent data dropped. */
  cut() {
    const socket = this.xmpp.socket;
    this.cutInfo = {
      bodies: this.bodies.filter((b) => b.startsWith("m ")).length,
      inbound: this.sm.inbound,
      unackedOut: this.sm.outbound_q.length,
    };
    this.note(`cut(${JSON.stringify(this.cutInfo)})`);
    if (typeof socket?.resetAndDestroy === "function") {
      socket.resetAndDestroy();
    } else {
      socket?.destroy();
    }
  }

  async start() {
    await within(this.xmpp.start(), `${this.label}: login`);
  }

  describe() {
    return `events: ${this.events.slice(-30).join(", ")}; errors: ${JSON.stringify(this.errors)}`;
  }
}

const token = Math.random().toString(16).slice(2, 8);
const alice = new Client("A", jidA, passwordA, "xmppjs-sm");
const bob = new Client("B", jidB, passwordB, "xmppjs-sm-sender");
clients = [alice, bob];
let aliceFull = "";
let smId = "";

const body = (tag, n) => `${tag} ${n} ${token}`;

function sendBodies(tag, from, to) {
  const messages = [];
  for (let n = from; n <= to; n++) {
    messages.push(
      xml("message", { to: aliceFull, type: "chat" }, xml("body", {}, body(tag, n))),
    );
  }
  return bob.xmpp.sendMany(messages);
}

/** B's round trip to the server: it has handled what B sent before. */
async function ping(c) {
  await within(
    c.xmpp.iqCaller.get(xml("ping", "urn:xmpp:ping"), c.domain),
    `${c.label}: ping answer`,
  );
}

/** A's round trip, without an iq (see the top): a message to its own
 * full JID. What the server sent A before it has arrived when it does. */
let echoes = 0;
async function echo() {
  echoes += 1;
  const text = body("echo", echoes);
  await alice.xmpp.send(
    xml("message", { to: aliceFull, type: "chat" }, xml("body", {}, text)),
  );
  await waitUntil(
    () => alice.bodies.includes(text),
    () => `A's message to itself (${alice.describe()})`,
  );
}

function expectExactly(tag, count, what) {
  const want = [];
  for (let n = 1; n <= count; n++) want.push(body(tag, n));
  const got = alice.bodies.filter((b) => b.startsWith(`${tag} `));
  if (JSON.stringify(got) === JSON.stringify(want)) return;
  const dupes = [...new Set(got.filter((b, i) => got.indexOf(b) !== i))];
  const missing = want.filter((b) => !got.includes(b));
  throw new CheckFailed(
    `${what}: A got ${got.length} of ${want.length} bodies` +
      (dupes.length ? `; duplicated ${JSON.stringify(dupes)}` : "") +
      (missing.length ? `; missing ${JSON.stringify(missing)}` : "") +
      (!dupes.length && !missing.length ? "; out of order" : "") +
      `: ${JSON.stringify(got)}`,
  );
}

async function waitBodies(tag, count, what) {
  const n = () => alice.bodies.filter((b) => b.startsWith(`${tag} `)).length;
  await waitUntil(
    () => n() >= count,
    () => `${what} (${n()} of ${count} so far; ${alice.describe()})`,
  );
}

/** A's stanzas are all acknowledged: xmpp.js asks with <r/> shortly
 * after it sends one, and drops what the server's <a h/> covers. */
async function expectAllAcked() {
  await echo();
  await waitUntil(
    () => alice.sm.outbound_q.length === 0,
    () =>
      `an <a h/> covering all A sent (acked ${alice.sm.outbound}, ` +
      `unacked ${alice.sm.outbound_q.length})`,
  );
  return `server acked ${alice.sm.outbound} of A's stanzas`;
}

const checks = {
  async sm_enabled() {
    await Promise.all([alice.start(), bob.start()]);
    aliceFull = alice.xmpp.jid.toString();
    await waitUntil(
      () => alice.sm.enabled && alice.sm.id,
      () => `SM enabled with an id (${alice.describe()})`,
    );
    smId = alice.sm.id;
    await Promise.all([
      alice.xmpp.send(xml("presence")),
      bob.xmpp.send(xml("presence")),
    ]);
    await Promise.all([echo(), ping(bob)]);
    const acked = await expectAllAcked();
    return `id ${JSON.stringify(smId)}, max=${alice.sm.max}, ${aliceFull}; ${acked}`;
  },

  async resume_after_cut() {
    const onlines = alice.onlines;
    alice.pauseAt = body("m", PAUSE_AT);
    await sendBodies("m", 1, PAUSE_AT);
    await waitUntil(
      () => alice.paused,
      () => `message ${PAUSE_AT} (${alice.describe()})`,
    );
    // These reach A's socket (the server writes them and counts them as
    // sent) but A never handles them: in flight when the cut comes.
    await sendBodies("m", PAUSE_AT + 1, BEFORE_CUT);
    await ping(bob);
    await sleep(300 * SCALE);
    alice.cut();
    await waitUntil(
      () => alice.xmpp.status === "disconnect" || alice.resumes > 0,
      () => `the cut socket reported closed (${alice.describe()})`,
    );
    // While A is away (xmpp.js reconnects after 1 s).
    await sendBodies("m", BEFORE_CUT + 1, TOTAL);
    await ping(bob);
    const awayDone = alice.resumes === 0;
    await waitUntil(
      () => alice.resumes > 0 || alice.onlines > onlines,
      () => `a reconnection (${alice.describe()})`,
    );
    expect(
      alice.resumes === 1 && alice.onlines === onlines,
      `expected a resumption, got ${alice.resumes} resumption(s) and ` +
        `${alice.onlines - onlines} new session(s) (${alice.describe()})`,
    );
    expect(
      alice.sm.id === smId,
      `SM id changed from ${smId} to ${alice.sm.id}`,
    );
    expect(
      alice.xmpp.jid.toString() === aliceFull,
      `full JID changed from ${aliceFull} to ${alice.xmpp.jid}`,
    );
    expect(alice.sm.enabled, "SM is not enabled after the resumption");
    await waitBodies("m", TOTAL, `all ${TOTAL} messages`);
    // Anything sent twice would follow the rest: a round trip of A's.
    await echo();
    expectExactly("m", TOTAL, "after the resumption");
    return (
      `A handled ${alice.cutInfo.bodies} of ${BEFORE_CUT} sent before the cut ` +
      `(h=${alice.cutInfo.inbound}); ${TOTAL - BEFORE_CUT} sent ` +
      `${awayDone ? "while A was away" : "around the reconnection"}; ` +
      `resumed with the same id and JID; all ${TOTAL} exactly once, in order`
    );
  },

  async after_resume() {
    await sendBodies("after", 1, AFTER);
    await waitBodies("after", AFTER, `${AFTER} messages after the resumption`);
    await echo();
    expectExactly("after", AFTER, "after the resumption");
    const acked = await expectAllAcked();
    expect(
      alice.errors.length === 0,
      `A reported errors: ${JSON.stringify(alice.errors)}`,
    );
    expect(
      alice.onlines === 1 && alice.resumes === 1,
      `sessions: ${alice.onlines} started, ${alice.resumes} resumed (${alice.describe()})`,
    );
    return `${AFTER} arrived exactly once; ${acked}`;
  },
};

async function closeAll() {
  for (const c of clients) c.xmpp.reconnect.stop();
  await Promise.allSettled(
    clients.map((c) =>
      within(c.xmpp.stop(), `${c.label}: stop`, 3000).catch(() =>
        c.xmpp.socket?.destroy(),
      ),
    ),
  );
}

let failed = 0;
let broken = null;
for (const name of CHECKS) {
  if (broken !== null) {
    console.log(`FAIL ${name}: not run, ${broken} failed`);
    failed += 1;
    continue;
  }
  try {
    const detail = await within(checks[name](), `check ${name}`, CHECK_BUDGET_MS);
    console.log(`ok ${name} (${detail})`);
  } catch (err) {
    failed += 1;
    broken = name;
    const reason =
      err instanceof CheckFailed
        ? err.message
        : `unexpected ${err?.name}: ${err?.message ?? err}`;
    console.log(`FAIL ${name}: ${reason}`);
    for (const c of clients) console.error(`  | ${c.label}: ${c.describe()}`);
  }
}
await closeAll();
clearTimeout(budget);
const { version } = JSON.parse(
  readFileSync(
    new URL("./node_modules/@xmpp/client/package.json", import.meta.url),
  ),
);
console.log(
  `@xmpp/client ${version}: ${CHECKS.length - failed} passed, ${failed} failed`,
);
process.exit(failed ? 1 : 0);
