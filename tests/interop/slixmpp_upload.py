#!/usr/bin/env python3
"""Interoperability check: slixmpp's HTTP File Upload plugin (xep_0363,
which uploads with aiohttp) against Perch's upload service, and the
link shared the way Conversations shares it (XEP-0066 out-of-band data).

Usage:
    slixmpp_upload.py HOST C2S_PORT JID_A PASSWORD_A JID_B PASSWORD_B
                      MAX_FILE_SIZE [--debug]

MAX_FILE_SIZE is the server's `[upload] max_file_bytes`. The client and
the check runner are slixmpp_pep.py's (same folder); so are the output
format (`ok NAME (details)` / `FAIL NAME: reason`, a trace on stderr
after a FAIL) and the time bounds. A failed `login` or `upload` marks
the checks after it as not run.

The checks, in order:
  login             A and B log in (plaintext, PLAIN), fetch their rosters
                    and send presence
  discover          the plugin's `find_upload_service` finds the service
                    (identity store/file and urn:xmpp:http:upload:0) on
                    the server's disco#items; its form says
                    max-file-size MAX_FILE_SIZE
  upload            A's plugin uploads a 300 000-byte file from a BytesIO
                    (`upload_file`, content_type image/png): slot request,
                    then aiohttp's PUT with the slot's Authorization
                    header; it returns the GET URL, an http URL on HOST's
                    listener ending in the file name
  download          urllib downloads that URL: the same bytes, served as
                    image/png with its Content-Length, inline
  oob_message       A sends the URL to B's bare JID as Conversations does
                    (the URL as the body and in a jabber:x:oob <url/>); B
                    gets it from A with both intact, and downloads the
                    same bytes with aiohttp
  file_too_large    the plugin refuses a file of MAX_FILE_SIZE + 1 bytes
                    itself (FileTooBig, with the advertised maximum); a
                    slot asked for it directly is refused by the server
                    with not-acceptable and <file-too-large/> naming
                    <max-file-size/>
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import sys
import urllib.request

# No __pycache__ in the source tree for the import below.
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
    import aiohttp
    from slixmpp import JID
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.plugins.xep_0363.http_upload import FileTooBig, HTTPError
except ImportError as e:  # pragma: no cover - reported to the caller
    print(f"FAIL import_xep_0363: {e} (pip install slixmpp aiohttp)")
    sys.exit(2)

NS_UPLOAD = "urn:xmpp:http:upload:0"
NS_OOB = "jabber:x:oob"
PLUGINS = ["xep_0030", "xep_0066", "xep_0128", "xep_0363"]
FILE_NAME = "interop.png"
FILE_SIZE = 300_000


def file_bytes() -> bytes:
    """A PNG signature, then random bytes (the server does not sniff)."""
    head = b"\x89PNG\r\n\x1a\n"
    return head + os.urandom(FILE_SIZE - len(head))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


class UploadChecks:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host = args.host
        self.port = args.c2s_port
        self.max_file_size = args.max_file_size
        self.a = Client("A", args.jid_a, args.password_a, PLUGINS)
        self.b = Client("B", args.jid_b, args.password_b, PLUGINS)
        #: Messages B received: (bare sender, body, oob url).
        self.b_messages: list[tuple[str, str, str]] = []
        self.b.xmpp.add_event_handler("message", self._on_b_message)
        self.data = file_bytes()
        self.url: str | None = None

    def _on_b_message(self, msg) -> None:
        if msg["type"] in ("chat", "normal"):
            oob = msg.xml.find(f"{{{NS_OOB}}}x/{{{NS_OOB}}}url")
            url = "" if oob is None else (oob.text or "")
            self.b_messages.append((msg["from"].bare, msg["body"], url))
            self.b.changed.set()

    async def login(self) -> str:
        await asyncio.gather(*(c.connect(self.host, self.port) for c in (self.a, self.b)))
        for c in (self.a, self.b):
            try:
                await c.xmpp.get_roster(timeout=WAIT)
            except (IqError, IqTimeout) as e:
                raise CheckFailed(f"{c.label}: roster request failed: {e}") from None
            c.xmpp.send_presence()
        return f"{self.a.full} and {self.b.full}"

    async def discover(self) -> str:
        upload = self.a.plugin("xep_0363")
        try:
            info = await upload.find_upload_service(timeout=WAIT)
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"disco of the server's items failed: {e}") from None
        expect(info is not None, "find_upload_service found no upload service")
        service = info["from"]
        expect(
            service == JID(f"upload.{self.a.xmpp.boundjid.domain}"),
            f"the service found is {service}",
        )
        disco = info["disco_info"]
        identities = {(cat, typ) for cat, typ, _lang, _name in disco["identities"]}
        expect(("store", "file") in identities, f"identities {sorted(identities)}")
        expect(NS_UPLOAD in disco["features"], f"features {sorted(disco['features'])}")
        sizes = [
            form["values"].get("max-file-size")
            for form in disco.iterables
            if form["values"].get("FORM_TYPE") == [NS_UPLOAD]
        ]
        expect(
            sizes == [str(self.max_file_size)],
            f"max-file-size in the {NS_UPLOAD} form(s): {sizes}, not [{self.max_file_size}]",
        )
        return f"{service}, max-file-size {sizes[0]}"

    async def upload(self) -> str:
        upload = self.a.plugin("xep_0363")
        try:
            url = await upload.upload_file(
                FILE_NAME,
                size=len(self.data),
                content_type="image/png",
                input_file=io.BytesIO(self.data),
                timeout=WAIT,
            )
        except HTTPError as e:
            raise CheckFailed(f"the PUT was refused: {e}") from None
        except (IqError, IqTimeout) as e:
            raise CheckFailed(f"the slot request failed: {e}") from None
        expect(
            isinstance(url, str) and url.startswith(f"http://{self.a.xmpp.boundjid.domain}:"),
            f"the GET URL is {url!r}",
        )
        expect("/upload/" in url and url.endswith(f"/{FILE_NAME}"), f"the GET URL is {url!r}")
        # The plugin kept what discover() found, and the advertised limit.
        expect(
            upload.max_file_size == self.max_file_size,
            f"the plugin took max_file_size {upload.max_file_size}",
        )
        self.url = url
        return f"{len(self.data)} bytes (sha256 {digest(self.data)}) at {url}"

    def need_url(self) -> str:
        if self.url is None:
            raise CheckFailed("not run, no URL (upload failed)")
        return self.url

    async def download(self) -> str:
        url = self.need_url()

        def fetch() -> tuple[int, dict[str, str], bytes]:
            with urllib.request.urlopen(url, timeout=WAIT) as response:  # noqa: S310
                return response.status, dict(response.headers.items()), response.read()

        try:
            status, headers, body = await asyncio.to_thread(fetch)
        except OSError as e:
            raise CheckFailed(f"GET {url}: {e}") from None
        headers = {k.lower(): v for k, v in headers.items()}
        expect(status == 200, f"GET {url}: status {status}")
        expect(
            body == self.data,
            f"GET {url}: {len(body)} bytes (sha256 {digest(body)}), not the uploaded "
            f"{len(self.data)} (sha256 {digest(self.data)})",
        )
        expect(headers.get("content-type") == "image/png", f"headers {headers}")
        expect(headers.get("content-length") == str(len(self.data)), f"headers {headers}")
        expect(headers.get("content-disposition", "").startswith("inline"), f"headers {headers}")
        return f"{len(body)} identical bytes, {headers['content-type']}"

    async def oob_message(self) -> str:
        url = self.need_url()
        msg = self.a.xmpp.make_message(mto=JID(self.b.bare), mbody=url, mtype="chat")
        msg["oob"]["url"] = url
        msg.send()
        got = await self.b.wait_for(
            f"a message from {self.a.bare} with the URL",
            lambda: next((m for m in self.b_messages if m[0] == self.a.bare), None),
        )
        _sender, body, oob = got
        expect(body == url, f"B got the body {body!r}, not {url!r}")
        expect(oob == url, f"B got the oob url {oob!r}, not {url!r}")
        timeout = aiohttp.ClientTimeout(total=WAIT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(oob) as response:
                expect(response.status == 200, f"B's GET {oob}: status {response.status}")
                body = await response.read()
        expect(body == self.data, f"B downloaded {len(body)} bytes (sha256 {digest(body)})")
        return f"B got the URL as body and oob, and the same {len(body)} bytes"

    async def file_too_large(self) -> str:
        upload = self.a.plugin("xep_0363")
        size = self.max_file_size + 1
        try:
            await upload.upload_file(
                "big.bin",
                size=size,
                content_type="application/octet-stream",
                input_file=io.BytesIO(b""),
                timeout=WAIT,
            )
        except FileTooBig as e:
            expect(
                e.args == (size, self.max_file_size),
                f"FileTooBig{e.args}, not ({size}, {self.max_file_size})",
            )
        else:
            raise CheckFailed(f"the plugin uploaded {size} bytes over the limit")
        service = JID(f"upload.{self.a.xmpp.boundjid.domain}")
        try:
            result = await upload.request_slot(
                service, "big.bin", size, "application/octet-stream", timeout=WAIT
            )
        except IqTimeout:
            raise CheckFailed(f"no answer to a slot request within {WAIT:.0f} s") from None
        except IqError as e:
            error = e.iq["error"]
            max_size = error.xml.find(
                f"{{{NS_UPLOAD}}}file-too-large/{{{NS_UPLOAD}}}max-file-size"
            )
            expect(
                error["condition"] == "not-acceptable",
                f"refused with {error_summary(e)}, not not-acceptable",
            )
            expect(
                max_size is not None and max_size.text == str(self.max_file_size),
                f"no <file-too-large><max-file-size>{self.max_file_size}: {e.iq}",
            )
            return f"FileTooBig in the plugin; the server: {error_summary(e)}"
        raise CheckFailed(f"a slot of {size} bytes was given: {result}")

    async def close(self) -> None:
        await close_all([self.a, self.b])


CHECKS = ["login", "discover", "upload", "download", "oob_message", "file_too_large"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("c2s_port", type=int)
    parser.add_argument("jid_a")
    parser.add_argument("password_a")
    parser.add_argument("jid_b")
    parser.add_argument("password_b")
    parser.add_argument("max_file_size", type=int)
    parser.add_argument("--debug", action="store_true", help="stream the client log to stderr")
    args = parser.parse_args()
    trace = setup_logging(args.debug)
    print(f"# aiohttp {aiohttp.__version__}", flush=True)

    async def go() -> int:
        return await run_checks(UploadChecks(args), CHECKS, args.debug, trace, {"login", "upload"})

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
