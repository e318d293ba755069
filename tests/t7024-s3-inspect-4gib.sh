#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect of a 4 GiB safetensors object on a real RGW: at
most 3 requests (counted by a proxy) and the same answer as inspect of
the local file.  It uploads 4 GiB into an
OSD that keeps data in RAM: run only with CKPT_TEST_EXPENSIVE=1 and 10
GiB of memory available'
. "$(dirname "$0")/lib.sh"

avail_gib=$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)
if test -z "${CKPT_TEST_EXPENSIVE:-}"; then
	say "1..0 # SKIP uploads 4 GiB: set CKPT_TEST_EXPENSIVE=1 to run it"
	exit 0
fi
if test "${avail_gib:-0}" -lt 10; then
	say "1..0 # SKIP needs 10 GiB of memory available, not $avail_gib"
	exit 0
fi
CKPT_RGW_MEMSTORE_BYTES=$((6 << 30))
export CKPT_RGW_MEMSTORE_BYTES
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

test_expect_success 'setup: a 4 GiB safetensors file (zero data) in the bucket' '
	"$PYTHON" - <<-\EOF &&
	import json, struct
	n, total = 64, 4 << 30
	each = total // n
	h, off = {}, 0
	for i in range(n):
	    h["layers.%d.weight" % i] = {"dtype": "BF16",
	                                 "shape": [each // 2 // 4096, 4096],
	                                 "data_offsets": [off, off + each]}
	    off += each
	j = json.dumps(h, separators=(",", ":")).encode()
	j += b" " * (-len(j) % 8)
	with open("big.safetensors", "wb") as f:
	    f.write(struct.pack("<Q", len(j)) + j)
	    f.truncate(8 + len(j) + off)
	EOF
	test $(wc -c <big.safetensors) -gt $((4 << 30)) &&
	ckpt-test-tool s3 "$BUCKET" put-file big.safetensors big.safetensors \
	    >/dev/null
'

test_expect_success 'inspect: at most 3 requests, the same answer as locally' '
	ckpt inspect big.safetensors >local.out &&
	rgw_proxy_start pbig &&
	test_when_finished "rgw_proxy_stop pbig" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt inspect \
	    "s3://$BUCKET/big.safetensors" >remote.out &&
	test_cmp local.out remote.out &&
	test_grep "total: 64 tensors" remote.out &&
	test $(wc -l <pbig.log) -le 3 &&
	test_grep "^GET /$BUCKET/big.safetensors" pbig.log
'

test_done
