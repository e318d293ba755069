#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-verify-ckpt.py - writes a checkpoint directory with a manifest in the
# store's format (ckpt-manifest(5)) whose files carry chunk and tensor
# digests, for the verify tests: every kind of range (a tensor no larger
# than a chunk, a tensor larger than a chunk, chunk bytes in no tensor).
#
#   mk-verify-ckpt.py DIR [CHUNK_SIZE [RUN STEP]]
#
# Files (text, so that every reader accepts them as such):
#   a.txt  10000 bytes  tensors t.small [0,1000), t.big [1000,9000)
#   b.txt  10000 bytes  no tensors: chunks only
#   c.json   small      no chunks: whole-file digest only
import hashlib
import json
import os
import sys


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def text(seed, n):
    out = b""
    i = 0
    while len(out) < n:
        out += ("%s-%08d\n" % (seed, i)).encode()
        i += 1
    return out[:n]


def chunks(size, tensors, chunk_size, data):
    """Chunks over every byte that no tensor <= chunk_size covers."""
    covered = [False] * size
    for (_, off, end) in tensors:
        if end - off <= chunk_size:
            for i in range(off, end):
                covered[i] = True
    out = []
    i = 0
    while i < size:
        if covered[i]:
            i += 1
            continue
        j = i
        while j < size and not covered[j] and j - i < chunk_size:
            j += 1
        out.append({"offset": i, "size": j - i,
                    "sha256": digest(data[i:j])})
        i = j
    return out


def main():
    d = sys.argv[1]
    cs = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    os.makedirs(d, exist_ok=True)
    specs = [
        ("a.txt", text("a", 10000),
         [("t.small", 0, 1000), ("t.big", 1000, 9000)]),
        ("b.txt", text("b", 10000), []),
        ("c.json", b'{"epoch": 3, "note": "whole-file digest only"}\n',
         None),
    ]
    files = []
    for name, data, tensors in specs:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        e = {"path": name, "size": len(data), "sha256": digest(data),
             "format": "text"}
        if tensors is not None:
            e["chunk_size"] = cs
            e["chunks"] = chunks(len(data), tensors, cs, data)
            e["tensors"] = [{"name": n, "dtype": "U8", "shape": [end - off],
                             "offset": off, "size": end - off,
                             "sha256": digest(data[off:end])}
                            for (n, off, end) in tensors]
        files.append(e)
    files.sort(key=lambda e: e["path"].encode())
    run = sys.argv[3] if len(sys.argv) > 4 else "r"
    step = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    m = {"schema": 1, "run": run, "step": step,
         "created": "2026-01-01T00:00:00Z", "host": "test", "user": "test",
         "ckpt_version": "0.1.0", "files": files}
    with open(os.path.join(d, "ckpt-manifest.json"), "w") as f:
        f.write(json.dumps(m, indent=2, sort_keys=True) + "\n")


main()
