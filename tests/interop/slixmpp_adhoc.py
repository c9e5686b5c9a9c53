#!/usr/bin/env python3
"""Interoperability check: slixmpp's ad-hoc commands plugin (XEP-0050,
plugin `xep_0050`) running Perch's server administration commands
(XEP-0133) as an administrator.

Usage:
    slixmpp_adhoc.py HOST C2S_PORT ADMIN_JID ADMIN_PASSWORD [--debug]

The client logs in on C2S_PORT without TLS, with SASL PLAIN (the test
server allows it). Every check prints exactly one line, `ok NAME
(details)` or `FAIL NAME: reason`; the exit status is 0 only when every
check passed. Every wait is bounded (multiplied by PERCH_TEST_TIME_SCALE
when it is set: under qemu).

The checks, in order (a failure marks the rest as not run):
  login              the admin logs in; the plugin's get_commands (disco
                     items of the commands node) lists add-user and
                     get-online-users-list
  add_user           start_command(add-user): the first stage is a form
                     with accountjid, password and password-verify;
                     complete_command with dave@HOST / dave-password: the
                     command completes with an info note (the Rust test
                     then logs in as dave)
  online_users_list  start_command(get-online-users-list), then
                     complete_command with max_items 25: the result form's
                     onlineuserjids holds the admin's bare JID
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

try:
    import slixmpp
except ImportError:  # pragma: no cover - reported to the caller
    print("FAIL import_slixmpp: slixmpp is not installed (pip install slixmpp)")
    sys.exit(2)

ADMIN_NS = "http://jabber.org/protocol/admin"


def time_scale() -> int:
    try:
        return max(1, int(os.environ.get("PERCH_TEST_TIME_SCALE", "1")))
    except ValueError:
        return 1


WAIT = 10.0 * time_scale()


class CheckFailed(Exception):
    pass


def make_client(jid: str, password: str) -> slixmpp.ClientXMPP:
    plugin_config = {"feature_mechanisms": {"use_mech": "PLAIN", "unencrypted_plain": True}}
    x = slixmpp.ClientXMPP(jid, password, plugin_config=plugin_config, sasl_mech="PLAIN")
    x.enable_direct_tls = False
    x.enable_starttls = False
    x.enable_plaintext = True
    x.use_ipv6 = False
    x.register_plugin("xep_0030")
    x.register_plugin("xep_0004")
    x.register_plugin("xep_0050")
    x.register_plugin("xep_0199", {"keepalive": False})
    return x


async def run_command(x: slixmpp.ClientXMPP, host: str, node: str, fill) -> "slixmpp.Iq":
    """Runs `node` through the plugin's session workflow: start, then
    complete with the fields `fill(form)` returns; the last answer."""
    done: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_error(iq, session):
        if not done.done():
            done.set_exception(CheckFailed(f"error answer: {iq}"))
        x.plugin["xep_0050"].terminate_command(session)

    def on_final(iq, session):
        if not done.done():
            done.set_result(iq)

    def on_first(iq, session):
        form = iq["command"]["form"]
        status = iq["command"]["status"]
        if status == "completed":
            on_final(iq, session)
            return
        values = fill(form)
        answer = x.plugin["xep_0004"].make_form(ftype="submit")
        answer.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN_NS)
        for var, value in values.items():
            answer.add_field(var=var, value=value)
        session["payload"] = answer
        session["next"] = on_final
        x.plugin["xep_0050"].complete_command(session)

    session = {"next": on_first, "error": on_error}
    x.plugin["xep_0050"].start_command(host, node, session)
    return await asyncio.wait_for(done, WAIT)


async def checks(x: slixmpp.ClientXMPP, host: str, started: asyncio.Future) -> bool:
    results: list[tuple[str, bool, str]] = []

    async def check(name: str, body) -> bool:
        try:
            detail = await body()
            print(f"ok {name} ({detail})", flush=True)
            return True
        except Exception as e:  # noqa: BLE001 - every failure is a FAIL line
            print(f"FAIL {name}: {e!r}", flush=True)
            return False

    async def login():
        await asyncio.wait_for(started, WAIT)
        items = await x.plugin["xep_0050"].get_commands(host, timeout=WAIT)
        nodes = [item[1] for item in items["disco_items"]["items"]]
        for wanted in ("add-user", "get-online-users-list"):
            if f"{ADMIN_NS}#{wanted}" not in nodes:
                raise CheckFailed(f"{wanted} not listed: {nodes}")
        return f"{len(nodes)} commands"

    async def add_user():
        def fill(form):
            fields = form.get_fields()
            for var in ("accountjid", "password", "password-verify"):
                if var not in fields:
                    raise CheckFailed(f"no field {var} in {list(fields)}")
            return {
                "accountjid": f"dave@{host}",
                "password": "dave-password",
                "password-verify": "dave-password",
            }

        iq = await run_command(x, host, f"{ADMIN_NS}#add-user", fill)
        if iq["command"]["status"] != "completed":
            raise CheckFailed(f"not completed: {iq}")
        notes = [(kind, text) for kind, text in iq["command"]["notes"]]
        if not any(kind == "info" for kind, _ in notes):
            raise CheckFailed(f"no info note: {notes}")
        return notes[0][1]

    async def online_users_list():
        iq = await run_command(
            x, host, f"{ADMIN_NS}#get-online-users-list", lambda form: {"max_items": "25"}
        )
        values = iq["command"]["form"].get_fields().get("onlineuserjids")
        listed = [str(v) for v in (values.get_value() if values is not None else [])]
        if x.boundjid.bare not in listed:
            raise CheckFailed(f"{x.boundjid.bare} not in {listed}")
        return ", ".join(listed)

    for name, body in (
        ("login", login),
        ("add_user", add_user),
        ("online_users_list", online_users_list),
    ):
        if not await check(name, body):
            return False
    return True


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("jid")
    parser.add_argument("password")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.ERROR, stream=sys.stderr
    )
    x = make_client(args.jid, args.password)
    started = asyncio.get_running_loop().create_future()
    x.add_event_handler(
        "session_start", lambda _: started.done() or started.set_result(True)
    )
    x.connect(host=args.host, port=args.port)
    host = slixmpp.JID(args.jid).domain
    try:
        passed = await asyncio.wait_for(checks(x, host, started), 6 * WAIT)
    except asyncio.TimeoutError:
        print("FAIL budget: the checks took too long", flush=True)
        passed = False
    x.disconnect()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
