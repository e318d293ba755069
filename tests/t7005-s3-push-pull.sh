#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='push and pull between a local store and a store on a
real RGW: round trips with identical manifests and torch.load of what
comes back, nothing sent when the checkpoint is there, a killed push that
leaves nothing visible, faults that are retried or leave the destination
unchanged'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

DEST="s3://$BUCKET/team"

make_s3_store() {
	ckpt init -C "s3://$BUCKET/$1" >/dev/null
}

# manifest_at KEYPREFIX OUT: the manifest object of a remote checkpoint.
manifest_at() {
	s3 "$BUCKET" get "$1/ckpt-manifest.json" >"$2"
}

test_expect_success TORCH 'setup: a local store with two torch checkpoints' '
	"$PYTHON" -c "
import torch
from collections import OrderedDict
torch.manual_seed(1)
for step, n in ((1, 8), (2, 40)):
    sd = OrderedDict((\"w%d\" % i, torch.randn(n * 1000, 64))
                     for i in range(4))
    sd[\"step\"] = step
    torch.save(sd, \"model-%d.pt\" % step)
" &&
	ckpt -C store init >/dev/null &&
	ckpt -C store save --copy --run r --step 1 model-1.pt >/dev/null &&
	ckpt -C store save --copy --run r --step 2 model-2.pt >/dev/null &&
	make_s3_store team
'

test_expect_success TORCH 'push: local to S3, the manifest byte for byte, verify OK' '
	ckpt -C store push r@1 "$DEST" >out &&
	test_grep "^pushed r@1 to $DEST/runs/r/step-1: 2 files" out &&
	manifest_at team/runs/r/step-1 got.json &&
	test_cmp store/runs/r/step-1/ckpt-manifest.json got.json &&
	ckpt verify "$DEST/runs/r/step-1" >out &&
	test_grep "model-1.pt: OK" out
'

test_expect_success TORCH 'push again: already there, nothing uploaded' '
	rgw_proxy_start pagain &&
	test_when_finished "rgw_proxy_stop pagain" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C store push r@1 "$DEST" >out &&
	test_grep "^r@1: already at $DEST/runs/r/step-1" out &&
	! grep "^PUT\|^POST" pagain.log
'

test_expect_success TORCH 'pull: S3 to a new local store, identical manifest, verify OK' '
	ckpt -C back init >/dev/null &&
	ckpt pull --from "$DEST" r@latest back >out &&
	test_grep "^pulled r@1 to .*back/runs/r/step-1: 2 files" out &&
	test_cmp store/runs/r/step-1/ckpt-manifest.json \
	    back/runs/r/step-1/ckpt-manifest.json &&
	ckpt -C back verify r@1 &&
	ckpt -C back ls >ls.out &&
	test_grep "^r  *1 " ls.out
'

test_expect_success TORCH 'pull into a new directory: torch.load gives the saved tensors' '
	ckpt -C "$DEST" pull r@1 plain >/dev/null &&
	test_cmp store/runs/r/step-1/ckpt-manifest.json \
	    plain/ckpt-manifest.json &&
	"$PYTHON" -c "
import torch
a = torch.load(\"model-1.pt\")
b = torch.load(\"plain/model-1.pt\")
assert a.keys() == b.keys() and b[\"step\"] == 1
assert all(torch.equal(a[k], b[k]) for k in a if k != \"step\")
" &&
	ckpt verify plain >out &&
	test_grep "model-1.pt: OK" out
'

test_expect_success TORCH 'pull into an existing directory or a non-store: refused' '
	mkdir occupied &&
	test_expect_code 2 ckpt pull --from "$DEST" r@1 occupied 2>err &&
	test_grep "occupied: not a store" err &&
	test_expect_code 2 ckpt -C store push r@1 occupied 2>err &&
	ls -A occupied >left &&
	test_cmp /dev/null left
'

test_expect_success TORCH 'push to a prefix that is no store: exit 3, nothing written' '
	test_expect_code 3 ckpt -C store push r@1 "s3://$BUCKET/nostore" \
	    2>err &&
	test_grep "s3://$BUCKET/nostore: not a ckpt store" err &&
	s3 "$BUCKET" list nostore/ >list &&
	test_cmp /dev/null list
'

test_expect_success TORCH 'another checkpoint at the same RUN@STEP: exit 2, unchanged' '
	ckpt -C other init >/dev/null &&
	ckpt -C other save --copy --run r --step 1 model-2.pt >/dev/null &&
	test_expect_code 2 ckpt -C other push r@1 "$DEST" 2>err &&
	test_grep "holds another r@1" err &&
	manifest_at team/runs/r/step-1 got.json &&
	test_cmp store/runs/r/step-1/ckpt-manifest.json got.json &&
	test_expect_code 2 ckpt pull --from "$DEST" r@1 other 2>err &&
	test_grep "holds another r@1" err
'

test_expect_success TORCH 'a push killed before its manifest: nothing visible, the next push completes it' '
	rgw_proxy_start pkill "stall:all:PUT /$BUCKET/team/runs/r/step-2/ckpt-manifest.json" &&
	test_when_finished "rgw_proxy_stop pkill" &&
	{ AWS_ENDPOINT_URL=$PROXY_URL ckpt -C store push r@2 "$DEST" \
	    >/dev/null 2>&1 & } &&
	pid=$! &&
	n=0 &&
	while ! grep -q "^PUT .*step-2/ckpt-manifest.json " pkill.log 2>/dev/null
	do
		n=$((n + 1)) && test $n -lt 600 && sleep 0.1 || break
	done &&
	kill -9 $pid &&
	test_expect_code 137 wait $pid &&
	test_grep "step-2/model-2.pt" pkill.log &&
	test_expect_code 4 s3 "$BUCKET" head team/runs/r/step-2/ckpt-manifest.json &&
	ckpt -C "$DEST" pull r@latest latest-dir >out &&
	test_grep "^pulled r@1 " out &&
	ckpt -C store push r@2 "$DEST" >out &&
	test_grep "^pushed r@2 .*: 2 files" out &&
	ckpt verify "$DEST/runs/r/step-2" >out &&
	test_grep "model-2.pt: OK" out
'

test_expect_success TORCH 'a kill during the data upload: no manifest, nothing listed' '
	ckpt -C store save --copy --run k --step 1 model-2.pt >/dev/null &&
	rgw_proxy_start pdata "stall:all:model-2.pt?partNumber" &&
	test_when_finished "rgw_proxy_stop pdata" &&
	{ AWS_ENDPOINT_URL=$PROXY_URL ckpt -C store push k@1 "$DEST" \
	    >/dev/null 2>&1 & } &&
	pid=$! &&
	n=0 &&
	while ! grep -q "model-2.pt" pdata.log 2>/dev/null
	do
		n=$((n + 1)) && test $n -lt 600 && sleep 0.1 || break
	done &&
	kill -9 $pid &&
	test_expect_code 137 wait $pid &&
	test_expect_code 4 s3 "$BUCKET" head team/runs/k/step-1/ckpt-manifest.json &&
	test_expect_code 3 ckpt -C "$DEST" pull k@latest nothing 2>err &&
	test_grep "k" err &&
	test_path_is_missing nothing
'

test_expect_success TORCH 'two 503 SlowDown on uploads: retried, pushed' '
	ckpt -C store save --copy --run f --step 1 model-1.pt >/dev/null &&
	rgw_proxy_start pslow 503:2:PUT &&
	test_when_finished "rgw_proxy_stop pslow" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C store push f@1 "$DEST" >out &&
	test $(grep -c " 503$" pslow.log) = 2 &&
	ckpt verify "$DEST/runs/f/step-1" >out &&
	test_grep "model-1.pt: OK" out
'

test_expect_success TORCH 'the service failing every upload: exit 3, destination unchanged' '
	ckpt -C store save --copy --run f --step 2 model-1.pt >/dev/null &&
	s3 "$BUCKET" list team/ >before &&
	rgw_proxy_start pdown 500:all:PUT &&
	test_when_finished "rgw_proxy_stop pdown" &&
	AWS_ENDPOINT_URL=$PROXY_URL test_expect_code 3 ckpt -C store \
	    push f@2 "$DEST" 2>err &&
	test_grep "HTTP 500" err &&
	s3 "$BUCKET" list team/ >after &&
	test_cmp before after
'

test_expect_success TORCH 'connection resets while pulling: retried, pulled intact' '
	rgw_proxy_start preset reset:2:model-1.pt &&
	test_when_finished "rgw_proxy_stop preset" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt pull --from "$DEST" f@1 pulled-f \
	    >out &&
	test $(grep -c " reset$" preset.log) = 2 &&
	cmp model-1.pt pulled-f/model-1.pt
'

test_expect_success TORCH 'a source that differs from its manifest: exit 1, nothing committed' '
	ckpt -C store save --copy --run c --step 1 model-1.pt >/dev/null &&
	f=store/runs/c/step-1/model-1.pt &&
	chmod u+w $f &&
	printf "X" | dd of=$f bs=1 seek=100000 conv=notrunc 2>/dev/null &&
	test_expect_code 1 ckpt -C store push c@1 "$DEST" 2>err &&
	test_grep "model-1.pt: its bytes differ from the manifest" err &&
	test_expect_code 4 s3 "$BUCKET" head team/runs/c/step-1/ckpt-manifest.json &&
	ckpt -C "$DEST" ls >ls.out &&
	! grep "^c " ls.out &&
	test_expect_code 1 ckpt pull --from store c@1 back 2>err &&
	test_path_is_missing back/runs/c/step-1
'

test_expect_success TORCH 'push from one S3 store to another, same manifest' '
	make_s3_store team2 &&
	ckpt -C "$DEST" push r@1 "s3://$BUCKET/team2" >out &&
	test_grep "^pushed r@1 to s3://$BUCKET/team2/runs/r/step-1: 2 files" out &&
	manifest_at team2/runs/r/step-1 got.json &&
	test_cmp store/runs/r/step-1/ckpt-manifest.json got.json &&
	ckpt verify "s3://$BUCKET/team2/runs/r/step-1" >out &&
	test_grep "model-1.pt: OK" out
'

test_expect_success TORCH 'push --json' '
	ckpt --json -C store push r@1 "$DEST" >out.json &&
	"$PYTHON" -c "
import json
d = json.load(open(\"out.json\"))
assert d[\"schema\"] == 1 and d[\"run\"] == \"r\" and d[\"step\"] == 1
assert d[\"up_to_date\"] is True
"
'

test_done
