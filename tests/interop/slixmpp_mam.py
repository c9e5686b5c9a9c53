#!/usr/bin/env python3
"""Interoperability check: slixmpp's message archive client (XEP-0313,
plugin `xep_0313`, paging with XEP-0059) and stanza ids (XEP-0359, plugin
`xep_0359`) against Perch.

Usage:
    slixmpp_mam.py HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B
                   JID_C PASSWORD_C [--debug]

The clients log in on C2S_PORT without TLS, with SASL PLAIN (the test
server allows it). A ("alice") and B ("bob") hold the conversation whose
archive is checked; C ("carol") writes to A now and then, so that a query
filtered by correspondent has something to leave out.

Every check prints exactly one line, `ok NAME (details)` or
`FAIL NAME: reason`; after a FAIL the last client log lines (slixmpp's
SEND/RECV trace) follow on stderr, each prefixed with `  | `. The exit
status is 0 only when every check passed. Every wait is bounded, and the
whole run stops after TOTAL_BUDGET seconds however the server behaves
(both multiplied by PERCH_TEST_TIME_SCALE when it is set: under qemu).

The checks, in order (each builds on the one before, so a failure marks
the rest as not run):
  login                    A, B and C log in and send initial presence
  live_stanza_ids          A and B exchange 30 chat messages (odd ones
                           A to B, even ones B to A), and C and A 5 more
                           between them (odd ones C to A), each sent once
                           the one before arrived; every message arrives
                           with exactly one XEP-0359 <stanza-id/> whose
                           `by` is the recipient's bare JID, and no two
                           ids of one archive are the same
  paged_archive            A reads its whole archive with the plugin's
                           `iterate`, 7 messages a page: the 35 bodies
                           come back once each, in the order they were
                           sent, over at least 5 pages, each with a
                           delay stamp (never going back in time), from
                           and to the right addresses, and a result id
                           of its own
  result_ids_are_stanza_ids  the result id of every message A received
                           equals the stanza id it carried live; the
                           same for B's archive (read the same way),
                           which holds exactly the 30 messages with A
  with_filter              A's archive filtered by B's bare JID: the 30
                           messages with B, in order; by B's full JID:
                           the same; by C's bare JID: the 5 with C
  reversed                 `iterate(reverse=True)`, 7 a page: the 35
                           bodies newest first, the same result ids
  metadata                 `get_archive_metadata`: <start/> and <end/>
                           carry the ids and delay stamps of the first
                           and the last result
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import math
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

NS_SID = "urn:xmpp:sid:0"
#: Messages between A and B.
AB_MESSAGES = 30
#: Messages between A and C, one after every AB_MESSAGES // C_MESSAGES
#: of A's and B's.
C_MESSAGES = 5
#: Results per page (RSM <max/>): small, so that paging is exercised.
PAGE = 7

log = logging.getLogger("slixmpp_mam")


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


class Sent:
    """One message of the conversation: who sent it to whom, and the
    stanza id its recipient saw on it."""

    def __init__(self, sender: str, recipient: str, body: str) -> None:
        self.sender = sender
        self.recipient = recipient
        self.body = body
        self.stanza_id: str | None = None

    def __repr__(self) -> str:
        return f"{self.sender}->{self.recipient} {self.body!r}"


class Result:
    """One archived message as the plugin hands it out."""

    def __init__(self, msg) -> None:
        result = msg["mam_result"]
        forwarded = result["forwarded"]
        inner = forwarded["stanza"]
        self.id: str = result["id"]
        self.queryid: str = result["queryid"]
        self.stamp = forwarded["delay"]["stamp"]
        self.body: str = inner["body"]
        self.sender = inner["from"]
        self.recipient = inner["to"]

    def __repr__(self) -> str:
        return f"{self.id}: {self.body!r}"


class Client:
    """A plaintext/PLAIN slixmpp client with the archive plugins."""

    def __init__(self, label: str, jid: str, password: str) -> None:
        self.label = label
        plugin_config = {"feature_mechanisms": {"use_mech": "PLAIN", "unencrypted_plain": True}}
        x = slixmpp.ClientXMPP(jid, password, plugin_config=plugin_config, sasl_mech="PLAIN")
        self.xmpp = x
        x.enable_direct_tls = False
        x.enable_starttls = False
        x.enable_plaintext = True
        x.use_ipv6 = False
        x.register_plugin("xep_0199", {"keepalive": False})
        x.register_plugin("xep_0359")
        x.register_plugin("xep_0313")

        self.events: list[str] = []
        #: Live messages with a body, in the order they arrived.
        self.messages: list = []
        self.changed = asyncio.Event()
        self.outcome: asyncio.Future | None = None

        x.add_event_handler("session_start", lambda _e: self._settle("session_start"))
        x.add_event_handler("failed_all_auth", lambda _e=None: self._settle("failed_all_auth"))
        x.add_event_handler("no_auth", lambda _e=None: self._settle("no_auth"))
        x.add_event_handler(
            "stream_error",
            lambda e: self._settle(f"stream error: {e['condition']} {e['text']!r}"),
        )
        x.add_event_handler("connection_failed", lambda e: self._settle(f"connection failed: {e}"))
        x.add_event_handler("disconnected", lambda e: self._settle(f"disconnected: {e}"))
        x.add_event_handler("message", self._on_message)

    def _settle(self, what: str) -> None:
        self.events.append(what)
        self.changed.set()
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(what)

    def _on_message(self, msg) -> None:
        if msg["type"] == "error":
            self.events.append(f"error message: {msg}")
        else:
            # slixmpp's "message" event is for messages with a body only
            # (a MAM result carries its body inside <forwarded/>).
            self.messages.append(msg)
        self.changed.set()

    @property
    def bare(self) -> str:
        return self.xmpp.boundjid.bare

    @property
    def full(self) -> str:
        return self.xmpp.boundjid.full

    @property
    def mam(self):
        return self.xmpp.plugin["xep_0313"]

    async def connect(self, host: str, port: int) -> None:
        self.outcome = asyncio.get_running_loop().create_future()
        self.xmpp.connect(host, port)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(self.outcome), WAIT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"{self.label}: no session within {WAIT:.0f} s (events: {self.events})"
            ) from None
        if outcome != "session_start":
            raise CheckFailed(f"{self.label}: login ended with {outcome} (events: {self.events})")

    async def wait_body(self, body: str):
        """The live message with `body` (bounded)."""
        deadline = time.monotonic() + WAIT
        while True:
            for msg in self.messages:
                if msg["body"] == body:
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(
                    f"{self.label}: {body!r} did not arrive within {WAIT:.0f} s "
                    f"(got {[m['body'] for m in self.messages][-5:]}, events: {self.events})"
                )
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.05))
            except asyncio.TimeoutError:
                pass

    async def ping(self, domain: str) -> None:
        try:
            await self.xmpp.plugin["xep_0199"].send_ping(domain, timeout=WAIT)
        except IqTimeout:
            raise CheckFailed(f"{self.label}: no answer to a ping within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"{self.label}: ping answered with an error: {e.iq}") from None

    async def archive(self, what: str, **kw) -> list[Result]:
        """Every result of one `iterate` over the own archive (bounded)."""
        results: list[Result] = []

        async def collect() -> None:
            async for msg in self.mam.iterate(rsm={"max": PAGE}, **kw):
                results.append(Result(msg))

        try:
            await asyncio.wait_for(collect(), WAIT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"{self.label}: {what} not read within {WAIT:.0f} s "
                f"({len(results)} results so far)"
            ) from None
        except IqError as e:
            raise CheckFailed(f"{self.label}: {what}: the query failed: {e.iq}") from None
        return results

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
        self.domain = JID(args.jid_a).domain
        self.token = uuid.uuid4().hex[:6]
        self.a = Client("A", f"{JID(args.jid_a).bare}/slix-mam", args.password_a)
        self.b = Client("B", f"{JID(args.jid_b).bare}/slix-mam", args.password_b)
        self.c = Client("C", f"{JID(args.jid_c).bare}/slix-mam", args.password_c)
        #: The whole conversation in the order sent (each message sent once
        #: the one before arrived, so it is also the order of the archives).
        self.sent: list[Sent] = []
        #: A's archive as `paged_archive` read it.
        self.a_archive: list[Result] = []

    @staticmethod
    def expect(cond: bool, reason: str) -> None:
        if not cond:
            raise CheckFailed(reason)

    def of(self, label: str) -> Client:
        return {"A": self.a, "B": self.b, "C": self.c}[label]

    def party_to(self, label: str, peer: str | None = None) -> list[Sent]:
        """The messages `label` sent or received (with `peer`, if given)."""
        return [
            s
            for s in self.sent
            if label in (s.sender, s.recipient)
            and (peer is None or peer in (s.sender, s.recipient))
        ]

    def expect_bodies(self, got: list[Result], want: list[Sent], what: str) -> None:
        bodies = [r.body for r in got]
        wanted = [s.body for s in want]
        if bodies == wanted:
            return
        dupes = sorted({b for b in bodies if bodies.count(b) > 1})
        missing = [b for b in wanted if b not in bodies]
        extra = [b for b in bodies if b not in wanted]
        raise CheckFailed(
            f"{what}: {len(bodies)} results for {len(wanted)} messages"
            f"{'; duplicated ' + str(dupes) if dupes else ''}"
            f"{'; missing ' + str(missing) if missing else ''}"
            f"{'; unexpected ' + str(extra) if extra else ''}"
            f"{'; out of order' if not (dupes or missing or extra) else ''}: {bodies}"
        )

    def expect_addresses(self, got: list[Result], want: list[Sent], what: str) -> None:
        for r, s in zip(got, want):
            sender, recipient = self.of(s.sender), self.of(s.recipient)
            self.expect(
                r.sender.bare == sender.bare and r.recipient.bare == recipient.bare,
                f"{what}: {r.body!r} archived from {r.sender.full!r} to {r.recipient.full!r}, "
                f"sent from {sender.full!r} to {recipient.full!r}",
            )

    # -- the checks ----------------------------------------------------------
    async def login(self) -> str:
        clients = (self.a, self.b, self.c)
        await asyncio.gather(*(c.connect(self.host, self.port) for c in clients))
        for c in clients:
            c.xmpp.send_presence()
        await asyncio.gather(*(c.ping(self.domain) for c in clients))
        return ", ".join(c.full for c in clients)

    async def live_stanza_ids(self) -> str:
        every = AB_MESSAGES // C_MESSAGES
        plan: list[tuple[str, str]] = []
        for n in range(1, AB_MESSAGES + 1):
            plan.append(("A", "B") if n % 2 else ("B", "A"))
            if n % every == 0:
                k = n // every
                plan.append(("C", "A") if k % 2 else ("A", "C"))
        for n, (sender, recipient) in enumerate(plan, start=1):
            s = Sent(sender, recipient, f"m{n:02} {sender}>{recipient} {self.token}")
            self.sent.append(s)
            to = self.of(recipient)
            self.of(sender).xmpp.send_message(mto=to.full, mbody=s.body, mtype="chat")
            msg = await to.wait_body(s.body)
            ids = msg.xml.findall(f"{{{NS_SID}}}stanza-id")
            self.expect(
                len(ids) == 1,
                f"{recipient} got {s.body!r} with {len(ids)} <stanza-id/> elements, "
                f"expected 1: {msg}",
            )
            by, sid = ids[0].get("by"), ids[0].get("id")
            self.expect(
                by == to.bare,
                f"{recipient} got {s.body!r} with a stanza id by {by!r}, expected its own "
                f"bare JID {to.bare!r}: {msg}",
            )
            self.expect(bool(sid), f"{recipient} got {s.body!r} with an empty stanza id: {msg}")
            self.expect(
                msg["stanza_id"]["id"] == sid,
                f"the plugin reads the stanza id as {msg['stanza_id']['id']!r}, not {sid!r}",
            )
            s.stanza_id = sid
        for label in ("A", "B", "C"):
            ids = [s.stanza_id for s in self.sent if s.recipient == label]
            self.expect(
                len(set(ids)) == len(ids), f"{label} got the same stanza id twice: {ids}"
            )
        return (
            f"{len(self.sent)} messages, each with one stanza id by its recipient "
            f"(e.g. {self.sent[0].stanza_id!r})"
        )

    async def paged_archive(self) -> str:
        got = await self.a.archive("A's archive")
        want = self.party_to("A")
        self.expect_bodies(got, want, "A's archive")
        self.expect_addresses(got, want, "A's archive")
        ids = [r.id for r in got]
        self.expect(all(ids), f"a result without an id: {got}")
        self.expect(len(set(ids)) == len(ids), f"two results with the same id: {ids}")
        self.expect(all(r.stamp is not None for r in got), "a result without a delay stamp")
        stamps = [r.stamp for r in got]
        self.expect(
            stamps == sorted(stamps), f"the delay stamps go back in time: {stamps}"
        )
        pages = len({r.queryid for r in got})
        least = math.ceil(len(want) / PAGE)
        self.expect(
            pages >= least,
            f"{len(want)} results in {pages} pages of at most {PAGE}: a page was larger "
            f"than asked",
        )
        self.a_archive = got
        return f"{len(got)} messages once each, in order, over {pages} pages of {PAGE}"

    async def result_ids_are_stanza_ids(self) -> str:
        def compare(label: str, got: list[Result], want: list[Sent]) -> int:
            compared = 0
            for r, s in zip(got, want):
                if s.recipient != label:
                    continue
                self.expect(
                    r.id == s.stanza_id,
                    f"{label}'s archive: {s.body!r} has result id {r.id!r}, but it arrived "
                    f"with stanza id {s.stanza_id!r}",
                )
                compared += 1
            return compared

        in_a = compare("A", self.a_archive, self.party_to("A"))
        got_b = await self.b.archive("B's archive")
        want_b = self.party_to("B")
        self.expect_bodies(got_b, want_b, "B's archive")
        self.expect_addresses(got_b, want_b, "B's archive")
        in_b = compare("B", got_b, want_b)
        return f"A: {in_a} received messages, B: {in_b}, result id = live stanza id"

    async def with_filter(self) -> str:
        details = []
        for what, with_jid, peer in (
            ("B's bare JID", JID(self.b.bare), "B"),
            ("B's full JID", JID(self.b.full), "B"),
            ("C's bare JID", JID(self.c.bare), "C"),
        ):
            got = await self.a.archive(f"A's archive with {what}", with_jid=with_jid)
            want = self.party_to("A", peer)
            self.expect_bodies(got, want, f"A's archive with {what}")
            by_id = {r.id: r.body for r in self.a_archive}
            for r in got:
                self.expect(
                    by_id.get(r.id) == r.body,
                    f"with {what}: {r.body!r} has id {r.id!r}, which the unfiltered "
                    f"archive gave {by_id.get(r.id)!r}",
                )
            details.append(f"{what}: {len(got)}")
        return ", ".join(details)

    async def reversed(self) -> str:
        got = await self.a.archive("A's archive backwards", reverse=True)
        want = list(reversed(self.party_to("A")))
        self.expect_bodies(got, want, "A's archive backwards")
        forwards = [r.id for r in reversed(self.a_archive)]
        self.expect(
            [r.id for r in got] == forwards,
            "the result ids backwards differ from those forwards",
        )
        pages = len({r.queryid for r in got})
        return f"{len(got)} messages newest first over {pages} pages of {PAGE}"

    async def metadata(self) -> str:
        try:
            iq = await self.a.mam.get_archive_metadata(timeout=WAIT)
        except IqTimeout:
            raise CheckFailed(f"no metadata within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"the metadata query failed: {e.iq}") from None
        meta = iq["mam_metadata"]
        first, last = self.a_archive[0], self.a_archive[-1]
        for name, result in (("start", first), ("end", last)):
            el = meta[name]
            self.expect(
                el["id"] == result.id,
                f"<{name}/> has id {el['id']!r}, but the archive's {name} is {result.id!r} "
                f"({result.body!r}): {iq}",
            )
            self.expect(
                el["timestamp"] == result.stamp,
                f"<{name}/> has timestamp {el['timestamp']}, but {result.body!r} is stamped "
                f"{result.stamp}: {iq}",
            )
        return f"start {first.id!r}, end {last.id!r}, as the archive"

    async def close(self) -> None:
        clients = (self.a, self.b, self.c)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.close() for c in clients), return_exceptions=True), CLEANUP
            )
        except asyncio.TimeoutError:
            pass
        for c in clients:
            c.xmpp.cancel_connection_attempt()
            c.xmpp.abort()


CHECKS = [
    "login",
    "live_stanza_ids",
    "paged_archive",
    "result_ids_are_stanza_ids",
    "with_filter",
    "reversed",
    "metadata",
]


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
    parser.add_argument("jid_c")
    parser.add_argument("password_c")
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
