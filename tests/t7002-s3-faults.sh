#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='S3 client under faults: 5xx, 503 SlowDown, connection
resets, stalls, a cut answer and a corrupted body, injected by a proxy on
loopback in front of a real RGW, each give a retry or a clear error'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

# Short backoff so that five attempts take well under a second.
s3p() {
	AWS_ENDPOINT_URL=$PROXY_URL ckpt-test-tool s3 --stats --backoff 10 "$@"
}

# count NAME ACTION: requests the proxy handled with ACTION.
count() {
	grep -c " $2\$" "$1.log"
}

test_expect_success 'setup' '
	printf "payload\n" >small &&
	ckpt-test-tool fill data 300000 9 &&
	ckpt-test-tool s3 "$BUCKET" put f/data data
'

test_expect_success 'two 500s, then success: retried' '
	rgw_proxy_start p500 500:2 &&
	test_when_finished "rgw_proxy_stop p500" &&
	s3p "$BUCKET" put f/a small 2>err &&
	test_grep "^requests 3 retries 2" err &&
	test $(count p500 500) = 2 &&
	ckpt-test-tool s3 "$BUCKET" get f/a >got &&
	test_cmp small got
'

test_expect_success '500 every time: exit 3 naming status, code and bucket/key' '
	rgw_proxy_start pall 500:all &&
	test_when_finished "rgw_proxy_stop pall" &&
	test_expect_code 3 s3p --attempts 4 "$BUCKET" put f/never small 2>err &&
	test_grep "s3://$BUCKET/f/never: PUT: HTTP 500 InternalError: injected after retries" err &&
	test $(count pall 500) = 4 &&
	test_expect_code 4 ckpt-test-tool s3 "$BUCKET" head f/never
'

test_expect_success '503 SlowDown twice: retried; always: a clear error' '
	rgw_proxy_start pslow 503:2 &&
	test_when_finished "rgw_proxy_stop pslow" &&
	s3p "$BUCKET" get f/data >got 2>err &&
	cmp data got &&
	test_grep "^requests 3 retries 2" err &&
	rgw_proxy_start pslow2 503:all &&
	test_when_finished "rgw_proxy_stop pslow2" &&
	test_expect_code 3 s3p --attempts 3 "$BUCKET" head f/data 2>err &&
	test_grep "HEAD: HTTP 503" err &&
	test_expect_code 3 s3p --attempts 3 "$BUCKET" get f/data 2>err >/dev/null &&
	test_grep "s3://$BUCKET/f/data: GET: HTTP 503 SlowDown: Please reduce your request rate. after retries" err
'

test_expect_success 'connection reset before the answer: retried' '
	rgw_proxy_start preset reset:2 &&
	test_when_finished "rgw_proxy_stop preset" &&
	s3p "$BUCKET" put f/b small 2>err &&
	test_grep "^requests 3 retries 2" err &&
	test $(count preset reset) = 2
'

test_expect_success 'connection reset every time: a clear error after the attempts' '
	rgw_proxy_start preset2 reset:all &&
	test_when_finished "rgw_proxy_stop preset2" &&
	test_expect_code 3 s3p --attempts 3 "$BUCKET" put f/c small 2>err &&
	test_grep "s3://$BUCKET/f/c: PUT: .* after 3 attempts" err &&
	test $(count preset2 reset) = 3
'

test_expect_success 'a stalled answer times out and is retried' '
	rgw_proxy_start pstall stall:1 &&
	test_when_finished "rgw_proxy_stop pstall" &&
	s3p --stall 2 "$BUCKET" get f/data >got 2>err &&
	cmp data got &&
	test_grep "^requests 2 retries 1" err
'

test_expect_success 'stalled every time: "transfer stalled" after the attempts' '
	rgw_proxy_start pstall2 stall:all &&
	test_when_finished "rgw_proxy_stop pstall2" &&
	test_expect_code 3 s3p --stall 1 --attempts 2 "$BUCKET" head f/data 2>err &&
	test_grep "s3://$BUCKET/f/data: HEAD: transfer stalled (no data for 1 s) after 2 attempts" err
'

test_expect_success 'an answer cut in the middle: GET resumes where it stopped' '
	rgw_proxy_start pcut cut:1:GET &&
	test_when_finished "rgw_proxy_stop pcut" &&
	s3p "$BUCKET" get f/data >got 2>err &&
	cmp data got &&
	test_grep "^requests 2 retries 1" err &&
	test $(count pcut cut) = 1
