#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made from the scansion scripts (the
project's own and, when present, the shared ones): the stanzas they send
and expect, as a client stream for the framer; their data forms; the JIDs
they name. Written to the directory given (default: fuzz/corpus, which is
not committed).

    python3 fuzz/seeds.py [OUT_DIR] [SCRIPT_DIR ...]
"""
import hashlib
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


def blocks(text):
    """The tab-indented XML blocks after 'sends:' and 'receives:' lines."""
    out, current = [], None
    for line in text.splitlines():
        if re.search(r"(sends|receives):\s*$", line):
            current = []
            out.append(current)
        elif current is not None and line.startswith("\t"):
            current.append(line.strip())
        else:
            current = None
    return ["".join(b) for b in out if b]


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
        for s in stanzas:
            for form in re.findall(r"<x xmlns=.jabber:x:data.*?</x>", s):
                save("forms", form.encode())
        for jid in re.findall(r"jid:\s*(\S+)", text):
            save("jid", jid.encode())
        count += 1
save("config", b"[[host]]\ndomain = \"example.org\"\n[muc]\nmax_rooms = 10\n")
save("sasl", b"\x00\x00user\x00pencil")
print(f"seeds from {count} scripts in {OUT}")
