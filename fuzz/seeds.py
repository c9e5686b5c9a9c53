#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made from the scansion scripts (the
project's own and, when present, the shared ones): the stanzas they send
and expect, as a client stream for the framer; their data forms; the JIDs
they name. Written to the directory given (default: fuzz/corpus, which is
not committed).

    python3 fuzz/seeds.py [OUT_DIR] [SCRIPT_DIR ...]
"""
import base64
import hashlib
import hmac
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
DIRS = sys.argv[2:] or [
    os.path.join(ROOT, "tests", "scansion"),
    os.path.join(ROOT, "..", "shared", "scansion"),
]
HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
)


def save(target, data):
    path = os.path.join(OUT, target)
    os.makedirs(path, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def blocks(text, verbs="sends|receives"):
    """The tab-indented XML blocks after 'sends:' (and 'receives:') lines."""
    out, current = [], None
    for line in text.splitlines():
        if re.search(r"(" + verbs + r"):\s*$", line):
            current = []
            out.append(current)
        elif current is not None and line.startswith("\t"):
            current.append(line.strip())
        else:
            current = None
    return ["".join(b) for b in out if b]


# The c2s target's input: a policy byte, a count of decision bytes (none
# here: every action gets the edge's usual answer), then the client's
# reads, separated by 0 bytes (a restart drops the rest of a read).
ALLOW_PLAINTEXT, STARTTLS_REQUIRED, REGISTRATION = 0x04, 0x03, 0x0C
AUTH = (
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    + base64.b64encode(b"\0juliet\0password").decode()
    + "</auth>"
)
STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
BIND = (
    "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>balcony</resource></bind></iq>"
    "<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
)
CLOSE = "</stream:stream>"


def c2s_seed(policy, *reads):
    save("c2s", bytes([policy, 0]) + b"\0".join(r.encode() for r in reads))


c2s_seed(ALLOW_PLAINTEXT, HEADER + AUTH, HEADER + BIND + CLOSE)
c2s_seed(STARTTLS_REQUIRED, HEADER + STARTTLS, HEADER + AUTH, HEADER + BIND + CLOSE)
c2s_seed(
    REGISTRATION,
    HEADER
    + "<iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>"
    + "<iq type='set' id='reg2'><query xmlns='jabber:iq:register'>"
    + "<username>juliet</username><password>password</password></query></iq>"
    + AUTH,
    HEADER + BIND + CLOSE,
)

# Stream management (XEP-0198) and client state indication (XEP-0352)
# after a login: enable, stanzas, acks both ways, CSI; a resumption
# instead of a bind (the decision bytes answer the SASL step with the real
# check, then the resume: 0 refuses it, 1 resumes with h 0, 5 with the
# client's h, 9 with h 2^32-1 so the count wraps), a repeated enable, an
# ack before enable.
SM = "urn:xmpp:sm:3"
CSI = "urn:xmpp:csi:0"
MESSAGE = "<message to='romeo@localhost' type='chat' id='m1'><body>hi</body></message>"
PRESENCE = "<presence><show>away</show></presence>"
PING = "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
c2s_seed(
    ALLOW_PLAINTEXT,
    HEADER + AUTH,
    HEADER + BIND + f"<enable xmlns='{SM}' resume='true' max='300'/>" + MESSAGE
    + f"<r xmlns='{SM}'/><a xmlns='{SM}' h='1'/>" + PRESENCE
    + f"<inactive xmlns='{CSI}'/>" + PING + f"<active xmlns='{CSI}'/>"
    + f"<r xmlns='{SM}'/><a xmlns='{SM}' h='4294967295'/>" + CLOSE,
)
c2s_seed(
    ALLOW_PLAINTEXT,
    HEADER + AUTH,
    HEADER + BIND + f"<enable xmlns='{SM}'/>" + MESSAGE + f"<enable xmlns='{SM}'/>"
    + f"<resume xmlns='{SM}' previd='x' h='0'/><r xmlns='{SM}'/>" + CLOSE,
)
c2s_seed(ALLOW_PLAINTEXT, HEADER + AUTH, HEADER + BIND + f"<a xmlns='{SM}' h='0'/>" + CLOSE)
c2s_seed(ALLOW_PLAINTEXT, HEADER + f"<enable xmlns='{SM}'/>" + f"<resume xmlns='{SM}' previd='x' h='0'/>" + AUTH, HEADER + CLOSE)
for answer in (0, 1, 5, 9):
    save(
        "c2s",
        bytes([ALLOW_PLAINTEXT, 2, 0, answer])
        + b"\0".join(
            r.encode()
            for r in (
                HEADER + AUTH,
                HEADER + f"<resume xmlns='{SM}' previd='sm-1' h='3'/>" + MESSAGE + PRESENCE
                + f"<r xmlns='{SM}'/><a xmlns='{SM}' h='2'/><inactive xmlns='{CSI}'/>"
                + BIND + f"<enable xmlns='{SM}'/>" + MESSAGE + CLOSE,
            )
        ),
    )

count = 0
for d in DIRS:
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        if not name.endswith(".scs"):
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            text = f.read()
        stanzas = [re.sub(r"\$\{[^}]*\}", "juliet@localhost/balcony", s) for s in blocks(text)]
        stream = HEADER + "".join(stanzas)
        for split in (1, 7):
            save("xml_framer", bytes([split]) + stream.encode())
        sent = [re.sub(r"\$\{[^}]*\}", "juliet@localhost/balcony", s) for s in blocks(text, "sends")]
        c2s_seed(ALLOW_PLAINTEXT, HEADER + AUTH, HEADER + BIND + "".join(sent) + CLOSE)
        for s in stanzas:
            for form in re.findall(r"<x xmlns=.jabber:x:data.*?</x>", s):
                save("forms", form.encode())
        for jid in re.findall(r"jid:\s*(\S+)", text):
            save("jid", jid.encode())
        for s in stanzas:
            for q in re.findall(r"<(?:query|prefs) xmlns=.urn:xmpp:mam:2.*?</(?:query|prefs)>", s, re.S):
                save("mam_query", q.encode())
        # Upload slot requests; each stanza as a frame and a BOSH payload.
        for s in stanzas:
            for r in re.findall(r"<request xmlns=.urn:xmpp:http:upload:0.*?/>", s, re.S):
                save("upload_slot", r.encode())
            save("framing", s.encode())
            save("bosh_body", f"<body rid='2' sid='x' xmlns='http://jabber.org/protocol/httpbind'>{s}</body>".encode())
        # Pubsub requests, forms, capabilities, bookmarks, avatars.
        for s in stanzas:
            for p in re.findall(r"<pubsub xmlns=.http://jabber.org/protocol/pubsub.*?</pubsub>", s, re.S):
                save("pubsub", p.encode())
            for pattern in (r"<x xmlns=.jabber:x:data.*?</x>", r"<c xmlns=.http://jabber.org/protocol/caps.*?/>",
                            r"<query xmlns=.http://jabber.org/protocol/disco#info.*?</query>",
                            r"<storage xmlns=.storage:bookmarks.*?</storage>",
                            r"<metadata xmlns=.urn:xmpp:avatar:metadata.*?</metadata>",
                            r"<vCard xmlns=.vcard-temp.*?</vCard>"):
                for x in re.findall(pattern, s, re.S):
                    save("pubsub", x.encode())
        count += 1


# Archive queries (XEP-0313) as the XEP shows them, for mam_query.
MAM_FORM = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
            "<value>urn:xmpp:mam:2</value></field>{}</x>")
for fields in (
    "<field var='with'><value>juliet@capulet.lit</value></field>",
    "<field var='start'><value>2010-06-07T00:00:00Z</value></field>"
    "<field var='end'><value>2010-07-07T13:23:54Z</value></field>",
    "<field var='ids'><value>28482-98726-73623</value><value>09af3-cc343-b409f</value></field>",
    "<field var='after-id'><value>x</value></field><field var='before-id'><value>y</value></field>",
):
    for rsm in ("", "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>a</after></set>",
                "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max><before/></set>"):
        save("mam_query", f"<query xmlns='urn:xmpp:mam:2' queryid='f27'>{MAM_FORM.format(fields)}{rsm}<flip-page/></query>".encode())
save("mam_query", b"<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.lit</jid></always><never><jid>montague@montague.lit</jid></never></prefs>")


# The muc_room target's input is a tape of small choices (see
# fuzz_targets/muc_room.rs): a setup byte, then per stanza an operation,
# a client, the operation's choices and a pause. A few stories to start
# from: people join and talk; the owner hands out affiliations; the room
# becomes members-only, moderated and persistent; someone is banned.
JOIN, LEAVE, GROUPCHAT, ADMIN_ROLE, ADMIN_AFFILIATION, CONFIGURE = 0, 1, 3, 6, 7, 8
OWNER, ALICE, BOB, CAROL, ROOT = 0, 2, 4, 6, 8


def step(op, client, *choices, pause=50):
    return bytes([op, client, *choices, pause])


# A nick byte with its top bit set picks from the target's NICKS
# (owner, alice, bob, carol, ...) by its remainder modulo 9.
NICK = {"owner": 0x87, "alice": 0x88, "bob": 0x80, "carol": 0x81}
OWN_NICK = 0
# Affiliations and JIDs by their index in AFFILIATIONS and JID_ATTRS.
OUTCAST, MEMBER, ADMIN = 0, 2, 3
VISITOR = 1


def join(client, nick):
    # nick, no password, no history, with <x/>
    return step(JOIN, client, NICK[nick], 0, 0, 1)


stories = [
    # Alice, Bob and Carol join and talk; Bob leaves.
    join(ALICE, "alice")
    + join(BOB, "bob")
    + join(CAROL, "carol")
    + step(GROUPCHAT, ALICE, 0)
    + step(LEAVE, BOB, OWN_NICK, 1),
    # The owner makes Alice an admin and Bob a member, bans Carol; Alice
    # takes Bob's voice.
    join(ALICE, "alice")
    + join(BOB, "bob")
    + join(CAROL, "carol")
    + step(ADMIN_AFFILIATION, OWNER, 1, ADMIN, 0, 1, MEMBER, 0, 2)
    + step(ADMIN_AFFILIATION, OWNER, 0, OUTCAST, 0, 3)
    + step(ADMIN_ROLE, ALICE, 0, VISITOR, 0, 2, 0),
    # Alice becomes a member; the room members-only, moderated and
    # persistent; everyone leaves, and the room comes back from storage.
    join(ALICE, "alice")
    + step(ADMIN_AFFILIATION, OWNER, 0, MEMBER, 0, 1)
    + step(CONFIGURE, OWNER, 0x07, 0x00, 0x07, 0x00)
    + step(LEAVE, ALICE, OWN_NICK, 0)
    + step(LEAVE, OWNER, OWN_NICK, 0)
    + join(OWNER, "owner")
    + join(ALICE, "alice"),
]
for setup in (0x00, 0x0D):
    for story in stories:
        save("muc_room", bytes([setup]) + story)


# The sm_csi target's input (see fuzz_targets/sm_csi.rs): max_held (an
# index into 0, 1, 2, 3, 5, 100; a top bit takes what is held before the
# final set_active), how far below 2^32 the sent count starts, the
# restored unacknowledged stanzas (a count, then length-prefixed bytes),
# then operations: 0 n i.. a batch of stanzas (indexes into its STANZAS)
# through the filter, 2 inactive, 3 n i.. active with a batch, 4 an empty
# batch, 5 n bytes a stanza sent as is, 6 p an ack near the true count (p
# % 4: within the outstanding, beyond, behind, exactly the sent count; p
# >> 2 how far), 8 h32 an arbitrary ack, 9 p a request check, 10 take_all,
# 11 the SM elements' writers and parser.
FILTER, INACTIVE, ACTIVE, EMPTY, RAW, NEAR, ANY, REQUEST, TAKE_ALL, ELEMENTS = 0, 2, 3, 4, 5, 6, 8, 9, 10, 11
P_AWAY, P_XA, P_GONE, P_NURSE, P_SELF, P_ROOM_IN, CHAT, COMPOSING, MENTION, CHATTER, IQ = 0, 1, 2, 3, 8, 11, 13, 14, 16, 17, 27


def sm_csi_seed(max_held, below, restored, *ops):
    data = bytes([max_held, below, len(restored)])
    for r in restored:
        data += bytes([len(r)]) + r
    save("sm_csi", data + b"".join(bytes(op) for op in ops))


sm_csi_seed(
    2, 3, [b"<m1/>", b"<m2/>"],
    [INACTIVE], [FILTER, 3, P_AWAY, P_NURSE, P_XA], [FILTER, 2, COMPOSING, CHAT],
    [NEAR, 0 << 2 | 0], [NEAR, 8 << 2 | 0], [RAW, 5] + list(b"<m3/>"), [NEAR, 1],
    [NEAR, 2], [REQUEST, 0x81], [FILTER, 3, P_GONE, CHATTER, P_AWAY],
    [ACTIVE, 1, IQ], [NEAR, 3], [TAKE_ALL],
    [ELEMENTS, 0xff, 0xff, 0xff, 0xff, 3] + list(b"a'b") + [0, 0, 0, 0],
)
sm_csi_seed(
    0x84, 0, [],
    [INACTIVE], [FILTER, 5, P_SELF, P_ROOM_IN, MENTION, CHATTER, P_ROOM_IN],
    [FILTER, 4, P_NURSE, P_NURSE, COMPOSING, P_AWAY], [NEAR, 3], [ANY, 0, 0, 0, 0],
    [ANY, 0xfe, 0xff, 0xff, 0xff], [REQUEST, 1], [FILTER, 1, CHAT], [INACTIVE],
    [FILTER, 2, P_GONE, P_AWAY], [EMPTY],
)
sm_csi_seed(
    1, 1, [b"<a/>", b"", b"<c/>"],
    [NEAR, 4 << 2 | 1], [NEAR, 2 << 2 | 2], [RAW, 0], [INACTIVE],
    [FILTER, 5, 30, 31, 33, 35, 19], [FILTER, 3, 20, 22, 23], [NEAR, 0x03],
    [ACTIVE, 0], [ELEMENTS, 7, 0, 0, 0, 1, ord("7"), 1, 0, 1, 1],
)


def scram(mechanism, password, salt, iterations=4096):
    """A <scram-credentials/> element of XEP-0227 §2.3 for `password`."""
    name = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
    salted = hashlib.pbkdf2_hmac(name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", name).digest()
    stored_key = hashlib.new(name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", name).digest()

    def b64(data):
        return base64.b64encode(data).decode()

    return (
        f"<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='{mechanism}'>"
        f"<iter-count>{iterations}</iter-count><salt>{b64(salt)}</salt>"
        f"<server-key>{b64(server_key)}</server-key>"
        f"<stored-key>{b64(stored_key)}</stored-key></scram-credentials>"
    )


# The xep0227_import target's input: a mode byte (bit 0: import the
# directory rather than main.xml), then main.xml, h.xml and u/u.xml
# separated by 0 bytes.
PIE = "urn:xmpp:pie:0"
XI = "http://www.w3.org/2001/XInclude"
USER_DATA = (
    "<query xmlns='jabber:iq:roster' ver='3'>"
    "<item jid='romeo@montague.lit' name='Romeo' subscription='both'><group>Friends</group></item>"
    "</query><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>"
    "<query xmlns='jabber:iq:private'><prefs xmlns='example:prefs'/></query>"
    "<offline-messages><message xmlns='jabber:client' from='romeo@montague.lit/orchard' "
    "to='juliet@capulet.lit' type='chat'><body>hi</body></message></offline-messages>"
)
one_file = (
    f"<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='{PIE}'>"
    f"<host jid='capulet.lit'><user name='juliet' password='balcony'>{USER_DATA}</user>"
    f"<user name='nurse'>{scram('SCRAM-SHA-1', 'secret', b'salt-one')}"
    f"{scram('SCRAM-SHA-256', 'secret', b'salt-two')}</user>"
    "<user name='tybalt'/></host>"
    "<host jid='verona.lit'><user name='prince' password='x'/></host></server-data>"
)
save("xep0227_import", b"\0" + one_file.encode())
included = [
    f"<server-data xmlns='{PIE}' xmlns:xi='{XI}'><xi:include href='h.xml'/></server-data>",
    f"<host xmlns='{PIE}' xmlns:xi='{XI}' jid='montague.lit'><xi:include href='u/u.xml'/></host>",
    f"<user xmlns='{PIE}' name='romeo'>{scram('SCRAM-SHA-1', 'rose', b'salt-three')}</user>",
]
for mode in (0, 1):
    save("xep0227_import", bytes([mode]) + b"\0".join(f.encode() for f in included))

# HTTP heads the listener sees, and the framing both ways.
for head in (
    "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /xmpp-websocket HTTP/1.1\r\nHost: l\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
    "POST /http-bind HTTP/1.1\r\nHost: l\r\nContent-Length: 5\r\n\r\n<a/>",
    "PUT /upload/0123/a%20b.png?expires=1&sig=x HTTP/1.1\r\nHost: l\r\nContent-Length: 3\r\n"
    "Transfer-Encoding: chunked\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.1\r\n\r\n",
):
    save("http_request", head.encode())
save("framing", b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
save("framing", b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
     b"xmlns:stream='http://etherx.jabber.org/streams' id='1' from='l' version='1.0' xml:lang='en'>"
     b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features> "
     b"<message to='a@b'><body>x &lt; y</body></message></stream:stream>")
save("bosh_body", b"<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='localhost' "
     b"ver='1.6' wait='60' ack='1' xml:lang='en' xmpp:version='1.0' "
     b"xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>")

save("config", b"[[host]]\ndomain = \"example.org\"\n[muc]\nmax_rooms = 10\n")
save("sasl", b"\x00\x00user\x00pencil")
# DNS answers for dns_message (see fuzz_targets/dns_message.rs): a mode
# byte (low bits: 0 A, 1 AAAA, 2 SRV; bit 2: also padded past 64 KiB),
# then the answer as a server would send it, built byte by byte here
# (RFC 1035 §4.1; names compressed with pointers as servers do).
DNS_ID = 0xBEEF


def dns_name(name):
    if name == ".":
        return b"\0"
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"


def dns_rr(name, rtype, rdata, ttl=300):
    # `name` is wire bytes (a pointer such as b"\xc0\x0c" or dns_name()).
    return name + rtype.to_bytes(2, "big") + b"\0\x01" + ttl.to_bytes(4, "big") \
        + len(rdata).to_bytes(2, "big") + rdata


def dns_answer(qname, qtype, answers, rcode=0, ident=DNS_ID, tc=False, question=True):
    flags = 0x8180 | rcode | (0x0200 if tc else 0)  # QR, RD, RA
    head = ident.to_bytes(2, "big") + flags.to_bytes(2, "big") \
        + (1 if question else 0).to_bytes(2, "big") + len(answers).to_bytes(2, "big") + b"\0\0\0\0"
    q = dns_name(qname) + qtype.to_bytes(2, "big") + b"\0\x01" if question else b""
    return head + q + b"".join(answers)


def srv_rdata(priority, weight, port, target):
    return priority.to_bytes(2, "big") + weight.to_bytes(2, "big") + port.to_bytes(2, "big") + dns_name(target)


A, AAAA, CNAME, SRV = 1, 28, 5, 33
SRV_NAME = "_xmpp-server._tcp.example.org"
HERE_PTR = b"\xc0\x0c"  # the question's name, right after the header
for mode, answer in [
    # Two SRV records (one weight 0) and a third at a lower priority.
    (2, dns_answer(SRV_NAME, SRV, [
        dns_rr(HERE_PTR, SRV, srv_rdata(5, 0, 5269, "xmpp.example.org")),
        dns_rr(HERE_PTR, SRV, srv_rdata(5, 60, 5269, "xmpp2.example.org")),
        dns_rr(HERE_PTR, SRV, srv_rdata(10, 10, 5270, "backup.example.net")),
    ])),
    # "." alone: the service is decidedly not offered.
    (2, dns_answer(SRV_NAME, SRV, [dns_rr(HERE_PTR, SRV, srv_rdata(0, 0, 0, "."))])),
    # An SRV record under a CNAME, and one for a name nobody asked about.
    (2, dns_answer(SRV_NAME, SRV, [
        dns_rr(HERE_PTR, CNAME, dns_name("_xmpp-server._tcp.hosting.example.net")),
        dns_rr(dns_name("_xmpp-server._tcp.hosting.example.net"), SRV, srv_rdata(0, 5, 5269, "xmpp.hosting.example.net")),
        dns_rr(dns_name("other.example"), SRV, srv_rdata(0, 5, 5269, "evil.example")),
    ])),
    # A and AAAA, through a CNAME; a CNAME alone (ask again); NXDOMAIN;
    # truncated; SERVFAIL without the question.
    (0, dns_answer("xmpp.example.org", A, [
        dns_rr(HERE_PTR, CNAME, dns_name("host.example.net")),
        dns_rr(dns_name("host.example.net"), A, bytes([192, 0, 2, 7])),
    ])),
    (1, dns_answer("xmpp.example.org", AAAA, [dns_rr(HERE_PTR, AAAA, bytes.fromhex("20010db8000000000000000000000007"))])),
    (0, dns_answer("xmpp.example.org", A, [dns_rr(HERE_PTR, CNAME, dns_name("elsewhere.example.net"))])),
    (0, dns_answer("xmpp.example.org", A, [], rcode=3)),
    (6, dns_answer(SRV_NAME, SRV, [], tc=True)),
    (2, dns_answer(SRV_NAME, SRV, [], rcode=2, question=False)),
    # Another id and name: only the query derived from the answer takes it.
    (2, dns_answer("_xmpps-server._tcp.jabber.example", SRV, [
        dns_rr(HERE_PTR, SRV, srv_rdata(0, 0, 5223, "xmpps.jabber.example"))], ident=0x1234)),
]:
    save("dns_message", bytes([mode]) + answer)
# The same input as text and as SRV records.
save("dns_message", b"\x02# generated by NetworkManager\nsearch lan\nnameserver 192.168.1.1\n"
     b"nameserver 2001:db8::53\nnameserver fe80::1%2\nnameserver 10.0.0.1\n"
     b"options edns0 timeout:3 attempts:4\n")
save("dns_message", b"\x00127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n"
     b"192.0.2.7 Peer.Example.ORG. peer # the peer\n192.0.2.8 peer.example.org\nfe80::1%eth0 zoned\n")
save("dns_message", b"\x02" + bytes([2, 3])
     + bytes([5, 0, 0, 0x14, 0x95, 1]) + bytes([5, 0, 60, 0x14, 0x95, 2])
     + bytes([5, 0, 0, 0x14, 0x95, 1]) + bytes([10, 0, 10, 0x14, 0x96, 3])
     + bytes([1, 0, 0, 0, 0, 0])
     + bytes([0, 7, 0, 33, 0, 0, 0, 1, 0, 0]))
save("dns_message", b"\x02" + bytes([0, 1]) + bytes([0, 0, 0, 0, 0, 0]))


# Server-to-server streams for s2s_stream (see its source): a policy byte
# (bit 7: our outgoing link, else an incoming stream), a count of decision
# bytes (none here: every choice is the edge's usual one), then the peer's
# reads separated by 0 bytes. Keys are real: our secret is 32 bytes of 1,
# the peers' 32 bytes of 2 (XEP-0185 keys).
def dialback_key(secret, receiving, originating, stream_id):
    hashed = hashlib.sha256(secret).hexdigest().encode()
    return hmac.new(hashed, f"{receiving} {originating} {stream_id}".encode(), "sha256").hexdigest()


OUR, PEERS = bytes([1] * 32), bytes([2] * 32)
NS_STREAMS = "http://etherx.jabber.org/streams"
DB = "jabber:server:dialback"


def s2s_header(frm, to, ident=None, version=True):
    attrs = f" from='{frm}' to='{to}'" + (f" id='{ident}'" if ident else "") + (" version='1.0'" if version else "")
    return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='{NS_STREAMS}' "
            f"xmlns:db='{DB}'{attrs}>")


def s2s_seed(policy, *reads, decisions=b""):
    save("s2s_stream", bytes([policy, len(decisions)]) + decisions + b"\0".join(r.encode() for r in reads))


IN_HEADER = s2s_header("example.net", "example.org")
STANZAS = ("<message from='juliet@example.net/balcony' to='romeo@example.org' type='chat'>"
           "<body>wherefore</body></message><presence from='juliet@example.net' to='romeo@example.org'/>"
           "<iq type='get' id='p1' from='example.net' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>")
CLOSE = "</stream:stream>"


def result(frm, to, stream_id):
    return f"<db:result from='{frm}' to='{to}'>{dialback_key(PEERS, to, frm, stream_id)}</db:result>"


STARTTLS_AVAILABLE, PEER_MUST_ENCRYPT, CERTIFIED, DIRECT_TLS = 0x40, 0x01, 0x08, 0x20
# Dialback: our header gets id in-1; the authoritative server's answer
# comes between reads; then stanzas, a second pair, a stanza for it.
s2s_seed(STARTTLS_AVAILABLE, IN_HEADER, result("example.net", "example.org", "in-1"),
         STANZAS + result("example.net", "chat.example.org", "in-1"),
         "<message from='a@example.net' to='b@chat.example.org'/>" + CLOSE)
# STARTTLS first (required of this peer), then dialback on the new stream.
s2s_seed(STARTTLS_AVAILABLE | PEER_MUST_ENCRYPT, IN_HEADER + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
         IN_HEADER, result("example.net", "example.org", "in-2"), STANZAS + CLOSE)
# SASL EXTERNAL over direct TLS with the peer's certificate; any local host.
s2s_seed(DIRECT_TLS | CERTIFIED, IN_HEADER + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
         IN_HEADER, STANZAS + "<message from='a@example.net' to='b@chat.example.org'/>" + CLOSE)
# Dialback without dialing back: the certificate names the peer.
s2s_seed(DIRECT_TLS | CERTIFIED, IN_HEADER, "<db:result from='example.net' to='example.org'>x</db:result>" + STANZAS + CLOSE)
# As the authoritative server: a right key, a wrong one, a stranger's.
s2s_seed(0, s2s_header("example.net", "example.org"),
         f"<db:verify from='example.net' to='example.org' id='abc'>{dialback_key(OUR, 'example.net', 'example.org', 'abc')}</db:verify>"
         "<db:verify from='example.net' to='example.org' id='abc'>0000</db:verify>"
         "<db:verify from='example.net' to='elsewhere.example' id='abc'>0000</db:verify>" + CLOSE)
# A pre-1.0 server, and stanzas before authentication.
s2s_seed(0, s2s_header("example.net", "example.org", version=False), result("example.net", "example.org", "in-1"), STANZAS)
s2s_seed(0, IN_HEADER + STANZAS)
# A wrong key (the stream closes), and a forged answer (decision 3).
s2s_seed(0, IN_HEADER, "<db:result from='example.net' to='example.org'>bad</db:result>", STANZAS)
s2s_seed(0, IN_HEADER, "<db:result from='example.net' to='example.org'>bad</db:result>", STANZAS, decisions=bytes([1, 3]))

OUTGOING = 0x80
OUT_HEADER = lambda ident, version=True: s2s_header("example.net", "example.org", ident, version)
DIALBACK_FEATURES = ("<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
                     "</stream:features>")
# Our link by dialback, then a verification asked of the peer (decision
# 2) and another domain on the link (3).
s2s_seed(OUTGOING, OUT_HEADER("out-1") + DIALBACK_FEATURES,
         "<db:result from='example.net' to='example.org' type='valid'/>",
         "<db:verify from='example.net' to='example.org' id='in-0' type='valid'/>",
         "<db:result from='example.net' to='chat.example.org' type='valid'/>",
         STANZAS + CLOSE, decisions=bytes([1, 2, 3, 0]))
# STARTTLS (required), then SASL EXTERNAL, then ready on the third stream.
SASL_FEATURES = ("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                 "<mechanism>EXTERNAL</mechanism></mechanisms>"
                 "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")
s2s_seed(OUTGOING | PEER_MUST_ENCRYPT | CERTIFIED,
         OUT_HEADER("out-1") + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
         "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
         OUT_HEADER("out-2") + SASL_FEATURES,
         "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
         OUT_HEADER("out-3") + "<stream:features/>", CLOSE)
# SASL refused: dialback instead; a dialback error; a stream error.
s2s_seed(OUTGOING | DIRECT_TLS | CERTIFIED, OUT_HEADER("out-1") + SASL_FEATURES,
         "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
         "<db:result from='example.net' to='example.org' type='valid'/>" + CLOSE)
s2s_seed(OUTGOING, OUT_HEADER("out-1") + DIALBACK_FEATURES,
         "<db:result from='example.net' to='example.org' type='error'><error type='cancel'>"
         "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>")
s2s_seed(OUTGOING, OUT_HEADER("out-1", version=False),
         "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>" + CLOSE)


# Component streams for component_stream: a policy byte (bits 1-2: the
# handshake the driver sends itself: none, right, wrong secret, right in
# upper case), a count of decision bytes, then the component's reads.
def component_seed(policy, *reads):
    save("component_stream", bytes([policy, 0]) + b"\0".join(r.encode() for r in reads))


def component_header(domain):
    return (f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='{NS_STREAMS}' "
            f"to='{domain}'>")


FROM_IRC = ("<message from='#room%irc.example.org@irc.example.org/nick' to='romeo@example.org' type='groupchat'>"
            "<body>hi</body></message><presence from='irc.example.org' to='romeo@example.org'/>"
            "<iq type='result' id='1' from='irc.example.org' to='romeo@example.org/balcony'/>"
            "<message from='a@elsewhere.example' to='romeo@example.org'/>")
for policy in (2, 3, 4, 6):
    component_seed(policy, component_header("irc.example.org"), FROM_IRC + CLOSE)
# The handshake in the input: SHA-1 of our stream id (c1) and the secret.
handshake = hashlib.sha1(b"c1another secret").hexdigest()
component_seed(0, component_header("pubsub.example.org") + f"<handshake>{handshake}</handshake>",
               "<message from='pubsub.example.org' to='juliet@example.org'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>" + CLOSE)
component_seed(0, component_header("unknown.example.org"))

# Push requests for push_enable: a selector byte (bit 0: an iq get), then
# the <enable/> or <disable/> element.
PUSH_OPTIONS = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                "<field var='secret'><value>eruio234vzxc2kla-91</value></field></x>")
for selector, request in [
    (0, f"<enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='yxs32uqsflafdk3iuqo'>{PUSH_OPTIONS}</enable>"),
    (0, "<enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='n'/>"),
    (0, "<disable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='n'/>"),
    (1, "<disable xmlns='urn:xmpp:push:0' jid='push-5.client.example'/>"),
    (0, "<message xmlns='jabber:client' type='groupchat'><body>nick: hi</body></message>"),
]:
    save("push_enable", bytes([selector]) + request.encode())

# Invitations: landing-page form bodies, and xmpp: URIs and expiry texts.
for body in [b"username=juliet&password=s3cret+pw&password2=s3cret+pw",
             b"username=J%C3%BCliet&password=%26%3D%25&password2=", b"a=%zz&b", b"&&x=1&"]:
    save("invite_form", body)
for text in ["xmpp:example.org?register;preauth=abcdefghijklmnopqrstuvwxyz",
             "xmpp:romeo@example.org?roster;preauth=abcdefghijklmnopqrstuv2345;ibr=y",
             "xmpp:j%C3%BCliet@example.org?register;preauth=x", "7d", "12h", "30m", "367d"]:
    save("invite_uri", text.encode())

# SASL2 in the c2s machine: a PLAIN <authenticate/> with Bind 2 inline,
# answered as a success (decision 1) and completed bound with stream
# management (decision 0), then stanzas without a restart; and a FAST
# login the edge refuses (decision 0).
SASL2_UA = "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/>"
save("c2s", bytes([ALLOW_PLAINTEXT, 2, 1, 0]) + (
    HEADER + "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>"
    + base64.b64encode(b"\0juliet\0password").decode() + "</initial-response>" + SASL2_UA
    + f"<bind xmlns='urn:xmpp:bind:0'><tag>t</tag><enable xmlns='{SM}'/></bind></authenticate>"
    + MESSAGE + f"<r xmlns='{SM}'/>" + CLOSE).encode())
save("c2s", bytes([ALLOW_PLAINTEXT, 1, 0]) + (
    HEADER + "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>"
    + base64.b64encode(b"juliet\0" + bytes(32)).decode() + "</initial-response>" + SASL2_UA
    + "<fast xmlns='urn:xmpp:fast:0'/></authenticate>" + CLOSE).encode())

# SASL2 (selector 0: an <authenticate/>) and FAST (selector 1: an HT
# message, read as a token record too).
UA = "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>AwesomeXMPP</software><device>Phone</device></user-agent>"
for request in [
    f"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'><initial-response>biwsbj11c2VyLHI9YWJj</initial-response>{UA}"
    "<bind xmlns='urn:xmpp:bind:0'><tag>Awesome</tag><enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/>"
    "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>",
    f"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>YWxpY2UA</initial-response>{UA}"
    "<fast xmlns='urn:xmpp:fast:0' count='2' invalidate='1'/><resume xmlns='urn:xmpp:sm:3' previd='x' h='3'/></authenticate>",
    "<bind xmlns='urn:xmpp:bind:0'><tag>a/b</tag><active xmlns='urn:xmpp:csi:0'/></bind>",
]:
    save("sasl2", b"\x00" + request.encode())
save("sasl2", b"\x01alice\x00" + bytes(range(32)))
save("sasl2", b"\x01\x01\x01\x01" + bytes(32) + (99).to_bytes(8, "big") + (1).to_bytes(4, "big") + b"\x00")

# ACME (acme_response): whole HTTP responses from a CA, and a series of
# bodies split at 0xff bytes, each led by a selector byte (status,
# Location, Replay-Nonce, Retry-After).
ACME_DIRECTORY = b'{"newNonce":"https://ca.test/n","newAccount":"https://ca.test/a","newOrder":"https://ca.test/o"}'
ACME_ORDER = b'{"status":"pending","authorizations":["https://ca.test/z/1"],"finalize":"https://ca.test/f"}'
ACME_AUTHZ = (b'{"status":"pending","identifier":{"type":"dns","value":"example.org"},"challenges":'
              b'[{"type":"http-01","url":"https://ca.test/c/1","token":"tok_EN-1","status":"pending"}]}')
save("acme_response", b"HTTP/1.1 201 Created\r\nLocation: https://ca.test/o/1\r\nReplay-Nonce: abc\r\n"
     b"Content-Length: " + str(len(ACME_ORDER)).encode() + b"\r\n\r\n" + ACME_ORDER)
save("acme_response", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n-----\r\n0\r\n\r\n")
save("acme_response", b"\x10" + ACME_DIRECTORY + b"\xff\x19{}\xff\x19" + ACME_ORDER + b"\xff\x10" + ACME_AUTHZ)
save("acme_response", b"\x12" + b'{"type":"urn:ietf:params:acme:error:badNonce","detail":"x"}')

print(f"seeds from {count} scripts in {OUT}")

# Ad-hoc commands (adhoc_command): <command/> requests separated by NUL
# bytes, run in order (the engine numbers its sessions cmd-1, cmd-2, ...).
ADHOC = "http://jabber.org/protocol/commands"
ADMIN = "http://jabber.org/protocol/admin"


def adhoc_form(**fields):
    body = "".join(f"<field var='{k.replace('_', '-')}'><value>{v}</value></field>" for k, v in fields.items())
    return (f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{ADMIN}</value></field>"
            f"{body}</x>")


for requests in [
    [f"<command xmlns='{ADHOC}' node='{ADMIN}#add-user' action='execute'/>",
     f"<command xmlns='{ADHOC}' node='{ADMIN}#add-user' sessionid='cmd-1' action='complete'>"
     + adhoc_form(accountjid="new@example.org", password="pw", password_verify="pw") + "</command>"],
    [f"<command xmlns='{ADHOC}' node='{ADMIN}#get-online-users-list'/>",
     f"<command xmlns='{ADHOC}' node='{ADMIN}#get-online-users-list' sessionid='cmd-1' action='prev'/>",
     f"<command xmlns='{ADHOC}' node='{ADMIN}#get-online-users-list' sessionid='cmd-1' action='cancel'/>"],
    [f"<command xmlns='{ADHOC}' node='{ADMIN}#edit-motd' xml:lang='fr-CA'/>",
     f"<command xmlns='{ADHOC}' node='{ADMIN}#edit-motd' sessionid='cmd-1'>" + adhoc_form(motd="Hi") + "</command>"],
    [f"<command xmlns='{ADHOC}' node='{ADMIN}#delete-user'>"
     f"<x xmlns='jabber:x:data'><field var='accountjids'><value>a@example.org</value><value>b@example.org</value></field></x></command>"],
    [f"<command xmlns='{ADHOC}' node='{ADMIN}#announce' action='jump'/>"],
]:
    save("adhoc_command", "\0".join(requests).encode())
