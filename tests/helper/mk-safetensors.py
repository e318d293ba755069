#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-safetensors.py - writes a safetensors file from raw byte strings, for
# tests that need exact bit patterns (NaN/Inf encodings of BF16 and the F8
# variants).  There is no safetensors package here: the format is an
# 8-byte little-endian header length, a JSON header, then the data.
#
#   mk-safetensors.py OUT NAME:DTYPE:HEXBYTES ...
import json
import struct
import sys

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
         "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
         "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1}

out = sys.argv[1]
header, data = {}, b""
for spec in sys.argv[2:]:
    name, dtype, hexbytes = spec.split(":")
    raw = bytes.fromhex(hexbytes)
    n = len(raw) // SIZES[dtype]
    header[name] = {"dtype": dtype, "shape": [n],
                    "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
