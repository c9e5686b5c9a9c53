#!/usr/bin/env python3
"""Interoperability check: slixmpp's PEP client plugins (XEP-0163 and the
payload plugins built on it) against Perch's PEP service.

Usage:
    slixmpp_pep.py HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B [--debug]

The clients log in on C2S_PORT without TLS, with SASL PLAIN (the test
server allows it). Both load the plugins xep_0030 (disco), xep_0060
(pubsub), xep_0163 (PEP), xep_0115 (entity capabilities: the `+notify`
features are how a client asks for PEP events), xep_0172 (user nickname),
xep_0084 (user avatar), xep_0054 (vcard-temp), xep_0153 (vCard avatars),
xep_0048 (legacy bookmarks), xep_0049 (private XML storage), xep_0223
(private PEP storage, pulled in by xep_0048) and xep_0402 (PEP native
bookmarks: its stanzas; slixmpp has no XEP-0402 publishing API, so those
publishes go through xep_0060 with the publish-options XEP-0402 asks for).

Every check prints exactly one line, `ok NAME (details)` or
`FAIL NAME: reason`; after a FAIL the last client log lines (slixmpp's
SEND/RECV trace) follow on stderr, each prefixed with `  | `. The exit
status is 0 only when every check passed. Every wait is bounded, and the
whole run stops after TOTAL_BUDGET seconds however the server behaves
(both multiplied by PERCH_TEST_TIME_SCALE when it is set: under qemu).
A failed `login` marks the rest as not run; the other checks are
independent of each other's outcome.

The checks, in order:
  login                    A and B log in, fetch their rosters, send
                           presence with caps (XEP-0115), and subscribe to
                           each other's presence (A asks, B's client
                           approves and asks back, A's approves): both
                           rosters end at subscription "both" and each
                           sees the other available
  caps_verified            the server asks (disco#info NODE#VER) for the
                           capabilities of each client's presence, from
                           A or B (same plugins, same VER; the server is
                           new, so it cannot know VER yet); then a ping
                           from each client, so that the answer was read
                           before anything is published
  pep_disco                disco#info on A's bare JID, by A: identity
                           pubsub/pep, features pubsub#publish-options and
                           urn:xmpp:bookmarks:1#compat
  pep_publish_notify       A publishes a nickname (xep_0172 publish_nick);
                           B, whose caps carry `nick+notify`, gets the
                           event from A's bare JID with that nickname
                           (through the plugin's `user_nick_publish`)
  pep_no_interest          A publishes a geoloc item (B's caps have no
                           `geoloc+notify`, checked), then a new nickname;
                           once B has that nickname's event, B has had no
                           geoloc event (the server sends in order), and
                           B can read the geoloc item all the same (so the
                           missing event is about interest, not access)
  avatar_pep_to_vcard      A publishes an avatar with xep_0084 (data, then
                           metadata); B gets the metadata event with the
                           image's SHA-1 id; B's vCard request for A
                           (xep_0054) gives PHOTO with the same bytes and
                           type; A sends presence again, which reaches B
                           with that SHA-1 as XEP-0153 photo hash
  avatar_vcard_to_pep      B stores a vCard with a PHOTO (xep_0054
                           publish_vcard); A gets B's avatar metadata
                           event, B's `urn:xmpp:avatar:metadata` item
                           (xep_0060 get_items) names the image by its
                           SHA-1 with its type and size, and the data item
                           of that id (xep_0084 retrieve_avatar) holds
                           the same bytes
  bookmarks_new_to_old     A publishes a XEP-0402 bookmark (publish-options
                           as XEP-0402 section 3 asks); A's private XML
                           bookmarks (xep_0048 via xep_0049) and A's
                           `storage:bookmarks` PEP node (xep_0048 via
                           xep_0223) both hold that conference with its
                           name, autojoin and nick
  bookmarks_old_to_new     A stores legacy bookmarks in private XML
                           (xep_0048 set_bookmarks, method xep_0049): the
                           conference above and two more; A's
                           `urn:xmpp:bookmarks:1` items are then exactly
                           those three conferences, by JID as item id,
                           with the same name, autojoin and nick
  precondition_mismatch    A publishes to a new node with publish-options
                           access_model=open (accepted), then with
                           access_model=whitelist: refused with
                           <conflict/> and pubsub#errors
                           <precondition-not-met/>; with open again:
                           accepted (XEP-0060 section 7.1.5)
  foreign_publish_forbidden  B publishes to A's nickname node (to A's
                           bare JID): refused with <forbidden/>; A's
                           nickname is unchanged and no event carried B's

This module is also imported by slixmpp_omemo.py for its client and the
check runner.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import logging
import os
import struct
import sys
import time
import uuid
import zlib
import xml.etree.ElementTree as ET
from typing import Callable

try:
    import slixmpp
    from slixmpp import JID
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.plugins.xep_0004.stanza import Form
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
#: How long an event that must not come is given after the barrier.
QUIET = 0.5 * SCALE
#: Log lines of a failed check shown after its FAIL line.
TRACE_LINES = 120

NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
NS_NICK = "http://jabber.org/protocol/nick"
NS_GEOLOC = "http://jabber.org/protocol/geoloc"
NS_AVATAR_DATA = "urn:xmpp:avatar:data"
NS_AVATAR_METADATA = "urn:xmpp:avatar:metadata"
NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
NS_LEGACY_BOOKMARKS = "storage:bookmarks"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

#: The plugins of script A's clients (dependencies come along).
PEP_PLUGINS = [
    "xep_0030",
    "xep_0060",
    "xep_0163",
    "xep_0115",
    "xep_0172",
    "xep_0084",
    "xep_0054",
    "xep_0153",
    "xep_0049",
    "xep_0048",
    "xep_0223",
    "xep_0402",
]

log = logging.getLogger("slixmpp_pep")


class CheckFailed(Exception):
    pass


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise CheckFailed(reason)


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


def tiny_png(rgb: tuple[int, int, int], size: int = 2) -> bytes:
    """A valid SIZExSIZE PNG of one colour (the server sniffs type and
    dimensions)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * size
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def options_form(form_type: str, fields: dict[str, str]) -> Form:
    """A submitted data form of FORM_TYPE `form_type` (publish-options)."""
    form = Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


