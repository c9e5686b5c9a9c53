#!/usr/bin/env python3
"""Logs in to an XMPP server the way a client does, using only the Python
standard library: STARTTLS (certificate not verified: a test server's is
self-signed), SASL SCRAM-SHA-256 or SCRAM-SHA-1 (RFC 5802/7677), resource
binding, a ping. Exits 0 on success, prints what went wrong otherwise.

    xmpp_login.py HOST PORT USER PASSWORD [--domain D] [--mechanism SCRAM-SHA-1]
"""
import argparse
import base64
import hashlib
import hmac
import os
import re
import socket
import ssl
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--mechanism", default="SCRAM-SHA-256",
                        choices=["SCRAM-SHA-256", "SCRAM-SHA-1"])
    args = parser.parse_args()
    host, port, user, password, domain = args.host, args.port, args.user, args.password, args.domain
    mechanism = args.mechanism
    digest = hashlib.sha256 if mechanism == "SCRAM-SHA-256" else hashlib.sha1
    sock = socket.create_connection((host, port), timeout=30)
    buf = b""

    def send(text):
        sock.sendall(text.encode())

    def read_until(pattern):
        """Reads until `pattern` matches; returns the match, searched in
        everything consumed (so group(0) is the match, and .string holds the
        text before it too)."""
        nonlocal buf
        while True:
            m = re.search(pattern.encode(), buf, re.S)
            if m:
                buf = buf[m.end():]
                return m
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("connection closed waiting for %r; got %r" % (pattern, buf))
            buf += chunk

    header = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % domain)
    send(header)
    read_until("</stream:features>")
    send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    read_until("<proceed[^>]*/>")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock = context.wrap_socket(sock, server_hostname=domain)
    buf = b""
    send(header)
    features = read_until("<stream:features.*?</stream:features>").group(0).decode()
    if ">%s<" % mechanism not in features:
        raise SystemExit(mechanism + " not offered: " + features)

    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>"
         % (mechanism, base64.b64encode(("n,," + first_bare).encode()).decode()))
    challenge = base64.b64decode(read_until("<challenge[^>]*>([^<]*)</challenge>").group(1)).decode()
    fields = dict(item.split("=", 1) for item in challenge.split(","))
    if not fields["r"].startswith(nonce):
        raise SystemExit("server nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), base64.b64decode(fields["s"]),
                                 int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored_key = digest(client_key).digest()
    final_bare = "c=biws,r=" + fields["r"]
    auth_message = ",".join([first_bare, challenge, final_bare]).encode()
    signature = hmac.new(stored_key, auth_message, digest).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>"
         % base64.b64encode((final_bare + ",p=" + base64.b64encode(proof).decode()).encode()).decode())
    success = read_until("<(success|failure)[^>]*?(/>|>.*?</(success|failure)>)").group(0).decode()
    if not success.startswith("<success"):
        raise SystemExit("authentication failed: " + success)
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    expected = base64.b64encode(hmac.new(server_key, auth_message, digest).digest()).decode()
    m = re.search(r">([^<]+)<", success)
    if not m or base64.b64decode(m.group(1)).decode() != "v=" + expected:
        raise SystemExit("the server's signature is wrong: " + success)

    send(header)
    read_until("</stream:features>")
    send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
         "<resource>smoke</resource></bind></iq>")
    jid = read_until("<jid>([^<]+)</jid>").group(1).decode()
    send("<iq type='get' id='p1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % domain)
    read_until("id='p1'")
    send("</stream:stream>")
    print("logged in as %s over STARTTLS with %s" % (jid, mechanism))


if __name__ == "__main__":
    main()
