#!/usr/bin/env python3
"""Interoperability check: the slixmpp-omemo plugin (XEP-0384, both the
`eu.siacs.conversations.axolotl` and the `urn:xmpp:omemo:2` namespaces,
through python-omemo, oldmemo and twomemo) publishing its device list and
bundle in Perch's PEP service, read back by other accounts.

Usage:
    slixmpp_omemo.py HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B
                     JID_C PASSWORD_C [--debug]

A ("alice") runs the OMEMO plugin (an in-memory storage, blind trust
before verification); B ("bob", a contact of A's: mutual presence
subscription) and C ("carol", no subscription) are plain slixmpp clients
that read A's nodes with xep_0060 `get_items`. The client and the check
runner are slixmpp_pep.py's (same folder); so are the output format and
the time bounds.

The checks, in order:
  login                    A, B and C log in and send presence; A and B
                           subscribe to each other's presence
  omemo_devicelist_published  A's plugin initializes (`omemo_initialized`);
                           its publishes (device lists and bundles, with
                           publish-options access_model=open,
                           persist_items=true, max_items 1 or max) went
                           to both device list and both bundle nodes and
                           were all accepted as sent: no publish of A's
                           was refused and A never fell back to
                           configuring a node;
                           B reads both device lists (`current` item) and
                           finds A's own device id
  omemo_bundle_fetched_by_contact  B reads A's bundle in both namespaces
                           (`eu.siacs.conversations.axolotl.bundles:ID`,
                           item `current`; `urn:xmpp:omemo:2:bundles`,
                           item ID); each passes the library's schema and
                           parser, carries A's identity key and 100 pre
                           keys (python-omemo publishes 100)
  omemo_open_to_stranger   C, not subscribed to A, reads the same device
                           lists and bundles (access_model=open works),
                           while a node A creates with access_model=presence
                           is refused to C with <not-authorized/> and
                           pubsub#errors <presence-subscription-required/>
                           (XEP-0060 section 6.5.9.3) and given to B
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import uuid
import xml.etree.ElementTree as ET
from typing import Any, FrozenSet, Optional

# No __pycache__ in the source tree for the import below.
sys.dont_write_bytecode = True

from slixmpp_pep import (  # noqa: E402 - after the line above
    NS_PUBSUB_ERRORS,
    WAIT,
    CheckFailed,
    Client,
    close_all,
    error_summary,
    expect,
    payload_of,
    publish_options,
    run_checks,
    setup_logging,
    subscribe_mutually,
)

# This file's name is the plugin package's: with its folder first on the
# path, `import slixmpp_omemo` would find this file again. The folder was
# needed for slixmpp_pep only.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

try:
    import oldmemo
    import oldmemo.etree
    import twomemo
    import twomemo.etree
    from omemo.storage import Just, Maybe, Nothing, Storage
    from omemo.types import DeviceInformation, JSONType
    from slixmpp.plugins import register_plugin
    from slixmpp_omemo import XEP_0384
    from slixmpp_omemo import __version__ as slixmpp_omemo_version
except ImportError as e:  # pragma: no cover - reported to the caller
    print(f"FAIL import_slixmpp_omemo: {e} (pip install slixmpp-omemo)")
    sys.exit(2)

log = logging.getLogger("slixmpp_omemo_check")

OLD_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
OLD_BUNDLES = "eu.siacs.conversations.axolotl.bundles"
NEW_DEVICES = "urn:xmpp:omemo:2:devices"
NEW_BUNDLES = "urn:xmpp:omemo:2:bundles"
NS_OLD = "eu.siacs.conversations.axolotl"
NS_NEW = "urn:xmpp:omemo:2"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
#: python-omemo keeps 100 pre keys published.
PRE_KEYS = 100


class MemoryStorage(Storage):
    """python-omemo's storage interface over a dict (one run only)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, JSONType] = {}

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.data[key] = value

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)


class XEP_0384Impl(XEP_0384):  # noqa: N801 - slixmpp's plugin naming
    """The plugin with in-memory storage and blind trust."""

    default_config = {"fallback_message": "This message is OMEMO encrypted."}

    def plugin_init(self) -> None:
        self._memory = MemoryStorage()
        super().plugin_init()

    @property
    def storage(self) -> Storage:
        return self._memory

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _devices_blindly_trusted(
        self, blindly_trusted: FrozenSet[DeviceInformation], identifier: Optional[str]
    ) -> None:
        pass

    async def _prompt_manual_trust(
        self, manually_trusted: FrozenSet[DeviceInformation], identifier: Optional[str]
    ) -> None:
        raise CheckFailed(f"manual trust asked for {manually_trusted}")


