#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# mk-hidden-dcp.py DIR MODE - edits the DCP checkpoint DIR (a copy of a
# clean one) so that its bytes item "sched" points at a torch.save archive
# whose pickle calls os.system (touching DIR/pwned if run), placed where
# the walk back from the end of the shard does not find it:
#   stored  inside the stored data member of another archive appended to
#           __0_0.distcp (the payload is a uint8 tensor's bytes)
#   lead    in the bytes before the shard's first archive
# With a third argument "class", the payload pickles an instance of the
# plain class __main__.Hidden instead (no os.system): for allowlists.
# Prints the payload's byte offset in __0_0.distcp.
import io
import os
import pickle
import sys

import torch

import gendcp

d, mode, argv = sys.argv[1], sys.argv[2], sys.argv

g = gendcp.load()


class Evil:
    def __reduce__(self):
        return (os.system, ("touch '%s'" % os.path.join(d, "pwned"),))


class Hidden:
    def __init__(self):
        self.lr = 0.1


b = io.BytesIO()
torch.save({"hook": Hidden() if argv[3:] == ["class"] else Evil()}, b)
payload = b.getvalue()
shard = os.path.join(d, "__0_0.distcp")
old = open(shard, "rb").read()
md = pickle.load(open(os.path.join(d, ".metadata"), "rb"))
if mode == "stored":
    outer = io.BytesIO()
    torch.save(torch.frombuffer(bytearray(payload), dtype=torch.uint8),
               outer)
    outer = outer.getvalue()
    at = len(old) + outer.index(payload)
    open(shard, "wb").write(old + outer)
elif mode == "lead":
    lead = b"junk" + payload + b"\0" * 64
    at = 4
    open(shard, "wb").write(lead + old)
    for k, v in list(md.storage_data.items()):
        if v.relative_path == "__0_0.distcp":
            md.storage_data[k] = g._StorageInfo(v.relative_path,
                                                v.offset + len(lead),
                                                v.length)
else:
    sys.exit("mk-hidden-dcp.py: unknown mode " + mode)
k = g.MetadataIndex("sched", None)
assert k in md.storage_data, md.storage_data
md.storage_data[k] = g._StorageInfo("__0_0.distcp", at, len(payload))
open(os.path.join(d, ".metadata"), "wb").write(pickle.dumps(md, protocol=4))
print(at)
