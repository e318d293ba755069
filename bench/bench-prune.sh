#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-prune.sh - "ckpt prune --dry-run" over a store of 10,000 committed
# checkpoints (10 runs of 1,000), target under 1 s (SPEC §7).  The plan
# reads every checkpoint's summary, resolves pins and registry protection
# and runs the retention engine on each run.  Peers: walking the same tree
# with find(1) to every manifest (the floor for any tool that looks at each
# checkpoint), and "ckpt ls" of the same store (the listing alone).
. "$(dirname "$0")/lib.sh"

S=$BENCH_OUT/prune-store
export S
trap 'rm -rf "$S"' EXIT
rm -rf "$S"
args=
for r in 0 1 2 3 4 5 6 7 8 9; do
	args="$args --count 1000 run$r"
done
# shellcheck disable=SC2086
/usr/bin/python3 "$SRC_DIR/tests/helper/mk-store.py" "$S" $args ||
	bench_die "cannot build the store"

# Sanity: the plan covers every checkpoint and finds the same count as find.
n=$(ckpt -C "$S" prune --dry-run --all --keep-last 5 --keep-best 3 \
    --metric loss --keep-daily 7 --keep-weekly 4 --json |
    /usr/bin/python3 -c 'import json, sys
d = json.load(sys.stdin)
print(sum(len(r["keep"]) + len(r["remove"]) for r in d["runs"]))') ||
	bench_die "prune --dry-run failed"
m=$(find "$S/runs" -name ckpt-manifest.json | wc -l)
test "$n" = 10000 && test "$m" = 10000 ||
	bench_die "expected 10000 checkpoints, prune saw $n, find $m"

bench_begin prune 'prune --dry-run, 10,000 checkpoints in 10 runs'
bench_compare 'plan, 4 rules' \
	'ckpt -C "$S" prune --dry-run --all --keep-last 5 --keep-best 3 --metric loss --keep-daily 7 --keep-weekly 4' \
	'find "$S/runs" -name ckpt-manifest.json' \
	'ckpt -C "$S" ls'
t=$(bench_median 0)
# CPU time (user + system) of one more run: what the load average cannot
# inflate on a shared machine.
cpu=$( { /usr/bin/time -f "%U %S" ckpt -C "$S" prune --dry-run --all \
    --keep-last 5 --keep-best 3 --metric loss --keep-daily 7 \
    --keep-weekly 4 >/dev/null; } 2>&1 | awk '{ printf "%.2f", $1 + $2 }')
if awk -v t="$t" 'BEGIN { exit !(t < 1.0) }'; then
	verdict="met"
else
	verdict="NOT met at this load"
fi
bench_note "Target: under 1 s wall-clock: $verdict (median $t s; CPU time of one run, user + system: $cpu s).  The store is synthetic (tests/helper/mk-store.py: one small file, a summary and a manifest per checkpoint, all with the same time); prune reads each checkpoint's summary, pins and the registry, plans each run and prints a table of 10,000 rows."
bench_end
