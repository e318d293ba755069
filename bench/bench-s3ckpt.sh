#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-s3ckpt.sh - the commands on checkpoints in S3 (issue 15's
# targets) against curl on a real Ceph RADOS Gateway on loopback
# (scripts/rgw, OSD on memstore):
#   - push of a 1 GiB checkpoint (one safetensors file) from a local store,
#     and save --copy of the file into the S3 store, vs `curl --aws-sigv4`
#     PUT of the same bytes (target: at least 0.8x);
#   - verify of it in the bucket vs curl GET | sha256sum (target 0.8x);
#   - inspect of a 4 GiB safetensors object (target: at most 3 requests,
#     under 0.2 s) vs the two ranged curl GETs any reader needs (length,
#     then header); its requests are counted by the fault proxy of the
#     tests, forwarding only;
#   - ls of a store with 1,000 checkpoints (target: under 2 s): the first
#     ls after the commits (each commit adds itself to the run's listing
#     index; timed once, a new process), the ls that rebuilds a deleted
#     index (timed once), then repeated, vs the bare ListObjectsV2 pages
#     of the run.
# BENCH_S3_SIZE (bytes, default 1 GiB) and BENCH_S3_INSPECT_SIZE (default
# 4 GiB) size the inputs; memstore holds about twice the live data in RAM.
. "$(dirname "$0")/lib.sh"

: "${BENCH_S3_SIZE:=1073741824}"
: "${BENCH_S3_INSPECT_SIZE:=4294967296}"
: "${PYTHON:=/usr/bin/python3}"
W="$BENCH_OUT/s3ckpt"
RGW_DIR=
PROXY_PID=
cleanup() {
	test -n "$PROXY_PID" && kill "$PROXY_PID" 2>/dev/null
	rm -rf "$W"
	test -n "$RGW_DIR" && "$SRC_DIR/scripts/rgw" stop "$RGW_DIR" >/dev/null
}
trap cleanup EXIT
trap 'exit 3' INT TERM

"$SRC_DIR/scripts/rgw" install || bench_die "Ceph RGW packages missing"
command -v curl >/dev/null || bench_die "curl missing"
RGW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-rgw-bench.XXXXXX") ||
	bench_die "mktemp failed"
mem=$((6 * BENCH_S3_SIZE + 3 * BENCH_S3_INSPECT_SIZE))
CKPT_RGW_MEMSTORE_BYTES=$mem "$SRC_DIR/scripts/rgw" start "$RGW_DIR" \
    >"$BENCH_OUT/rgw.env" || bench_die "scripts/rgw start failed"
. "$BENCH_OUT/rgw.env"
B=$CKPT_RGW_BUCKET
URL="$AWS_ENDPOINT_URL/$B"
CURLCONF="$RGW_DIR/curl.conf"
E=$(printf '' | sha256sum | cut -d' ' -f1)
DEST="s3://$B/team"
rm -rf "$W" && mkdir -p "$W" || bench_die "cannot create $W"

# st PATH SIZE SEED: a safetensors file of SIZE bytes of data in 64
# U8 tensors, the data from ckpt-test-tool fill (fast, incompressible).
st() {
	"$PYTHON" - "$1.hdr" "$2" <<-\EOF || return 1
	import json, struct, sys
	path, size, n = sys.argv[1], int(sys.argv[2]), 64
	each = size // n
	h, off = {}, 0
	for i in range(n):
	    s = each if i < n - 1 else size - off
	    h["layers.%d.weight" % i] = {"dtype": "U8", "shape": [s],
	                                 "data_offsets": [off, off + s]}
	    off += s
	j = json.dumps(h, separators=(",", ":")).encode()
	j += b" " * (-len(j) % 8)
	open(path, "wb").write(struct.pack("<Q", len(j)) + j)
	EOF
	ckpt-test-tool fill "$1.data" "$2" "$3" &&
	cat "$1.hdr" "$1.data" >"$1" && rm -f "$1.hdr" "$1.data"
}

st "$W/model.safetensors" "$BENCH_S3_SIZE" 5 || bench_die "cannot write input"
F="$W/model.safetensors"
SIZE=$(wc -c <"$F")
SHA=$(sha256sum "$F" | cut -d' ' -f1)
ckpt -C "$W/store" init >/dev/null &&
    ckpt -C "$W/store" save --copy --run b --step 1 "$F" >/dev/null ||
	bench_die "save failed"
