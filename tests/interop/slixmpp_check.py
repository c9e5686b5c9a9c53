#!/usr/bin/env python3
"""Interoperability check: a real XMPP client library (slixmpp) against Perch.

Usage:
    slixmpp_check.py HOST C2S_PORT TLS_PORT JID_A PASSWORD_A JID_B PASSWORD_B
                     [--debug] [--only NAME[,NAME...]] [--list]

HOST is connected to directly (no DNS SRV lookup); C2S_PORT is the STARTTLS /
plaintext client port, TLS_PORT the direct-TLS (XEP-0368) port. The server's
certificate is not verified (the test server's is self-signed).

Every check prints exactly one line, `ok NAME (details)` or
`FAIL NAME: reason`; after a FAIL the last client log lines of that check
(slixmpp's SEND/RECV stanza trace) follow on stderr, each prefixed with
`  | `. The exit status is 0 only when every check passed. Every wait is
bounded, and the whole run stops after TOTAL_BUDGET seconds however the
server behaves. `--debug` streams slixmpp's debug log to stderr as it runs.

The checks:
  starttls_scram_sha256        STARTTLS on C2S_PORT, SASL restricted to
                               SCRAM-SHA-256; the session must be TLS and
                               the mechanism used SCRAM-SHA-256
  starttls_tls12_scram_sha256  the same with the client capped at TLS 1.2
                               (no -PLUS offered there: gs2 flag "y")
  direct_tls_scram_sha256      direct TLS on TLS_PORT, SCRAM-SHA-256
  plaintext_plain              no TLS at all, SASL PLAIN (the test server
                               allows it)
  message_full_jid             A and B log in, send initial presence; A sends
                               a chat message to B's bound full JID, B gets it
                               from A's full JID with the body intact, replies
                               to A's full JID, A gets the reply
  wrong_password_refused       a wrong password gets a SASL failure
                               (not-authorized) and no session; a correct
                               login right after still works
  xep0199_ping_server          ping the server domain: result iq
  xep0030_disco_info_server    disco#info of the server domain: result iq
                               with a server identity and the disco#info and
                               ping features
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import ssl
import sys
import time
import uuid

try:
    import slixmpp
    from slixmpp import JID
    from slixmpp.exceptions import IqError, IqTimeout
except ImportError:  # pragma: no cover - reported to the caller
    print("FAIL import_slixmpp: slixmpp is not installed (pip install slixmpp)")
    sys.exit(2)

#: Bound on every single wait (a login, a stanza, a reply).
WAIT = 10.0
#: Bound on one check, including its logins and waits (not its clean-up).
CHECK_BUDGET = 25.0
#: Bound on the whole run; clean-up of the last check comes on top (< 5 s).
TOTAL_BUDGET = 50.0
#: Bound on disconnecting the clients of one check.
CLEANUP = 4.0
#: Log lines of a failed check shown after its FAIL line.
TRACE_LINES = 60

log = logging.getLogger("slixmpp_check")


class CheckFailed(Exception):
    pass


class TraceBuffer(logging.Handler):
    """Keeps the most recent log lines, to show the trace of a failed check."""

    def __init__(self, size: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(
            logging.Formatter("%(relativeCreated)7.0fms %(levelname)-5s %(name)s: %(message)s")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - never let logging break a check
            pass

    def clear(self) -> None:
        self.lines.clear()


def insecure_context(max_tls12: bool = False) -> ssl.SSLContext:
    """A client TLS context that accepts the test server's self-signed cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Client:
    """A slixmpp ClientXMPP plus futures for the events a check waits on."""

    def __init__(
        self,
        label: str,
        jid: str,
        password: str,
        *,
        mode: str,
        mech: str,
        max_tls12: bool = False,
    ) -> None:
        if mode not in ("starttls", "direct_tls", "plaintext"):
            raise ValueError(mode)
        self.label = label
        self.mode = mode
        plugin_config = {"feature_mechanisms": {"use_mech": mech}}
        if mode == "plaintext":
            # slixmpp refuses PLAIN without TLS unless told otherwise.
            plugin_config["feature_mechanisms"]["unencrypted_plain"] = True
        self.xmpp = slixmpp.ClientXMPP(jid, password, plugin_config=plugin_config, sasl_mech=mech)
        x = self.xmpp
        x.ssl_context = insecure_context(max_tls12)
        x.enable_direct_tls = mode == "direct_tls"
        x.enable_starttls = mode == "starttls"
        x.enable_plaintext = mode == "plaintext"
        x.use_ipv6 = False
        x.register_plugin("xep_0030")
        x.register_plugin("xep_0199", {"keepalive": False})

        loop = asyncio.get_running_loop()
        self.session = loop.create_future()  # -> None
        self.ended = loop.create_future()  # -> str (why the stream ended early)
        self.auth_failure = loop.create_future()  # -> condition
        self.mech_used: str | None = None
        self.mechs_offered: list[str] = []
        self.events: list[str] = []
        self.messages: asyncio.Queue = asyncio.Queue()

        x.add_event_handler("session_start", self._on_session_start)
        x.add_event_handler("auth_success", self._on_auth_success)
        x.add_event_handler("failed_auth", self._on_failed_auth)
        x.add_event_handler(
            "failed_all_auth", lambda _e=None: self._end("no SASL mechanism left (failed_all_auth)")
        )
        x.add_event_handler(
            "no_auth", lambda _e=None: self._end("no acceptable SASL mechanism offered (no_auth)")
        )
        x.add_event_handler(
            "stream_error",
            lambda e: self._end(f"stream error from server: {e['condition']} {e['text']!r}"),
        )
        x.add_event_handler("connection_failed", lambda e: self._end(f"connection failed: {e}"))
        x.add_event_handler("ssl_invalid_chain", lambda e: self._end(f"TLS handshake failed: {e}"))
        x.add_event_handler("disconnected", lambda e: self._end(f"disconnected: {e}"))
        x.add_event_handler("message", self._on_message)

    # -- event handlers -------------------------------------------------
    def _note(self, what: str) -> None:
        self.events.append(what)

    def _on_session_start(self, _event) -> None:
        self._note("session_start")
        if not self.session.done():
            self.session.set_result(None)

    def _on_auth_success(self, _stanza) -> None:
        mechs = self.xmpp.plugin["feature_mechanisms"]
        self.mech_used = mechs.mech.name if mechs.mech is not None else None
        self.mechs_offered = sorted(mechs.mech_list)
        self._note(f"auth_success({self.mech_used})")

    def _on_failed_auth(self, stanza) -> None:
        condition = stanza["condition"]
        self._note(f"failed_auth({condition})")
        if not self.auth_failure.done():
            self.auth_failure.set_result(condition)

    def _end(self, why: str) -> None:
        self._note(why)
        if not self.ended.done():
            self.ended.set_result(why)

    def _on_message(self, msg) -> None:
        self.messages.put_nowait(msg)

    # -- actions ----------------------------------------------------------
    async def login(self, host: str, port: int) -> None:
        """Connects and waits for session_start (bounded)."""
        self.xmpp.connect(host, port)
        done, _ = await asyncio.wait(
            [self.session, self.ended], timeout=WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        if self.session in done:
            return
        if self.ended in done:
            raise CheckFailed(
                f"{self.label}: no session: {self.ended.result()} (events: {self.events})"
            )
        raise CheckFailed(f"{self.label}: no session within {WAIT:.0f} s (events: {self.events})")

    @property
    def full_jid(self) -> str:
        return self.xmpp.boundjid.full

    def tls_version(self) -> str | None:
        transport = self.xmpp.transport
        if transport is None:
            return None
        ssl_object = transport.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object is not None else None

    async def close(self) -> None:
        x = self.xmpp
        x.cancel_connection_attempt()
        if x.transport is None:
            return
        try:
            await asyncio.wait_for(x.disconnect(wait=1.0), CLEANUP / 2)
        except Exception:  # noqa: BLE001 - clean-up must not fail a check
            pass
        x.abort()


class Checks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host = args.host
        self.c2s_port = args.c2s_port
        self.tls_port = args.tls_port
        self.jid_a = JID(args.jid_a)
        self.pw_a = args.password_a
        self.jid_b = JID(args.jid_b)
        self.pw_b = args.password_b
        self.domain = self.jid_a.domain
        self.clients: list[Client] = []

    def client(self, label, jid, password, resource=None, **kw) -> Client:
        full = f"{JID(jid).bare}/{resource}" if resource else JID(jid).bare
        c = Client(label, full, password, **kw)
        self.clients.append(c)
        return c

    async def close_clients(self) -> None:
        clients, self.clients = self.clients, []
        if not clients:
            return
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.close() for c in clients), return_exceptions=True), CLEANUP
            )
        except asyncio.TimeoutError:
            pass
        for c in clients:
            c.xmpp.cancel_connection_attempt()
            c.xmpp.abort()

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def expect(cond: bool, reason: str) -> None:
        if not cond:
            raise CheckFailed(reason)

    def expect_bound(self, c: Client, bare: JID) -> None:
        bound = c.xmpp.boundjid
        self.expect(
            bound.bare == bare.bare and bool(bound.resource),
            f"{c.label}: bound JID {bound.full!r} is not a full JID of {bare.bare}",
        )

    def expect_mech(self, c: Client, mech: str) -> None:
        self.expect(
            c.mech_used == mech,
            f"{c.label}: SASL mechanism used was {c.mech_used!r}, expected {mech!r} "
            f"(offered: {c.mechs_offered})",
        )

    async def wait_message(self, c: Client, pred, what: str):
        """Next message on c matching pred; others are remembered for the reason."""
        seen = []
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(
                    f"{c.label}: no {what} within {WAIT:.0f} s (other messages: {seen})"
                )
            get = asyncio.ensure_future(c.messages.get())
            done, _ = await asyncio.wait(
                [get, c.ended], timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if get not in done:
                get.cancel()
                if c.ended in done:
                    raise CheckFailed(
                        f"{c.label}: stream ended while waiting for the {what}: "
                        f"{c.ended.result()} (events: {c.events})"
                    )
                continue
            msg = get.result()
            if pred(msg):
                return msg
            seen.append(str(msg))

    async def barrier(self, c: Client) -> None:
        """A ping round trip: the server has handled what c sent before it."""
        try:
            await c.xmpp.plugin["xep_0199"].send_ping(self.domain, timeout=WAIT)
        except IqTimeout:
            raise CheckFailed(f"{c.label}: no answer to a ping within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"{c.label}: ping answered with an error: {e.iq}") from None

    # -- the checks ----------------------------------------------------------
    async def starttls_scram_sha256(self) -> str:
        c = self.client(
            "alice", self.jid_a, self.pw_a, "slix-starttls", mode="starttls", mech="SCRAM-SHA-256"
        )
        await c.login(self.host, self.c2s_port)
        version = c.tls_version()
        self.expect(version is not None, "session is not encrypted (no TLS transport)")
        self.expect("starttls" in c.xmpp.features, "STARTTLS was not negotiated")
        self.expect_mech(c, "SCRAM-SHA-256")
        self.expect_bound(c, self.jid_a)
        return f"{version}, {c.mech_used}, bound {c.full_jid}, offered {c.mechs_offered}"

    async def starttls_tls12_scram_sha256(self) -> str:
        c = self.client(
            "alice",
            self.jid_a,
            self.pw_a,
            "slix-tls12",
            mode="starttls",
            mech="SCRAM-SHA-256",
            max_tls12=True,
        )
        await c.login(self.host, self.c2s_port)
        version = c.tls_version()
        self.expect(version == "TLSv1.2", f"negotiated {version!r}, expected TLSv1.2")
        self.expect_mech(c, "SCRAM-SHA-256")
        self.expect_bound(c, self.jid_a)
        return f"{version}, {c.mech_used}, bound {c.full_jid}, offered {c.mechs_offered}"

    async def direct_tls_scram_sha256(self) -> str:
        c = self.client(
            "alice",
            self.jid_a,
            self.pw_a,
            "slix-direct-tls",
            mode="direct_tls",
            mech="SCRAM-SHA-256",
        )
        await c.login(self.host, self.tls_port)
        version = c.tls_version()
        self.expect(version is not None, "session is not encrypted (no TLS transport)")
        self.expect("starttls" not in c.xmpp.features, "STARTTLS used on the direct-TLS port")
        self.expect_mech(c, "SCRAM-SHA-256")
        self.expect_bound(c, self.jid_a)
        return f"{version}, {c.mech_used}, bound {c.full_jid}"

    async def plaintext_plain(self) -> str:
        c = self.client(
            "alice", self.jid_a, self.pw_a, "slix-plaintext", mode="plaintext", mech="PLAIN"
        )
        await c.login(self.host, self.c2s_port)
        self.expect(c.tls_version() is None, "expected an unencrypted session, got TLS")
        self.expect_mech(c, "PLAIN")
        self.expect_bound(c, self.jid_a)
        return f"no TLS, {c.mech_used}, bound {c.full_jid}"

    async def message_full_jid(self) -> str:
        a = self.client(
            "A", self.jid_a, self.pw_a, "slix-msg-a", mode="starttls", mech="SCRAM-SHA-256"
        )
        # B binds without asking for a resource: the server picks one.
        b = self.client("B", self.jid_b, self.pw_b, None, mode="starttls", mech="SCRAM-SHA-256")
        await asyncio.gather(a.login(self.host, self.c2s_port), b.login(self.host, self.c2s_port))
        self.expect_bound(a, self.jid_a)
        self.expect_bound(b, self.jid_b)
        a_full, b_full = a.full_jid, b.full_jid
        a.xmpp.send_presence()
        b.xmpp.send_presence()
        await asyncio.gather(self.barrier(a), self.barrier(b))

        token = uuid.uuid4().hex[:8]
        body1 = f"hello B <&> 'quoted' \"double\" ünïcødé 🐦 {token}"
        a.xmpp.send_message(mto=b_full, mbody=body1, mtype="chat")
        m1 = await self.wait_message(
            b, lambda m: m["type"] == "chat" and token in m["body"], "chat message from A"
        )
        self.expect(
            m1["from"].full == a_full,
            f"B got the message from {m1['from'].full!r}, expected A's full JID {a_full!r}",
        )
        self.expect(m1["body"] == body1, f"body changed in transit: {m1['body']!r} != {body1!r}")
        self.expect(
            m1["to"].full in ("", b_full),
            f"B got the message addressed to {m1['to'].full!r}, expected {b_full!r}",
        )

        body2 = f"reply to A ✓ {token}"
        b.xmpp.send_message(mto=m1["from"], mbody=body2, mtype="chat")
        m2 = await self.wait_message(
            a, lambda m: m["type"] == "chat" and token in m["body"], "reply from B"
        )
        self.expect(
            m2["from"].full == b_full,
            f"A got the reply from {m2['from'].full!r}, expected B's full JID {b_full!r}",
        )
        self.expect(m2["body"] == body2, f"reply body changed: {m2['body']!r} != {body2!r}")
        return f"{a_full} <-> {b_full}"

    async def wrong_password_refused(self) -> str:
        bad = self.client(
            "alice(wrong password)",
            self.jid_a,
            "wrong-" + self.pw_a,
            "slix-wrong-pw",
            mode="starttls",
            mech="SCRAM-SHA-256",
        )
        bad.xmpp.connect(self.host, self.c2s_port)
        done, _ = await asyncio.wait(
            [bad.auth_failure, bad.session, bad.ended],
            timeout=WAIT,
            return_when=asyncio.FIRST_COMPLETED,
        )
        self.expect(bad.session not in done, "a wrong password was accepted (session started)")
        if bad.auth_failure not in done:
            if bad.ended in done:
                raise CheckFailed(
                    f"stream ended without a SASL failure: {bad.ended.result()} "
                    f"(events: {bad.events})"
                )
            raise CheckFailed(f"no SASL failure within {WAIT:.0f} s (events: {bad.events})")
        condition = bad.auth_failure.result()
        self.expect(
            condition == "not-authorized",
            f"SASL failure condition {condition!r}, expected 'not-authorized'",
        )
        # slixmpp has no other mechanism to try: it gives up and disconnects.
        try:
            await asyncio.wait_for(asyncio.shield(bad.ended), WAIT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"stream not closed after the failure (events: {bad.events})"
            ) from None
        self.expect(not bad.session.done(), "session started after a SASL failure")
        # The server still serves a correct login.
        good = self.client(
            "alice",
            self.jid_a,
            self.pw_a,
            "slix-after-wrong-pw",
            mode="starttls",
            mech="SCRAM-SHA-256",
        )
        await good.login(self.host, self.c2s_port)
        self.expect_bound(good, self.jid_a)
        return f"<failure><{condition}/>, then logged in as {good.full_jid}"

    async def xep0199_ping_server(self) -> str:
        c = self.client(
            "alice", self.jid_a, self.pw_a, "slix-ping", mode="starttls", mech="SCRAM-SHA-256"
        )
        await c.login(self.host, self.c2s_port)
        try:
            iq = await c.xmpp.plugin["xep_0199"].send_ping(self.domain, timeout=WAIT)
        except IqTimeout:
            raise CheckFailed(f"no answer to the ping within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"ping answered with an error: {e.iq}") from None
        self.expect(iq["type"] == "result", f"ping answered with {iq}")
        self.expect(
            iq["from"].full in ("", self.domain),
            f"ping answered from {iq['from'].full!r}, expected {self.domain!r}",
        )
        return f"result from {iq['from'].full or '(server)'}"

    async def xep0030_disco_info_server(self) -> str:
        c = self.client(
            "alice", self.jid_a, self.pw_a, "slix-disco", mode="starttls", mech="SCRAM-SHA-256"
        )
        await c.login(self.host, self.c2s_port)
        try:
            iq = await c.xmpp.plugin["xep_0030"].get_info(
                jid=self.domain, local=False, cached=False, timeout=WAIT
            )
        except IqTimeout:
            raise CheckFailed(f"no disco#info answer within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"disco#info answered with an error: {e.iq}") from None
        self.expect(iq["type"] == "result", f"disco#info answered with {iq}")
        info = iq["disco_info"]
        identities = info["identities"]  # (category, type, lang, name)
        features = info["features"]
        self.expect(
            any(i[0] == "server" for i in identities),
            f"no identity of category 'server' in {identities}",
        )
        for feature in ("http://jabber.org/protocol/disco#info", "urn:xmpp:ping"):
            self.expect(feature in features, f"feature {feature!r} not in {features}")
        return f"identities {sorted(identities)}, {len(features)} features"


CHECKS = [
    "starttls_scram_sha256",
    "starttls_tls12_scram_sha256",
    "direct_tls_scram_sha256",
    "plaintext_plain",
    "message_full_jid",
    "wrong_password_refused",
    "xep0199_ping_server",
    "xep0030_disco_info_server",
]


async def run(args: argparse.Namespace, trace: TraceBuffer) -> int:
    checks = Checks(args)
    names = CHECKS if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"unknown check(s): {unknown}; known: {CHECKS}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + TOTAL_BUDGET
    failed = 0
    for name in names:
        trace.clear()
        budget = min(CHECK_BUDGET, deadline - time.monotonic())
        if budget < 1.0:
            print(
                f"FAIL {name}: not run, the run's {TOTAL_BUDGET:.0f} s budget is used up",
                flush=True,
            )
            failed += 1
            continue
        log.debug("=== check %s", name)
        reason = None
        try:
            detail = await asyncio.wait_for(getattr(checks, name)(), budget)
        except CheckFailed as e:
            reason = str(e)
        except asyncio.TimeoutError:
            reason = f"did not finish within {budget:.0f} s"
        except Exception as e:  # noqa: BLE001 - a crash is one failed check
            reason = f"unexpected {type(e).__name__}: {e}"
        finally:
            await checks.close_clients()
        if reason is None:
            print(f"ok {name} ({detail})", flush=True)
            continue
        failed += 1
        print(f"FAIL {name}: {reason}", flush=True)
        if not args.debug and trace.lines:
            print(f"  trace of {name} (last {len(trace.lines)} log lines):", file=sys.stderr)
            for line in trace.lines:
                print(f"  | {line}", file=sys.stderr)
            sys.stderr.flush()
    passed = len(names) - failed
    print(f"slixmpp {slixmpp.__version__}: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("host")
    p.add_argument("c2s_port", type=int)
    p.add_argument("tls_port", type=int)
    p.add_argument("jid_a")
    p.add_argument("password_a")
    p.add_argument("jid_b")
    p.add_argument("password_b")
    p.add_argument("--debug", action="store_true", help="stream slixmpp's debug log to stderr")
    p.add_argument("--only", help="comma-separated check names to run")
    args = p.parse_args()

    trace = TraceBuffer(TRACE_LINES)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(trace)
    if args.debug:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(
            logging.Formatter("%(relativeCreated)7.0fms %(levelname)-5s %(name)s: %(message)s")
        )
        root.addHandler(stderr)
    return asyncio.run(run(args, trace))


if __name__ == "__main__":
    sys.exit(main())
