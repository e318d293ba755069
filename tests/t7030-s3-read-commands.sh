#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='diff, convert and sha256sum of checkpoints in a store on a
real RGW: read through ranged and streaming GETs (counted by a proxy), the
same answers as for the local copies, checked by torch, numpy and
sha256sum(1); a failing service is exit 3, never a verdict'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

# requests NAME: how many requests the proxy NAME forwarded.
requests() {
	wc -l <"$1.log" | tr -d " "
}

test_expect_success TORCH 'setup: three checkpoints pushed to a store on S3' '
	"$PYTHON" -c "
import torch
from collections import OrderedDict
torch.manual_seed(0)
sd = OrderedDict((\"layer%d.weight\" % i, torch.randn(64, 32))
                 for i in range(6))
# more than one piece of the comparison kernels (4 Mi elements)
sd[\"big.weight\"] = torch.randn(4500000)
sd[\"head.bias\"] = torch.arange(10, dtype=torch.float16)
torch.save(sd, \"a.pt\")
sd[\"layer3.weight\"][5, 7] += 0.5
torch.save(sd, \"b.pt\")
" &&
	ckpt -C store init >/dev/null &&
	mkdir s1 s2 s3 &&
	cp a.pt s1/model.pt && cp a.pt s2/model.pt && cp b.pt s3/model.pt &&
	for i in 1 2 3; do
		ckpt -C store save --run r --step $i s$i/model.pt >/dev/null ||
		return 1
	done &&
	ST="s3://$BUCKET/st" &&
	ckpt init -C "$ST" >/dev/null &&
	for i in 1 2 3; do
		ckpt -C store push r@$i "$ST" >/dev/null || return 1
	done &&
	echo "$ST" >st.url
'
ST=$(cat st.url 2>/dev/null)

test_expect_success TORCH 'diff of two equal remote checkpoints: exit 0 from the manifests, no data read' '
	rgw_proxy_start peq &&
	test_when_finished "rgw_proxy_stop peq" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$ST" diff r@1 r@2 >out &&
	test_grep "^a: r@1 (torch-zip" out &&
	test_grep "8 common: 8 identical, 0 different" out &&
	test_grep "8 identical by manifest digest (not read)" out &&
	# model.pt (18 MB): its headers only, the first MiB and the zip
	# directory at its end, a GET or two per side
	grep "^GET /$BUCKET/st/runs/r/step-[12]/model.pt" peq.log >gets &&
	test $(wc -l <gets) -le 4
'

test_expect_success TORCH 'diff of two different remote checkpoints: exit 1 naming the tensor' '
	test_expect_code 1 ckpt -C "$ST" diff r@1 r@3 >out &&
	test_grep "different" out &&
	test_grep "^layer3.weight " out &&
	test_expect_code 1 ckpt diff store/runs/r/step-1 store/runs/r/step-3 \
	    >local.out &&
	sed "s|store/runs/r/step-|r@|" local.out >expect &&
	test_expect_code 1 ckpt -C "$ST" diff r@1 r@3 >actual &&
	test_cmp expect actual
'

test_expect_success TORCH 'diff --no-digests -j2 reads every value through the S3 source' '
	ckpt -C "$ST" diff -j 2 --no-digests r@1 r@2 >out &&
	test_grep "8 common: 8 identical, 0 different" out &&
	! grep "identical by manifest digest" out &&
	test_expect_code 1 ckpt -C "$ST" diff -j 2 --no-digests r@2 r@3 >out &&
	test_grep "^layer3.weight " out &&
	ckpt --json -C "$ST" diff --no-digests --atol 0.6 r@2 r@3 >out.json &&
	test_grep "\"result\": \"pass\"" out.json
'

test_expect_success TORCH 'diff of a remote and a local checkpoint, both ways' '
	ckpt -C "$ST" diff r@3 "$PWD/store/runs/r/step-3" >out &&
	test_grep "8 common: 8 identical" out &&
	test_expect_code 1 ckpt diff "$ST/runs/r/step-1" store/runs/r/step-3 \
	    >out &&
	test_grep "^layer3.weight " out &&
	test_expect_code 1 ckpt diff store/runs/r/step-3 "$ST/runs/r/step-1" \
	    >out &&
	test_grep "^layer3.weight " out &&
	ckpt diff "$ST/runs/r/step-2/model.pt" a.pt >out &&
	test_grep "8 common: 8 identical" out
'

test_expect_success TORCH 'convert from a remote checkpoint: torch and numpy read the output' '
	ckpt -C "$ST" convert r@3 remote.safetensors >out &&
	test_grep "^wrote remote.safetensors (8 tensors" out &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" b.pt \
	    remote.safetensors >res &&
	test_grep "^ok 8 tensors" res &&
	ckpt -C store convert r@3 local.safetensors >/dev/null &&
	cmp local.safetensors remote.safetensors &&
	ckpt convert "$ST/runs/r/step-1/model.pt" url.safetensors >/dev/null &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" a.pt \
	    url.safetensors >res &&
	test_grep "^ok 8 tensors" res
'

test_expect_success TORCH 'sha256sum of a remote checkpoint: the digests of the pulled files' '
	ckpt -C "$ST" pull r@3 pulled >/dev/null &&
	(cd pulled && sha256sum ckpt-summary.json model.pt) >expect &&
	ckpt -C "$ST" sha256sum --relative r@3 >actual &&
	test_cmp expect actual &&
	ckpt -C "$ST" sha256sum r@3 >out &&
	test_grep "  $ST/runs/r/step-3/model.pt\$" out &&
	ckpt sha256sum "$ST/runs/r/step-3/model.pt" >out &&
	test_grep "^$(sed -n "s/  model.pt//p" expect)  $ST/runs/r/step-3/model.pt\$" out
'

test_expect_success TORCH 'sha256sum streams each object once' '
	rgw_proxy_start psum &&
	test_when_finished "rgw_proxy_stop psum" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$ST" sha256sum r@1 >out &&
	test $(grep -c "^GET /$BUCKET/st/runs/r/step-1/model.pt" psum.log) = 1
'

test_expect_success TORCH 'the service failing or dropping connections: exit 3 naming it' '
	rgw_proxy_start pbad 500:all:/runs/r/step-3/model.pt &&
	test_when_finished "rgw_proxy_stop pbad" &&
	AWS_ENDPOINT_URL=$PROXY_URL \
	    test_expect_code 3 ckpt -C "$ST" diff r@1 r@3 >out 2>err &&
	test_grep "HTTP 500" err &&
	AWS_ENDPOINT_URL=$PROXY_URL \
	    test_expect_code 3 ckpt -C "$ST" sha256sum r@3 >out 2>err &&
	test_grep "HTTP 500" err &&
	rgw_proxy_start preset reset:all:/runs/r/step-3/model.pt &&
	test_when_finished "rgw_proxy_stop preset" &&
	AWS_ENDPOINT_URL=$PROXY_URL test_expect_code 3 \
	    ckpt -C "$ST" convert r@3 failed.safetensors >out 2>err &&
	test_grep "s3://$BUCKET/st/runs/r/step-3/model.pt" err &&
	test_path_is_missing failed.safetensors &&
	AWS_ENDPOINT_URL=$PROXY_URL test_expect_code 3 \
	    ckpt -C "$ST" diff -j 2 --no-digests r@3 r@2 >out 2>err &&
	test_grep "model.pt" err
'

test_expect_success 'sign works on a remote store (more in t7032)' '
	ckpt keygen -o k --no-passphrase >/dev/null &&
	ckpt -C "$ST" sign -k k.key r@1 >out &&
	test_grep "^$ST/runs/r/step-1/ckpt-manifest.json.sig: signed by key " out &&
	ckpt -C "$ST" verify --require-signature --key k.pub r@1 2>err &&
	test_grep "signature: valid" err
'

test_done
