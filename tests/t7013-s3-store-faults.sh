#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='an s3:// store under injected faults (a proxy on
loopback in front of a real RGW): 5xx, 503 SlowDown, connection resets
and a lost answer are retried; faults that persist give exit 3 with the
bucket, key, HTTP status and service code named, and the store unchanged'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

keys() {
	s3 "$BUCKET" list "$1" | sed "s/ [0-9]*\$//"
}

STORE=s3://$BUCKET/ft
export CKPT_STORE=$STORE

# through NAME: ckpt against the proxy NAME (started with rgw_proxy_start).
through() {
	AWS_ENDPOINT_URL=$PROXY_URL ckpt "$@"
}

test_expect_success 'setup' '
	ckpt init &&
	"$PYTHON" -c "import os; open(\"w.dat\", \"wb\").write(b\"not a checkpoint\\n\" + os.urandom(100000))" &&
	ckpt save --run f --step 1 w.dat
'

test_expect_success 'two 500s on the way: save is retried and commits' '
	rgw_proxy_start p500 "500:2:PUT" &&
	test_when_finished "rgw_proxy_stop p500" &&
	through save --run f --step 2 w.dat &&
	test $(grep -c " 500\$" p500.log) = 2 &&
	s3 "$BUCKET" get ft/runs/f/step-2/w.dat >back &&
	cmp w.dat back
'

test_expect_success '503 SlowDown and a reset: retried' '
	rgw_proxy_start pslow "503:2" "reset:1:GET" &&
	test_when_finished "rgw_proxy_stop pslow" &&
	through ls >out &&
	test_grep "^f  *2 " out &&
	test $(grep -c " 503\$" pslow.log) = 2 &&
	test $(grep -c " reset\$" pslow.log) = 1
'

test_expect_success 'the answer of the commit lost: the retry finds its own manifest' '
	rgw_proxy_start plose "lose:1:PUT /$BUCKET/ft/runs/f/step-3/ckpt-manifest.json" &&
	test_when_finished "rgw_proxy_stop plose" &&
	through save --run f --step 3 w.dat &&
	test $(grep -c " lose\$" plose.log) = 1 &&
	ckpt ls >out &&
	test_grep "^f  *3 " out
'

test_expect_success 'the commit refused every time: exit 3 naming it, nothing visible' '
	s3 "$BUCKET" list ft/runs/f/ | grep -v "/\.tmp-" >before &&
	rgw_proxy_start pcommit "500:all:PUT /$BUCKET/ft/runs/f/step-4/ckpt-manifest.json" &&
	test_when_finished "rgw_proxy_stop pcommit" &&
	test_expect_code 3 through save --run f --step 4 w.dat 2>err &&
	test_grep "$STORE/runs/f/step-4/ckpt-manifest.json: PUT: HTTP 500 InternalError" err &&
	test_grep "after retries" err &&
	s3 "$BUCKET" list ft/runs/f/ | grep -v "/\.tmp-" >after &&
	test_cmp before after &&
	! keys ft/.ckpt/ | grep lock &&
	ckpt ls >out &&
	! grep "^f  *4  *20" out
'

test_expect_success 'a listing that fails is an error (exit 3), never an empty store' '
	rgw_proxy_start plist "500:all:list-type=2" &&
	test_when_finished "rgw_proxy_stop plist" &&
	test_expect_code 3 through ls >out 2>err &&
	test_grep "HTTP 500 InternalError" err &&
	test_grep "s3://$BUCKET/" err &&
	test_expect_code 3 through latest --run f >out 2>err &&
	test ! -s out
'

test_expect_success 'prune whose removal fails: exit 1 naming it, the checkpoint still whole' '
	s3 "$BUCKET" list ft/runs/f/step-1/ >before &&
	rgw_proxy_start pdel "500:all:DELETE /$BUCKET/ft/runs/f/step-1/" &&
	test_when_finished "rgw_proxy_stop pdel" &&
	test_expect_code 1 through prune --run f --keep-last 2 >out 2>err &&
	test_grep "^f  *1 .*FAILED" out &&
	test_grep "f@1: cannot move $STORE/runs/f/step-1 into the trash: .*ckpt-manifest.json: DELETE: HTTP 500 InternalError" err &&
	s3 "$BUCKET" list ft/runs/f/step-1/ >after &&
	test_cmp before after &&
	ckpt ls >out &&
	test_grep "^f  *1 " out
'

test_expect_success 'nothing of the credentials in any message or object' '
	! grep -e "$AWS_SECRET_ACCESS_KEY" err out *.log
'

test_done
