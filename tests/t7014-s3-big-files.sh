#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='big files on an s3:// store, against a real RGW: the path
a file above the multipart threshold takes (multipart upload to staging,
multipart server-side copy at commit and into the trash, UploadPartCopy
signed by our own SigV4), exercised with 12 MB files by the AWS config
settings s3.multipart_threshold and multipart_chunksize (5 GiB by
default for copies); a save killed mid-upload leaves nothing visible and
gc aborts its upload and removes its spool'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

keys() {
	s3 "$BUCKET" list "$1" | sed "s/ [0-9]*\$//"
}

STORE=s3://$BUCKET/bg
export CKPT_STORE=$STORE

test_expect_success TORCH 'setup: a 12 MB torch checkpoint, a store, the AWS settings' '
	"$PYTHON" -c "
import torch
torch.manual_seed(1)
torch.save({\"w\": torch.randn(3000000)}, \"model.pt\")
" &&
	test $(wc -c <model.pt) -gt 11000000 &&
	mkdir src &&
	cp model.pt src/model.pt &&
	cat >aws.conf <<-\EOF &&
	[default]
	s3 =
	    multipart_threshold = 1MB
	    multipart_chunksize = 5MB
	EOF
	ckpt init &&
	mkdir spool
'

test_expect_success TORCH 'save above the threshold: multipart upload, then a multipart copy at commit' '
	AWS_CONFIG_FILE=$PWD/aws.conf TMPDIR=$PWD/spool \
		ckpt save --run r --step 1 src/model.pt >out &&
	s3 "$BUCKET" head bg/runs/r/step-1/model.pt >head &&
	# an object built of 3 parts (12 MB in 5 MB parts): the copy
	echo "$(wc -c <model.pt) -3" >want &&
	sed "s/ [0-9a-f]*-/ -/" head >got &&
	test_cmp want got &&
	s3 "$BUCKET" get bg/runs/r/step-1/model.pt >back.pt &&
	cmp model.pt back.pt &&
	"$PYTHON" -c "
import torch
a = torch.load(\"model.pt\")[\"w\"]; b = torch.load(\"back.pt\")[\"w\"]
assert torch.equal(a, b)
" &&
	ckpt verify r@1 &&
	test -z "$(s3 "$BUCKET" uploads bg/)" &&
	test -z "$(ls -A spool)"
'

test_expect_success TORCH 'without the settings the same file takes one PUT and one CopyObject' '
	ckpt save --run r --step 2 src/model.pt &&
	s3 "$BUCKET" head bg/runs/r/step-2/model.pt >head &&
	! grep -- "-[0-9]*\$" head &&
	ckpt verify r@2
'

test_expect_success TORCH 'prune moves it into the trash by a multipart copy, gc empties it' '
	echo "trash: keep" >policy.yaml &&
	s3 "$BUCKET" put bg/ckpt.yaml policy.yaml &&
	AWS_CONFIG_FILE=$PWD/aws.conf ckpt prune --run r --keep-last 1 >out &&
	keys bg/ >all &&
	! grep "runs/r/step-1/" all &&
	ckpt ls >ls &&
	! grep "^r  *1 " ls &&
	trashed=$(keys bg/.ckpt/trash/ | grep "/model.pt\$") &&
	s3 "$BUCKET" head "$trashed" >head &&
	test_grep " [0-9a-f]*-3\$" head &&
	AWS_CONFIG_FILE=$PWD/aws.conf ckpt gc --older-than 0 >out &&
	keys bg/.ckpt/trash/ >trash &&
	test ! -s trash &&
	test -z "$(s3 "$BUCKET" uploads bg/)"
'

test_expect_success TORCH 'a multipart copy that fails at commit: exit 3, nothing visible, no upload left' '
	rgw_proxy_start pc "500:all:PUT /$BUCKET/bg/runs/r/step-3/model.pt?partNumber=2" &&
	test_when_finished "rgw_proxy_stop pc" &&
	test_expect_code 3 env AWS_CONFIG_FILE=$PWD/aws.conf \
		AWS_ENDPOINT_URL=$PROXY_URL TMPDIR=$PWD/spool \
		ckpt save --run r --step 3 src/model.pt 2>err &&
	test_grep "model.pt: PUT: HTTP 500" err &&
	grep "partNumber=1&uploadId=" pc.log >copies &&
	test_grep "x-amz-copy-source-range" pc.log.signed &&
	keys bg/runs/r/ >left &&
	! grep "step-3/" left &&
	test -z "$(s3 "$BUCKET" uploads bg/runs/r/step-3/)" &&
	ckpt ls >ls &&
	! grep "^r  *3  *20[0-9][0-9]-" ls
'

test_expect_success TORCH 'a save killed mid-upload: nothing visible, an upload and a spool left' '
	rm -rf spool && mkdir spool &&
	rgw_proxy_start kill "stall:1:partNumber=2&uploadId=" &&
	test_when_finished "rgw_proxy_stop kill" &&
	AWS_CONFIG_FILE=$PWD/aws.conf AWS_ENDPOINT_URL=$PROXY_URL \
		TMPDIR=$PWD/spool ckpt save --run k --step 1 src/model.pt \
		>out 2>err &
	pid=$! &&
	wait_for kill.log "partNumber=2.* stall" &&
	kill -9 $pid &&
	{ wait $pid; echo $? >rc; } &&
	echo 137 >want &&
	test_cmp want rc &&
	s3 "$BUCKET" uploads bg/ >uploads &&
	test_grep "^bg/runs/k/\.tmp-step-1\.[0-9]*\.[0-9a-f]*/model.pt " uploads &&
	ls spool >spools &&
	test_grep "^ckpt-s3-spool\.$pid\.[-0-9a-fx]*\.[A-Za-z0-9]*\$" spools &&
	ckpt ls >ls &&
	! grep "^k  *1  *20[0-9][0-9]-" ls &&
	ckpt latest --run k >latest &&
	test ! -s latest
'

test_expect_success TORCH 'gc within the threshold keeps the upload; past it, aborts it with its save' '
	TMPDIR=$PWD/spool ckpt gc --older-than 1h >out &&
	test_grep "^upload .*model.pt?uploadId=.*part of a staging area that stays" out &&
	test -n "$(s3 "$BUCKET" uploads bg/)" &&
	TMPDIR=$PWD/spool ckpt gc --older-than 0 >out &&
	test_grep "^upload .*model.pt?uploadId=.*part of a staging area that goes (crashed save)" out &&
	test -z "$(s3 "$BUCKET" uploads bg/)" &&
	keys bg/runs/k/ >left &&
	test ! -s left &&
	test -z "$(ls -A spool)"
'

test_expect_success 'gc aborts an upload no staging area owns once past the threshold' '
	id=$(s3 "$BUCKET" mpu-begin bg/runs/o/step-9/x.bin) &&
	ckpt gc --older-than 1h >out &&
	test_grep "unfinished upload, younger than 1h" out &&
	s3 "$BUCKET" uploads bg/ >up &&
	test_grep "$id" up &&
	ckpt gc --dry-run --older-than 0 >out &&
	test_grep "unfinished upload of a killed save, commit or prune" out &&
	s3 "$BUCKET" uploads bg/ >up &&
	test_grep "$id" up &&
	ckpt gc --older-than 0 >out &&
	test -z "$(s3 "$BUCKET" uploads bg/)"
'

test_expect_success 'the next save removes the spool a killed save left' '
	mkdir -p spool/ckpt-s3-spool.999999999.$(head -c 8 /proc/sys/kernel/random/boot_id).AbC123 &&
	echo x >spool/ckpt-s3-spool.999999999.$(head -c 8 /proc/sys/kernel/random/boot_id).AbC123/w &&
	mkdir spool/ckpt-s3-spool.999999998.$(head -c 8 /proc/sys/kernel/random/boot_id).Moved1 &&
	: >spool/ckpt-s3-spool.999999998.$(head -c 8 /proc/sys/kernel/random/boot_id).Moved1.moved &&
	mkdir spool/ckpt-s3-spool.$$.$(head -c 8 /proc/sys/kernel/random/boot_id).Alive1 &&
	echo "{}" >cfg.json &&
	TMPDIR=$PWD/spool ckpt save --run s --step 1 cfg.json &&
	ls spool >left &&
	! grep "999999999" left &&
	test_grep "999999998.*Moved1\$" left &&
	test_grep "$$.*Alive1" left
'

test_done