ckpt init -C "$DEST" >/dev/null || bench_die "cannot create the S3 store"
KEYS="ckpt-manifest.json ckpt-summary.json model.safetensors"
# Removes the pushed checkpoint, so that each push sends everything.
unpush() {
	for k in $KEYS; do
		ckpt-test-tool s3 "$B" delete "team/runs/b/step-1/$k" || return 1
	done
}
# The same for the saved one.
unsave() {
	for k in $KEYS; do
		ckpt-test-tool s3 "$B" delete "team/runs/s/step-1/$k" || return 1
	done
}
export B URL CURLCONF E DEST F SHA W

ckpt -C "$W/store" push b@1 "$DEST" >/dev/null || bench_die "push failed"
ckpt -C "$DEST" save --copy --run s --step 1 "$F" >/dev/null 2>&1 ||
	bench_die "save to S3 failed"
curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $SHA" -T "$F" \
    "$URL/bench/curl" >/dev/null || bench_die "curl PUT failed"
ckpt verify "$DEST/runs/b/step-1" >/dev/null || bench_die "verify failed"

bench_begin s3ckpt "push, save, verify, inspect and ls of checkpoints in S3 vs curl, RGW on loopback"
BENCH_BYTES=$SIZE bench_compare "push $((BENCH_S3_SIZE >> 20)) MiB" \
    'unpush && ckpt -C "$W/store" push b@1 "$DEST"' \
    'curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $SHA" -T "$F" "$URL/bench/up2"' \
    'h=$(sha256sum <"$F" | cut -d" " -f1) && curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $h" -T "$F" "$URL/bench/up3"'
unpush || bench_die "cannot remove the pushed checkpoint"
BENCH_BYTES=$SIZE bench_compare "save $((BENCH_S3_SIZE >> 20)) MiB" \
    'unsave && ckpt -C "$DEST" save -q --copy --run s --step 1 "$F"' \
    'curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $SHA" -T "$F" "$URL/bench/up2"' \
    'h=$(sha256sum <"$F" | cut -d" " -f1) && curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $h" -T "$F" "$URL/bench/up3"'
ckpt -C "$W/store" push b@1 "$DEST" >/dev/null || bench_die "push failed"
BENCH_BYTES=$SIZE bench_compare "verify $((BENCH_S3_SIZE >> 20)) MiB" \
    'ckpt verify "$DEST/runs/b/step-1"' \
    'curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $E" "$URL/bench/curl" | sha256sum'
ckpt-test-tool s3 "$B" delete bench/up2 >/dev/null
ckpt-test-tool s3 "$B" delete bench/up3 >/dev/null

# The inspect input: a large safetensors object.
st "$W/big.safetensors" "$BENCH_S3_INSPECT_SIZE" 6 ||
	bench_die "cannot write the inspect input"
ckpt-test-tool s3 "$B" put-file big.safetensors "$W/big.safetensors" \
    >/dev/null || bench_die "upload of the inspect input failed"
HL=$(head -c 8 "$W/big.safetensors" | od -An -t u8 | tr -d ' ')
rm -f "$W/big.safetensors"
export HL
bench_compare "inspect $((BENCH_S3_INSPECT_SIZE >> 20)) MiB object" \
    'ckpt inspect "s3://$B/big.safetensors"' \
    'curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $E" -r 0-7 "$URL/big.safetensors" && curl -sS -K "$CURLCONF" -H "x-amz-content-sha256: $E" -r 8-$((8 + HL - 1)) "$URL/big.safetensors"'
inspect_s=$(bench_median 0)

# Requests of one inspect, counted by a forwarding proxy.
rm -f "$W/proxy.port"
"$PYTHON" "$SRC_DIR/tests/helper/s3-fault-proxy.py" "${AWS_ENDPOINT_URL##*:}" \
    "$W/proxy.port" "$W/proxy.log" 2>/dev/null &
PROXY_PID=$!
n=0
while ! test -s "$W/proxy.port"; do
	n=$((n + 1))
	test $n -lt 100 || bench_die "the proxy did not start"
	sleep 0.1
done
AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$W/proxy.port")" \
    ckpt inspect "s3://$B/big.safetensors" >/dev/null ||
	bench_die "inspect through the proxy failed"
reqs=$(wc -l <"$W/proxy.log" | tr -d ' ')

