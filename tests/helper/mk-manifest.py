#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-manifest.py - writes DIR/ckpt-manifest.json for the files already in
# DIR, in the store's format (ckpt-manifest(5)), independent of "ckpt
# save", for the verify tests and benchmarks.
#
# Schema 1 (the default): size and SHA-256 of every file, the tensors of
# safetensors files with the digest of their bytes, and chunks over every
# byte that no tensor of at most CHUNK_SIZE covers.
# Schema 2: ranges that cover every byte once (each safetensors tensor a
# range of its own, the bytes between cut into CHUNK_SIZE pieces), the
# tensors' content digests, and no whole-file digest unless --file-sha256.
#
#   mk-manifest.py [--schema N] [--file-sha256] [--run R] [--step N]
#                  DIR [CHUNK_SIZE]      (default 64 MiB)
import argparse
import hashlib
import json
import os
import struct
import sys

BUF = 1 << 20


def digest_range(path, off, end):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(off)
        left = end - off
        while left:
            b = f.read(min(BUF, left))
            if not b:
                raise SystemExit("short read: " + path)
            h.update(b)
            left -= len(b)
    return "sha256:" + h.hexdigest()


def st_tensors(path, size):
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return []
        n = struct.unpack("<Q", head)[0]
        if n > size - 8:
            return []
        try:
            hdr = json.loads(f.read(n))
        except ValueError:
            return []
    out = []
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out.append((name, t["dtype"], t["shape"], 8 + n + a, 8 + n + b))
    return out


def plan_chunks(size, small, cs):
    """[off, end) pieces of at most cs over bytes outside small tensors."""
    small = sorted(small)
    out, pos = [], 0
    for (a, b) in small + [(size, size)]:
        while pos < a:
            e = min(a, pos + cs)
            out.append((pos, e))
            pos = e
        pos = max(pos, b)
    return out


def entry(d, rel, cs):
    p = os.path.join(d, rel)
    size = os.path.getsize(p)
    e = {"path": rel, "size": size, "sha256": digest_range(p, 0, size),
         "format": "unknown", "chunk_size": cs}
    tensors = st_tensors(p, size) if rel.endswith(".safetensors") else []
    if tensors:
        e["format"] = "safetensors"
        e["tensors"] = [{"name": n, "dtype": dt, "shape": sh, "offset": a,
                         "size": b - a, "sha256": digest_range(p, a, b)}
                        for (n, dt, sh, a, b) in tensors]
    small = [(a, b) for (_, _, _, a, b) in tensors if b - a <= cs]
    e["chunks"] = [{"offset": a, "size": b - a,
                    "sha256": digest_range(p, a, b)}
                   for (a, b) in plan_chunks(size, small, cs)]
    return e


def entry2(d, rel, cs, file_sha256):
    p = os.path.join(d, rel)
    size = os.path.getsize(p)
    e = {"path": rel, "size": size, "format": "unknown", "chunk_size": cs}
    if file_sha256:
        e["sha256"] = digest_range(p, 0, size)
    tensors = st_tensors(p, size) if rel.endswith(".safetensors") else []
    if tensors:
        e["format"] = "safetensors"
    spans, pos = [], 0
    for (_, _, _, a, b) in sorted(tensors, key=lambda t: t[3]) + \
            [(None, None, None, size, size)]:
        while pos < a:
            spans.append((pos, min(a, pos + cs)))
            pos = spans[-1][1]
        if a < b:
            spans.append((a, b))
        pos = max(pos, b)
    digests = {(a, b): digest_range(p, a, b) for (a, b) in spans}
    e["ranges"] = [{"offset": a, "size": b - a, "sha256": digests[(a, b)]}
                   for (a, b) in spans]
    e["tensors"] = [{"name": n, "dtype": dt, "shape": sh, "offset": a,
                     "size": b - a, "content_sha256":
                     digests.get((a, b)) or digest_range(p, a, b)}
                    for (n, dt, sh, a, b) in tensors]
    return e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", type=int, default=1)
    ap.add_argument("--file-sha256", action="store_true")
    ap.add_argument("--run", default="bench")
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("dir")
    ap.add_argument("chunk_size", type=int, nargs="?", default=64 << 20)
    a = ap.parse_args()
    d, cs = a.dir, a.chunk_size
    rels = []
    for root, dirs, files in os.walk(d):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), d)
            if rel not in ("ckpt-manifest.json", "ckpt-manifest.json.sig",
                           "ckpt-status.json"):
                rels.append(rel)
    rels.sort(key=lambda r: r.encode())
    if a.schema == 1:
        files = [entry(d, r, cs) for r in rels]
    else:
        files = [entry2(d, r, cs, a.file_sha256) for r in rels]
    m = {"schema": a.schema, "run": a.run, "step": a.step,
         "created": "2026-01-01T00:00:00Z", "host": "test", "user": "test",
         "ckpt_version": "0.1.0", "files": files}
    with open(os.path.join(d, "ckpt-manifest.json"), "w") as f:
        f.write(json.dumps(m, indent=1, sort_keys=True) + "\n")


main()
