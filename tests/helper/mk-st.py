#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-st.py PATH NBYTES SEED [NTENSORS] - a valid safetensors file of about
# NBYTES bytes of pseudo-random data split into NTENSORS (default 4) U8
# tensors "t0", "t1", ...: test input for save and the crash tests that
# "ckpt verify" accepts, unlike random bytes of no known format.
import json
import random
import struct
import sys

path, nbytes, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
rnd = random.Random(seed)
sizes = [nbytes // n] * (n - 1) + [nbytes - (nbytes // n) * (n - 1)]
header, off = {}, 0
for i, s in enumerate(sizes):
    header["t%d" % i] = {"dtype": "U8", "shape": [s],
                         "data_offsets": [off, off + s]}
    off += s
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    f.write(rnd.randbytes(off))
