#!/usr/bin/env python3
"""Interoperability check: slixmpp's stream management (XEP-0198, plugin
`xep_0198`) and client state indication (XEP-0352, plugin `xep_0352`)
against Perch.

Usage:
    slixmpp_sm.py HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B [--debug]

Both clients log in on C2S_PORT without TLS, with SASL PLAIN (the test
server allows it). A ("alice") runs the xep_0198 plugin with resumption;
B ("bob") is a plain client that sends the messages.

Every check prints exactly one line, `ok NAME (details)` or
`FAIL NAME: reason`; after a FAIL the last client log lines (slixmpp's
SEND/RECV trace) follow on stderr, each prefixed with `  | `. The exit
status is 0 only when every check passed. Every wait is bounded, and the
whole run stops after TOTAL_BUDGET seconds however the server behaves
(both multiplied by PERCH_TEST_TIME_SCALE when it is set: under qemu).

The checks, in order (each builds on the session of the one before, so a
failure marks the rest as not run); after each one A asks for an ack and
the server's <a h/> must equal the count of stanzas A sent:
  sm_enabled          A logs in; the server answers <enable resume='true'/>
                      with <enabled/> carrying an id and resume='true'
                      (plugin: sm_enabled event, sm_id set)
  resume_after_cut    B sends A messages 1-10; when the 10th arrives A
                      stops reading its socket (transport.pause_reading());
                      B sends 11-25, which the server writes to A's socket
                      but A never reads; then A's socket is cut
                      (transport.abort(): no </stream:stream>, unread and
                      unsent data dropped, an RST for the unread data); B
                      sends 26-50 while A is away. A connects again (the
                      plugin keeps its SM id: a lost connection does not
                      end the session for slixmpp once SM is enabled) and
                      the plugin sends <resume/>: the session_resumed event
                      must fire (not session_start nor sm_failed), with
                      the same full JID, and A must end up with bodies
                      1-50, each exactly once, in order
  after_resume        B sends 5 more; they arrive, exactly once, in order;
                      A asks for an ack (<r/>) and the server's <a h/>
                      acknowledges everything A sent, across both streams
  csi_inactive        A sends <inactive/> (plugin xep_0352, feature offered
                      after login); B sends a chat state (XEP-0085, plugin
                      xep_0085) without a body
                      (held back by the server while A is inactive), then a
                      message with a body, which arrives at once, after the
                      held chat state (order kept); A sends <active/>; the
                      session still works (a message arrives, the ack count
                      still matches)
  resume_while_inactive  A goes inactive and its socket is cut again; B
                      sends 3 messages; A resumes (a resumed stream starts
                      active) and gets all 3 exactly once, in order
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
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


def time_scale() -> int:
    """PERCH_TEST_TIME_SCALE (a whole number, 1 when unset or unreadable):
    the server runs under qemu-user, 10-50 times slower, when it is set
    (src/testing.rs, `scaled`)."""
    try:
        return max(1, int(os.environ.get("PERCH_TEST_TIME_SCALE", "1")))
    except ValueError:
        return 1


SCALE = time_scale()
#: Bound on every single wait (a login, a stanza, a reply).
WAIT = 10.0 * SCALE
#: Bound on one check.
CHECK_BUDGET = 25.0 * SCALE
#: Bound on the whole run; the clean-up comes on top (< CLEANUP s).
TOTAL_BUDGET = 50.0 * SCALE
#: Bound on disconnecting the clients at the end.
CLEANUP = 4.0
#: Log lines of a failed check shown after its FAIL line.
TRACE_LINES = 80

#: A stops reading when this message arrives.
PAUSE_AT = 10
#: Messages sent to A before the cut: those after PAUSE_AT reach A's
#: socket but are never read.
BEFORE_CUT = 25
#: All the messages sent around the cut.
TOTAL = 50
#: Messages after the resumption.
AFTER = 5

log = logging.getLogger("slixmpp_sm")


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


class Client:
    """A plaintext/PLAIN slixmpp client that records what a check waits on."""

    def __init__(self, label: str, jid: str, password: str, *, sm: bool) -> None:
        self.label = label
        plugin_config = {"feature_mechanisms": {"use_mech": "PLAIN", "unencrypted_plain": True}}
        x = slixmpp.ClientXMPP(jid, password, plugin_config=plugin_config, sasl_mech="PLAIN")
        self.xmpp = x
        x.enable_direct_tls = False
        x.enable_starttls = False
        x.enable_plaintext = True
        x.use_ipv6 = False
        x.register_plugin("xep_0199", {"keepalive": False})
        x.register_plugin("xep_0085")
        if sm:
            # Ask for an ack after every stanza A sends: the count the
            # server keeps of them is checked after each resumption.
            x.register_plugin("xep_0198", {"window": 1})
            x.register_plugin("xep_0352")

        self.events: list[str] = []
        self.bodies: list[str] = []
        #: What was received, in order: ("body", text) or ("state", name).
        self.received: list[tuple[str, str]] = []
        self.changed = asyncio.Event()
        self.outcome: asyncio.Future | None = None
        self.gone: asyncio.Future | None = None
        #: Stop reading when the message with this body arrives.
        self.pause_at: str | None = None
        self.paused = False
        self.cut_info: dict = {}
        self.enabled_stanza = None
        self.resumed_stanza = None
        self.host = ""
        self.port = 0

        x.add_event_handler("session_start", lambda _e: self._settle("session_start"))
        x.add_event_handler("session_resumed", self._on_resumed)
        x.add_event_handler("sm_enabled", self._on_enabled)
        x.add_event_handler("sm_failed", lambda s: self._settle(f"sm_failed: {s}"))
        x.add_event_handler("failed_all_auth", lambda _e=None: self._settle("failed_all_auth"))
        x.add_event_handler("no_auth", lambda _e=None: self._settle("no_auth"))
        x.add_event_handler(
            "stream_error",
            lambda e: self._settle(f"stream error: {e['condition']} {e['text']!r}"),
        )
        x.add_event_handler("connection_failed", lambda e: self._settle(f"connection failed: {e}"))
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("message", self._on_message)
        x.add_event_handler("chatstate", self._on_chatstate)
        x.add_event_handler("stanza_acked", lambda _s: self.changed.set())

    # -- event handlers -------------------------------------------------
    def _note(self, what: str) -> None:
        self.events.append(what)
        self.changed.set()

    def _settle(self, what: str) -> None:
        self._note(what)
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(what)

    def _on_enabled(self, stanza) -> None:
        self.enabled_stanza = stanza
        self._note("sm_enabled")

    def _on_resumed(self, stanza) -> None:
        self.resumed_stanza = stanza
        self._settle("session_resumed")

    def _on_disconnected(self, reason) -> None:
        self._note(f"disconnected({reason})")
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(reason)
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(f"disconnected: {reason}")

    def _on_chatstate(self, msg) -> None:
        self.received.append(("state", msg["chat_state"]))
        self.changed.set()

    def _on_message(self, msg) -> None:
        if msg["type"] == "error":
            self._note(f"error message: {msg}")
            return
        # slixmpp's "message" event is for messages with a body only.
        self.bodies.append(msg["body"])
        self.received.append(("body", msg["body"]))
        self.changed.set()
        if self.pause_at is not None and msg["body"] == self.pause_at:
            self.pause_at = None
            self.pause()

    # -- actions ----------------------------------------------------------
    @property
    def sm(self):
        return self.xmpp.plugin["xep_0198"]

    def pause(self) -> None:
        """Stops reading the socket: what the server sends from now on
        stays unread in the kernel's buffer (and is lost with the cut)."""
        if self.xmpp.transport is not None:
            self.xmpp.transport.pause_reading()
        self.paused = True
        self._note(f"paused reading after {self.bodies[-1] if self.bodies else None!r}")

    def cut(self) -> None:
        """Drops the TCP connection as a lost network would: no stream
        close, nothing more written, unread and unsent data discarded."""
        transport = self.xmpp.transport
        self.cut_info = {
            "bodies": len(self.bodies),
            "handled": self.sm.handled,
            "unacked_out": len(self.sm.unacked_queue),
        }
        self._note(f"cut({self.cut_info})")
        if transport is not None:
            transport.abort()

    async def connect(self, host: str, port: int) -> str:
        """Connects; returns the first of session_start / session_resumed /
        a failure (bounded)."""
        self.host, self.port = host, port
        loop = asyncio.get_running_loop()
        self.outcome = loop.create_future()
        self.gone = loop.create_future()
        self.xmpp.connect(host, port)
        try:
            return await asyncio.wait_for(asyncio.shield(self.outcome), WAIT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"{self.label}: no session within {WAIT:.0f} s (events: {self.events})"
            ) from None

    async def wait_gone(self) -> None:
        if self.gone is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.gone), WAIT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"{self.label}: the cut connection was not reported lost within {WAIT:.0f} s"
            ) from None

    async def wait_until(self, pred, what: str, limit: float = WAIT) -> None:
        deadline = time.monotonic() + limit
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"{self.label}: {what} not within {limit:.0f} s")
            self.changed.clear()
            try:
                # Also polls: not everything that matters sets `changed`.
                await asyncio.wait_for(self.changed.wait(), min(left, 0.05))
            except asyncio.TimeoutError:
                pass

    async def ping(self, domain: str) -> None:
        """A round trip: the server has handled what was sent before it."""
        try:
            await self.xmpp.plugin["xep_0199"].send_ping(domain, timeout=WAIT)
        except IqTimeout:
            raise CheckFailed(f"{self.label}: no answer to a ping within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"{self.label}: ping answered with an error: {e.iq}") from None

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
        self.port = args.c2s_port
        self.jid_a = JID(args.jid_a)
        self.jid_b = JID(args.jid_b)
        self.domain = self.jid_a.domain
        self.token = uuid.uuid4().hex[:6]
        self.a = Client("A", f"{self.jid_a.bare}/slix-sm", args.password_a, sm=True)
        self.b = Client("B", f"{self.jid_b.bare}/slix-sm-sender", args.password_b, sm=False)
        self.a_full = ""

    @staticmethod
    def expect(cond: bool, reason: str) -> None:
        if not cond:
            raise CheckFailed(reason)

    def body(self, tag: str, n: int) -> str:
        return f"{tag} {n} {self.token}"

    def send_bodies(self, tag: str, numbers) -> None:
        for n in numbers:
            self.b.xmpp.send_message(mto=self.a_full, mbody=self.body(tag, n), mtype="chat")

    def send_chatstate(self, state: str) -> None:
        msg = self.b.xmpp.make_message(mto=self.a_full, mtype="chat")
        msg["chat_state"] = state
        msg.send()

    def expect_exactly(self, tag: str, numbers, what: str) -> None:
        want = [self.body(tag, n) for n in numbers]
        got = [b for b in self.a.bodies if b.startswith(f"{tag} ")]
        if got == want:
            return
        dupes = sorted({b for b in got if got.count(b) > 1})
        missing = [b for b in want if b not in got]
        raise CheckFailed(
            f"{what}: A got {len(got)} of {len(want)} bodies"
            f"{'; duplicated ' + str(dupes) if dupes else ''}"
            f"{'; missing ' + str(missing) if missing else ''}"
            f"{'; out of order' if not dupes and not missing else ''}: {got}"
        )

    async def wait_bodies(self, tag: str, count: int, what: str) -> None:
        await self.a.wait_until(
            lambda: sum(1 for b in self.a.bodies if b.startswith(f"{tag} ")) >= count,
            f"{what} ({sum(1 for b in self.a.bodies if b.startswith(f'{tag} '))} of {count} so far)",
        )

    async def expect_all_acked(self) -> str:
        """A asks for an ack: the server's <a h/> covers all A sent."""
        sm = self.a.sm
        sm.request_ack()
        await self.a.wait_until(
            lambda: not sm.unacked_queue,
            f"an <a h/> acknowledging all A sent (last h={sm.last_ack}, sent={sm.seq}, "
            f"unacked={len(sm.unacked_queue)})",
        )
        # The plugin empties its queue on an h higher than it sent, too.
        self.expect(
            sm.last_ack == sm.seq,
            f"the server acknowledged h={sm.last_ack}, but A sent {sm.seq} stanzas",
        )
        return f"server acked h={sm.last_ack} = A's count {sm.seq}"

    async def resume(self, what: str) -> str:
        """A connects again; it must resume, not start a new session."""
        starts = self.a.events.count("session_start")
        outcome = await self.a.connect(self.host, self.port)
        self.expect(
            outcome == "session_resumed",
            f"{what}: expected session_resumed, got {outcome} (events: {self.a.events})",
        )
        self.expect(
            self.a.events.count("session_start") == starts,
            f"{what}: a new session started besides the resumption (events: {self.a.events})",
        )
        self.expect(
            self.a.xmpp.boundjid.full == self.a_full,
            f"{what}: bound JID changed from {self.a_full!r} to {self.a.xmpp.boundjid.full!r}",
        )
        return f"<resumed h={self.a.resumed_stanza['h']}/>"

    # -- the checks ----------------------------------------------------------
    async def sm_enabled(self) -> str:
        outcomes = await asyncio.gather(
            self.a.connect(self.host, self.port), self.b.connect(self.host, self.port)
        )
        for c, outcome in zip((self.a, self.b), outcomes):
            self.expect(
                outcome == "session_start",
                f"{c.label}: login ended with {outcome} (events: {c.events})",
            )
        self.a_full = self.a.xmpp.boundjid.full
        await self.a.wait_until(lambda: self.a.enabled_stanza is not None, "<enabled/>")
        enabled = self.a.enabled_stanza
        self.expect(bool(enabled["id"]), f"<enabled/> has no id: {enabled}")
        self.expect(
            enabled.xml.get("resume") in ("true", "1"),
            f"<enabled/> does not allow resumption: {enabled}",
        )
        self.expect(self.a.sm.sm_id == enabled["id"], "the plugin did not keep the SM id")
        self.expect(self.a.sm.enabled_in, "the plugin did not enable SM (enabled_in)")
        self.a.xmpp.send_presence()
        self.b.xmpp.send_presence()
        await asyncio.gather(self.a.ping(self.domain), self.b.ping(self.domain))
        acked = await self.expect_all_acked()
        return f"id {enabled['id']!r}, max={enabled.xml.get('max')}, {self.a_full}; {acked}"

    async def resume_after_cut(self) -> str:
        a, b = self.a, self.b
        a.pause_at = self.body("m", PAUSE_AT)
        self.send_bodies("m", range(1, PAUSE_AT + 1))
        await a.wait_until(lambda: a.paused, f"message {PAUSE_AT}")
        # These reach A's socket (the server writes them and counts them as
        # sent) but A never reads them: in flight when the cut comes.
        self.send_bodies("m", range(PAUSE_AT + 1, BEFORE_CUT + 1))
        await b.ping(self.domain)
        await asyncio.sleep(0.3 * SCALE)
        a.cut()
        await a.wait_gone()
        self.expect(a.xmpp.transport is None, "A's transport is still there after the cut")
        # While A is away: the server queues these for the waiting session
        # (or writes them to the dead socket, if it has not noticed yet).
        self.send_bodies("m", range(BEFORE_CUT + 1, TOTAL + 1))
        await b.ping(self.domain)
        resumed = await self.resume("after the cut")
        await self.wait_bodies("m", TOTAL, f"all {TOTAL} messages")
        # Anything sent twice would come right behind the rest: a round
        # trip of A's makes sure it would have arrived.
        await a.ping(self.domain)
        self.expect_exactly("m", range(1, TOTAL + 1), "after the resumption")
        acked = await self.expect_all_acked()
        return (
            f"A read {a.cut_info['bodies']} of {BEFORE_CUT} sent before the cut "
            f"(handled {a.cut_info['handled']}); {TOTAL - BEFORE_CUT} sent while away; "
            f"<resume h={a.cut_info['handled']}/> got {resumed}; "
            f"all {TOTAL} exactly once, in order; {acked}"
        )

    async def after_resume(self) -> str:
        self.send_bodies("after", range(1, AFTER + 1))
        await self.wait_bodies("after", AFTER, f"{AFTER} messages after the resumption")
        await self.a.ping(self.domain)
        self.expect_exactly("after", range(1, AFTER + 1), "after the resumption")
        acked = await self.expect_all_acked()
        return f"{AFTER} arrived exactly once; {acked}"

    async def csi_inactive(self) -> str:
        a, b = self.a, self.b
        csi = a.xmpp.plugin["xep_0352"]
        self.expect(csi.enabled, "the server did not offer CSI (urn:xmpp:csi:0) after login")
        start = len(a.received)
        csi.send_inactive()
        # Round trip: the server has read <inactive/> before B sends.
        await a.ping(self.domain)
        self.send_chatstate("composing")
        await b.ping(self.domain)
        await asyncio.sleep(0.3 * SCALE)
        early = a.received[start:]
        body = self.body("csi", 1)
        b.xmpp.send_message(mto=self.a_full, mbody=body, mtype="chat")
        await a.wait_until(
            lambda: ("body", body) in a.received[start:], "a message with a body while inactive"
        )
        while_inactive = a.received[start:]
        csi.send_active()
        body2 = self.body("csi", 2)
        b.xmpp.send_message(mto=self.a_full, mbody=body2, mtype="chat")
        await a.wait_until(lambda: ("body", body2) in a.received[start:], "a message once active")
        await a.ping(self.domain)
        got = a.received[start:]
        want = [("state", "composing"), ("body", body), ("body", body2)]
        self.expect(got == want, f"A got {got}, expected {want} in this order")
        self.expect(
            early == [],
            f"the chat state (no body) was not held back while inactive: got {early} at once",
        )
        acked = await self.expect_all_acked()
        return (
            f"chat state held while inactive, released with the body ({while_inactive}); {acked}"
        )

    async def resume_while_inactive(self) -> str:
        a = self.a
        a.xmpp.plugin["xep_0352"].send_inactive()
        await a.ping(self.domain)
        a.cut()
        await a.wait_gone()
        self.send_bodies("idle", range(1, 4))
        await self.b.ping(self.domain)
        resumed = await self.resume("after a cut while inactive")
        await self.wait_bodies("idle", 3, "3 messages sent while A was away")
        await a.ping(self.domain)
        self.expect_exactly("idle", range(1, 4), "after resuming an inactive session")
        acked = await self.expect_all_acked()
        return f"{resumed}; 3 arrived exactly once; {acked}"

    async def close(self) -> None:
        try:
            await asyncio.wait_for(
                asyncio.gather(self.a.close(), self.b.close(), return_exceptions=True), CLEANUP
            )
        except asyncio.TimeoutError:
            pass
        for c in (self.a, self.b):
            c.xmpp.cancel_connection_attempt()
            c.xmpp.abort()


CHECKS = ["sm_enabled", "resume_after_cut", "after_resume", "csi_inactive", "resume_while_inactive"]


async def run(args: argparse.Namespace, trace: TraceBuffer) -> int:
    checks = Checks(args)
    deadline = time.monotonic() + TOTAL_BUDGET
    failed = 0
    broken = None
    try:
        for name in CHECKS:
            trace.clear()
            if broken is not None:
                print(f"FAIL {name}: not run, {broken} failed", flush=True)
                failed += 1
                continue
            budget = min(CHECK_BUDGET, deadline - time.monotonic())
            if budget < 1.0:
                print(f"FAIL {name}: not run, the {TOTAL_BUDGET:.0f} s budget is used up")
                failed += 1
                broken = "the time budget"
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
            if reason is None:
                print(f"ok {name} ({detail})", flush=True)
                continue
            failed += 1
            broken = name
            print(f"FAIL {name}: {reason}", flush=True)
            if not args.debug and trace.lines:
                print(f"  trace of {name} (last {len(trace.lines)} log lines):", file=sys.stderr)
                for line in trace.lines:
                    print(f"  | {line}", file=sys.stderr)
                sys.stderr.flush()
    finally:
        await checks.close()
    passed = len(CHECKS) - failed
    print(f"slixmpp {slixmpp.__version__}: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("c2s_port", type=int)
    parser.add_argument("jid_a")
    parser.add_argument("password_a")
    parser.add_argument("jid_b")
    parser.add_argument("password_b")
    parser.add_argument("--debug", action="store_true", help="stream the client log to stderr")
    args = parser.parse_args()

    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    trace = TraceBuffer(TRACE_LINES)
    root.addHandler(trace)
    if args.debug:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(relativeCreated)7.0fms %(name)s: %(message)s"))
        root.addHandler(stream)

    return asyncio.run(run(args, trace))


if __name__ == "__main__":
    sys.exit(main())
