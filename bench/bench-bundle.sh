#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-bundle.sh - "ckpt export" and "ckpt import" of a committed
# checkpoint (4 files, 1 GiB of random-looking tensor data) against GNU
# tar over the same directory with the same compression: plain tar at the
# full size, gzip and zstd (both at their default levels) on a sixteenth
# of it, to keep the run short.  export writes durably (fsync, rename) and
# import checks the SHA-256 of every file and commits (fsync, rename); tar
# does neither, so each tar is followed by a sync of what it wrote.
. "$(dirname "$0")/lib.sh"

: "${BENCH_BUNDLE_SIZE:=1073741824}"
W="$BENCH_OUT/bundle"
trap 'rm -rf "$W"' EXIT INT TERM
rm -rf "$W" && mkdir -p "$W" || bench_die "cannot create $W"

mk() {	# mk NAME SIZE: a store with NAME@1 of SIZE bytes in 4 files
	mkdir -p "$W/src-$1" &&
	for i in 1 2 3 4; do
		ckpt-test-tool fill "$W/src-$1/part-$i.bin" $(($2 / 4)) "$i" ||
			return 1
	done &&
	ckpt -q -C "$W/a" save --copy --run "$1" --step 1 "$W/src-$1" >/dev/null
}
mk big "$BENCH_BUNDLE_SIZE" && mk small $((BENCH_BUNDLE_SIZE / 16)) ||
	bench_die "cannot make the checkpoints"
BIG="$W/a/runs/big/step-1"
SMALL="$W/a/runs/small/step-1"
export W BIG SMALL

bench_begin bundle "export and import of a checkpoint vs tar"
bench_note "Plain: $((BENCH_BUNDLE_SIZE >> 20)) MiB; gzip and zstd: $((BENCH_BUNDLE_SIZE >> 24)) MiB (incompressible data). export fsyncs its output, import hashes every file and commits it; each tar is followed by a sync."
BENCH_BYTES=$BENCH_BUNDLE_SIZE bench_compare 'export, plain' \
    'ckpt -q -C "$W/a" export --force -o "$W/b.tar" big@1' \
    'tar -C "$BIG" -cf "$W/t.tar" . && sync "$W/t.tar"'
BENCH_BYTES=$BENCH_BUNDLE_SIZE bench_compare 'import, plain' \
    'rm -rf "$W/b" && ckpt -q -C "$W/b" import "$W/b.tar"' \
    'rm -rf "$W/x" && mkdir "$W/x" && tar -C "$W/x" -xf "$W/t.tar" && sync -f "$W/x"'
BENCH_BYTES=$((BENCH_BUNDLE_SIZE / 16)) bench_compare 'export, gzip' \
    'ckpt -q -C "$W/a" export --gzip --force -o "$W/s.tgz" small@1' \
    'tar -C "$SMALL" -czf "$W/t.tgz" . && sync "$W/t.tgz"'
BENCH_BYTES=$((BENCH_BUNDLE_SIZE / 16)) bench_compare 'import, gzip' \
    'rm -rf "$W/b" && ckpt -q -C "$W/b" import "$W/s.tgz"' \
    'rm -rf "$W/x" && mkdir "$W/x" && tar -C "$W/x" -xzf "$W/t.tgz" && sync -f "$W/x"'
if ckpt -q -C "$W/a" export --zstd --force -o "$W/s.tzst" small@1 2>/dev/null &&
    command -v zstd >/dev/null; then
	BENCH_BYTES=$((BENCH_BUNDLE_SIZE / 16)) bench_compare 'export, zstd' \
	    'ckpt -q -C "$W/a" export --zstd --force -o "$W/s.tzst" small@1' \
	    'tar -C "$SMALL" --zstd -cf "$W/t.tzst" . && sync "$W/t.tzst"'
	BENCH_BYTES=$((BENCH_BUNDLE_SIZE / 16)) bench_compare 'import, zstd' \
	    'rm -rf "$W/b" && ckpt -q -C "$W/b" import "$W/s.tzst"' \
	    'rm -rf "$W/x" && mkdir "$W/x" && tar -C "$W/x" --zstd -xf "$W/t.tzst" && sync -f "$W/x"'
fi
bench_end
