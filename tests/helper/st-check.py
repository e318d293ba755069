#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# st-check.py SOURCE OUT [ROOT] - checks "ckpt convert SOURCE OUT" against
# torch itself: OUT (a .safetensors file, or a model.safetensors.index.json
# whose shards are read through its weight_map) is read with a small numpy
# reader that applies the reference's validation and the reference writer's
# layout rules (8-byte aligned header, __metadata__ first, tensors in data
# order: dtype descending then name, each at a multiple of its element
# size), and every tensor under ROOT (a dot path, "" for the top level) of
# torch.load(SOURCE) must be in it with the same dtype, shape and bytes,
# or be recorded in __metadata__ as an alias of one that is.  SOURCE may
# instead be a gen-torch.py sidecar (*.expect: name, dtype, shape, sha256
# of the bytes torch loaded back), for files torch 1.13 cannot load right
# (big-endian archives need torch >= 2.1).  Prints
# "ok N tensors, A aliases" or the first difference (exit 1).
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3",
         "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16",
         "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8}
TORCH = {torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8",
         torch.int16: "I16", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int32: "I32", torch.float32: "F32", torch.complex64: "C64",
         torch.float64: "F64", torch.int64: "I64"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def read_st(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    if n % 8:
        fail("%s: header length %d is not a multiple of 8" % (path, n))
    raw = buf[8:8 + n]
    if raw.rstrip(b" ") != raw.rstrip():
        fail("%s: header padded with something else than spaces" % path)
    text = raw.decode("utf-8")
    if not text.startswith('{"__metadata__":'):
        fail("%s: __metadata__ is not first" % path)
    # object_pairs_hook keeps the order the writer used
    pairs = json.loads(text, object_pairs_hook=lambda p: p)
    meta = dict(pairs[0][1])
    if meta.get("format") != "pt":
        fail("%s: __metadata__ format is %r" % (path, meta.get("format")))
    entries = pairs[1:]
    keys = [(-ORDER.index(dict(e)["dtype"]), k) for k, e in entries]
    if keys != sorted(keys):
        fail("%s: tensors not in the reference writer's order" % path)
    data = buf[8 + n:]
    pos = 0
    out = {}
    for name, e in entries:
        e = dict(e)
        b, end = e["data_offsets"]
        if b != pos:
            fail("%s: %s starts at %d, expected %d" % (path, name, b, pos))
        if (8 + n + b) % SIZE[e["dtype"]]:
            fail("%s: %s is not aligned" % (path, name))
        count = int(np.prod(e["shape"], dtype=np.int64)) if e["shape"] else 1
        if end - b != count * SIZE[e["dtype"]]:
            fail("%s: %s has %d bytes for %s %s" %
                 (path, name, end - b, e["dtype"], e["shape"]))
        arr = np.frombuffer(data, dtype=np.uint8, count=end - b, offset=b) \
            if end > b else np.zeros(0, np.uint8)
        out[name] = (e["dtype"], list(e["shape"]), arr.tobytes())
        pos = end
    if pos != len(data):
        fail("%s: %d data bytes, tensors cover %d" % (path, len(data), pos))
    return meta, out


def read_out(path):
    if path.endswith(".index.json"):
        with open(path) as f:
            idx = json.load(f)
        tensors, meta = {}, {}
        total = 0
        for shard in sorted(set(idx["weight_map"].values())):
            m, t = read_st(os.path.join(os.path.dirname(path), shard))
            meta.update(m)
            for k, v in t.items():
                if idx["weight_map"].get(k) != shard:
                    fail("%s in %s but the index says %s" %
                         (k, shard, idx["weight_map"].get(k)))
                total += len(v[2])
            tensors.update(t)
        if set(tensors) != set(idx["weight_map"]):
            fail("index weight_map and shards differ")
        if idx["metadata"]["total_size"] != total:
            fail("index total_size %d, shards hold %d" %
                 (idx["metadata"]["total_size"], total))
        return meta, tensors
    return read_st(path)


def walk(o, path, acc):
    if isinstance(o, torch.Tensor):
        acc[".".join(path)] = o
    elif isinstance(o, dict):
        for k, v in o.items():
            walk(v, path + [str(k)], acc)
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            walk(v, path + [str(i)], acc)


def tbytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


meta, got = read_out(sys.argv[2])
root = sys.argv[3] if len(sys.argv) > 3 else ""
want = {}
if sys.argv[1].endswith(".expect"):
    for line in open(sys.argv[1]):
        name, dt, shape, digest = line.rstrip("\n").split("\t")
        if root and not (name == root or name.startswith(root + ".")):
            continue
        name = name[len(root) + 1:] if root else name
        want[name] = (dt, [int(x) for x in shape[1:-1].split(",") if x],
                      digest)
else:
    node = torch.load(sys.argv[1])
    for k in (root.split(".") if root else []):
        node = node[int(k)] if isinstance(node, (list, tuple)) else node[k]
    acc = {}
    walk(node, [], acc)
    for name, t in acc.items():
        if t.dtype not in TORCH:    # complex128, quantized: left out
            continue
        want[name] = (TORCH[t.dtype], list(t.shape),
                      hashlib.sha256(tbytes(t)).hexdigest())
aliases = 0
for name, (wdt, wshape, wdigest) in want.items():
    key = name
    if key not in got and key in meta and meta[key] in got:
        key = meta[key]
        aliases += 1
    if key not in got:
        fail("%s is missing" % name)
    dt, shape, data = got[key]
    if dt != wdt or shape != wshape:
        fail("%s: %s %s, torch has %s %s" % (name, dt, shape, wdt, wshape))
    if hashlib.sha256(data).hexdigest() != wdigest:
        fail("%s: bytes differ from torch.load" % name)
extra = set(got) - set(want)
if extra:
    fail("unexpected tensors: %s" % sorted(extra))
print("ok %d tensors, %d aliases" % (len(got), aliases))
