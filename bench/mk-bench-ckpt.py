#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-bench-ckpt.py - writes NFILES safetensors files of about SIZE bytes
# each into DIR, every file holding NTENSORS F32 tensors of pseudo-random
# bytes (incompressible, so that nothing is faster than it should be).
#
#   mk-bench-ckpt.py DIR NFILES SIZE NTENSORS
import json
import os
import struct
import sys

d, nfiles, size, ntensors = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4])
os.makedirs(d, exist_ok=True)
per = (size // ntensors) // 4 * 4
block = os.urandom(1 << 24)
for i in range(nfiles):
    header, off = {}, 0
    for t in range(ntensors):
        header["layers.%d.weight" % t] = {
            "dtype": "F32", "shape": [per // 4],
            "data_offsets": [off, off + per]}
        off += per
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    name = "model-%05d-of-%05d.safetensors" % (i + 1, nfiles)
    with open(os.path.join(d, name), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        left = off
        k = i * 7919
        while left:
            n = min(left, len(block) - (k % 4096))
            f.write(block[k % 4096:k % 4096 + n])
            left -= n
            k += 1
