#!/usr/bin/env python3
"""Interoperability check: slixmpp's ComponentXMPP (XEP-0114) against
Perch's component listener, with a slixmpp client on the other side.

Usage:
    slixmpp_component.py HOST C2S_PORT COMPONENT_PORT DOMAIN SECRET
                         JID PASSWORD [--debug]

The client and the check runner are slixmpp_pep.py's (same folder); so
are the output format (`ok NAME (details)` / `FAIL NAME: reason`) and the
time bounds. A failed `connect` marks the checks after it as not run.

The checks, in order:
  connect        the component connects to COMPONENT_PORT for DOMAIN and
                 completes the handshake with SECRET; the client logs in
  ping           the client pings DOMAIN (XEP-0199): the component's
                 ping plugin answers, and the result reaches the client
  disco          the client's disco#info of DOMAIN is the component's own
                 answer (its identity gateway/irc); the server's
                 disco#items lists DOMAIN
  messages       the client sends a message to bot@DOMAIN; the component
                 gets it from the client's full JID and answers from
                 bot@DOMAIN; the client gets the answer
  component_ping the component pings the server's domain and gets a result
  wrong_secret   a second ComponentXMPP with a wrong secret is refused
                 (the connection ends without a session)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

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
except ImportError as e:  # pragma: no cover - reported to the caller
    print(f"FAIL import_slixmpp: {e} (pip install slixmpp)")
    sys.exit(2)


class Component:
    """A ComponentXMPP with ping and disco, recording messages."""

    def __init__(self, domain: str, secret: str, host: str, port: int) -> None:
        x = ComponentXMPP(domain, secret, host, port)
        self.xmpp = x
        x.register_plugin("xep_0030")
        x.register_plugin("xep_0199", {"keepalive": False})
        x["xep_0030"].add_identity(category="gateway", itype="irc", name="Test gateway")
        self.messages: list[tuple[str, str, str]] = []
        self.changed = asyncio.Event()
        self.outcome: asyncio.Future | None = None
        x.add_event_handler("session_start", lambda _e: self._settle("session_start"))
        x.add_event_handler("disconnected", lambda e: self._settle(f"disconnected: {e}"))
        x.add_event_handler("stream_error", lambda e: self._settle(f"stream error: {e['condition']}"))
        x.add_event_handler("message", self._on_message)

    def _settle(self, what: str) -> None:
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(what)

    def _on_message(self, msg) -> None:
        self.messages.append((str(msg["from"]), str(msg["to"]), msg["body"]))
        self.changed.set()
        if msg["body"].startswith("ping "):
            msg.reply(f"pong {msg['body'][5:]}").send()

    async def connect(self) -> str:
        self.outcome = asyncio.get_running_loop().create_future()
        self.xmpp.connect()
        return await asyncio.wait_for(self.outcome, WAIT)

    async def close(self) -> None:
        try:
            self.xmpp.disconnect()
            await asyncio.wait_for(self.xmpp.disconnected, 2)
        except Exception:  # noqa: BLE001 - best effort
            pass


class ComponentChecks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.domain = args.domain
        self.component = Component(args.domain, args.secret, args.host, args.component_port)
        self.client = Client("A", args.jid, args.password, ["xep_0030"])

    async def connect(self) -> str:
        outcome = await self.component.connect()
        expect(outcome == "session_start", f"the component's connection ended: {outcome}")
        await self.client.connect(self.args.host, self.args.c2s_port)
        self.client.xmpp.send_presence()
        return f"{self.domain} and {self.client.full}"

    async def ping(self) -> str:
        try:
            rtt = await self.client.xmpp["xep_0199"].ping(self.domain, timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"the ping of {self.domain} failed: {e}") from None
        return f"answered in {rtt * 1000:.1f} ms"

    async def disco(self) -> str:
        disco = self.client.xmpp["xep_0030"]
        try:
            info = await disco.get_info(jid=self.domain, timeout=WAIT)
            items = await disco.get_items(jid=self.client.xmpp.boundjid.domain, timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"disco failed: {error_summary(e) if isinstance(e, IqError) else e}") from None
        identities = {(c, t) for c, t, _l, _n in info["disco_info"]["identities"]}
        expect(("gateway", "irc") in identities, f"identities {sorted(identities)}")
        jids = {str(j) for j, _node, _name in items["disco_items"]["items"]}
        expect(self.domain in jids, f"the server's items are {sorted(jids)}")
        return f"identity gateway/irc; listed among {len(jids)} items"

    async def messages(self) -> str:
        a = self.client
        a.changed.clear()
        answers: list[str] = []

        def on_message(msg) -> None:
            if str(msg["from"]) == f"bot@{self.domain}":
                answers.append(msg["body"])
                a.changed.set()

        a.xmpp.add_event_handler("message", on_message)
        a.xmpp.send_message(mto=f"bot@{self.domain}", mbody="ping 42", mtype="chat")
        deadline = asyncio.get_running_loop().time() + WAIT
        while not answers and asyncio.get_running_loop().time() < deadline:
            a.changed.clear()
            try:
                await asyncio.wait_for(a.changed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        got = self.component.messages
        expect(bool(got), "the component got no message")
        sender, to, body = got[0]
        expect(sender == str(a.xmpp.boundjid), f"the component saw it from {sender}")
        expect(to == f"bot@{self.domain}" and body == "ping 42", f"it got {got[0]}")
        expect(answers == ["pong 42"], f"the client got {answers}")
        return "both ways"

    async def component_ping(self) -> str:
        server = self.client.xmpp.boundjid.domain
        try:
            await self.component.xmpp["xep_0199"].ping(server, ifrom=self.domain, timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"the component's ping of {server} failed: {e}") from None
        return f"{server} answered"

    async def wrong_secret(self) -> str:
        bad = Component(self.domain, "not-the-secret", self.args.host, self.args.component_port)
        try:
            outcome = await bad.connect()
        except asyncio.TimeoutError:
            outcome = "no answer"
        finally:
            await bad.close()
        expect(outcome != "session_start", "a wrong secret got a session")
        return outcome

    async def close(self) -> None:
        await self.component.close()
        await close_all([self.client])


CHECKS = ["connect", "ping", "disco", "messages", "component_ping", "wrong_secret"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("c2s_port", type=int)
    parser.add_argument("component_port", type=int)
    parser.add_argument("domain")
    parser.add_argument("secret")
    parser.add_argument("jid")
    parser.add_argument("password")
    parser.add_argument("--debug", action="store_true", help="stream the log to stderr")
    args = parser.parse_args()
    trace = setup_logging(args.debug)
    print(f"# slixmpp {slixmpp.__version__}", flush=True)

    async def go() -> int:
        return await run_checks(ComponentChecks(args), CHECKS, args.debug, trace, {"connect"})

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
