#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-inspect.sh - "ckpt inspect" reads headers only:
#  1. its time on a 4 MiB and on a 4 GiB safetensors file of the same
#     layout (64 tensors each) must be equal within noise;
#  2. against torch.load (Debian's python3-torch, /usr/bin/python3) on a
#     1 GiB torch.save file, which reads everything: the target is >= 100x.
# The files hold real bytes (not sparse) and are deleted on exit.
. "$(dirname "$0")/lib.sh"

PY=${PYTHON:-/usr/bin/python3}
S4M="$BENCH_OUT/inspect-4m.safetensors"
S4G="$BENCH_OUT/inspect-4g.safetensors"
T1G="$BENCH_OUT/inspect-1g.pt"
trap 'rm -f "$S4M" "$S4G" "$T1G"' EXIT INT TERM

command -v ckpt >/dev/null || bench_die "ckpt not built"

# 64 F32 tensors of 64 KiB or 64 MiB, written in 64 MiB blocks.
mkst() {
	"$PY" - "$1" "$2" <<-\EOF || bench_die "cannot write $1"
	import json, struct, sys
	path, per = sys.argv[1], int(sys.argv[2])
	h = {"__metadata__": {"format": "pt"}}
	for i in range(64):
	    h["layers.%d.weight" % i] = {"dtype": "F32", "shape": [per // 4],
	                                 "data_offsets": [i * per, (i + 1) * per]}
	hb = json.dumps(h, separators=(",", ":")).encode()
	hb += b" " * (-len(hb) % 8)
	block = bytes(range(256)) * (min(per, 64 << 20) // 256)
	with open(path, "wb") as f:
	    f.write(struct.pack("<Q", len(hb)) + hb)
	    for i in range(64):
	        left = per
	        while left:
	            n = min(left, len(block))
	            f.write(block[:n])
	            left -= n
	EOF
}

mkst "$S4M" 65536
mkst "$S4G" 67108864
test "$(wc -c <"$S4G")" -gt 4294967296 || bench_die "4 GiB file too small"

bench_begin inspect "ckpt inspect reads headers only"
export S4M S4G T1G PY
# Cheap runs: more of them, for a steadier median on a busy machine.
BENCH_REPS=${BENCH_INSPECT_REPS:-21} bench_compare \
    'safetensors 4 MiB vs 4 GiB' 'ckpt inspect "$S4M"' 'ckpt inspect "$S4G"'
small=$(bench_median 0)
big=$(bench_median 1)
rm -f "$S4G"

# A 1 GiB torch.save file: a state dict of 16 F32 tensors of 64 MiB.
"$PY" - "$T1G" <<-\EOF || bench_die "cannot write $T1G (needs torch)"
import sys, torch
g = torch.Generator().manual_seed(1)
sd = {"layers.%d.weight" % i: torch.randn(4096, 4096, generator=g)
      for i in range(16)}
torch.save(sd, sys.argv[1])
EOF
# Both must see the same tensors before their times mean anything.
ckpt inspect --json "$T1G" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
t = d["files"][0]["tensors"]
assert len(t) == 16 and all(x["shape"] == [4096, 4096] for x in t), t
' || bench_die "ckpt inspect does not read $T1G as expected"
BENCH_BYTES=$(wc -c <"$T1G") bench_compare 'torch zip 1 GiB' \
    'ckpt inspect "$T1G"' \
    '"$PY" -c "import sys, torch; torch.load(sys.argv[1])" "$T1G"' \
    '"$PY" -c "import torch"'
ck=$(bench_median 0)
tl=$(bench_median 1)
imp=$(bench_median 2)

r=$(awk -v a="$big" -v b="$small" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
x=$(awk -v a="$tl" -v b="$ck" 'BEGIN { printf "%.0f", (b > 0 ? a / b : 0) }')
y=$(awk -v a="$tl" -v i="$imp" -v b="$ck" \
    'BEGIN { printf "%.0f", (b > 0 ? (a - i) / b : 0) }')
bench_note "4 GiB / 4 MiB time ratio: ${r} (1.00 = equal; the first case" \
    "ran ${BENCH_INSPECT_REPS:-21} rounds).  Both files have the same" \
    "64-tensor header and real bytes; inspect reads the first 512 bytes and" \
    "the header only, so both times are process start-up plus a few" \
    "system calls, and their difference is the machine's noise." \
    "torch.load is ${x}x slower than ckpt inspect on the 1 GiB file;" \
    "${y}x when Python's and torch's import time (the third row) is" \
    "subtracted.  ckpt reads the zip central directory and data.pkl;" \
    "torch.load reads and copies every tensor."
bench_end
echo "   4 GiB/4 MiB: ${r}; torch.load/inspect: ${x}x (${y}x without import)"
