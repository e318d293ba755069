#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-verify.sh - "ckpt verify" throughput against sha256sum -c, openssl
# dgst -sha256 and b2sum on the same files in the page cache: a multi-file
# checkpoint (8 safetensors files) and one large file; then the machine's
# hashing limit, cores x the best one-core SHA-256 rate measured in the
# same run (openssl dgst, one process on one core, or ckpt's own
# two-stream engine, ckpt verify -j 1), and ckpt's share of it (target: at
# least 90%).  Also the peak RSS of verify on a large file.  The manifests
# come from tests/helper/mk-manifest.py --schema 2 (ranges covering every
# byte once, content digests, as ckpt save writes them), so verify checks
# every byte.
. "$(dirname "$0")/lib.sh"

: "${BENCH_VERIFY_FILES:=8}"
: "${BENCH_VERIFY_FILE_SIZE:=134217728}"	# 8 x 128 MiB = 1 GiB
: "${BENCH_VERIFY_BIG:=2147483648}"		# one 2 GiB file
: "${BENCH_VERIFY_RSS:=4294967296}"		# 4 GiB file for the RSS figure
M="$BENCH_OUT/verify-multi"
B="$BENCH_OUT/verify-big"
R="$BENCH_OUT/verify-rss"
trap 'rm -rf "$M" "$B" "$R"' EXIT INT TERM
PY=${PYTHON:-python3}
cores=$(nproc)

rm -rf "$M" "$B" "$R"
trap 'rm -rf "$M" "$B" "$R" "$BENCH_OUT/multi.sha256" "$BENCH_OUT/big.sha256"' \
    EXIT INT TERM
"$PY" "$BENCH_DIR/mk-bench-ckpt.py" "$M" "$BENCH_VERIFY_FILES" \
    "$BENCH_VERIFY_FILE_SIZE" 8 || bench_die "cannot write $M"
"$PY" "$SRC_DIR/tests/helper/mk-manifest.py" --schema 2 "$M" ||
	bench_die "cannot write the manifest of $M"
"$PY" "$BENCH_DIR/mk-bench-ckpt.py" "$B" 1 "$BENCH_VERIFY_BIG" 64 ||
	bench_die "cannot write $B"
"$PY" "$SRC_DIR/tests/helper/mk-manifest.py" --schema 2 "$B" ||
	bench_die "cannot write the manifest of $B"
