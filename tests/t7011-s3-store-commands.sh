#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='ls, latest, pin, unpin, prune and gc on an s3:// store
against a real RGW: uncommitted objects are invisible, prune removes the
manifest first, gc empties the trash'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

keys() {
	s3 "$BUCKET" list "$1" | sed "s/ [0-9]*\$//"
}

STORE=s3://$BUCKET/cmd
export CKPT_STORE=$STORE

test_expect_success 'setup: a store with three checkpoints of one run' '
	ckpt init &&
	for step in 10 20 30
	do
		printf "weights %s\n" $step >w.bin &&
		ckpt save --run r --step $step --metric loss=0.$step w.bin ||
		return 1
	done
'

test_expect_success 'ls lists them; ls --json names the s3:// store' '
	ckpt ls >out &&
	test_grep "^r  *10 " out &&
	test_grep "^r  *20 " out &&
	test_grep "^r  *30 " out &&
	ckpt --json ls >json &&
	test_grep "\"store\": \"$STORE\"" json
'

test_expect_success 'latest gives the newest; a run with none: nothing yet' '
	ckpt latest --run r >out &&
	echo "$STORE/runs/r/step-30" >want &&
	test_cmp want out &&
	ckpt latest --run other >out &&
	test ! -s out
'

test_expect_success 'latest on a prefix that is no store yet: nothing yet (exit 0)' '
	ckpt -C "s3://$BUCKET/not-yet" latest --run r >out &&
	test ! -s out
'

test_expect_success 'objects without a manifest are invisible to ls and latest' '
	printf "half\n" >half &&
	s3 "$BUCKET" put cmd/runs/r/step-40/w.bin half &&
	s3 "$BUCKET" put cmd/runs/r/step-40/ckpt-summary.json half &&
	ckpt ls >out &&
	! grep " 40 " out &&
	ckpt latest --run r >out &&
	echo "$STORE/runs/r/step-30" >want &&
	test_cmp want out
'

test_expect_success 'pin and unpin through the store' '
	ckpt pin r@10 &&
	keys cmd/.ckpt/pins/ >got &&
	echo "cmd/.ckpt/pins/r@10" >want &&
	test_cmp want got &&
	ckpt ls >out &&
	test_grep "^r  *10 .*pinned" out
'

test_expect_success 'prune keeps the pinned and the newest, removes the rest' '
	ckpt prune --run r --keep-last 1 >out &&
	test_grep "removed" out &&
	ckpt ls >out &&
	test_grep "^r  *10 " out &&
	! grep "^r  *20 " out &&
	test_grep "^r  *30 " out &&
	keys cmd/runs/r/step-20/ >got &&
	test ! -s got
'

test_expect_success 'unpin, then prune removes it too' '
	ckpt unpin r@10 &&
	keys cmd/.ckpt/pins/ >got &&
	test ! -s got &&
	test_expect_code 2 ckpt unpin r@10 2>err &&
	test_grep "not pinned" err &&
	ckpt prune --run r --keep-last 1 &&
	ckpt ls >out &&
	! grep "^r  *10 " out
'

test_expect_success 'save --force leaves the old one in the trash; gc removes it' '
	printf "new\n" >w.bin &&
	ckpt save --force --run r --step 30 w.bin &&
	keys cmd/.ckpt/trash/ >trash &&
	test_grep "/w.bin\$" trash &&
	ckpt gc --dry-run >out &&
	test_grep "in the trash" out &&
	keys cmd/.ckpt/trash/ >still &&
	test_cmp trash still &&
	ckpt gc >out &&
	test_grep "removed 1 item" out &&
	keys cmd/.ckpt/trash/ >got &&
	test ! -s got &&
	s3 "$BUCKET" get cmd/runs/r/step-30/w.bin >back &&
	test_cmp w.bin back
'

test_expect_success 'prune with a policy in the remote ckpt.yaml' '
	for step in 31 32 33
	do
		printf "w %s\n" $step >w.bin &&
		ckpt save --run p --step $step w.bin ||
		return 1
	done &&
	s3 "$BUCKET" get cmd/ckpt.yaml >yaml &&
	cat >>yaml <<-EOF &&
	runs:
	  p:
	    keep_last: 2
	EOF
	s3 "$BUCKET" put cmd/ckpt.yaml yaml &&
	ckpt prune --run p --dry-run >out &&
	test_grep "^p  *31 .*remove" out &&
	test_grep "^p  *33 .*keep" out
'

test_done
