#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-tensors.sh - inspect of a torch.save file of many small tensors
# (issue 17: 40,000 tensors, under 0.2 s and 32 MB of RSS), against
# unzip -l listing the same archive's central directory and torch.load,
# in the same invocation.  The file is made by real torch (python3-torch)
# and deleted on exit.  BENCH_TENSORS_N sets the count (default 40000).
. "$(dirname "$0")/lib.sh"

PY=${PYTHON:-/usr/bin/python3}
N=${BENCH_TENSORS_N:-40000}
T="$BENCH_OUT/tensors-$N.pt"
export T PY
trap 'rm -f "$T"' EXIT INT TERM
command -v ckpt >/dev/null || bench_die "ckpt not built"

# A state dict of N F32 tensors of 88 elements, as in the issue (about
# 350 bytes of data each).
"$PY" - "$T" "$N" <<-\EOF || bench_die "cannot write $T (needs torch)"
import sys, torch
g = torch.Generator().manual_seed(1)
n = int(sys.argv[2])
sd = {"model.layers.%d.block.%d.weight" % (i // 100, i % 100):
      torch.randn(88, generator=g) for i in range(n)}
torch.save(sd, sys.argv[1])
EOF
test "$(ckpt inspect --json "$T" | "$PY" -c 'import json, sys
print(len(json.load(sys.stdin)["files"][0]["tensors"]))')" = "$N" ||
	bench_die "ckpt inspect does not list $N tensors"

# Peak RSS (KiB) and CPU seconds (user + system) of one run.
usage() {
	/usr/bin/time -f '%M %U %S' sh -c "$1 >/dev/null" 2>&1 | tail -n 1
}

bench_begin tensors "inspect of a torch.save file of $N small tensors"
bench_compare "$N tensors" 'ckpt inspect "$T"' 'ckpt inspect --json "$T"' \
    'unzip -l "$T"' \
    '"$PY" -c "import sys, torch; torch.load(sys.argv[1])" "$T"'
ck=$(awk -v t="$(bench_median 0)" 'BEGIN { printf "%.3f", t }')
set -- $(usage 'ckpt inspect "$T"')
rss=$1 cpu=$(awk -v u="$2" -v s="$3" 'BEGIN { printf "%.2f", u + s }')
set -- $(usage 'ckpt inspect --json "$T"')
rssj=$1
set -- $(usage 'unzip -l "$T"')
rssu=$1
verdict() {
	awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "NOT met") }'
}
bench_note "ckpt inspect of $N tensors: median ${ck} s (target 0.2 s:" \
    "$(verdict "$ck" 0.2)), $cpu s of CPU in one run; peak RSS $rss KiB" \
    "(target 32768 KiB: $(verdict "$rss" 32768)), --json $rssj KiB," \
    "unzip -l $rssu KiB.  ckpt reads the central directory, every local" \
    "header and data.pkl through 256 KiB windows; each tensor set under" \
    "a str key of the root dict goes into the tensor table as the" \
    "pickle runs (its storage resolved, its view checked), and its" \
    "nodes are given back at once, so no tree of the state dict is" \
    "kept; the metadata JSON text is written from the names taken." \
    "A pickle that turns out to be more than such a dict is read again" \
    "into a tree and walked, as before.  What is left per tensor at" \
    "the peak: the table entry (96 bytes) and its strings (name, shape," \
    "strides, storage key), the storage record and its hash slot, the" \
    "name's hash slot, and its share of the central directory.  The" \
    "text view measures the table's rows, then prints them, and prints" \
    "the metadata from its text; --json writes the document as it" \
    "goes, a tensor at a time (neither builds a jansson tree of it)."
bench_end
