#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# mk-content-ckpt.py DIR - torch files made by real torch (1.13) whose
# tensors are laid out every way a content digest must see through, the
# same tensors exported to safetensors, and the digests they must get:
#
#   DIR/torch/*.pt     views of one base (transpose, row and column slices,
#                      strided, a 0-dim element, expand), an orphan slice
#                      saved without its base, tied weights, every dtype,
#                      a big-endian archive (crafted as torch 2.x writes
#                      it: torch 1.13 writes little-endian only)
#   DIR/st/*.safetensors  the same tensors, written by the small writer
#                      below (contiguous little-endian bytes)
#   DIR/expect         "FILE-STEM<TAB>NAME<TAB>HEX" for every tensor: numpy's
#                      SHA-256 of np.ascontiguousarray(t.numpy()) as
#                      little-endian ('<' dtype), or "none" where no
#                      content digest is defined (quantized tensors)
import hashlib
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch

out = sys.argv[1]
torch.manual_seed(7)
os.makedirs(os.path.join(out, "torch"), exist_ok=True)
os.makedirs(os.path.join(out, "st"), exist_ok=True)

ST_DTYPE = {
    torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
    torch.bfloat16: "BF16", torch.complex64: "C64", torch.int8: "I8",
    torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def le_array(t):
    """The elements as numpy would give them, little-endian, contiguous."""
    t = t.detach()
    if t.dtype == torch.bfloat16:       # numpy has no bfloat16: a bit view
        t = t.contiguous().view(torch.int16)
    a = np.ascontiguousarray(t.numpy())
    return a.astype(a.dtype.newbyteorder("<"))


def digest(t):
    if t.is_quantized:
        return "none"
    return hashlib.sha256(le_array(t).tobytes()).hexdigest()


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        if t.is_quantized or t.dtype not in ST_DTYPE:
            continue
        b = le_array(t).tobytes()
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


expect = []


def record(stem, tensors):
    for name, t in tensors.items():
        expect.append("%s\t%s\t%s" % (stem, name, digest(t)))
    write_safetensors(os.path.join(out, "st", stem + ".safetensors"),
                      tensors)


def save(stem, tensors):
    path = os.path.join(out, "torch", stem + ".pt")
    torch.save(tensors, path)
    # what torch loads back is what the digests are of
    record(stem, torch.load(path))


base = torch.randn(6, 8)
save("views", {
    "base": base,
    "T": base.t(),
    "rows": base[1:3],
    "cols": base[:, 2:5],
    "step": base[::2, ::3],
    "el": base[1, 2],                    # a 0-dim element
    "expand": base[0:1, 0:3].expand(4, 3),
})
save("orphan", {"slice": torch.randn(1000)[10:20]})   # base not saved
emb = torch.randn(5, 3)
save("tied", {"emb": emb, "lm_head": emb, "emb_T": emb.t()})
save("dtypes", {
    "f16": torch.randn(3, 4).half(),
    "f32": torch.randn(5),
    "f64": torch.randn(2, 3, dtype=torch.float64),
    "bf16": torch.randn(7).bfloat16(),
    "bf16_T": torch.randn(3, 2).bfloat16().t(),
    "c64": torch.randn(3, dtype=torch.complex64),
    "c128": torch.randn(2, 2, dtype=torch.complex128),
    "i8": torch.randint(-128, 127, (9,), dtype=torch.int8),
    "i16": torch.randint(-30000, 30000, (4,), dtype=torch.int16),
    "i32": torch.randint(-2**31, 2**31 - 1, (4,), dtype=torch.int32),
    "i64": torch.randint(-2**62, 2**62, (3,), dtype=torch.int64),
    "u8": torch.randint(0, 255, (10,), dtype=torch.uint8),
    "bool": torch.rand(6) > 0.5,
    "qint8": torch.quantize_per_tensor(torch.randn(4), 0.1, 3, torch.qint8),
})

# A big-endian archive: torch 1.13's little-endian file, each storage's
# elements byte-swapped and a "byteorder" record of "big" added, as
# torch 2.x writes on a big-endian machine.  Storage keys follow the
# dict's order; complex numbers swap per component.
be = {"f32": torch.randn(3, 2), "f64": torch.randn(4, dtype=torch.float64),
      "i16": torch.arange(5, dtype=torch.int16),
      "bf16": torch.randn(3).bfloat16(),
      "c64": torch.randn(2, dtype=torch.complex64),
      "T": torch.arange(6, dtype=torch.int32).reshape(2, 3).t()}
unit = {torch.float32: 4, torch.float64: 8, torch.int16: 2,
        torch.bfloat16: 2, torch.complex64: 4, torch.int32: 4}
widths = {str(i): unit[t.dtype] for i, t in enumerate(be.values())}
src = os.path.join(out, "le.tmp")
torch.save(be, src)
zin = zipfile.ZipFile(src)
with zipfile.ZipFile(os.path.join(out, "torch", "bigendian.pt"), "w") as zo:
    for info in zin.infolist():
        data = zin.read(info.filename)
        prefix, name = info.filename.split("/", 1)
        if name.startswith("data/"):
            w = widths[name[5:]]
            data = b"".join(data[i:i + w][::-1]
                            for i in range(0, len(data), w))
        if name == "version":
            zo.writestr(zipfile.ZipInfo(prefix + "/byteorder",
                                        (1980, 1, 1, 0, 0, 0)), b"big")
        zi = zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0))
        zo.writestr(zi, data)
os.unlink(src)
record("bigendian", be)

with open(os.path.join(out, "expect"), "w") as f:
    f.write("".join(line + "\n" for line in expect))
