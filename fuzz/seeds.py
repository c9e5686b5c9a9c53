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
        count += 1


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

save("config", b"[[host]]\ndomain = \"example.org\"\n[muc]\nmax_rooms = 10\n")
save("sasl", b"\x00\x00user\x00pencil")
print(f"seeds from {count} scripts in {OUT}")