'

test_expect_success 'a ranged GET cut in the middle resumes inside its range' '
	rgw_proxy_start pcut2 cut:1:GET &&
	test_when_finished "rgw_proxy_stop pcut2" &&
	s3p "$BUCKET" get f/data 1000 200000 >got 2>err &&
	dd if=data of=expect bs=1000 skip=1 count=200 2>/dev/null &&
	cmp expect got &&
	test_grep "^requests 2 retries 1" err
'

test_expect_success 'a body corrupted on the way is refused by the service' '
	rgw_proxy_start pbad corrupt:1:PUT &&
	test_when_finished "rgw_proxy_stop pbad" &&
	test_expect_code 3 s3p "$BUCKET" put f/bad data 2>err &&
	test_grep "s3://$BUCKET/f/bad: PUT: HTTP 400" err &&
	test_grep "requests 1 retries 0" err &&
	test_expect_code 4 ckpt-test-tool s3 "$BUCKET" head f/bad
'

test_expect_success 'multipart: a part that fails once is retried alone' '
	ckpt-test-tool fill big 12582912 4 &&
	rgw_proxy_start pmp "500:1:partNumber=2&" &&
	test_when_finished "rgw_proxy_stop pmp" &&
	s3p --part-size 5242880 "$BUCKET" put-file f/big big >out 2>err &&
	test_grep "^requests 7 retries 1" err &&
	ckpt-test-tool s3 "$BUCKET" get f/big >got &&
	cmp big got
'

test_expect_success 'multipart: a part that always fails aborts the upload' '
	rgw_proxy_start pmp2 "500:all:partNumber=2&" &&
	test_when_finished "rgw_proxy_stop pmp2" &&
	test_expect_code 3 s3p --attempts 2 --part-size 5242880 "$BUCKET" \
		put-file f/big2 big 2>err &&
	test_grep "s3://$BUCKET/f/big2: PUT: HTTP 500 InternalError" err &&
	grep "^DELETE /$BUCKET/f/big2?uploadId=" pmp2.log &&
	test_expect_code 4 ckpt-test-tool s3 "$BUCKET" head f/big2
'

test_expect_success 'a corrupted part is refused and the upload aborted' '
	rgw_proxy_start pmp3 "corrupt:1:partNumber=1&" &&
	test_when_finished "rgw_proxy_stop pmp3" &&
	test_expect_code 3 s3p --part-size 5242880 "$BUCKET" put-file f/big3 big \
		2>err &&
	test_grep "s3://$BUCKET/f/big3: PUT: HTTP 400" err &&
	grep "^DELETE /$BUCKET/f/big3?uploadId=" pmp3.log &&
	test_expect_code 4 ckpt-test-tool s3 "$BUCKET" head f/big3
'

test_expect_success 'a conditional create retried after a reset stays exactly-once' '
	rgw_proxy_start pcc reset:1:PUT &&
	test_when_finished "rgw_proxy_stop pcc" &&
	s3p "$BUCKET" put f/once small --if-absent 2>err &&
	test_expect_code 5 s3p "$BUCKET" put f/once data --if-absent 2>err &&
	ckpt-test-tool s3 "$BUCKET" get f/once >got &&
	test_cmp small got
'

test_expect_success 'nothing listening: connection refused, a clear error' '
	test_expect_code 3 env AWS_ENDPOINT_URL=http://127.0.0.1:1/ \
		ckpt-test-tool s3 --backoff 10 --attempts 2 "$BUCKET" get f/data \
		>out 2>err &&
	test_grep "s3://$BUCKET/f/data: GET: Couldn.t connect to server.* after 2 attempts" err &&
	test_cmp /dev/null out
'

test_expect_success 'a conditional create whose answer is lost still wins once' '
	printf "record of writer A\n" >recA &&
	rgw_proxy_start plose lose:1:PUT &&
	test_when_finished "rgw_proxy_stop plose" &&
	s3p "$BUCKET" put f/lost recA --if-absent 2>err &&
	test_grep "^requests 3 retries 1" err &&
	test $(grep -c "^PUT /$BUCKET/f/lost " plose.log) = 2 &&
	printf "record of writer B\n" >recB &&
	test_expect_code 5 s3p "$BUCKET" put f/lost recB --if-absent 2>err &&
	ckpt-test-tool s3 "$BUCKET" get f/lost >got &&
	test_cmp recA got
'

test_done