def publish_options(**fields: str) -> Form:
    """publish-options; `access_model="open"` is `pubsub#access_model`."""
    return options_form(NS_PUBLISH_OPTIONS, {f"pubsub#{k}": v for k, v in fields.items()})


def error_summary(e: IqError) -> str:
    """`condition (type) [app condition] text` of an error reply."""
    err = e.iq["error"]
    app = [
        child.tag.split("}")[-1]
        for child in err.xml
        if not child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")
    ]
    text = f" {err['text']!r}" if err["text"] else ""
    return f"{err['condition']} ({err['type']}){' ' + str(app) if app else ''}{text}"


def payload_of(item) -> ET.Element | None:
    """The payload element of a pubsub <item/> (or None)."""
    children = list(item.xml)
    return children[0] if children else None


class Event:
    """One item of a pubsub event notification as a client saw it."""

    def __init__(self, sender: str, node: str, item_id: str, payload: ET.Element | None) -> None:
        self.sender = sender
        self.node = node
        self.item_id = item_id
        self.payload = payload

    def __repr__(self) -> str:
        return f"{self.sender} {self.node} #{self.item_id}"


class Client:
    """A plaintext/PLAIN slixmpp client with the given plugins, recording
    PEP events, presences and the caps queries it answered."""

    def __init__(
        self,
        label: str,
        jid: str,
        password: str,
        plugins: list[str],
        extra: Callable[[slixmpp.ClientXMPP], None] | None = None,
    ) -> None:
        self.label = label
        plugin_config = {"feature_mechanisms": {"use_mech": "PLAIN", "unencrypted_plain": True}}
        x = slixmpp.ClientXMPP(jid, password, plugin_config=plugin_config, sasl_mech="PLAIN")
        self.xmpp = x
        x.enable_direct_tls = False
        x.enable_starttls = False
        x.enable_plaintext = True
        x.use_ipv6 = False
        x.register_plugin("xep_0199", {"keepalive": False})
        for name in plugins:
            x.register_plugin(name)
        if extra is not None:
            extra(x)

        self.events: list[str] = []
        #: Items of pubsub event notifications, in arrival order.
        self.pep: list[Event] = []
        #: (bare sender, nickname) from the xep_0172 plugin's event.
        self.nicks: list[tuple[str, str]] = []
        #: (bare sender, [info ids]) from the xep_0084 plugin's event.
        self.avatar_metadata: list[tuple[str, list[str]]] = []
        #: (full sender, XEP-0153 photo hash or None) of available presences.
        self.presences: list[tuple[str, str | None]] = []
        #: Nodes (NODE#VER) of the disco#info queries this client answered.
        self.caps_answered: list[str] = []
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
        x.add_event_handler("pubsub_publish", self._on_pubsub_publish)
        x.add_event_handler("user_nick_publish", self._on_nick)
        x.add_event_handler("avatar_metadata_publish", self._on_avatar_metadata)
        x.add_event_handler("presence_available", self._on_presence)
        x.add_event_handler("roster_update", lambda _e: self.changed.set())
        x.add_filter("out", self._filter_out)

    def _settle(self, what: str) -> None:
        self.events.append(what)
        self.changed.set()
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(what)

    def _on_pubsub_publish(self, msg) -> None:
        # The raw XML: xep_0060 raises this event while it iterates over
        # the same stanza object, and iterating it here would reset its
        # cursor (an endless loop).
        items = msg.xml.find(f"{{{NS_PUBSUB_EVENT}}}event/{{{NS_PUBSUB_EVENT}}}items")
        if items is None:
            return
        for item in items.findall(f"{{{NS_PUBSUB_EVENT}}}item"):
            children = list(item)
            self.pep.append(
                Event(
                    msg["from"].bare,
                    items.get("node", ""),
                    item.get("id", ""),
                    children[0] if children else None,
                )
            )
        self.changed.set()

    def _on_nick(self, msg) -> None:
        item = msg["pubsub_event"]["items"]["item"]
        self.nicks.append((msg["from"].bare, item["nick"]["nick"]))
        self.changed.set()

    def _on_avatar_metadata(self, msg) -> None:
        item = msg["pubsub_event"]["items"]["item"]
        ids = [info["id"] for info in item["avatar_metadata"]["items"]]
        self.avatar_metadata.append((msg["from"].bare, ids))
        self.changed.set()

    def _on_presence(self, pres) -> None:
        photo = pres.xml.find("{vcard-temp:x:update}x/{vcard-temp:x:update}photo")
        self.presences.append((pres["from"].full, None if photo is None else (photo.text or "")))
        self.changed.set()

    def _filter_out(self, stanza):
        # The answers to the server's caps queries (XEP-0115 section 6.2).
        if (
            stanza.name == "iq"
            and stanza["type"] == "result"
            and stanza.xml.find(f"{{{NS_DISCO_INFO}}}query") is not None
        ):
            node = stanza.xml.find(f"{{{NS_DISCO_INFO}}}query").get("node", "")
            if "#" in node:
                self.caps_answered.append(node)
                self.changed.set()
        return stanza

    @property
    def bare(self) -> str:
        return self.xmpp.boundjid.bare

    @property
    def full(self) -> str:
        return self.xmpp.boundjid.full

    def plugin(self, name: str):
        return self.xmpp.plugin[name]

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

    async def go_online(self) -> None:
        """Roster, then presence carrying the final caps (every plugin has
        added its `+notify` features by session start)."""
        try:
            await self.xmpp.get_roster(timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"{self.label}: roster request failed: {e}") from None
        await self.plugin("xep_0115").update_caps(broadcast=False)
        self.xmpp.send_presence()

    async def own_features(self) -> set[str]:
        """The disco#info features this client advertises (its caps)."""
        info = await self.plugin("xep_0030").get_info(jid=None, local=True)
        if not hasattr(info, "get_features"):
            info = info["disco_info"]
        return set(info.get_features())

    async def caps_ver(self) -> str:
        return str(await self.plugin("xep_0115").get_verstring(self.xmpp.boundjid.full))

    @property
    def caps_node(self) -> str:
        return self.plugin("xep_0115").caps_node

    async def wait_for(self, what: str, predicate: Callable[[], object], timeout: float = WAIT):
        """Waits (bounded) until `predicate()` is truthy; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"{self.label}: {what} did not happen within {timeout:.0f} s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.05))
            except asyncio.TimeoutError:
                pass

    async def ping(self) -> None:
        try:
            await self.plugin("xep_0199").ping(JID(self.xmpp.boundjid.domain), timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"{self.label}: ping failed: {e}") from None

    async def iq(self, what: str, coro):
        """Awaits an iq request; a timeout or error reply fails the check."""
        try:
            return await coro
        except IqTimeout:
            raise CheckFailed(f"{self.label}: {what}: no reply within {WAIT:.0f} s") from None
        except IqError as e:
            raise CheckFailed(f"{self.label}: {what}: error {error_summary(e)}") from None

    async def iq_error(self, what: str, coro) -> IqError:
        """Awaits an iq request that must be refused; returns the error."""
        try:
            result = await coro
        except IqTimeout:
            raise CheckFailed(f"{self.label}: {what}: no reply within {WAIT:.0f} s") from None
        except IqError as e:
            return e
        raise CheckFailed(f"{self.label}: {what} was accepted, not refused: {result}")

    async def close(self) -> None:
        if self.xmpp.is_connected():
            self.xmpp.disconnect(wait=0.5)
            try:
                await asyncio.wait_for(self.xmpp.disconnected, 1.0)
            except asyncio.TimeoutError:
                pass

    def abort(self) -> None:
        self.xmpp.cancel_connection_attempt()
        self.xmpp.abort()


async def subscribe_mutually(a: Client, b: Client) -> None:
    """A subscribes to B; B's client approves and asks back (slixmpp's
    auto_authorize and auto_subscribe); A's approves. Waits for both
    rosters at "both" and each side seeing the other available."""
    a.xmpp.send_presence_subscription(pto=b.bare, ptype="subscribe")

    def state(c: Client, other: Client) -> str:
        return c.xmpp.client_roster[other.bare]["subscription"]

    for c, other in ((a, b), (b, a)):
        try:
            await c.wait_for(
                f"subscription 'both' with {other.bare}",
                lambda c=c, other=other: state(c, other) == "both",
            )
        except CheckFailed as e:
            raise CheckFailed(f"{e} (it is {state(c, other)!r})") from None
        await c.wait_for(
            f"available presence of {other.bare}",
            lambda c=c, other=other: any(f == other.full for f, _ in c.presences),
        )


async def run_checks(
    checks, names: list[str], debug: bool, trace: TraceBuffer, fatal: set[str]
) -> int:
    """Runs `checks.NAME()` for every name, printing one line each; a
    failure of a check in `fatal` marks the rest as not run."""
    deadline = time.monotonic() + TOTAL_BUDGET
    failed = 0
    broken = None
    try:
        for name in names:
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
            started = time.monotonic()
            reason = None
            try:
                detail = await asyncio.wait_for(getattr(checks, name)(), budget)
            except CheckFailed as e:
                reason = str(e)
            except asyncio.TimeoutError:
                reason = f"did not finish within {budget:.0f} s"
            except Exception as e:  # noqa: BLE001 - a crash is one failed check
                reason = f"unexpected {type(e).__name__}: {e}"
            took = time.monotonic() - started
            if reason is None:
                print(f"ok {name} ({detail}; {took:.2f} s)", flush=True)
                continue
            failed += 1
            if name in fatal:
                broken = name
            print(f"FAIL {name}: {reason}", flush=True)
            if not debug and trace.lines:
                print(f"  trace of {name} (last {len(trace.lines)} log lines):", file=sys.stderr)
                for line in trace.lines:
                    print(f"  | {line}", file=sys.stderr)
                sys.stderr.flush()
    finally:
        await checks.close()
    passed = len(names) - failed
    print(f"slixmpp {slixmpp.__version__}: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def setup_logging(debug: bool) -> TraceBuffer:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    trace = TraceBuffer(TRACE_LINES)
    root.addHandler(trace)
    if debug:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(relativeCreated)7.0fms %(name)s: %(message)s"))
        root.addHandler(stream)
    return trace


async def close_all(clients: list[Client]) -> None:
    try:
        await asyncio.wait_for(
            asyncio.gather(*(c.close() for c in clients), return_exceptions=True), CLEANUP
        )
    except asyncio.TimeoutError:
        pass
    for c in clients:
        c.abort()


class Checks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host = args.host
        self.port = args.c2s_port
        self.a = Client("A", args.jid_a, args.password_a, PEP_PLUGINS)
        self.b = Client("B", args.jid_b, args.password_b, PEP_PLUGINS)
        self.tag = uuid.uuid4().hex[:8]
        #: A's latest nickname, as published.
        self.a_nick: str | None = None
        #: The conference of bookmarks_new_to_old: (jid, name, nick).
        self.new_room = (f"new-{self.tag}@conference.localhost", "New room", "alice-new")

    # -- helpers ---------------------------------------------------------

    async def publish_nick(self, nick: str) -> None:
        await self.a.iq(
            "publishing a nickname",
            self.a.plugin("xep_0172").publish_nick(nick, timeout=WAIT),
        )
        self.a_nick = nick

    async def b_nick_event(self, nick: str) -> None:
        await self.b.wait_for(
            f"the nickname event {nick!r} from {self.a.bare}",
            lambda: (self.a.bare, nick) in self.b.nicks,
        )

    # -- checks ----------------------------------------------------------

    async def login(self) -> str:
        await asyncio.gather(*(c.connect(self.host, self.port) for c in (self.a, self.b)))
        await asyncio.gather(self.a.go_online(), self.b.go_online())
        await subscribe_mutually(self.a, self.b)
        return f"{self.a.full} and {self.b.full}, subscribed both ways"

    async def caps_verified(self) -> str:
        clients = (self.a, self.b)
        vers = {c.label: f"{c.caps_node}#{await c.caps_ver()}" for c in clients}
        for c in clients:
            want = vers[c.label]
            await c.wait_for(
                f"a caps query for its {want}",
                lambda want=want: any(want in d.caps_answered for d in clients),
            )
        # Each answer went before the ping: once the pong is here, the
        # server has read the answer.
        await asyncio.gather(*(c.ping() for c in clients))
        asked = {c.label: sorted(set(c.caps_answered)) for c in clients}
        return f"queries answered: {asked}"

    async def pep_disco(self) -> str:
        iq = await self.a.iq(
            "disco#info on the own bare JID",
            self.a.plugin("xep_0030").get_info(jid=self.a.bare, local=False, timeout=WAIT),
        )
        info = iq["disco_info"]
        identities = {(cat, typ) for cat, typ, _lang, _name in info["identities"]}
        features = set(info["features"])
        expect(
            ("pubsub", "pep") in identities,
            f"no identity pubsub/pep in {sorted(identities)}",
        )
        for feature in (NS_PUBLISH_OPTIONS, f"{NS_BOOKMARKS}#compat"):
            expect(feature in features, f"no feature {feature} in {sorted(features)}")
        return f"pubsub/pep, publish-options, bookmarks compat among {len(features)} features"

    async def pep_publish_notify(self) -> str:
        b_features = await self.b.own_features()
        expect(
            f"{NS_NICK}+notify" in b_features,
            f"B's client does not advertise {NS_NICK}+notify: {sorted(b_features)}",
        )
        nick = f"Alice {self.tag}"
        await self.publish_nick(nick)
        await self.b_nick_event(nick)
        event = next(
            (
                e
                for e in self.b.pep
                if e.node == NS_NICK
                and e.sender == self.a.bare
                and e.payload is not None
                and e.payload.text == nick
            ),
            None,
        )
        expect(event is not None, f"the raw event items at B lack {nick!r}: {self.b.pep}")
        return f"B got {nick!r} from {self.a.bare} (item {event.item_id!r})"

    async def pep_no_interest(self) -> str:
        b_features = await self.b.own_features()
        expect(
            f"{NS_GEOLOC}+notify" not in b_features,
            f"B's client advertises {NS_GEOLOC}+notify, the check would be void",
        )
        geoloc = ET.Element(f"{{{NS_GEOLOC}}}geoloc")
        ET.SubElement(geoloc, f"{{{NS_GEOLOC}}}locality").text = f"Interop {self.tag}"
        await self.a.iq(
            "publishing geoloc",
            self.a.plugin("xep_0060").publish(
                None, NS_GEOLOC, id="current", payload=geoloc, timeout=WAIT
            ),
        )
        # A barrier: a later event B wants; the server sends in order.
        nick = f"Alice again {self.tag}"
        await self.publish_nick(nick)
        await self.b_nick_event(nick)
        await asyncio.sleep(QUIET)
        unwanted = [e for e in self.b.pep if e.node == NS_GEOLOC]
        expect(not unwanted, f"B got geoloc events without interest: {unwanted}")
        iq = await self.b.iq(
            "B reading A's geoloc",
            self.b.plugin("xep_0060").get_items(self.a.bare, NS_GEOLOC, timeout=WAIT),
        )
        localities = [
            p.findtext(f"{{{NS_GEOLOC}}}locality")
            for p in (payload_of(i) for i in iq["pubsub"]["items"])
            if p is not None
        ]
        expect(
            f"Interop {self.tag}" in localities,
            f"B cannot see A's geoloc item (items: {localities})",
        )
        return "no geoloc event at B before the next nickname event; B can read the item"

    async def avatar_pep_to_vcard(self) -> str:
        image = tiny_png((200, 30, 30))
        sha1 = hashlib.sha1(image).hexdigest()
        avatar = self.a.plugin("xep_0084")
        await self.a.iq("publishing avatar data", avatar.publish_avatar(image, timeout=WAIT))
        await self.a.iq(
            "publishing avatar metadata",
            avatar.publish_avatar_metadata(
                # slixmpp writes width and height as given: strings.
                {"id": sha1, "type": "image/png", "bytes": len(image), "width": "2", "height": "2"},
                timeout=WAIT,
            ),
        )
        await self.b.wait_for(
            f"the avatar metadata event {sha1} from {self.a.bare}",
            lambda: any(s == self.a.bare and sha1 in ids for s, ids in self.b.avatar_metadata),
        )
        iq = await self.b.iq(
            "B fetching A's vCard",
            self.b.plugin("xep_0054").get_vcard(self.a.bare, cached=False, timeout=WAIT),
        )
        photo = iq["vcard_temp"]["PHOTO"]
        binval = photo["BINVAL"]
        expect(
            binval == image,
            f"A's vCard PHOTO/BINVAL is {len(binval)} bytes (sha1 "
            f"{hashlib.sha1(binval).hexdigest()}), not the {len(image)}-byte avatar {sha1}: "
            f"{iq['vcard_temp']}",
        )
        expect(
            photo["TYPE"] == "image/png",
            f"A's vCard PHOTO/TYPE is {photo['TYPE']!r}, not image/png",
        )
        # XEP-0153: the server stamps the hash on A's next presence.
        seen = len(self.b.presences)
        self.a.xmpp.send_presence()

        def hashes() -> list[str | None]:
            return [h for f, h in self.b.presences[seen:] if f == self.a.full]

        try:
            await self.b.wait_for(
                f"A's presence with XEP-0153 photo hash {sha1}", lambda: sha1 in hashes()
            )
        except CheckFailed as e:
            raise CheckFailed(f"{e}; A's presences carried {hashes()}") from None
        return f"vCard PHOTO is the {len(image)}-byte PNG {sha1}; presence hash too"

    async def avatar_vcard_to_pep(self) -> str:
        image = tiny_png((30, 30, 200), size=3)
        sha1 = hashlib.sha1(image).hexdigest()
        vcard_plugin = self.b.plugin("xep_0054")
        vcard = vcard_plugin.make_vcard()
        vcard["FN"] = "Bob Interop"
        vcard["PHOTO"]["TYPE"] = "image/png"
        vcard["PHOTO"]["BINVAL"] = image
        await self.b.iq("storing B's vCard", vcard_plugin.publish_vcard(vcard, timeout=WAIT))
        await self.a.wait_for(
            f"the avatar metadata event {sha1} from {self.b.bare}",
            lambda: any(s == self.b.bare and sha1 in ids for s, ids in self.a.avatar_metadata),
        )
        iq = await self.a.iq(
            "A reading B's avatar metadata",
            self.a.plugin("xep_0060").get_items(self.b.bare, NS_AVATAR_METADATA, timeout=WAIT),
        )
        # (slixmpp registers the metadata stanza on event items only.)
        infos = [
            info
            for item in iq["pubsub"]["items"]
            for info in item.xml.iter(f"{{{NS_AVATAR_METADATA}}}info")
        ]
        expect(infos, f"B's avatar metadata node has no <info/>: {iq}")
        info = next((i for i in infos if i.get("id") == sha1), None)
        expect(
            info is not None,
            f"no <info/> with id {sha1} (the image's SHA-1) among {[i.get('id') for i in infos]}",
        )
        expect(
            info.get("type") == "image/png" and info.get("bytes") == str(len(image)),
            f"<info/> says type {info.get('type')!r}, {info.get('bytes')} bytes; the image is "
            f"image/png, {len(image)} bytes",
        )
        data = await self.a.iq(
            "A reading B's avatar data",
            self.a.plugin("xep_0084").retrieve_avatar(JID(self.b.bare), sha1, timeout=WAIT),
        )
        items = list(data["pubsub"]["items"])
        expect(
            len(items) == 1 and items[0]["id"] == sha1,
            f"B's avatar data for id {sha1}: items {[i['id'] for i in items]}",
        )
        value = items[0]["avatar_data"]["value"]
        expect(
            value == image,
            f"B's avatar data item holds {len(value)} bytes, not the {len(image)}-byte photo",
        )
        return f"metadata and data of the {len(image)}-byte PNG {sha1}"

    async def bookmarks_new_to_old(self) -> str:
        from slixmpp.plugins.xep_0402.stanza import Conference

        room, name, nick = self.new_room
        conference = Conference()
        conference["name"] = name
        conference["autojoin"] = True
        conference["nick"] = nick
        # XEP-0402 section 3: the node's required configuration.
        options = publish_options(
            persist_items="true",
            max_items="max",
            send_last_published_item="never",
            access_model="whitelist",
        )
        await self.a.iq(
            "publishing a XEP-0402 bookmark",
            self.a.plugin("xep_0060").publish(
                None, NS_BOOKMARKS, id=room, payload=conference.xml, options=options, timeout=WAIT
            ),
        )
        bookmarks = self.a.plugin("xep_0048")

        def check(where: str, storage) -> None:
            confs = {c["jid"]: c for c in storage["conferences"]}
            conf = confs.get(room)
            expect(conf is not None, f"{where}: no conference {room} among {sorted(confs)}")
            got = (conf["name"], conf["autojoin"], conf["nick"])
            expect(
                got == (name, True, nick),
                f"{where}: {room} has (name, autojoin, nick) {got}, not {(name, True, nick)}",
            )

        private = await self.a.iq(
            "reading private XML bookmarks",
            bookmarks.get_bookmarks(method="xep_0049", timeout=WAIT),
        )
        check("private XML storage:bookmarks", private["private"]["bookmarks"])
        pep = await self.a.iq(
            "reading the storage:bookmarks PEP node",
            bookmarks.get_bookmarks(method="xep_0223", timeout=WAIT),
        )
        pep_items = list(pep["pubsub"]["items"])
        expect(
            len(pep_items) == 1,
            f"the storage:bookmarks PEP node has {len(pep_items)} items, not 1",
        )
        check("PEP storage:bookmarks", pep_items[0]["bookmarks"])
        return f"{room} in private XML and in the storage:bookmarks node"

    async def bookmarks_old_to_new(self) -> str:
        from slixmpp.plugins.xep_0048.stanza import Bookmarks

        # A legacy client rewrites the whole list: what it read, plus two.
        want = {
            self.new_room[0]: (self.new_room[1], True, self.new_room[2]),
            f"old-{self.tag}@conference.localhost": ("Old room", True, "alice-old"),
            f"quiet-{self.tag}@conference.localhost": ("Quiet room", False, "alice-quiet"),
        }
        storage = Bookmarks()
        for room, (name, autojoin, nick) in want.items():
            storage.add_conference(room, nick, name=name, autojoin=autojoin)
        await self.a.iq(
            "storing legacy bookmarks in private XML",
            self.a.plugin("xep_0048").set_bookmarks(storage, method="xep_0049", timeout=WAIT),
        )
        iq = await self.a.iq(
            "reading the urn:xmpp:bookmarks:1 items",
            self.a.plugin("xep_0060").get_items(None, NS_BOOKMARKS, timeout=WAIT),
        )
        got = {}
        for item in iq["pubsub"]["items"]:
            conf = item["conference"]
            got[item["id"]] = (conf["name"], conf["autojoin"], conf["nick"])
        expect(
            got == want,
            f"urn:xmpp:bookmarks:1 holds {got}, not {want}",
        )
        return f"{len(got)} conferences with name, autojoin and nick"

    async def precondition_mismatch(self) -> str:
        node = f"urn:perch:interop:precondition:{self.tag}"
        pubsub = self.a.plugin("xep_0060")

        def item(text: str) -> ET.Element:
            el = ET.Element(f"{{{node}}}note")
            el.text = text
            return el

        await self.a.iq(
            "creating a node with access_model=open",
            pubsub.publish(
                None, node, id="1", payload=item("one"),
                options=publish_options(access_model="open"), timeout=WAIT,
            ),
        )
        e = await self.a.iq_error(
            "publishing with access_model=whitelist to the open node",
            pubsub.publish(
                None, node, id="2", payload=item("two"),
                options=publish_options(access_model="whitelist"), timeout=WAIT,
            ),
        )
        app = e.iq["error"].xml.find(f"{{{NS_PUBSUB_ERRORS}}}precondition-not-met")
        expect(
            e.iq["error"]["condition"] == "conflict" and app is not None,
            f"refused with {error_summary(e)}, not conflict + precondition-not-met",
        )
        await self.a.iq(
            "publishing with access_model=open again",
            pubsub.publish(
                None, node, id="3", payload=item("three"),
                options=publish_options(access_model="open"), timeout=WAIT,
            ),
        )
        iq = await self.a.iq("reading the node", pubsub.get_items(None, node, timeout=WAIT))
        ids = sorted(i["id"] for i in iq["pubsub"]["items"])
        expect("2" not in ids, f"the refused item was stored: items {ids}")
        return f"mismatch refused with {error_summary(e)}; items {ids}"

    async def foreign_publish_forbidden(self) -> str:
        mallory = f"Mallory {self.tag}"
        nick = ET.Element(f"{{{NS_NICK}}}nick")
        nick.text = mallory
        e = await self.b.iq_error(
            "B publishing to A's nickname node",
            self.b.plugin("xep_0060").publish(
                JID(self.a.bare), NS_NICK, id="current", payload=nick, timeout=WAIT
            ),
        )
        expect(
            e.iq["error"]["condition"] == "forbidden",
            f"refused with {error_summary(e)}, not forbidden",
        )
        iq = await self.b.iq(
            "B reading A's nickname",
            self.b.plugin("xep_0060").get_items(self.a.bare, NS_NICK, timeout=WAIT),
        )
        nicks = [n.text for i in iq["pubsub"]["items"] for n in i.xml.iter(f"{{{NS_NICK}}}nick")]
        expect(
            mallory not in nicks and (self.a_nick is None or self.a_nick in nicks),
            f"A's nickname node holds {nicks}, A published {self.a_nick!r}",
        )
        leaked = [n for n in self.a.nicks + self.b.nicks if n[1] == mallory]
        expect(not leaked, f"events carried B's nickname: {leaked}")
        return f"refused with {error_summary(e)}; A's nickname still {nicks}"

    async def close(self) -> None:
        await close_all([self.a, self.b])


CHECKS = [
    "login",
    "caps_verified",
    "pep_disco",
    "pep_publish_notify",
    "pep_no_interest",
    "avatar_pep_to_vcard",
    "avatar_vcard_to_pep",
    "bookmarks_new_to_old",
    "bookmarks_old_to_new",
    "precondition_mismatch",
    "foreign_publish_forbidden",
]


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
    trace = setup_logging(args.debug)

    async def go() -> int:
        return await run_checks(Checks(args), CHECKS, args.debug, trace, {"login"})

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
