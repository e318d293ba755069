#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-save.sh - the cost of "ckpt save" and "ckpt ls":
#  - save --move of 4 files (1 GiB in all) and of one 1 GiB file, against
#    one hashing pass by sha256sum and openssl over the same files, and
#    the machine's hashing limit (cores x single-core OpenSSL SHA-256, as
#    bench/hashbench measures it); a --move save also writes, fsyncs and
#    commits, and computes two digests of each byte (file digest +
#    tensor-or-chunk digest, ckpt-manifest(5)) from one read, as two
#    interleaved SHA-256 streams on every core (lib/crypto/sha256.c);
#  - save --copy against cp plus that pass;
#  - ls over a synthetic store of 10,000 checkpoints.
. "$(dirname "$0")/lib.sh"

: "${BENCH_SAVE_SIZE:=1073741824}"
: "${BENCH_LS_COUNT:=10000}"
W="$BENCH_OUT/save"
S="$W/store"
D="$W/src"
T="$W/copy"
trap 'rm -rf "$W"' EXIT INT TERM
rm -rf "$W" && mkdir -p "$W" || bench_die "cannot create $W"
command -v hashbench >/dev/null || bench_die "hashbench not built (make bench)"

quarter=$((BENCH_SAVE_SIZE / 4))
mkdir -p "$D" &&
for i in 1 2 3 4; do
	ckpt-test-tool fill "$D/part-$i.bin" "$quarter" "$i" || exit 3
done
ckpt init -q "$S" || bench_die "ckpt init failed"

# The figures mean nothing unless save records what sha256sum computes.
ckpt -q -C "$S" save --copy --run check --step 1 "$D" >/dev/null ||
	bench_die "save failed"
for f in "$D"/*; do
	want=$(sha256sum "$f" | cut -d' ' -f1)
	grep -q "sha256:$want" "$S/runs/check/step-1/ckpt-manifest.json" ||
		bench_die "manifest digest of $f differs from sha256sum"
done
rm -rf "$S/runs/check"

# A --move save empties "$D"; the step directory is moved back after it.
MOVE='ckpt -q -C "$S" save --move --run b --step 1 "$D" >/dev/null && mv "$S/runs/b/step-1" "$D" && rm "$D"/ckpt-*.json'
COPY='ckpt -q -C "$S" save --copy --run c --step 1 "$D" >/dev/null && rm -rf "$S/runs/c/step-1"'
export S D T

bench_begin save "save --move and --copy of 1 GiB, ls of $BENCH_LS_COUNT checkpoints"
BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'move, 4 files' "$MOVE" \
    'sha256sum "$D"/*' 'openssl dgst -sha256 "$D"/*' \
    'hashbench "$D"/*'
move4=$(bench_median 0)
single=$(bench_median 3)

mkdir -p "$W/one" && cat "$D"/* >"$W/one/model.bin" && rm -rf "$D" &&
mv "$W/one" "$D"
BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'move, 1 file' "$MOVE" \
    'sha256sum "$D"/*' 'openssl dgst -sha256 "$D"/*' \
    'hashbench "$D"/model.bin'
move1=$(bench_median 0)
single1=$(bench_median 3)

BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'copy, 1 file' "$COPY" \
    'cp -r "$D" "$T" && sha256sum "$T"/* && rm -rf "$T"' \
    'cp -r "$D" "$T" && openssl dgst -sha256 "$T"/* && rm -rf "$T"' \
    'cp -r "$D" "$T" && hashbench "$T"/model.bin && rm -rf "$T"'
copy=$(bench_median 0)
cpone=$(bench_median 2)
rm -rf "$D"

"${PYTHON:-python3}" "$SRC_DIR/tests/helper/mk-store.py" "$W/big" \
    --count "$BENCH_LS_COUNT" run-a >/dev/null ||
	bench_die "cannot make the synthetic store"
L="$W/big"
export L
n=$(ckpt -C "$L" ls --json | grep -c '"step": ')
test "$n" = "$BENCH_LS_COUNT" || bench_die "ls listed $n checkpoints"
bench_compare "ls, $BENCH_LS_COUNT" 'ckpt -C "$L" ls' \
    'ckpt -C "$L" ls --json' 'ls -R "$L/runs"' \
    'find "$L/runs" -name ckpt-summary.json -exec cat {} +'
lsm=$(bench_median 0)

cores=$(nproc)
bench_note "Machine hashing limit for 1 GiB = single-core OpenSSL time /" \
    "cores ($cores): $(awk -v s="$single" -v c="$cores" \
    'BEGIN { printf "%.3f s", s / c }') for 4 files; save --move took" \
    "$(awk -v a="$move4" -v s="$single" -v c="$cores" \
    'BEGIN { printf "%.2f", a / (s / c) }')x that limit (4 files) and" \
    "$(awk -v a="$move1" -v s="$single1" 'BEGIN { printf "%.2f", a / s }')x" \
    "one single-core pass (1 file: the file digest is sequential)." \
    "Each byte gets two digests (its file's and its tensor's or" \
    "chunk's), from one read, as two interleaved SHA-256 streams per" \
    "core; two streams cost a core about 1.35x one (see verify's" \
    "one-thread figure), so about 1.35x the single-digest limit is the" \
    "floor for 4 files." \
    "save --copy took $(awk -v a="$copy" -v b="$cpone" \
    'BEGIN { printf "%.2f", a / b }')x cp + openssl." \
    "ls of $BENCH_LS_COUNT checkpoints: ${lsm} s (target: under 1 s)." \
    "Inputs are pseudo-random and in the page cache; save includes its" \
    "fsyncs and the commit."
bench_end
