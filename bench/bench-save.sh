#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-save.sh - the cost of "ckpt save" and "ckpt ls":
#  - save --move of 4 files (1 GiB in all) and of one 1 GiB file, against
#    one hashing pass by sha256sum and openssl over the same files, and
#    the machine's hashing limit: cores x the best one-core SHA-256 rate
#    measured in the same run, libcrypto's (bench/hashbench) or ckpt's own
#    two-stream engine's (ckpt verify -j 1 of the same bytes).  A --move
#    save also writes, fsyncs and commits; it digests each byte once (the
#    ranges of manifest schema 2, ckpt-manifest(5)), on every core;
#  - save --copy against cp of the same files plus ckpt verify of them,
#    and against the disk's floor: the same bytes written with O_DIRECT;
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

# Safetensors shards of F32 tensors of pseudo-random bytes (32 MiB each
# at the default size), as a trainer writes them.
PY=${PYTHON:-python3}
"$PY" "$BENCH_DIR/mk-bench-ckpt.py" "$D" 4 $((BENCH_SAVE_SIZE / 4)) 8 ||
	bench_die "cannot write $D"
ckpt init -q "$S" || bench_die "ckpt init failed"

# The figures mean nothing unless save records what the bytes are: the
# ranges it records must verify, and a whole-file digest, when asked for,
# must be what sha256sum computes.
ckpt -q -C "$S" save --copy --file-sha256 --run check --step 1 "$D" \
    >/dev/null || bench_die "save failed"
for f in "$D"/*; do
	want=$(sha256sum "$f" | cut -d' ' -f1)
	grep -q "sha256:$want" "$S/runs/check/step-1/ckpt-manifest.json" ||
		bench_die "manifest digest of $f differs from sha256sum"
done
rm -rf "$S/runs/check"
# V: a committed copy of the same bytes, for the one-core rate of ckpt's
# engine (verify -j 1) and for cp + verify.
ckpt -q -C "$S" save --copy --run v --step 1 "$D" >/dev/null ||
	bench_die "save failed"
V="$S/runs/v/step-1"
ckpt verify -q --no-cache "$V" || bench_die "verify of a save fails"

# The disk's floor for a copy: every whole MiB of the files in $1 written
# to $2 with O_DIRECT by 4 dd at once (parts of a file when there are fewer
# than 4 files), no hashing, no fsync.  A save --copy cannot beat it: its
# copy must be on the disk before the commit.
direct_copy() {
	nf=$(ls "$1" | wc -l)
	parts=$(( (4 + nf - 1) / nf ))
	mkdir -p "$2" || return
	for f in "$1"/*; do
		mib=$(( $(stat -c %s "$f") >> 20 ))
		per=$(( (mib + parts - 1) / parts ))
		k=0
		while test "$k" -lt "$parts"; do
			dd if="$f" of="$2/${f##*/}" bs=1M count="$per" \
			    skip=$((k * per)) seek=$((k * per)) oflag=direct \
			    conv=notrunc status=none &
			k=$((k + 1))
		done
	done
	wait
}

# A --move save empties "$D"; the step directory is moved back after it.
MOVE='ckpt -q -C "$S" save --move --run b --step 1 "$D" >/dev/null && mv "$S/runs/b/step-1" "$D" && rm "$D"/ckpt-*.json'
COPY='ckpt -q -C "$S" save --copy --run c --step 1 "$D" >/dev/null && rm -rf "$S/runs/c/step-1"'
export S D T V

bench_begin save "save --move and --copy of 1 GiB, ls of $BENCH_LS_COUNT checkpoints"
BENCH_SETTLE=sync BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'move, 4 files' "$MOVE" \
    'sha256sum "$D"/*' 'openssl dgst -sha256 "$D"/*' \
    'hashbench "$D"/*' 'ckpt verify -q --no-cache -j 1 "$V"'
move4=$(bench_median 0)
lib4=$(bench_median 3)
eng4=$(bench_median 4)
# CPU time (user + sys) does not depend on what else runs: a save that
# hashes each byte once costs about what one pass of the engine does.
cpu() {
	/usr/bin/time -f '%U %S' sh -c "$1" 2>&1 >/dev/null | tail -n 1 |
	    awk '{ printf "%.2f", $1 + $2 }'
}
cpu_move=$(cpu "$MOVE")
cpu_eng=$(cpu 'ckpt verify -q --no-cache -j 1 "$V"')
cpu_whole=$(cpu "$(echo "$MOVE" | sed 's/save --move/save --move --file-sha256/')")

BENCH_SETTLE=sync BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'copy, 4 files' "$COPY" \
    'cp -r "$V" "$T" && ckpt verify -q --no-cache "$T" && rm -rf "$T"' \
    'cp -r "$V" "$T" && sync "$T"/* && ckpt verify -q --no-cache "$T" && rm -rf "$T"' \
    'cp -r "$D" "$T" && openssl dgst -sha256 "$T"/* && rm -rf "$T"' \
    'direct_copy "$V" "$T" && rm -rf "$T"'
copy4=$(bench_median 0)
cpv4=$(bench_median 1)
cpsv4=$(bench_median 2)
dio4=$(bench_median 4)
cpu_copy4=$(cpu "$COPY")

rm -rf "$D" &&
"$PY" "$BENCH_DIR/mk-bench-ckpt.py" "$D" 1 "$BENCH_SAVE_SIZE" 32 &&
rm -rf "$S/runs/v" &&
ckpt -q -C "$S" save --copy --run v --step 1 "$D" >/dev/null ||
	bench_die "save failed"
