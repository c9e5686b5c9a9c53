#!/usr/bin/env python3
"""Interoperability check: push notifications (XEP-0357) with slixmpp on
both ends: a slixmpp client enables push against Perch, and a slixmpp
ComponentXMPP plays the app server that the notifications reach.

slixmpp 1.17 ships no XEP-0357 plugin, so the client builds the
<enable/> and <disable/> requests with slixmpp's own iq API; stream
management is its xep_0198 plugin.

Usage:
    slixmpp_push.py HOST C2S_PORT COMPONENT_PORT DOMAIN SECRET
                    JID_A PASSWORD_A JID_B PASSWORD_B [--debug]

The client and the check runner are slixmpp_pep.py's (same folder); so
are the output format (`ok NAME (details)` / `FAIL NAME: reason`) and the
time bounds. A failed `connect` marks the checks after it as not run.

The checks, in order:
  connect     the app server connects as the component DOMAIN; A logs in
              with stream management (resumable), B logs in
  feature     A's disco#info of her own bare JID lists urn:xmpp:push:0
  enable      A enables push to DOMAIN, node "slix-node", with publish
              options carrying a secret; the server answers a result
  notified    A's connection is cut (no stream close: the session sleeps
              for resumption); B sends A messages until the app server
              gets a publish: from A's bare JID, to node "slix-node", a
              summary form with message-count 1 and neither sender nor
              body, and the secret in the publish options; the app
              server answers with a result
  disable     A connects again, disables push for DOMAIN and closes her
              stream; B's next message reaches no app server
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True

from slixmpp_pep import (  # noqa: E402 - after the line above
    WAIT,
    CheckFailed,
    Client,
    close_all,
    error_summary,
    expect,
    run_checks,
    setup_logging,
)

try:
    import slixmpp
    from slixmpp.componentxmpp import ComponentXMPP
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
except ImportError as e:  # pragma: no cover - reported to the caller
    print(f"FAIL import_slixmpp: {e} (pip install slixmpp)")
    sys.exit(2)

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
NODE = "slix-node"
SECRET_OPTION = "slix-secret-42"


class AppServer:
    """A ComponentXMPP that records the pubsub publishes it is sent and
    answers each with a result."""

    def __init__(self, domain: str, secret: str, host: str, port: int) -> None:
        x = ComponentXMPP(domain, secret, host, port)
        self.xmpp = x
        self.publishes: list[ET.Element] = []
        self.changed = asyncio.Event()
        self.outcome: asyncio.Future | None = None
        x.add_event_handler("session_start", lambda _e: self._settle("session_start"))
        x.add_event_handler("disconnected", lambda e: self._settle(f"disconnected: {e}"))
        x.register_handler(
            Callback(
                "push publish",
                MatchXPath(f"{{{x.default_ns}}}iq/{{{NS_PUBSUB}}}pubsub"),
                self._on_publish,
            )
        )

    def _settle(self, what: str) -> None:
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(what)

    def _on_publish(self, iq) -> None:
        self.publishes.append(iq.xml)
        self.changed.set()
        iq.reply().send()

    async def connect(self) -> str:
        self.outcome = asyncio.get_running_loop().create_future()
        self.xmpp.connect()
        return await asyncio.wait_for(self.outcome, WAIT)

    async def next_publish(self, seconds: float) -> ET.Element | None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.publishes:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass
        return self.publishes.pop(0)

    async def close(self) -> None:
        try:
            self.xmpp.disconnect()
            await asyncio.wait_for(self.xmpp.disconnected, 2)
        except Exception:  # noqa: BLE001 - best effort
            pass


def push_request(name: str, domain: str, node: str | None, secret: str | None) -> ET.Element:
    el = ET.Element(f"{{{NS_PUSH}}}{name}", {"jid": domain})
    if node is not None:
        el.set("node", node)
    if secret is not None:
        x = ET.SubElement(el, f"{{{NS_DATA}}}x", {"type": "submit"})
        for var, value in [
            ("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
            ("secret", secret),
        ]:
            field = ET.SubElement(x, f"{{{NS_DATA}}}field", {"var": var})
            ET.SubElement(field, f"{{{NS_DATA}}}value").text = value
    return el


def fields_of(form: ET.Element | None) -> dict[str, str]:
    if form is None:
        return {}
    out = {}
    for field in form.findall(f"{{{NS_DATA}}}field"):
        value = field.find(f"{{{NS_DATA}}}value")
        out[field.get("var", "")] = "" if value is None else (value.text or "")
    return out


class PushChecks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.domain = args.domain
        self.app = AppServer(args.domain, args.secret, args.host, args.component_port)
        self.a = Client("A", args.jid_a, args.password_a, ["xep_0030", "xep_0198"])
        self.b = Client("B", args.jid_b, args.password_b, ["xep_0030"])

    async def connect(self) -> str:
        outcome = await self.app.connect()
        expect(outcome == "session_start", f"the app server's connection ended: {outcome}")
        await self.a.connect(self.args.host, self.args.c2s_port)
        await self.b.connect(self.args.host, self.args.c2s_port)
        self.a.xmpp.send_presence()
        return f"{self.domain}, {self.a.full} and {self.b.full}"

    async def feature(self) -> str:
        own = self.a.xmpp.boundjid.bare
        try:
            info = await self.a.xmpp.plugin["xep_0030"].get_info(jid=own, timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"disco#info of {own}: {e}") from None
        features = set(info["disco_info"]["features"])
        expect(NS_PUSH in features, f"{own} lists {sorted(features)}")
        return f"{own} lists {NS_PUSH}"

    async def _request(self, el: ET.Element) -> None:
        iq = self.a.xmpp.make_iq_set()
        iq.append(el)
        try:
            await iq.send(timeout=WAIT)
        except IqError as e:
            raise CheckFailed(f"refused: {error_summary(e)}") from None
        except IqTimeout:
            raise CheckFailed("no answer") from None

    async def enable(self) -> str:
        await self._request(push_request("enable", self.domain, NODE, SECRET_OPTION))
        return f"node {NODE} at {self.domain}"

    async def notified(self) -> str:
        transport = self.a.xmpp.transport
        expect(transport is not None, "A has no connection to cut")
        transport.abort()
        for i in range(50):
            self.b.xmpp.send_message(mto=self.a.xmpp.boundjid.bare, mbody=f"wake {i}", mtype="chat")
            iq = await self.app.next_publish(0.3)
            if iq is not None:
                break
        else:
            raise CheckFailed("the app server got no publish")
        expect(iq.get("from") == self.a.xmpp.boundjid.bare, f"from {iq.get('from')}")
        publish = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
        expect(publish is not None and publish.get("node") == NODE, f"{ET.tostring(iq)!r}")
        summary = fields_of(
            publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x")
        )
        expect(summary.get("FORM_TYPE") == "urn:xmpp:push:summary", f"summary {summary}")
        expect(summary.get("message-count") == "1", f"summary {summary}")
        expect(
            "last-message-body" not in summary and "last-message-sender" not in summary,
            f"the summary tells too much: {summary}",
        )
        options = fields_of(
            iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish-options/{{{NS_DATA}}}x")
        )
        expect(options.get("secret") == SECRET_OPTION, f"publish options {options}")
        return f"after {i + 1} message(s): count 1, secret sent, no body or sender"

    async def disable(self) -> str:
        again = Client("A2", self.args.jid_a, self.args.password_a, ["xep_0030"])
        await again.connect(self.args.host, self.args.c2s_port)
        iq = again.xmpp.make_iq_set()
        iq.append(push_request("disable", self.domain, None, None))
        try:
            await iq.send(timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"disable failed: {e}") from None
        await close_all([again])
        self.app.publishes.clear()
        self.b.xmpp.send_message(mto=self.a.xmpp.boundjid.bare, mbody="after disable", mtype="chat")
        late = await self.app.next_publish(2.0)
        expect(late is None, "a publish arrived after disable")
        return "no publish after disable"

    async def close(self) -> None:
        await self.app.close()
        await close_all([self.b])


CHECKS = ["connect", "feature", "enable", "notified", "disable"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("c2s_port", type=int)
    parser.add_argument("component_port", type=int)
    parser.add_argument("domain")
    parser.add_argument("secret")
    parser.add_argument("jid_a")
    parser.add_argument("password_a")
    parser.add_argument("jid_b")
    parser.add_argument("password_b")
    parser.add_argument("--debug", action="store_true", help="stream the log to stderr")
    args = parser.parse_args()
    trace = setup_logging(args.debug)
    print(f"# slixmpp {slixmpp.__version__}", flush=True)

    async def go() -> int:
        return await run_checks(PushChecks(args), CHECKS, args.debug, trace, {"connect"})

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