# ls: 1,000 checkpoints of one run (copies of a small one, made by a
# helper that writes their objects, 4 PUTs in flight, each copy then
# added to the run's listing index by the commit's own code, the 4
# threads racing for it).
printf 'a small file, not a checkpoint format\n' >"$W/small.dat"
LS="s3://$B/lsbench"
IX=lsbench/.ckpt/index/r.json
ckpt init -C "$LS" >/dev/null &&
    ckpt -C "$LS" save --copy --run r --step 1 "$W/small.dat" >/dev/null 2>&1 &&
    ckpt-test-tool s3 "$B" clone-steps lsbench/runs/r/step-1 2 1000 --index ||
	bench_die "cannot make the 1,000 checkpoints"
export LS
# ls_once: seconds of one ls (a new process), which must list 1,000.
ls_once() {
	t0=$(bench_now)
	n_ls=$(ckpt -C "$LS" ls | grep -c '^r  *[0-9]') || bench_die "ls failed"
	t1=$(bench_now)
	test "$n_ls" = 1000 ||
		bench_die "ls listed $n_ls checkpoints, not 1000"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
ckpt-test-tool s3 "$B" get "$IX" >"$W/ix.json" ||
	bench_die "no listing index after the commits"
# The summaries the first ls must read: those the racing writers' index
# lacks.
first_reads=$((1000 - $(grep -o '"etag":' "$W/ix.json" | wc -l)))
ls_first=$(ls_once)
ckpt-test-tool s3 "$B" delete "$IX" || bench_die "cannot delete the index"
ls_cold=$(ls_once)
ckpt-test-tool s3 "$B" put "$IX" "$W/ix.json" >/dev/null ||
	bench_die "cannot put the index back"
bench_compare "ls 1,000 checkpoints" \
    'ckpt -C "$LS" ls' \
    'ckpt-test-tool s3 "$B" list lsbench/runs/r/'
ls_s=$(bench_median 0)
: >"$W/proxy.log"
AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$W/proxy.port")" \
    ckpt -C "$LS" ls >/dev/null || bench_die "ls through the proxy failed"
ls_reqs=$(wc -l <"$W/proxy.log" | tr -d ' ')

bench_note "push: ckpt push of a committed checkpoint (one safetensors" \
    "file, 64 tensors) from a local store into a store on S3 through" \
    "save's protocol: every byte checked against the manifest's range" \
    "digests as the upload reads it straight from the source file (no" \
    "local spool copy): parallel multipart (16 MiB parts, 4 in flight, each part's SHA-256" \
    "checked by RGW) to a staging prefix, CopyObject into place under the" \
    "store lock, the manifest last with If-None-Match; the row includes" \
    "deleting the previous copy (three DELETEs).  The first curl row" \
    "sends a SHA-256 computed beforehand, untimed; the second computes" \
    "it first."
bench_note "save: ckpt save --copy of the file into the store on S3: header" \
    "read and planned at the source, then one read pass that uploads it" \
    "(as push) while digesting its 64 tensor ranges and the manifest's" \
    "chunks; summary and manifest uploaded, commit as push.  Includes" \
    "deleting the previous copy (three DELETEs)."
bench_note "ls: 1,000 checkpoints of one run, each added to the run's" \
    "listing index as its commit would (the index is kept by save," \
    "push, import and prune).  The first ls after the commits took" \
    "$ls_first s (target under 2 s; it read $first_reads summaries the" \
    "racing writers' index lacked); with the index deleted, the ls" \
    "that reads every summary (4 GETs in flight) and rebuilds it took" \
    "$ls_cold s; later ones (median $ls_s s) make $ls_reqs requests:" \
    "the run's ListObjectsV2 pages, the index, the store's marker," \
    "pins and registry.  The peer is the bare listing of the run's" \
    "3,000 keys."
bench_note "verify: ckpt verify of the checkpoint in the bucket: listing," \
    "manifest, the header's ranged GET, then ranged GETs in parallel" \
    "(up to one per core) hashing the manifest's ranges as they stream."
bench_note "inspect: $reqs request(s) for one inspect of the" \
    "$BENCH_S3_INSPECT_SIZE-byte object (target: at most 3), median" \
    "$inspect_s s (target: under 0.2 s), process start-up included."
bench_note "RGW's OSD keeps data in RAM (memstore): the network and disk" \
    "are not in the figures.  Under load the figures are provisional."
bench_end