(cd "$M" && sha256sum *.safetensors >"$BENCH_OUT/multi.sha256")
(cd "$B" && sha256sum *.safetensors >"$BENCH_OUT/big.sha256")
mbytes=$(cat "$M"/*.safetensors | wc -c)
bbytes=$(cat "$B"/*.safetensors | wc -c)

# The figures mean nothing unless verify checks what the peers check.
ckpt verify -q --no-cache "$M" "$B" || bench_die "verify fails on the input"
cp -r "$M" "$BENCH_OUT/verify-bad" &&
	ckpt-test-tool flip "$BENCH_OUT/verify-bad/model-00003-of-00008.safetensors" 99999999 &&
	! ckpt verify -q --no-cache "$BENCH_OUT/verify-bad" >/dev/null 2>&1 ||
	bench_die "verify misses a bit flip"
rm -rf "$BENCH_OUT/verify-bad"

export M B BENCH_OUT
bench_begin verify "ckpt verify vs sha256sum -c, openssl, b2sum (page cache)"
BENCH_BYTES=$mbytes bench_compare "multi-file" \
    'ckpt verify -q --no-cache "$M"' \
    'cd "$M" && sha256sum -c --quiet "$BENCH_OUT/multi.sha256"' \
    'openssl dgst -sha256 "$M"/*.safetensors' \
    'b2sum "$M"/*.safetensors'
mc=$(bench_median 0)
mo=$(bench_median 2)
BENCH_BYTES=$mbytes bench_compare "one thread" \
    'ckpt verify -q --no-cache -j 1 "$M"' \
    'openssl dgst -sha256 "$M"/*.safetensors'
m1=$(bench_median 0)
mo1=$(bench_median 1)
BENCH_BYTES=$bbytes bench_compare "one large file" \
    'ckpt verify -q --no-cache "$B"' \
    'cd "$B" && sha256sum -c --quiet "$BENCH_OUT/big.sha256"' \
    'openssl dgst -sha256 "$B"/*.safetensors' \
    'b2sum "$B"/*.safetensors'
bc=$(bench_median 0)
bo=$(bench_median 2)

# Limit: cores x the best one-core rate of the same run: openssl dgst's,
# or ckpt's engine on one thread (verify -j 1 of the multi-file case).
eng=$(awk -v b="$mbytes" -v t="$m1" 'BEGIN { print b / t }')
share() {	# bytes ckpt_seconds openssl_seconds
	awk -v b="$1" -v c="$2" -v o="$3" -v e="$eng" -v n="$cores" 'BEGIN {
	    one = b / o > e ? b / o : e; lim = n * one; got = b / c;
	    printf "%.0f MB/s of a %.0f MB/s limit (%d x %.0f MB/s, %s): " \
		"%.0f%%", got / 1e6, lim / 1e6, n, one / 1e6,
		(b / o > e ? "openssl" : "ckpt -j 1"), 100 * got / lim }'
}
ms=$(share "$mbytes" "$mc" "$mo")
one=$(awk -v c="$m1" -v o="$mo1" 'BEGIN { printf "%.0f%%", 100 * o / c }')
bs=$(share "$bbytes" "$bc" "$bo")

# Peak RSS on a larger file: memory must not grow with the data.
"$PY" "$BENCH_DIR/mk-bench-ckpt.py" "$R" 1 "$BENCH_VERIFY_RSS" 64 ||
	bench_die "cannot write $R"
"$PY" "$SRC_DIR/tests/helper/mk-manifest.py" --schema 2 "$R" ||
	bench_die "cannot write the manifest of $R"
rss=$(/usr/bin/time -f %M ckpt verify -q --no-cache "$R" 2>&1 >/dev/null |
    tail -n 1)
rssn=$(/usr/bin/time -f %M ckpt verify -q --no-cache --numerics "$R" 2>&1 \
    >/dev/null | tail -n 1)
rsize=$(awk -v b="$BENCH_VERIFY_RSS" 'BEGIN { printf "%.0f GiB", b / 1073741824 }')
rm -rf "$R"

bench_note "Machine hashing limit = cores x the best one-core SHA-256 rate" \
    "of the same run: \`openssl dgst\` (one process, one core) or ckpt's" \
    "engine on one thread (\`verify -j 1\`).  Target: at least 90%." \
    "Multi-file ($BENCH_VERIFY_FILES files): $ms.  One large file: $bs." \
    "With one thread (\`-j 1\`) ckpt runs at $one of openssl's speed," \
    "which is the per-core efficiency of the engine: above 100% because" \
    "each core digests two ranges at once, interleaved on the SHA" \
    "extensions (lib/crypto/sha256.c), where one stream leaves them half idle." \
    "ckpt hashes the manifest's ranges (schema 2: each tensor a range of" \
    "its own, the rest in 64 MiB chunks, every byte once) on every core" \
    "through ckpt_hash_files, checks the tensors' content digests, and" \
    "checks every file's structure on a pool beside it; sha256sum, openssl" \
    "and b2sum use one core.  Peak RSS of \`ckpt verify\` on a $rsize" \
    "file: ${rss} KiB (with --numerics, which decodes every value: ${rssn}" \
    "KiB), from /usr/bin/time; reads are pread into two fixed 1 MiB" \
    "buffers per thread, so it does not grow with the file.  The input is" \
    "pseudo-random safetensors in the page cache, so the figures are CPU" \
    "throughput; on a shared machine the load average above says how" \
    "much the other processes took: under heavy load the scheduler's" \
    "shares weigh on these ratios as much as hashing speed does, so" \
    "rerun on a quiet machine for the figure that counts."
bench_end
echo "   multi-file: $ms"
echo "   one thread: $one of openssl dgst"
echo "   one large file: $bs"
echo "   peak RSS on $rsize: $rss KiB (--numerics: $rssn KiB)"