register_plugin(XEP_0384Impl)

#: The plain clients' plugins.
PLAIN_PLUGINS = ["xep_0030", "xep_0060", "xep_0163", "xep_0115"]


class OmemoChecks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host = args.host
        self.port = args.c2s_port
        self.initialized = asyncio.Event()

        def with_omemo(x: Any) -> None:
            x.register_plugin("xep_0384", module=sys.modules[__name__])
            x.add_event_handler("omemo_initialized", lambda _e=None: self.initialized.set())

        self.a = Client("A", args.jid_a, args.password_a, PLAIN_PLUGINS, extra=with_omemo)
        self.b = Client("B", args.jid_b, args.password_b, PLAIN_PLUGINS)
        self.c = Client("C", args.jid_c, args.password_c, PLAIN_PLUGINS)
        #: A's configure requests (the plugin's fallback when publish-options fail).
        self.a_configures: list[str] = []
        #: Ids of A's publish requests, and the error replies to them.
        self.a_publishes: dict[str, str] = {}
        self.a_publish_errors: list[str] = []
        self.a.xmpp.add_filter("out", self._watch_out)
        self.a.xmpp.add_filter("in", self._watch_in)
        self.device_id: int | None = None
        self.identity_key: bytes | None = None
        self.tag = uuid.uuid4().hex[:8]

    def _watch_out(self, stanza):
        if stanza.name == "iq":
            if stanza.xml.find(
                f"{{{NS_PUBSUB_OWNER}}}pubsub/{{{NS_PUBSUB_OWNER}}}configure"
            ) is not None:
                self.a_configures.append(str(stanza))
            publish = stanza.xml.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
            if publish is not None:
                self.a_publishes[stanza["id"]] = publish.get("node", "")
        return stanza

    def _watch_in(self, stanza):
        if stanza.name == "iq" and stanza["type"] == "error" and stanza["id"] in self.a_publishes:
            self.a_publish_errors.append(
                f"{self.a_publishes[stanza['id']]}: {stanza['error']['condition']} "
                f"{[c.tag for c in stanza['error'].xml]}"
            )
        return stanza

    async def read_item(self, reader: Client, node: str, item_id: str) -> ET.Element:
        """The payload of A's item `item_id` on `node`, as `reader` reads it."""
        iq = await reader.iq(
            f"{reader.label} reading {node}",
            reader.plugin("xep_0060").get_items(self.a.bare, node, timeout=WAIT),
        )
        items = {i["id"]: payload_of(i) for i in iq["pubsub"]["items"]}
        expect(
            items.get(item_id) is not None,
            f"{reader.label}: {node} of {self.a.bare} has no item {item_id!r} "
            f"(items {sorted(items)})",
        )
        return items[item_id]

    async def device_lists(self, reader: Client) -> str:
        old = oldmemo.etree.parse_device_list(await self.read_item(reader, OLD_DEVICES, "current"))
        new = twomemo.etree.parse_device_list(await self.read_item(reader, NEW_DEVICES, "current"))
        for ns, devices in ((NS_OLD, old), (NS_NEW, new)):
            expect(
                self.device_id in devices,
                f"{reader.label}: the {ns} device list {sorted(devices)} lacks A's "
                f"device {self.device_id}",
            )
        return f"device {self.device_id} in both lists"

    async def bundles(self, reader: Client) -> str:
        old_el = await self.read_item(reader, f"{OLD_BUNDLES}:{self.device_id}", "current")
        new_el = await self.read_item(reader, NEW_BUNDLES, str(self.device_id))
        details = []
        for ns, el, parse, pre_key in (
            (NS_OLD, old_el, oldmemo.etree.parse_bundle, f"{{{NS_OLD}}}preKeyPublic"),
            (NS_NEW, new_el, twomemo.etree.parse_bundle, f"{{{NS_NEW}}}pk"),
        ):
            try:
                bundle = parse(el, self.a.bare, self.device_id)
            except Exception as e:  # noqa: BLE001 - schema or parse error
                raise CheckFailed(
                    f"{reader.label}: A's {ns} bundle does not parse: {e}: "
                    f"{ET.tostring(el)[:300]!r}"
                ) from None
            expect(
                bundle.identity_key == self.identity_key,
                f"{reader.label}: A's {ns} bundle has identity key {bundle.identity_key.hex()}, "
                f"A's is {self.identity_key.hex()}",
            )
            pre_keys = len(list(el.iter(pre_key)))
            expect(
                pre_keys == PRE_KEYS,
                f"{reader.label}: A's {ns} bundle has {pre_keys} pre keys, not {PRE_KEYS}",
            )
            details.append(f"{ns}: identity key and {pre_keys} pre keys")
        return "; ".join(details)

    async def login(self) -> str:
        await asyncio.gather(
            *(c.connect(self.host, self.port) for c in (self.a, self.b, self.c))
        )
        await asyncio.gather(*(c.go_online() for c in (self.a, self.b, self.c)))
        await subscribe_mutually(self.a, self.b)
        return f"{self.a.full}, {self.b.full} (contacts) and {self.c.full}"

    async def omemo_devicelist_published(self) -> str:
        try:
            await asyncio.wait_for(self.initialized.wait(), 2 * WAIT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"A's OMEMO plugin did not initialize within {2 * WAIT:.0f} s "
                f"(publish errors: {self.a_publish_errors})"
            ) from None
        manager = await self.a.plugin("xep_0384").get_session_manager()
        own, _others = await manager.get_own_device_information()
        self.device_id = own.device_id
        self.identity_key = own.identity_key
        expect(
            not self.a_publish_errors,
            f"A's publishes were refused: {self.a_publish_errors}",
        )
        expect(
            len(set(self.a_publishes.values())) >= 4,
            f"A published to {sorted(set(self.a_publishes.values()))}, expected both device "
            "lists and both bundle nodes",
        )
        expect(
            not self.a_configures,
            f"A fell back to node configuration (publish-options refused?): "
            f"{self.a_configures[:2]}",
        )
        detail = await self.device_lists(self.b)
        return f"B reads {detail}; namespaces {sorted(own.namespaces)}"

    async def omemo_bundle_fetched_by_contact(self) -> str:
        expect(self.device_id is not None, "A's device id is unknown (initialization failed)")
        return f"B reads {await self.bundles(self.b)}"

    async def omemo_open_to_stranger(self) -> str:
        expect(self.device_id is not None, "A's device id is unknown (initialization failed)")
        lists = await self.device_lists(self.c)
        bundles = await self.bundles(self.c)
        node = f"urn:perch:interop:contacts-only:{self.tag}"
        note = ET.Element(f"{{{node}}}note")
        note.text = "for contacts"
        await self.a.iq(
            "creating a node with access_model=presence",
            self.a.plugin("xep_0060").publish(
                None,
                node,
                id="1",
                payload=note,
                options=publish_options(access_model="presence"),
                timeout=WAIT,
            ),
        )
        e = await self.c.iq_error(
            "C reading A's presence-access node",
            self.c.plugin("xep_0060").get_items(self.a.bare, node, timeout=WAIT),
        )
        app = e.iq["error"].xml.find(f"{{{NS_PUBSUB_ERRORS}}}presence-subscription-required")
        expect(
            e.iq["error"]["condition"] == "not-authorized" and app is not None,
            f"C was refused with {error_summary(e)}, not not-authorized + "
            "presence-subscription-required",
        )
        await self.read_item(self.b, node, "1")
        return f"C reads {lists}, {bundles}; the presence node: C refused, B admitted"

    async def close(self) -> None:
        await close_all([self.a, self.b, self.c])


CHECKS = [
    "login",
    "omemo_devicelist_published",
    "omemo_bundle_fetched_by_contact",
    "omemo_open_to_stranger",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("c2s_port", type=int)
    for who in ("a", "b", "c"):
        parser.add_argument(f"jid_{who}")
        parser.add_argument(f"password_{who}")
    parser.add_argument("--debug", action="store_true", help="stream the client log to stderr")
    args = parser.parse_args()
    trace = setup_logging(args.debug)
    print(f"# slixmpp-omemo {slixmpp_omemo_version}", flush=True)

    async def go() -> int:
        return await run_checks(OmemoChecks(args), CHECKS, args.debug, trace, {"login"})

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
