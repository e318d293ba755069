#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# torch-st-peer.py SRC OUT ROOT - the Python side of bench-convert.sh: the
# usual conversion script, torch.load then safetensors.torch.save_file,
# with save_file done here as it does it, since Debian 12 has no
# safetensors package (apt-cache policy python3-safetensors: none) and
# pip cannot be used here:
#  - each tensor made contiguous and turned into bytes (_tobytes: a
#    copy), views included;
#  - a compact JSON header, __metadata__ {"format": "pt"} first, tensors
#    by dtype size then name, padded with spaces to 8 bytes;
#  - header and data written with buffered writes, no fsync (save_file
#    does not sync either).
# ROOT is the dot path of the weights in the loaded object ("" for the top
# level).  bench-convert.sh checks its output with tests/helper/st-check.py,
# as it checks ckpt convert's.
import json
import struct
import sys

import torch

DT = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
      torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
      torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
      torch.bool: "BOOL"}


def main():
    src, out, root = sys.argv[1:4]
    obj = torch.load(src)
    for k in filter(None, root.split(".")):
        obj = obj[k]
    names = sorted(obj, key=lambda n: (-obj[n].element_size(), n))
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for n in names:
        t = obj[n].contiguous()
        b = t.numpy().tobytes()
        header[n] = {"dtype": DT[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
