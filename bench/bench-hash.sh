#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-hash.sh - throughput of libckpt's hash interface (bench/hashbench:
# ckpt_hash_new/update/final, one thread, 1 MiB reads) on a 1 GiB file in
# the page cache, against openssl dgst -sha256, sha256sum and b2sum; and
# the same SHA-256 through the libsodium fallback (a NO_OPENSSL=1 build of
# libckpt), which is where README's "about 5x" comes from.
. "$(dirname "$0")/lib.sh"

: "${BENCH_HASH_SIZE:=1073741824}"
F="$BENCH_OUT/hash-input.bin"
SODIUM="$BENCH_OUT/build-sodium/bench"
trap 'rm -f "$F"' EXIT INT TERM

command -v hashbench >/dev/null || bench_die "hashbench not built (make bench)"
make -s -C "$SRC_DIR" O="$BENCH_OUT/build-sodium" NO_OPENSSL=1 \
    "$BENCH_OUT/build-sodium/bench/hashbench" >/dev/null ||
	bench_die "could not build the NO_OPENSSL=1 hashbench"
test "$(hashbench -b)" = openssl ||
	bench_die "hashbench in $CKPT_BUILD does not use OpenSSL"
test "$("$SODIUM/hashbench" -b)" = libsodium ||
	bench_die "$SODIUM/hashbench does not use libsodium"

ckpt-test-tool fill "$F" "$BENCH_HASH_SIZE" 7 ||
	bench_die "cannot write $F"

# The timings mean nothing unless everyone computes the same digest.
want=$(sha256sum "$F" | cut -d' ' -f1)
for got in "$(hashbench "$F")" "$("$SODIUM/hashbench" "$F")" \
    "$(openssl dgst -sha256 -r "$F")"; do
	test "${got%% *}" = "$want" || bench_die "SHA-256 mismatch: $got"
done
want=$(b2sum -l 256 "$F" | cut -d' ' -f1)
got=$(hashbench -a blake2b "$F")
test "${got%% *}" = "$want" || bench_die "BLAKE2b mismatch: $got"

bench_begin hash "hash interface throughput, 1 GiB file, one thread"
export F SODIUM
BENCH_BYTES=$BENCH_HASH_SIZE bench_compare sha256 'hashbench "$F"' \
    'openssl dgst -sha256 "$F"' 'sha256sum "$F"' '"$SODIUM"/hashbench "$F"'
ossl=$(bench_median 0)
sod=$(bench_median 3)
BENCH_BYTES=$BENCH_HASH_SIZE bench_compare blake2b \
    'hashbench -a blake2b "$F"' 'b2sum -l 256 "$F"' 'b2sum "$F"'
x=$(awk -v a="$sod" -v b="$ossl" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
bench_note "SHA-256 through libcrypto is ${x}x faster than the libsodium" \
    "fallback (\`\"\$SODIUM\"/hashbench\`: libckpt built with NO_OPENSSL=1)" \
    "on this machine.  \`hashbench\` is bench/hashbench.c; the input is" \
    "pseudo-random and cached, so the figures are CPU throughput."
bench_end
echo "   libcrypto SHA-256 vs libsodium fallback: ${x}x"
