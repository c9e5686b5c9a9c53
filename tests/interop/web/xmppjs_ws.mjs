// Interoperability check: xmpp.js (@xmpp/client) over Perch's WebSocket
// endpoint (RFC 7395), found through XEP-0156 discovery.
//
// Usage:
//   node [--experimental-websocket] xmppjs_ws.mjs HOST HTTP_PORT \
//       JID_A PASSWORD_A JID_B PASSWORD_B [--debug]
//
// HOST:HTTP_PORT is Perch's plain `http` listener. xmpp.js uses the
// WebSocket the runtime provides: node 22 and later have one; node 20
// needs --experimental-websocket (tests/interop_web.rs passes it when
// `WebSocket` is missing). A WebSocket to 127.0.0.1 or localhost counts as
// secure for xmpp.js, as it does for Perch, so both log in with SCRAM
// without any special arrangement.
//
// xmpp.js 0.14.0 does not count the replies to its own iqs in its stream
// management `h` (see ../xmppjs_sm/check.mjs): the <a/> it sends when
// closing may be short by the iqs of the roster and muc checks. Nothing
// here depends on it.
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
//   discovery   GET /.well-known/host-meta.json: a JRD whose
//               urn:xmpp:alt-connections:websocket link is a ws:// URL;
//               /.well-known/host-meta (XRD) names the same URL; the
//               WebSocket URL used from here on is the one discovered
//   login       A and B connect to that URL, authenticate with
//               SCRAM-SHA-1 (the mechanism must be offered), bind a
//               resource (their bare JIDs are the ones given) and send
//               initial presence, which the server reflects to them
//   message     A sends B a chat message to B's bare JID; B gets it from
//               A's full JID with the same body and answers to that full
//               JID; A gets the answer from B's full JID, body intact
//   sm_enabled  xmpp.js enabled stream management (XEP-0198) on both,
//               as its own request or inline in its SASL2 login (the
//               <enabled/> inside <success><bound/> of XEP-0386):
//               the server's <enabled/> has resume="true" (or "1") and an
//               id; the server acknowledges everything A sent (xmpp.js
//               asks with <r/> after sending and drops what <a h/> covers)
//   roster      A and B fetch their rosters (so they are interested
//               resources); A adds B (roster set): A gets a roster push of
//               B; A asks for B's presence (subscribe), B gets the request
//               and approves it (subscribed): B gets a roster push of A
//               with subscription "from", A one of B with subscription
//               "to", and A gets B's presence; the rosters fetched again
//               say the same
//   muc         A joins web@conference.localhost as "alice"; if the room
//               is new (status 201, locked) A accepts the default
//               configuration (an empty submitted form: an instant room);
//               then B joins as "bob" and A sees B's presence; a
//               groupchat message from A reaches B from the room JID with
//               A's nickname and one from B reaches A (each sender gets
//               its own message back too)
//   close       A and B stop(): each sends <close/> and the server answers
//               <close/> (what stop() resolves with); the WebSocket then
//               closes cleanly (wasClean, with code 1000, or 1005 when
//               the side that started the closing handshake gave none)

import { readFileSync } from "node:fs";

import { client, xml } from "@xmpp/client";

// PERCH_TEST_TIME_SCALE (a whole number, 1 when unset or unreadable): set
// when the server runs under qemu-user, 10-50 times slower.
const SCALE = Math.max(
  1,
  Number.parseInt(process.env.PERCH_TEST_TIME_SCALE ?? "1", 10) || 1,
);
const WAIT_MS = 10_000 * SCALE;
const CHECK_BUDGET_MS = 20_000 * SCALE;
const TOTAL_BUDGET_MS = 60_000 * SCALE;

const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_SM = "urn:xmpp:sm:3";
const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_BIND2 = "urn:xmpp:bind:0";
const NS_ROSTER = "jabber:iq:roster";
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
const NS_DATA = "jabber:x:data";
const REL_WEBSOCKET = "urn:xmpp:alt-connections:websocket";
const REL_BOSH = "urn:xmpp:alt-connections:xbosh";
const ROOM = "web@conference.localhost";

const USAGE =
  "usage: node xmppjs_ws.mjs HOST HTTP_PORT JID_A PASSWORD_A JID_B PASSWORD_B [--debug]";
