#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-convert.sh - "ckpt convert" of a 1 GiB torch.save file (16 float32
# tensors of 64 MiB, one of them a transposed view) to safetensors,
# against cp of the same bytes + sync (convert fsyncs its output) and
# against the Python way: torch.load + safetensors.torch.save_file.
# Debian 12 has no safetensors package, so save_file is done as it does
# it by bench/torch-st-peer.py; torch.load alone and "import torch" alone
# are timed too, and cp alone, so that the note can give the physical
# floor: torch.load without the import, the writeback of 1 GiB on this
# disk (cp + sync - cp), and convert's one sequential SHA-256 of the
# source (ckpt sha256sum).  cp alone runs right after cp + sync, over the
# synced copy, so that both start from the same state (a cp to a new file
# would first wait for the removal of the last one, still dirty).
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

"$PY" "$BENCH_DIR/torch-st-peer.py" "$SRC" "$W/py.safetensors" state_dict ||
	bench_die "torch-st-peer.py failed"
"$PY" "$SRC_DIR/tests/helper/st-check.py" "$SRC" "$W/py.safetensors" \
    state_dict >/dev/null || bench_die "the Python peer's file does not match"

bench_begin convert "convert of a $((size >> 20)) MiB torch file"
BENCH_SETTLE=sync BENCH_BYTES=$size bench_compare 'torch file to safetensors' \
    'ckpt -q convert --force "$SRC" "$OUT"' \
    'cp "$SRC" "$W/copy" && sync "$W/copy"' \
    'cp "$SRC" "$W/copy"' \
    '"$PY" "$BENCH_DIR/torch-st-peer.py" "$SRC" "$W/py.safetensors" state_dict' \
    '"$PY" -c "import sys, torch; torch.load(sys.argv[1])" "$SRC"' \
    '"$PY" -c "import torch"'
conv=$(bench_median 0) cpsync=$(bench_median 1) cp=$(bench_median 2)
pyst=$(bench_median 3) load=$(bench_median 4) imp=$(bench_median 5)
BENCH_BYTES=$size bench_compare 'SHA-256 of the source' \
    'ckpt sha256sum "$SRC"' \
    'cat "$SRC" >/dev/null'
sha=$(bench_median 0)
bench_note "ckpt convert reads the pickle without executing it, writes the safetensors file (fsync, rename) and hashes the source once for __metadata__, on a thread of its own while the output is written (the header gets the digest in place of a placeholder of the same length before the fsync).  The output goes to the disk with O_DIRECT from three 16 MiB buffers that a writer thread empties (no page cache, so the core a buffered copy would take is left to the hash); the tensors are read straight into those buffers, the transposed 64 MiB view gathered through a read-only mapping.  The Python peer is torch.load + save_file as safetensors does it (bench/torch-st-peer.py; the package is not in Debian 12, and save_file does not fsync).  Every timed run starts after sync(1), untimed, so no command pays for the writeback the one before it left (cp alone leaves 1 GiB dirty).  Targets: at least 0.8x cp + sync, at least 10x torch.load + save_file."
bench_note "$(awk -v conv="$conv" -v cpsync="$cpsync" -v cp="$cp" \
    -v pyst="$pyst" -v load="$load" -v imp="$imp" -v sha="$sha" 'BEGIN {
	wb = cpsync - cp
	printf "The physical argument, from these medians: torch.load costs %.2f s, of which %.2f s is the import of torch (%.2f s without it); torch.load + save_file costs %.2f s.  ", load, imp, load - imp, pyst
	printf "convert must at least read and write the bytes (cp alone: %.2f s), have them on the disk (the writeback of the copy: cp + sync - cp = %.2f s) and take one sequential SHA-256 of the source (%.2f s on one core; it overlaps the copy).  ", cp, wb, sha
	floor = cpsync > sha ? cpsync : sha
	printf "So convert cannot take less than about %.2f s (the larger of cp + sync and the SHA-256), while 10x faster than the Python way means at most %.2f s (than torch.load alone: %.2f s; than torch.load without the import: %.2f s): ", floor, pyst / 10, load / 10, (load - imp) / 10
	if (pyst / 10 < floor)
		printf "the 10x target is out of reach on this machine, by physics, not by code; convert is %.1fx torch.load + save_file and %.1fx torch.load alone.", pyst / conv, load / conv
	else
		printf "within reach; convert is %.1fx torch.load + save_file.", pyst / conv
    }')"
bench_end
