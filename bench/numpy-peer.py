#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# numpy-peer.py - the numpy side of bench-numeric.sh, on the data of one
# safetensors tensor (the first; its offset read from the header):
#
#   numpy-peer.py make DIR | make2g DIR | check-stats OUT.json FILE
#       the inputs of the benchmark, and a check of inspect --stats
#   numpy-peer.py stats FILE [--inner]
#       a.min(), a.max(), a.mean(dtype=np.float64) (BF16 widened to F32
#       first: numpy has no bfloat16)
#   numpy-peer.py diff FILE_A FILE_B [--inner]
#       in float64, 16 Mi elements at a time: max and mean of |a - b|,
#       sums of (a-b)^2, a^2, b^2, a*b (np.dot) and the count beyond
#       1e-8 + 1e-5|b| (what ckpt diff reports)
#
# The whole command (start-up, reading the file) is what bench_compare
# times; with --inner it prints the seconds of the reductions alone, on
# data already in memory, best of three.
import json
import struct
import sys
import time

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        name = next(k for k in hdr if k != "__metadata__")
        t = hdr[name]
        f.seek(8 + n + t["data_offsets"][0])
        count = t["data_offsets"][1] - t["data_offsets"][0]
        if t["dtype"] == "BF16":
            u = np.fromfile(f, dtype="<u2", count=count // 2)
            return (u.astype(np.uint32) << 16).view(np.float32)
        return np.fromfile(f, dtype={"F32": "<f4", "F64": "<f8"}[t["dtype"]],
                           count=count // {"F32": 4, "F64": 8}[t["dtype"]])


def stats(a):
    return a.min(), a.max(), a.mean(dtype=np.float64)


def diff(a, b):
    # float64 as ckpt computes, 16 Mi elements at a time so that 1 GiB
    # inputs do not need 8 GiB of temporaries
    out = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0]
    step = 16 << 20
    for i in range(0, a.size, step):
        af = a[i:i + step].astype(np.float64)
        bf = b[i:i + step].astype(np.float64)
        d = af - bf
        ad = np.abs(d)
        out[0] = max(out[0], ad.max())
        out[1] += ad.sum()
        out[2] += np.dot(d, d)
        out[3] += np.dot(af, af)
        out[4] += np.dot(bf, bf)
        out[5] += np.dot(af, bf)
        out[6] += np.count_nonzero(ad > 1e-8 + 1e-5 * np.abs(bf))
    out[1] /= a.size
    return out


def st(path, arr):
    h = json.dumps({"w": {"dtype": {np.float32: "F32", np.uint16: "BF16"}[
        arr.dtype.type], "shape": [arr.size],
        "data_offsets": [0, arr.nbytes]}}).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        arr.tofile(f)


def shards(path, arr, n):
    """arr as n tensors of equal size, as a model's layers are."""
    per = arr.nbytes // n
    h = json.dumps({"layers.%02d.weight" % i: {
        "dtype": "F32", "shape": [per // 4],
        "data_offsets": [i * per, (i + 1) * per]} for i in range(n)}).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        arr.tofile(f)


def make(d):
    """a: 1 GiB of F32 normal values; m: the same as 32 tensors;
    bf16: the same truncated (1 GiB); b: a plus noise of 1e-3, different
    everywhere."""
    rng = np.random.default_rng(17)
    a = rng.standard_normal((1 << 30) // 4, dtype=np.float32)
    st(d + "/a.safetensors", a)
    shards(d + "/m.safetensors", a, 32)
    st(d + "/bf16.safetensors",
       np.concatenate([(a.view(np.uint32) >> 16).astype(np.uint16)] * 2))
    a += rng.standard_normal(a.size, dtype=np.float32) * 1e-3
    st(d + "/b.safetensors", a)


def make2g(d):
    """c, e: 2 GiB of F32 each, written 256 MiB at a time."""
    n = (2 << 30) // 4
    for name, seed in (("c", 1), ("e", 2)):
        rng = np.random.default_rng(seed)
        h = json.dumps({"w": {"dtype": "F32", "shape": [n],
                              "data_offsets": [0, 4 * n]}}).encode()
        h += b" " * (-len(h) % 8)
        with open("%s/%s.safetensors" % (d, name), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for _ in range(8):
                rng.standard_normal(n // 8, dtype=np.float32).tofile(f)


def check_stats(out, path):
    s = json.load(open(out))["files"][0]["tensors"][0]["stats"]
    a = load(path)
    mean = float(a.mean(dtype=np.float64))
    assert s["min"] == float(a.min()) and s["max"] == float(a.max())
    assert abs(s["mean"] - mean) <= 1e-12 * float(np.abs(a[:1 << 20]).mean())


def main():
    inner = "--inner" in sys.argv
    args = [x for x in sys.argv[1:] if x != "--inner"]
    if args[0] in ("make", "make2g"):
        globals()[args[0]](args[1])
        return
    if args[0] == "check-stats":
        check_stats(args[1], args[2])
        return
    if args[0] == "stats":
        data = (load(args[1]),)
        fn = stats
    else:
        data = (load(args[1]), load(args[2]))
        fn = diff
    best = None
    for _ in range(3 if inner else 1):
        t0 = time.perf_counter()
        fn(*data)
        t = time.perf_counter() - t0
        best = t if best is None else min(best, t)
    if inner:
        print("%.6f" % best)


main()