BENCH_SETTLE=sync BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'move, 1 file' "$MOVE" \
    'sha256sum "$D"/*' 'openssl dgst -sha256 "$D"/*' \
    'hashbench "$D"/*' 'ckpt verify -q --no-cache -j 1 "$V"'
move1=$(bench_median 0)
lib1=$(bench_median 3)
eng1=$(bench_median 4)

BENCH_SETTLE=sync BENCH_BYTES=$BENCH_SAVE_SIZE bench_compare 'copy, 1 file' "$COPY" \
    'cp -r "$V" "$T" && ckpt verify -q --no-cache "$T" && rm -rf "$T"' \
    'cp -r "$V" "$T" && sync "$T"/* && ckpt verify -q --no-cache "$T" && rm -rf "$T"' \
    'cp -r "$D" "$T" && openssl dgst -sha256 "$T"/* && rm -rf "$T"' \
    'direct_copy "$V" "$T" && rm -rf "$T"'
copy1=$(bench_median 0)
cpv1=$(bench_median 1)
cpsv1=$(bench_median 2)
dio1=$(bench_median 4)
cpu_copy1=$(cpu "$COPY")
rm -rf "$D" "$S/runs/v"

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
# share SAVE_S LIBCRYPTO_S ENGINE_S: the save's rate as a share of the
# limit, cores x the faster one-core rate (same bytes, same run).
share() {
	awk -v s="$1" -v l="$2" -v e="$3" -v n="$cores" 'BEGIN {
	    one = l < e ? l : e; lim = one / n
	    printf "%.0f%% of the limit (%d x the one-core %s pass: %.3f s " \
		"for 1 GiB on one core, so %.3f s)", 100 * lim / s, n,
		l < e ? "libcrypto" : "two-stream engine", one, lim }'
}
copyr() {	# copy_s cp_verify_s
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'
}
bench_note "save --move, 4 files: $(share "$move4" "$lib4" "$eng4");" \
    "it took ${cpu_move} s of CPU (user + sys), one pass of the engine" \
    "(verify -j 1) ${cpu_eng} s, and save --move --file-sha256" \
    "${cpu_whole} s (each byte digested twice); CPU time does not depend" \
    "on the load;" \
    "1 file: $(share "$move1" "$lib1" "$eng1").  Targets: at least 85%." \
    "save --copy took $(copyr "$copy4" "$cpv4") (4 files) and" \
    "$(copyr "$copy1" "$cpv1") (1 file) of cp + ckpt verify of the same" \
    "files (target: at most 1.3x); a save also makes the copies durable" \
    "(fsync, ckpt-save(1)), which cp does not: the second peer adds" \
    "sync(1) of the copies to cp + verify." \
    "save --copy took ${cpu_copy4} s (4 files) and ${cpu_copy1} s (1 file)" \
    "of CPU (user + sys)." \
    "The disk's floor, the last peer (4 dd writing every whole MiB of the" \
    "same files with O_DIRECT: no hashing, no fsync), took" \
    "$(awk -v a="$dio4" 'BEGIN { printf "%.2f", a }') s (4 files) and" \
    "$(awk -v a="$dio1" 'BEGIN { printf "%.2f", a }') s (1 file): save" \
    "--copy took $(copyr "$copy4" "$dio4") and $(copyr "$copy1" "$dio1")" \
    "of it, and that floor alone is $(copyr "$dio4" "$cpv4") and" \
    "$(copyr "$dio1" "$cpv1") of cp + verify." \
    "What the ratio depends on: save --copy reads each byte once, digests" \
    "it on every core while writer threads write its whole blocks with" \
    "O_DIRECT, 4 writes of 1 MiB in flight (lib/crypto/hashing.c): the" \
    "disk writes from the first byte and no CPU copies into the page" \
    "cache; the copy must be on disk before the commit.  cp + verify" \
    "copies in the page cache and hashes on every core, and writes" \
    "nothing back in the timed interval.  So the ratio" \
    "is near 1 where the disk writes back faster than the cores digest" \
    "(1 GiB / (cores x SHA-256 rate)), and grows toward (writeback time)" \
    "/ (cp + verify) where it does not: writeback of 1 GiB here, cp +" \
    "sync minus cp, $(awk -v a="$cpsv4" -v b="$cpv4" 'BEGIN {
	printf "%.2f", a - b }') s (4 files) and $(awk -v a="$cpsv1" \
    -v b="$cpv1" 'BEGIN { printf "%.2f", a - b }') s (1 file)." \
    "Manifest schema 2 covers each byte once by the digests of its ranges" \
    "(here each 32 MiB tensor is a range of its own, whose digest is its" \
    "content digest), so a save is one hashing pass on every core; the" \
    "whole-file SHA-256, a sequential digest per file, is recorded only" \
    "when the store asks" \
    "(ckpt.yaml manifest.file_sha256, save --file-sha256)." \
    "ckpt verify -j 1 is ckpt's engine on one core: two interleaved" \
    "SHA-256 streams (lib/crypto/sha256.c), faster than libcrypto's one." \
    "ls of $BENCH_LS_COUNT checkpoints: ${lsm} s (target: under 1 s)." \
    "Inputs are pseudo-random and in the page cache; save includes its" \
    "fsyncs and the commit.  Every timed run starts after sync(1), untimed," \
    "so no command pays for the writeback of the copy the one before it left."
bench_end
