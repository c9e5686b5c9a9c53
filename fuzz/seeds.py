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
print(f"seeds from {count} scripts in {OUT}")
