#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-store.py - writes committed checkpoints straight into a store, the way
# "ckpt save" lays them out (ckpt-manifest(5)), without the commit
# protocol: for tests of ls/latest/references and for the synthetic
# 10,000-checkpoint store of the ls benchmark.
#
#   mk-store.py STORE SPEC...
#     SPEC = RUN@STEP[:k=v[,k=v...]]      one checkpoint (metrics k=v)
#     --count N RUN                         N checkpoints RUN@0..N-1
#     --time ISO                            "created" of what follows
#
# Every checkpoint holds one small file "weights.bin" and a summary, both
# listed in the manifest with their real SHA-256.
import hashlib
import json
import os
import sys


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make(store, run, step, metrics, created):
    d = os.path.join(store, "runs", run, "step-%d" % step)
    os.makedirs(d, exist_ok=True)
    data = ("%s@%d\n" % (run, step)).encode() * 8
    write(os.path.join(d, "weights.bin"), data)
    summary = {
        "schema": 1, "run": run, "step": step, "created": created,
        "epoch": None, "metrics": metrics, "tags": [], "scope": "full",
        "size": len(data), "nfiles": 1,
        "validation": {"result": "ok"},
    }
    sdata = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()
    write(os.path.join(d, "ckpt-summary.json"), sdata)
    files = [
        {"path": "ckpt-summary.json", "size": len(sdata),
         "format": "json", "sha256": digest(sdata)},
        {"path": "weights.bin", "size": len(data), "format": "unknown",
         "sha256": digest(data),
         "chunk_size": 64 << 20,
         "chunks": [{"offset": 0, "size": len(data),
                     "sha256": digest(data)}]},
    ]
    manifest = dict(summary)
    del manifest["size"], manifest["nfiles"]
    manifest.update({"files": files, "host": "test", "user": "test",
                     "ckpt_version": "0.1.0"})
    write(os.path.join(d, "ckpt-manifest.json"),
          (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def main(argv):
    store = argv[1]
    os.makedirs(os.path.join(store, ".ckpt", "pins"), exist_ok=True)
    os.makedirs(os.path.join(store, ".ckpt", "trash"), exist_ok=True)
    os.makedirs(os.path.join(store, "runs"), exist_ok=True)
    marker = os.path.join(store, ".ckpt", "store.json")
    if not os.path.exists(marker):
        write(marker, b'{\n  "schema": 1\n}\n')
    created = "2026-01-01T00:00:00Z"
    i = 2
    while i < len(argv):
        a = argv[i]
        if a == "--time":
            created = argv[i + 1]
            i += 2
            continue
        if a == "--count":
            n, run = int(argv[i + 1]), argv[i + 2]
            for s in range(n):
                make(store, run, s, {"loss": 1.0 / (s + 1)}, created)
            i += 3
            continue
        spec, _, mt = a.partition(":")
        run, _, step = spec.partition("@")
        metrics = {}
        for kv in filter(None, mt.split(",")):
            k, _, v = kv.partition("=")
            metrics[k] = None if v in ("nan", "") else float(v)
        make(store, run, int(step), metrics, created)
        i += 1


if __name__ == "__main__":
    main(sys.argv)
