#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-convert.sh - "ckpt convert" of a 1 GiB torch.save file (16 float32
# tensors of 64 MiB, one of them a transposed view) to safetensors,
# against cp of the same bytes and against torch.load in Python (the
# safetensors package is not installed here, so the usual
# torch.load + save_file script cannot run; torch.load alone is its
# lower bound).  convert also hashes the source once (the provenance
# digest in __metadata__, beside the write) and fsyncs its output; cp
# does neither, so cp is followed by a sync of the copy to compare like
# with like.
. "$(dirname "$0")/lib.sh"

: "${BENCH_CONVERT_SIZE:=1073741824}"
PY=${PYTHON:-/usr/bin/python3}
W="$BENCH_OUT/convert"
trap 'rm -rf "$W"' EXIT INT TERM
rm -rf "$W" && mkdir -p "$W" || bench_die "cannot create $W"
"$PY" -c 'import torch' 2>/dev/null || bench_die "no torch for $PY"

SRC="$W/model.pt"
"$PY" - "$SRC" "$BENCH_CONVERT_SIZE" <<'PYEOF' || bench_die "torch.save failed"
import sys, torch
path, size = sys.argv[1], int(sys.argv[2])
n = size // 16 // 4
side = int(n ** 0.5)
sd = {}
for i in range(16):
    t = torch.empty(n, dtype=torch.float32).uniform_()
    sd["layer%02d.weight" % i] = t if i else t[:side * side].view(side, side).t()
torch.save({"state_dict": sd, "epoch": 1}, path)
PYEOF
OUT="$W/out.safetensors"
# The figures mean nothing unless the output holds torch's bytes.
ckpt -q convert "$SRC" "$OUT" ||
	bench_die "convert failed"
"$PY" "$SRC_DIR/tests/helper/st-check.py" "$SRC" "$OUT" state_dict >/dev/null ||
	bench_die "the converted file does not match torch.load"
size=$(stat -c %s "$SRC")
export SRC OUT W PY

bench_begin convert "convert of a $((size >> 20)) MiB torch file"
bench_note "ckpt convert reads the pickle without executing it, writes the safetensors file (fsync, rename) and hashes the source once for __metadata__, on a thread of its own while the output is written (the header gets the digest in place of a placeholder of the same length before the fsync).  Contiguous tensors go file to file with copy_file_range; the source has one transposed 64 MiB view, gathered through a read-only mapping.  Targets: at least 0.8x cp + sync, at least 10x torch.load (+ save_file, absent here)."
BENCH_BYTES=$size bench_compare 'torch file to safetensors' \
    'ckpt -q convert --force "$SRC" "$OUT"' \
    'cp "$SRC" "$W/copy" && sync "$W/copy"' \
    '"$PY" -c "import sys, torch; torch.load(sys.argv[1])" "$SRC"'
bench_end