const argv = process.argv.slice(2);
const debug = argv.includes("--debug");
const [host, port, jidA, passwordA, jidB, passwordB] = argv.filter(
  (a) => a !== "--debug",
);
if (!passwordB) {
  console.error(USAGE);
  process.exit(2);
}
if (typeof globalThis.WebSocket !== "function") {
  console.error(
    "no global WebSocket: run node 22 or later, or node 20 with --experimental-websocket",
  );
  process.exit(2);
}

const CHECKS = [
  "discovery",
  "login",
  "message",
  "sm_enabled",
  "roster",
  "muc",
  "close",
];
let clients = [];

const budget = setTimeout(() => {
  console.log(
    `FAIL run: did not finish within ${TOTAL_BUDGET_MS / 1000} s, killed`,
  );
  for (const c of clients) c.xmpp?.socket?.socket?.close();
  process.exit(1);
}, TOTAL_BUDGET_MS);

class CheckFailed extends Error {}

function expect(cond, reason) {
  if (!cond)
    throw new CheckFailed(typeof reason === "function" ? reason() : reason);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until pred() returns something truthy, polling, and returns it;
 * fails after `ms` with `what`. */
async function waitUntil(pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = pred();
    if (found) return found;
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

/** fetch() with a bounded wait. */
async function get(url) {
  try {
    return await fetch(url, { signal: AbortSignal.timeout(WAIT_MS) });
  } catch (err) {
    throw new CheckFailed(
      `GET ${url}: ${err?.cause?.message ?? err?.message ?? err}`,
    );
  }
}

const bare = (jid) => String(jid).split("/")[0];

/** An xmpp.js client over the WebSocket plus what the checks look at. */
class Client {
  constructor(label, jid, password, nick) {
    this.label = label;
    this.jid = jid;
    this.password = password;
    this.nick = nick;
    [this.username, this.domain] = jid.split("@");
    this.events = [];
    this.errors = [];
    // Every element received, in order (stanzas and nonzas).
    this.received = [];
    this.mechanism = null;
    this.rosterPushes = [];
    this.xmpp = null;
  }

  /** Creates the xmpp.js client for `service` (not yet connected). */
  create(service) {
    const xmpp = client({
      service,
      domain: this.domain,
      resource: `xmppjs-ws-${this.nick}`,
      // xmpp.js's own bound on opening and closing a stream (2 s).
      timeout: 2000 * SCALE,
      // Called with (authenticate, mechanisms): SCRAM-SHA-1, the SCRAM
      // xmpp.js has, named explicitly so that the check says which.
      credentials: async (authenticate, mechanisms) => {
        if (!mechanisms.includes("SCRAM-SHA-1")) {
          throw new Error(`SCRAM-SHA-1 not offered (offered: ${mechanisms})`);
        }
        this.mechanism = "SCRAM-SHA-1";
        await authenticate(
          { username: this.username, password: this.password },
          "SCRAM-SHA-1",
        );
      },
    });
    this.xmpp = xmpp;
    // A dropped connection fails the check in progress: no reconnecting.
    xmpp.reconnect.stop();
    xmpp.on("status", (status, arg) => {
      if (status === "disconnect") this.disconnect = arg;
      this.note(`status:${status}`);
      // <close/> in and out are not elements to xmpp.js: the statuses
      // "closing" (sent) and "close" (received) show them.
      if (debug) console.error(`${this.label} status ${status}`);
    });
    xmpp.on("error", (err) => {
      this.errors.push(String(err?.message ?? err));
      this.note(`error:${err?.message ?? err}`);
    });
    xmpp.on("online", (jid) => this.note(`online:${jid}`));
    xmpp.on("element", (el) => {
      this.received.push(el);
      if (debug) console.error(`${this.label} IN  ${el}`);
    });
    if (debug)
      xmpp.on("send", (el) => console.error(`${this.label} OUT ${el}`));
    // Roster pushes (RFC 6121 §2.1.6): recorded and answered with a result.
    xmpp.iqCallee.set(NS_ROSTER, "query", (ctx) => {
      const from = ctx.stanza.attrs.from;
      if (from && bare(from) !== this.jid) return undefined;
      for (const item of ctx.element.getChildren("item")) {
        this.rosterPushes.push({ ...item.attrs });
      }
      return true;
    });
  }

  note(what) {
    this.events.push(what);
    if (this.events.length > 200) this.events.shift();
  }

  get fullJid() {
    return this.xmpp?.jid?.toString() ?? "";
  }

  /** The first element received for which pred() holds, or undefined. */
  find(pred) {
    return this.received.find(pred);
  }

  /** Waits for a received element pred() holds for; returns it. */
  waitFor(pred, what) {
    return waitUntil(
      () => this.find(pred),
      () =>
        `${this.label}: ${typeof what === "function" ? what() : what} (${this.describe()})`,
    );
  }

  async iq(type, child, to) {
    const attrs = { type };
    if (to) attrs.to = to;
    try {
      return await within(
        this.xmpp.iqCaller.request(xml("iq", attrs, child), WAIT_MS),
        `${this.label}: the answer to an iq ${type} (${child.name} ${child.attrs.xmlns})`,
      );
    } catch (err) {
      if (err instanceof CheckFailed) throw err;
      throw new CheckFailed(
        `${this.label}: iq ${type} ${child.attrs.xmlns} refused: ${err?.condition ?? err?.message ?? err}` +
          (err?.element ? ` (${err.element})` : ""),
      );
    }
  }

  async roster() {
    const answer = await this.iq("get", xml("query", { xmlns: NS_ROSTER }));
    const query = answer?.getChild?.("query", NS_ROSTER) ?? answer;
    return (query?.getChildren?.("item") ?? []).map((i) => ({ ...i.attrs }));
  }

  /** The SASL mechanisms the server offered (all of them, not only the
   * ones xmpp.js knows). */
  offered() {
    const features = this.find((el) => el.getChild("mechanisms", NS_SASL));
    return (
      features?.getChild("mechanisms", NS_SASL).getChildren("mechanism") ?? []
    ).map((m) => m.text());
  }

  describe() {
    const last = this.received.slice(-6).map((e) => String(e).slice(0, 300));
    return `events: ${this.events.slice(-20).join(", ")}; errors: ${JSON.stringify(this.errors)}; last received: ${last.join(" ")}`;
  }
}

const token = Math.random().toString(16).slice(2, 8);
const alice = new Client("A", jidA, passwordA, "alice");
const bob = new Client("B", jidB, passwordB, "bob");
clients = [alice, bob];
let wsUrl = "";
let closeResults = [];

/** The first link with `rel` in a JRD (JSON) document. */
function jrdLink(jrd, rel) {
  return (jrd?.links ?? []).find((l) => l?.rel === rel)?.href;
}

/** The href of the first <Link rel=REL> in an XRD document. */
function xrdLink(xrd, rel) {
  for (const m of xrd.matchAll(/<Link\b[^>]*>/g)) {
    const attr = (name) =>
      m[0]
        .match(new RegExp(`\\b${name}=(?:'([^']*)'|"([^"]*)")`))
        ?.slice(1)
        .find((v) => v !== undefined);
    if (attr("rel") === rel) {
      return attr("href")?.replaceAll("&amp;", "&");
    }
  }
  return undefined;
}

const isMessage = (el, from, text) =>
  el.is("message") &&
  (from === null || el.attrs.from === from) &&
  el.getChildText("body") === text;

function mucStatuses(presence) {
  const x = presence.getChild("x", NS_MUC_USER);
  return (x?.getChildren("status") ?? []).map((s) => s.attrs.code);
}

const checks = {
  async discovery() {
    const base = `http://${host}:${port}`;
    const json = await get(`${base}/.well-known/host-meta.json`);
    expect(json.status === 200, `host-meta.json: HTTP ${json.status}`);
    const text = await json.text();
    let jrd;
    try {
      jrd = JSON.parse(text);
    } catch (err) {
      throw new CheckFailed(
        `host-meta.json is not JSON (${err.message}): ${text.slice(0, 200)}`,
      );
    }
    const href = jrdLink(jrd, REL_WEBSOCKET);
    expect(href, `host-meta.json has no ${REL_WEBSOCKET} link: ${text}`);
    expect(
      /^ws:\/\/[^/]+\//.test(href),
      `the WebSocket link is not a ws:// URL: ${href}`,
    );
    const bosh = jrdLink(jrd, REL_BOSH);

    const xrdResponse = await get(`${base}/.well-known/host-meta`);
    expect(xrdResponse.status === 200, `host-meta: HTTP ${xrdResponse.status}`);
    const xrd = await xrdResponse.text();
    const xrdHref = xrdLink(xrd, REL_WEBSOCKET);
    expect(
      xrdHref === href,
      `host-meta (XRD) names ${JSON.stringify(xrdHref)} for the WebSocket, host-meta.json ${href}: ${xrd}`,
    );
    expect(
      xrdLink(xrd, REL_BOSH) === bosh,
      `host-meta (XRD) and host-meta.json disagree on BOSH: ${xrdLink(xrd, REL_BOSH)} / ${bosh}`,
    );
    wsUrl = href;
    return `websocket ${href}, bosh ${bosh ?? "none"}; the XRD agrees`;
  },

  async login() {
    for (const c of clients) c.create(wsUrl);
    await Promise.all(
      clients.map((c) => within(c.xmpp.start(), `${c.label}: login`)),
    );
    for (const c of clients) {
      expect(
        bare(c.fullJid) === c.jid,
        `${c.label}: bound ${c.fullJid}, expected a resource of ${c.jid}`,
      );
      expect(
        c.mechanism === "SCRAM-SHA-1",
        `${c.label}: authenticated without SCRAM-SHA-1`,
      );
    }
    // Initial presence; the server reflects it to the sender's resource.
    await Promise.all(clients.map((c) => c.xmpp.send(xml("presence"))));
    for (const c of clients) {
      await c.waitFor(
        (el) =>
          el.is("presence") && el.attrs.from === c.fullJid && !el.attrs.type,
        "its own initial presence reflected",
      );
    }
    return `${alice.fullJid} and ${bob.fullJid} with SCRAM-SHA-1 (the server offered ${alice.offered().join(" ")})`;
  },

  async message() {
    const hello = `hello bob ${token}`;
    await alice.xmpp.send(
      xml(
        "message",
        { to: bob.jid, type: "chat", id: `m1-${token}` },
        xml("body", {}, hello),
      ),
    );
    const got = await bob.waitFor(
      (el) => isMessage(el, null, hello),
      "A's message",
    );
    expect(
      got.attrs.from === alice.fullJid,
      `B got A's message from ${got.attrs.from}, expected ${alice.fullJid}`,
    );
    const back = `hello alice ${token}`;
    await bob.xmpp.send(
      xml(
        "message",
        { to: got.attrs.from, type: "chat", id: `m2-${token}` },
        xml("body", {}, back),
      ),
    );
    const answer = await alice.waitFor(
      (el) => isMessage(el, null, back),
      "B's answer",
    );
    expect(
      answer.attrs.from === bob.fullJid,
      `A got B's answer from ${answer.attrs.from}, expected ${bob.fullJid}`,
    );
    return `A -> ${bob.jid} arrived from ${got.attrs.from}; the answer from ${answer.attrs.from}`;
  },

  async sm_enabled() {
    const ids = [];
    const smEnabled = (c) =>
      c.find((el) => el.is("enabled", NS_SM)) ??
      c
        .find((el) => el.is("success", NS_SASL2))
        ?.getChild("bound", NS_BIND2)
        ?.getChild("enabled", NS_SM);
    for (const c of clients) {
      const enabled = smEnabled(c);
      expect(
        enabled,
        () =>
          `${c.label}: no <enabled xmlns='${NS_SM}'/> received (${c.describe()})`,
      );
      expect(
        ["true", "1"].includes(enabled.attrs.resume),
        `${c.label}: <enabled/> without resume="true": ${enabled}`,
      );
      expect(
        enabled.attrs.id,
        `${c.label}: <enabled/> without an id: ${enabled}`,
      );
      expect(
        c.xmpp.streamManagement.enabled &&
          c.xmpp.streamManagement.id === enabled.attrs.id,
        `${c.label}: xmpp.js does not consider SM enabled with id ${enabled.attrs.id}`,
      );
      ids.push(enabled.attrs.id);
    }
    const sm = alice.xmpp.streamManagement;
    await waitUntil(
      () => sm.outbound_q.length === 0 && sm.outbound > 0,
      () =>
        `an <a h/> covering all A sent (acked ${sm.outbound}, unacked ${sm.outbound_q.length}; ${alice.describe()})`,
    );
    const max = smEnabled(alice).attrs.max;
    return `<enabled resume> with ids ${ids.map((i) => JSON.stringify(i)).join(", ")}${max ? `, max=${max}` : ""}; the server acked all ${sm.outbound} of A's stanzas`;
  },

  async roster() {
    const [rosterA, rosterB] = await Promise.all([
      alice.roster(),
      bob.roster(),
    ]);
    expect(
      !rosterA.some((i) => i.jid === bob.jid) &&
        !rosterB.some((i) => i.jid === alice.jid),
      `the rosters are not empty of each other to start with: A ${JSON.stringify(rosterA)}, B ${JSON.stringify(rosterB)}`,
    );
    await alice.iq(
      "set",
      xml(
        "query",
        { xmlns: NS_ROSTER },
        xml("item", { jid: bob.jid, name: "Bob" }),
      ),
    );
    await waitUntil(
      () => alice.rosterPushes.find((i) => i.jid === bob.jid),
      () => `A: a roster push of ${bob.jid} (${alice.describe()})`,
    );
    await alice.xmpp.send(xml("presence", { to: bob.jid, type: "subscribe" }));
    const request = await bob.waitFor(
      (el) => el.is("presence") && el.attrs.type === "subscribe",
      "A's subscription request",
    );
    expect(
      request.attrs.from === alice.jid,
      `B got the subscription request from ${request.attrs.from}, expected ${alice.jid}`,
    );
    await bob.xmpp.send(xml("presence", { to: alice.jid, type: "subscribed" }));
    await waitUntil(
      () =>
        bob.rosterPushes.find(
          (i) => i.jid === alice.jid && i.subscription === "from",
        ),
      () =>
        `B: a roster push of ${alice.jid} with subscription "from" (pushes: ${JSON.stringify(bob.rosterPushes)}; ${bob.describe()})`,
    );
    await waitUntil(
      () =>
        alice.rosterPushes.find(
          (i) => i.jid === bob.jid && i.subscription === "to",
        ),
      () =>
        `A: a roster push of ${bob.jid} with subscription "to" (pushes: ${JSON.stringify(alice.rosterPushes)}; ${alice.describe()})`,
    );
    await alice.waitFor(
      (el) =>
        el.is("presence") && el.attrs.from === bob.fullJid && !el.attrs.type,
      "B's presence after the approval",
    );
    const [afterA, afterB] = await Promise.all([alice.roster(), bob.roster()]);
    const itemA = afterA.find((i) => i.jid === bob.jid);
    const itemB = afterB.find((i) => i.jid === alice.jid);
    expect(
      itemA?.subscription === "to" && itemA?.name === "Bob",
      `A's roster has ${JSON.stringify(itemA)} for B, expected subscription "to", name "Bob"`,
    );
    expect(
      itemB?.subscription === "from",
      `B's roster has ${JSON.stringify(itemB)} for A, expected subscription "from"`,
    );
    return (
      `A's pushes ${JSON.stringify(alice.rosterPushes.map((i) => i.subscription + (i.ask ? `+ask` : "")))}, ` +
      `B's ${JSON.stringify(bob.rosterPushes.map((i) => i.subscription))}; A got B's presence`
    );
  },

  async muc() {
    const join = (c) =>
      c.xmpp.send(
        xml(
          "presence",
          { to: `${ROOM}/${c.nick}` },
          xml("x", { xmlns: NS_MUC }),
        ),
      );
    const selfPresence = (c) =>
      c.waitFor(
        (el) =>
          el.is("presence") &&
          el.attrs.from === `${ROOM}/${c.nick}` &&
          (el.attrs.type === "error" || mucStatuses(el).includes("110")),
        `its own presence in ${ROOM} (status 110)`,
      );

    await join(alice);
    const own = await selfPresence(alice);
    expect(own.attrs.type !== "error", `A could not join ${ROOM}: ${own}`);
    let created = "existing room";
    if (mucStatuses(own).includes("201")) {
      await alice.iq(
        "set",
        xml(
          "query",
          { xmlns: NS_MUC_OWNER },
          xml("x", { xmlns: NS_DATA, type: "submit" }),
        ),
        ROOM,
      );
      created = "created (201), instant room accepted";
    }

    await join(bob);
    const bobs = await selfPresence(bob);
    expect(bobs.attrs.type !== "error", `B could not join ${ROOM}: ${bobs}`);
    await alice.waitFor(
      (el) =>
        el.is("presence") && el.attrs.from === `${ROOM}/bob` && !el.attrs.type,
      "B's presence in the room",
    );

    const fromA = `to the room from alice ${token}`;
    await alice.xmpp.send(
      xml(
        "message",
        { to: ROOM, type: "groupchat", id: `g1-${token}` },
        xml("body", {}, fromA),
      ),
    );
    const atB = await bob.waitFor(
      (el) => isMessage(el, null, fromA),
      "A's groupchat message",
    );
    expect(
      atB.attrs.from === `${ROOM}/alice` && atB.attrs.type === "groupchat",
      `B got A's groupchat message as ${atB}`,
    );
    await alice.waitFor(
      (el) => isMessage(el, `${ROOM}/alice`, fromA),
      "its own groupchat message back",
    );

    const fromB = `to the room from bob ${token}`;
    await bob.xmpp.send(
      xml(
        "message",
        { to: ROOM, type: "groupchat", id: `g2-${token}` },
        xml("body", {}, fromB),
      ),
    );
    const atA = await alice.waitFor(
      (el) => isMessage(el, null, fromB),
      "B's groupchat message",
    );
    expect(
      atA.attrs.from === `${ROOM}/bob` && atA.attrs.type === "groupchat",
      `A got B's groupchat message as ${atA}`,
    );
    await bob.waitFor(
      (el) => isMessage(el, `${ROOM}/bob`, fromB),
      "its own groupchat message back",
    );
    return `${ROOM} ${created}; groupchat A -> B and B -> A, each reflected to its sender`;
  },

  async close() {
    const results = await Promise.all(
      clients.map(async (c) => {
        let el;
        try {
          el = await within(
            c.xmpp.stop(),
            `${c.label}: stop() (the server's <close/>)`,
          );
        } catch (err) {
          if (err instanceof CheckFailed) throw err;
          throw new CheckFailed(
            `${c.label}: stop() failed: ${err?.message ?? err} (${c.describe()})`,
          );
        }
        return { c, el };
      }),
    );
    closeResults = results;
    for (const { c, el } of results) {
      expect(
        el?.is?.("close", NS_FRAMING),
        () =>
          `${c.label}: stop() ended with ${el ?? "nothing"}, not the server's <close xmlns='${NS_FRAMING}'/> (${c.describe()})`,
      );
      const ws = c.disconnect?.reason;
      expect(
        c.disconnect?.clean === true && [1000, 1005].includes(ws?.code),
        () =>
          `${c.label}: the WebSocket did not close cleanly: wasClean ${ws?.wasClean}, code ${ws?.code}, reason ${JSON.stringify(ws?.reason)}`,
      );
      expect(
        c.errors.length === 0,
        `${c.label}: xmpp.js reported errors during the run: ${JSON.stringify(c.errors)}`,
      );
    }
    return `both got <close/>; WebSocket close codes ${results.map(({ c }) => c.disconnect.reason.code).join(", ")}`;
  },
};

async function closeAll() {
  await Promise.allSettled(
    clients
      .filter(
        (c) => c.xmpp && c.xmpp.status !== "offline" && !closeResults.length,
      )
      .map((c) =>
        within(c.xmpp.stop(), `${c.label}: stop`, 3000).catch(() =>
          c.xmpp.socket?.socket?.close(),
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
    const detail = await within(
      checks[name](),
      `check ${name}`,
      CHECK_BUDGET_MS,
    );
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
  `@xmpp/client ${version} over WebSocket: ${CHECKS.length - failed} passed, ${failed} failed`,
);
process.exit(failed ? 1 : 0);
