#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='save --copy and push to a store on a real RGW upload
straight from the source files: no copy in the local spool, the parts of
a multipart upload in the staging prefix, digests equal to a local
save'"'"'s; push/pull round trips with identical manifests; a SIGKILL
during the upload leaves nothing visible and gc cleans up; a push of a
checkpoint already there sends nothing'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

DEST="s3://$BUCKET/d"

# files_of MANIFEST: each file's path, size, whole and range digests.
files_of() {
	"$PYTHON" -c "
import json, sys
m = json.load(open(sys.argv[1]))
for f in m[\"files\"]:
    if f[\"path\"] in (\"ckpt-summary.json\",):
        continue
    print(f[\"path\"], f[\"size\"], f.get(\"sha256\"),
          [(r[\"offset\"], r[\"size\"], r[\"sha256\"]) for r in f[\"ranges\"]])
" "$1"
}

test_expect_success TORCH 'setup: a 41 MB torch checkpoint (three 16 MiB parts)' '
	"$PYTHON" -c "
import torch
from collections import OrderedDict
torch.manual_seed(7)
sd = OrderedDict((\"w%d\" % i, torch.randn(40000, 64)) for i in range(4))
sd[\"step\"] = 3
torch.save(sd, \"model.pt\")
" &&
	ckpt -C local init >/dev/null &&
	ckpt -C local save --copy --run r --step 3 model.pt >/dev/null &&
	ckpt init -C "$DEST" >/dev/null &&
	mkdir spool
'

test_expect_success TORCH 'save --copy to S3: multipart into staging, no spool copy, same digests as a local save' '
	rgw_proxy_start psave &&
	test_when_finished "rgw_proxy_stop psave" &&
	TMPDIR=$PWD/spool AWS_ENDPOINT_URL=$PROXY_URL \
	    ckpt -C "$DEST" save --copy --run s --step 3 model.pt >out 2>err &&
	test_grep "^saved s@3" err &&
	grep "^PUT /$BUCKET/d/runs/s/\.tmp-step-3\.[^/]*/model\.pt?partNumber=[0-9]*&uploadId=.* forward$" \
	    psave.log >parts &&
	test $(wc -l <parts) = 3 &&
	! grep "/step-3/model.pt?" psave.log &&
	find spool -type f >left &&
	test_cmp /dev/null left &&
	s3 "$BUCKET" get d/runs/s/step-3/ckpt-manifest.json >remote.json &&
	files_of remote.json >remote.files &&
	files_of local/runs/r/step-3/ckpt-manifest.json >local.files &&
	test_cmp local.files remote.files &&
	ckpt -C "$DEST" verify s@3 >out &&
	test_grep "model.pt: OK" out
'

test_expect_success TORCH 'save of a directory to S3: every file, same tree' '
	mkdir -p dir/sub &&
	cp model.pt dir/a.pt &&
	printf "{\"lr\": 0.1}\n" >dir/sub/config.json &&
	TMPDIR=$PWD/spool ckpt -C "$DEST" save --copy --run s --step 4 dir \
	    >/dev/null &&
	s3 "$BUCKET" list d/runs/s/step-4/ | sed "s/ [0-9]*\$//" >keys &&
	test_grep "d/runs/s/step-4/sub/config.json" keys &&
	test_grep "d/runs/s/step-4/a.pt" keys &&
	ckpt -C "$DEST" pull s@4 back4 >/dev/null &&
	cmp model.pt back4/a.pt &&
	cmp dir/sub/config.json back4/sub/config.json
'

test_expect_success TORCH 'push and pull round trip: identical manifests and bytes' '
	rgw_proxy_start ppush &&
	test_when_finished "rgw_proxy_stop ppush" &&
	TMPDIR=$PWD/spool AWS_ENDPOINT_URL=$PROXY_URL \
	    ckpt -C local push r@3 "$DEST" >out &&
	test_grep "^pushed r@3 to $DEST/runs/r/step-3: 2 files" out &&
	test $(grep -c "^PUT .*/runs/r/\.tmp-.*/model\.pt?partNumber" ppush.log) = 3 &&
	find spool -type f >left &&
	test_cmp /dev/null left &&
	s3 "$BUCKET" get d/runs/r/step-3/ckpt-manifest.json >got.json &&
	test_cmp local/runs/r/step-3/ckpt-manifest.json got.json &&
	ckpt -C back init >/dev/null &&
	ckpt pull --from "$DEST" r@3 back >/dev/null &&
	test_cmp local/runs/r/step-3/ckpt-manifest.json \
	    back/runs/r/step-3/ckpt-manifest.json &&
	cmp model.pt back/runs/r/step-3/model.pt &&
	ckpt -C back verify r@3
'

test_expect_success TORCH 'push of a checkpoint already there: no upload at all' '
	rgw_proxy_start pagain &&
	test_when_finished "rgw_proxy_stop pagain" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C local push r@3 "$DEST" >out &&
	test_grep "^r@3: already at $DEST/runs/r/step-3" out &&
	! grep "^PUT\|^POST\|^DELETE" pagain.log
'

test_expect_success TORCH 'SIGKILL during the parts upload: nothing visible, gc cleans, the next push completes' '
	ckpt -C local save --copy --run k --step 1 model.pt >/dev/null &&
	rgw_proxy_start pkill "stall:all:model.pt?partNumber=2&" &&
	test_when_finished "rgw_proxy_stop pkill" &&
	{ TMPDIR=$PWD/spool AWS_ENDPOINT_URL=$PROXY_URL \
	    ckpt -C local push k@1 "$DEST" >/dev/null 2>&1 & } &&
	pid=$! &&
	wait_for pkill.log "model.pt?partNumber=2&" 60 &&
	kill -9 $pid &&
	test_expect_code 137 wait $pid &&
	test_expect_code 4 s3 "$BUCKET" head d/runs/k/step-1/ckpt-manifest.json &&
	ckpt -C "$DEST" ls >ls.out &&
	test_grep "^k  *1  *abandoned" ls.out &&
	! grep "^k  *1  *[0-9]" ls.out &&
	test_expect_code 3 ckpt -C "$DEST" pull k@1 nothing 2>err &&
	test_path_is_missing nothing &&
	s3 "$BUCKET" list d/runs/k/ >before &&
	test_grep "/\.tmp-step-1\..*/ckpt-staging.json" before &&
	ckpt -C "$DEST" gc --older-than 0 >out &&
	s3 "$BUCKET" list d/runs/k/ >after &&
	test_cmp /dev/null after &&
	ckpt -C local push k@1 "$DEST" >out &&
	test_grep "^pushed k@1 " out &&
	ckpt -C "$DEST" verify k@1 >out &&
	test_grep "model.pt: OK" out
'

test_expect_success TORCH 'SIGKILL during a save --copy upload: nothing visible, gc cleans' '
	rgw_proxy_start pskill "stall:all:model.pt?partNumber=2&" &&
	test_when_finished "rgw_proxy_stop pskill" &&
	{ TMPDIR=$PWD/spool AWS_ENDPOINT_URL=$PROXY_URL \
	    ckpt -C "$DEST" save --copy --run sk --step 1 model.pt \
	    >/dev/null 2>&1 & } &&
	pid=$! &&
	wait_for pskill.log "model.pt?partNumber=2&" 60 &&
	kill -9 $pid &&
	test_expect_code 137 wait $pid &&
	test_expect_code 4 s3 "$BUCKET" head d/runs/sk/step-1/ckpt-manifest.json &&
	ckpt -C "$DEST" ls >ls.out &&
	test_grep "^sk  *1  *abandoned" ls.out &&
	! grep "^sk  *1  *[0-9]" ls.out &&
	ckpt -C "$DEST" gc --older-than 0 >/dev/null &&
	s3 "$BUCKET" list d/runs/sk/ >after &&
	test_cmp /dev/null after &&
	find spool -type f >left &&
	test_cmp /dev/null left
'

test_expect_success TORCH 'a source that changes its size during the save: refused, nothing committed' '
	cp model.pt grow.pt &&
	rgw_proxy_start pgrow "stall:1:grow.pt?partNumber=3&" &&
	test_when_finished "rgw_proxy_stop pgrow" &&
	{ AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$DEST" save --copy --run g \
	    --step 1 grow.pt >out 2>err & } &&
	pid=$! &&
	wait_for pgrow.log "grow.pt?partNumber=3&" 60 &&
	printf "more" >>grow.pt &&
	test_expect_code 3 wait $pid &&
	test_grep "grow.pt: changed" err &&
	test_expect_code 4 s3 "$BUCKET" head d/runs/g/step-1/ckpt-manifest.json
'

test_done
