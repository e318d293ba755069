#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# mk-chunk-dcp.py DIR MODE - edits the DCP checkpoint DIR (a copy of the
# clean diff-dcp/dcp) so that the storage entry of chunk [0, 0] of
# model.w (a float32 [2, 6] box) points at bytes that do not hold that
# chunk.  The new archive is made by torch.save and appended to
# __0_0.distcp (so the shard's reader scans it); MODE says what it holds:
#   half    the chunk as float16: half the bytes the metadata's chunk needs
#   short   a float32 [1, 6] tensor: a storage shorter than the chunk
#   rank    a float32 [2, 6, 1] tensor
#   object  no tensor at all: the entry points at the bytes item "sched"
#   tail    the entry's range runs 16 bytes past the end of the shard
# Prints the byte offset in __0_0.distcp the entry then names.
import io
import os
import pickle
import sys

import torch

import gendcp

d, mode = sys.argv[1], sys.argv[2]

g = gendcp.load()

shard = os.path.join(d, "__0_0.distcp")
old = open(shard, "rb").read()
md = pickle.load(open(os.path.join(d, ".metadata"), "rb"))
key = g.MetadataIndex("model.w", torch.Size([0, 0]))
assert key in md.storage_data, md.storage_data
w = torch.arange(12, dtype=torch.float32).reshape(2, 6)
made = {
    "half": lambda: w.half(),
    "short": lambda: w[:1].clone(),
    "rank": lambda: w.reshape(2, 6, 1),
}
if mode in made:
    b = io.BytesIO()
    torch.save(made[mode](), b)
    at, length = len(old), len(b.getvalue())
    open(shard, "wb").write(old + b.getvalue())
elif mode == "object":
    s = md.storage_data[g.MetadataIndex("sched", None)]
    at, length = s.offset, s.length
elif mode == "tail":
    at, length = md.storage_data[key].offset, len(old) + 16
else:
    sys.exit("mk-chunk-dcp.py: unknown mode " + mode)
md.storage_data[key] = g._StorageInfo("__0_0.distcp", at, length)
open(os.path.join(d, ".metadata"), "wb").write(pickle.dumps(md, protocol=4))
print(at)
