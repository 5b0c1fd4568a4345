#!/usr/bin/env python3
"""A verifier for tenure ledger exports, written from docs/ledger-export.md alone.

Usage: verify_ledger_export.py DIR [KEPT.note ...]
Prints `ok N entries` and exits 0, or prints what failed and exits 1.
Needs the `cryptography` package for Ed25519.
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def leaf(b):
    return hashlib.sha256(b"\x00" + b).digest()


def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


class Tree:
    """Root of the entries seen so far, kept as perfect subtrees (left to right)."""

    def __init__(self):
        self.stack = []  # (level, hash)

    def push(self, h):
        level = 0
        while self.stack and self.stack[-1][0] == level:
            h = node(self.stack.pop()[1], h)
            level += 1
        self.stack.append((level, h))

    def root(self):
        if not self.stack:
            return hashlib.sha256(b"").digest()
        acc = self.stack[-1][1]
        for _, h in reversed(self.stack[:-1]):
            acc = node(h, acc)
        return acc


def parse_key(text):
    name, key_id, key = text.strip().split("+", 2)
    raw = base64.b64decode(key)
    if raw[0] != 1 or len(raw) != 33:
        fail("ledger.pub: not an Ed25519 key")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() != key_id:
        fail("ledger.pub: key id does not match")
    return name, bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(label, text, name, key_id, key):
    body, _, sigs = text.partition("\n\n")
    body += "\n"
    ok = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail(label + ": malformed signature line")
        sig_name, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob)
        if sig_name != name or blob[:4] != key_id:
            continue
        try:
            key.verify(blob[4:], body.encode())
            ok = True
        except InvalidSignature:
            pass
    if not ok:
        fail(label + ": no valid signature")
    origin, size, root = body.splitlines()[:3]
    if origin != name:
        fail(label + ": wrong origin")
    return int(size), base64.b64decode(root)


def main():
    d = sys.argv[1]
    name, key_id, key = parse_key(open(os.path.join(d, "ledger.pub")).read())
    checkpoints = {}
    notes = [os.path.join(d, "checkpoints", f) for f in sorted(os.listdir(os.path.join(d, "checkpoints")))]
    for path in notes + sys.argv[2:]:
        size, root = open_note(os.path.basename(path), open(path).read(), name, key_id, key)
        checkpoints.setdefault(size, []).append((os.path.basename(path), root))

    tree, prev, n = Tree(), "0" * 64, 0
    with open(os.path.join(d, "entries.jsonl"), "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        fail("entries.jsonl: the last line has no line end")
    for line in data.split(b"\n")[:-1] if data else []:
        try:
            e = json.loads(line)
        except ValueError:
            fail("entry %d: not JSON" % n)
        if e.get("seq") != n:
            fail("entry %d: line holds seq %r" % (n, e.get("seq")))
        if e.get("prev") != prev:
            fail("entry %d: prev does not match entry %d" % (n, n - 1))
        h = leaf(line)
        tree.push(h)
        prev, n = h.hex(), n + 1
        for label, root in checkpoints.get(n, []):
            if root != tree.root():
                fail("%s: root does not match the first %d entries" % (label, n))
    if checkpoints and max(checkpoints) > n:
        fail("truncated: %d entries, a checkpoint covers %d" % (n, max(checkpoints)))
    if n and (not checkpoints or max(checkpoints) < n):
        fail("entries past the last checkpoint")
    print("ok %d entries" % n)


if __name__ == "__main__":
    main()
