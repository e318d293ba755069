#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect and verify of s3:// objects and prefixes against
a real RGW: headers through few ranged GETs (counted by a proxy), the same
answers as for the local files, every digest checked by streaming GETs,
--fast from the manifest and the listing'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

# upload DIR PREFIX: every file under DIR as PREFIX/relative-path.
upload() {
	(cd "$1" && find . -type f | sed "s|^\./||") >files &&
	while read -r f; do
		s3 "$BUCKET" put-file "$2/$f" "$1/$f" >/dev/null || return 1
	done <files
}

# requests NAME: how many requests the proxy NAME forwarded.
requests() {
	wc -l <"$1.log" | tr -d " "
}

test_expect_success TORCH 'setup: a torch checkpoint, its safetensors, a store' '
	"$PYTHON" -c "
import torch
from collections import OrderedDict
torch.manual_seed(0)
sd = OrderedDict((\"layer%d.weight\" % i, torch.randn(64, 32))
                 for i in range(12))
sd[\"head.bias\"] = torch.arange(10, dtype=torch.float16)
torch.save(sd, \"model.pt\")
" &&
	ckpt convert model.pt model.safetensors >/dev/null &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" wide.safetensors \
	    6000000 3 3000 &&
	s3 "$BUCKET" put-file obj/model.pt model.pt >/dev/null &&
	s3 "$BUCKET" put-file obj/model.safetensors model.safetensors \
	    >/dev/null &&
	s3 "$BUCKET" put-file obj/wide.safetensors wide.safetensors >/dev/null &&
	ckpt -C store init >/dev/null &&
	mkdir src && cp model.pt model.safetensors src/ &&
	ckpt -C store save --run r --step 1 src/model.pt src/model.safetensors \
	    >/dev/null &&
	upload store/runs/r/step-1 ck/r1
'

test_expect_success TORCH 'inspect of an object says what inspect of the file says' '
	for f in model.pt model.safetensors wide.safetensors; do
		ckpt inspect $f >local.out &&
		ckpt inspect "s3://$BUCKET/obj/$f" >remote.out &&
		test_cmp local.out remote.out || return 1
	done &&
	ckpt inspect --stats model.safetensors >local.out &&
	ckpt inspect --stats "s3://$BUCKET/obj/model.safetensors" >remote.out &&
	test_cmp local.out remote.out
'

test_expect_success TORCH 'inspect of a safetensors object: one request, header of 180 KB included' '
	rgw_proxy_start pin &&
	test_when_finished "rgw_proxy_stop pin" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt inspect \
	    "s3://$BUCKET/obj/wide.safetensors" >out &&
	test_grep "total: 3000 tensors" out &&
	test $(requests pin) -le 1 &&
	test_grep "^GET /$BUCKET/obj/wide.safetensors" pin.log
'

test_expect_success TORCH 'inspect of a torch zip object: a few ranged GETs' '
	rgw_proxy_start pzip &&
	test_when_finished "rgw_proxy_stop pzip" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt inspect "s3://$BUCKET/obj/model.pt" \
	    >out &&
	test_grep "format:  torch-zip" out &&
	test $(requests pzip) -le 3
'

test_expect_success TORCH 'inspect of a prefix: a checkpoint directory' '
	ckpt inspect "s3://$BUCKET/ck/r1" >out &&
	test_grep "^path:    s3://$BUCKET/ck/r1\$" out &&
	test_grep "^file:    model.safetensors" out &&
	test_grep "^file:    ckpt-manifest.json" out
'

test_expect_success 'inspect of nothing: exit 3 naming the location' '
	test_expect_code 3 ckpt inspect "s3://$BUCKET/no/such" 2>err &&
	test_grep "s3://$BUCKET/no/such: no object at or under this location" err
'

test_expect_success TORCH 'verify of a remote checkpoint: every file OK, same as local' '
	ckpt verify store/runs/r/step-1 >local.out 2>local.err &&
	ckpt verify "s3://$BUCKET/ck/r1" >remote.out 2>remote.err &&
	sed "s|store/runs/r/step-1|REMOTE|" local.out >expect &&
	sed "s|s3://$BUCKET/ck/r1|REMOTE|" remote.out >actual &&
	test_cmp expect actual &&
	test_grep "3 files verified" remote.err
'

test_expect_success TORCH 'verify reads each object once, and once only' '
	rgw_proxy_start pver &&
	test_when_finished "rgw_proxy_stop pver" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt verify "s3://$BUCKET/ck/r1" >out &&
	# a HEAD (object or prefix?), the manifest, the listing, then per
	# file the header GET of the structure check (its first MiB) and the
	# one streaming GET that hashes it
	test_grep "^GET /$BUCKET/?list-type=2" pver.log &&
	test $(grep -c "^GET /$BUCKET/ck/r1/model.safetensors" pver.log) -le 2 &&
	test $(requests pver) -le 9
'

test_expect_success TORCH 'verify --fast of a remote checkpoint reads no file' '
	rgw_proxy_start pfast &&
	test_when_finished "rgw_proxy_stop pfast" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt verify --fast "s3://$BUCKET/ck/r1" \
	    >out 2>err &&
	test_grep "model.pt: OK" out &&
	! grep "model.pt\|model.safetensors" pfast.log &&
	test $(requests pfast) = 3
'

test_expect_success TORCH 'a changed object: exit 1 naming the tensor' '
	cp model.safetensors bad.safetensors &&
	size=$(wc -c <bad.safetensors) &&
	printf "\377\377\377\377" | dd of=bad.safetensors bs=1 \
	    seek=$((size - 4)) conv=notrunc 2>/dev/null &&
	upload store/runs/r/step-1 ck/bad &&
	s3 "$BUCKET" put-file ck/bad/model.safetensors bad.safetensors \
	    >/dev/null &&
	test_expect_code 1 ckpt verify "s3://$BUCKET/ck/bad" >out &&
	test_grep "model.safetensors: FAILED (tensor " out &&
	test_grep "model.pt: OK" out
'

test_expect_success TORCH 'a missing and an extra object; --fast sees both' '
	upload store/runs/r/step-1 ck/gone &&
	s3 "$BUCKET" delete ck/gone/model.pt &&
	s3 "$BUCKET" put ck/gone/stray.bin bad.safetensors >/dev/null &&
	test_expect_code 1 ckpt verify "s3://$BUCKET/ck/gone" >out &&
	test_grep "model.pt: MISSING" out &&
	test_grep "stray.bin: EXTRA" out &&
	test_expect_code 1 ckpt verify --fast "s3://$BUCKET/ck/gone" >out &&
	test_grep "model.pt: MISSING" out
'

test_expect_success TORCH 'references in a store on S3: inspect, verify, verify --all' '
	ckpt init -C "s3://$BUCKET/st" >/dev/null &&
	ckpt -C store push r@1 "s3://$BUCKET/st" >/dev/null &&
	ckpt -C "s3://$BUCKET/st" inspect r@latest >out &&
	test_grep "^path:    s3://$BUCKET/st/runs/r/step-1\$" out &&
	test_grep "^file:    model.safetensors" out &&
	ckpt -C "s3://$BUCKET/st" verify r@1 >out &&
	test_grep "model.pt: OK" out &&
	ckpt -C "s3://$BUCKET/st" verify --all >out 2>err &&
	test_grep "1 checkpoint, 3 files verified" err
'

test_expect_success TORCH 'the service failing: exit 3, not a verdict' '
	rgw_proxy_start pdown 500:all &&
	test_when_finished "rgw_proxy_stop pdown" &&
	AWS_ENDPOINT_URL=$PROXY_URL \
	    test_expect_code 3 ckpt verify "s3://$BUCKET/ck/r1" 2>err &&
	test_grep "HTTP 500" err
'

test_expect_success TORCH 'a remote DCP shard: every archive read, an os.system chunk fails' '
	upload "$FIXTURES_DIR/diff-dcp/dcp" dcp/good &&
	upload "$FIXTURES_DIR/diff-dcp/evil-chunk" dcp/evil &&
	ckpt verify "s3://$BUCKET/dcp/good" >out &&
	test_grep "__1_0.distcp: OK$" out &&
	test_expect_code 1 ckpt verify "s3://$BUCKET/dcp/evil" >out &&
	test_grep "__1_0.distcp: FAILED (unsafe global posix.system)$" out
'

test_done
