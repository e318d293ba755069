#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='S3 client: every operation against a real Ceph RADOS
Gateway on loopback (scripts/rgw)'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

test_expect_success 'the gateway listens on loopback only' '
	ss -Hltnp >listen &&
	grep -e ceph -e radosgw listen >ours &&
	test -s ours &&
	! grep -v "127\.0\.0\.1:" ours
'

test_expect_success 'put, head and get round trip' '
	printf "hello, object\n" >small &&
	s3 "$BUCKET" put t1/small small >put.out &&
	read size etag <put.out &&
	test "$size" = 14 &&
	s3 "$BUCKET" head t1/small >head.out &&
	echo "14 $etag" >expect &&
	test_cmp expect head.out &&
	s3 "$BUCKET" get t1/small >got &&
	test_cmp small got
'

test_expect_success 'head and list give the service'"'"'s modification time' '
	now=$(date +%s) &&
	S3_TOOL_MTIME=1 s3 "$BUCKET" head t1/small >head.out &&
	read size etag mtime <head.out &&
	test $((mtime - now)) -lt 120 && test $((now - mtime)) -lt 120 &&
	S3_TOOL_MTIME=1 s3 "$BUCKET" list t1/small >list.out &&
	echo "t1/small 14 $mtime" >expect &&
	test_cmp expect list.out
'

test_expect_success 'an empty object' '
	: >empty &&
	s3 "$BUCKET" put t1/empty empty &&
	s3 "$BUCKET" get t1/empty >got &&
	test_cmp empty got &&
	s3 "$BUCKET" head t1/empty >head.out &&
	test_grep "^0 " head.out
'

test_expect_success 'ranged GET: a middle, a tail, a range past the end' '
	ckpt-test-tool fill data 100000 3 &&
	s3 "$BUCKET" put t1/data data &&
	s3 "$BUCKET" get t1/data 1000 24 >mid &&
	dd if=data of=expect bs=1 skip=1000 count=24 2>/dev/null &&
	test_cmp expect mid &&
	s3 "$BUCKET" get t1/data 99990 >tail &&
	tail -c 10 data >expect &&
	test_cmp expect tail &&
	s3 "$BUCKET" get t1/data 99990 500 >clipped &&
	test_cmp expect clipped &&
	test_expect_code 3 s3 "$BUCKET" get t1/data 100000 10 2>err &&
	test_grep "s3://$BUCKET/t1/data: GET: HTTP 416" err
'

test_expect_success 'a receiver that fails stops the download with a clear error' '
	test_expect_code 3 s3 "$BUCKET" get t1/data >/dev/full 2>err &&
	test_grep "s3://$BUCKET/t1/data: GET: the receiver of the data stopped" err
'

test_expect_success 'a missing key: exit 4, the error names bucket, key and 404' '
	test_expect_code 4 s3 "$BUCKET" head t1/nothing 2>err &&
	test_grep "s3://$BUCKET/t1/nothing: HEAD: HTTP 404" err &&
	test_expect_code 4 s3 "$BUCKET" get t1/nothing 2>err &&
	test_grep "s3://$BUCKET/t1/nothing: GET: HTTP 404 NoSuchKey" err
'

test_expect_success 'a missing bucket is named with its error code' '
	test_expect_code 4 s3 no-such-bucket get k 2>err &&
	test_grep "s3://no-such-bucket/k: GET: HTTP 404 NoSuchBucket" err
'

test_expect_success 'delete removes; deleting a missing key succeeds' '
	s3 "$BUCKET" put t1/gone small &&
	s3 "$BUCKET" delete t1/gone &&
	test_expect_code 4 s3 "$BUCKET" head t1/gone &&
	s3 "$BUCKET" delete t1/gone
'

test_expect_success 'conditional create: the second one is refused, content kept' '
	printf first >first && printf second >second &&
	s3 "$BUCKET" put t1/once first --if-absent &&
	test_expect_code 5 s3 "$BUCKET" put t1/once second --if-absent 2>err &&
	test_grep "s3://$BUCKET/t1/once: PUT: the key exists already (HTTP 412" err &&
	s3 "$BUCKET" get t1/once >got &&
	test_cmp first got
'

test_expect_success 'two concurrent conditional creates: exactly one wins (20 rounds)' '
	for i in $(seq 1 20); do
		# Inputs first: "x && { ...; } &" would background x as well.
		printf "writer a $i" >a && printf "writer b $i" >b || exit 1
		{ rc=0; s3 "$BUCKET" put t1/race$i a --if-absent >/dev/null \
			2>ea || rc=$?; echo $rc >rca; } &
		{ rc=0; s3 "$BUCKET" put t1/race$i b --if-absent >/dev/null \
			2>eb || rc=$?; echo $rc >rcb; } &
		wait
		test -s rca && test -s rcb &&
		echo "$(cat rca) $(cat rcb)" >rcs && rm -f rca rcb &&
		case "$(cat rcs)" in
		"0 5") cp a winner ;;
		"5 0") cp b winner ;;
		*) echo "round $i: exit codes $(cat rcs)"; cat ea eb; exit 1 ;;
		esac &&
		s3 "$BUCKET" get t1/race$i >got &&
		test_cmp winner got || exit 1
	done
'

test_expect_success 'keys that need encoding round trip (space, +, %2F, &, =, UTF-8)' '
	key="t1/odd/we ird+key/%2F&x=y/é" &&
	s3 "$BUCKET" put "$key" small &&
	s3 "$BUCKET" get "$key" >got &&
	test_cmp small got &&
	s3 "$BUCKET" list t1/odd/ >list &&
	echo "$key 14" >expect &&
	test_cmp expect list
'

test_expect_success 'a key with a control character is refused before sending' '
	test_expect_code 3 s3 "$BUCKET" put "$(printf "t1/a\tb")" small 2>err &&
	test_grep "control character in S3 key" err
'

test_expect_success 'list with prefix and delimiter: keys and common prefixes' '
	for k in t1/l/a t1/l/b t1/l/d1/x t1/l/d1/y t1/l/d2/z; do
		s3 "$BUCKET" put $k small || exit 1
	done &&
	s3 "$BUCKET" list t1/l/ / >unsorted &&
	LC_ALL=C sort unsorted >list &&
	cat >expect <<-\EOF &&
	t1/l/a 14
	t1/l/b 14
	t1/l/d1/
	t1/l/d2/
	EOF
	test_cmp expect list &&
	s3 "$BUCKET" list t1/l/d1/ >list &&
	printf "t1/l/d1/x 14\nt1/l/d1/y 14\n" >expect &&
	test_cmp expect list
'

test_expect_success 'a 1,000-object listing, in one page and in pages of 100' '
	s3 "$BUCKET" put-many t1/k/ 1000 &&
	s3 --stats "$BUCKET" list t1/k/ >list 2>stats &&
	test $(wc -l <list) = 1000 &&
	LC_ALL=C sort list >sorted &&
	test_cmp sorted list &&
	head -n 1 list >first &&
	echo "t1/k/000000 11" >expect &&
	test_cmp expect first &&
	tail -n 1 list >last &&
	echo "t1/k/000999 11" >expect &&
	test_cmp expect last &&
	test_grep "^requests 1 " stats &&
	s3 --stats --page 100 "$BUCKET" list t1/k/ >paged 2>stats &&
	test_cmp list paged &&
	test_grep "^requests 10 " stats
'

test_expect_success 'multipart upload: parts in parallel, hashed in the same pass' '
	ckpt-test-tool fill big 23068673 5 &&
	s3 --stats --part-size 5242880 --parallel 3 "$BUCKET" put-file t1/big big \
		>out 2>stats &&
	echo "23068673 $(sha256sum <big | cut -d" " -f1)" >expect &&
	test_cmp expect out &&
	test_grep "^requests 8 retries 0" stats &&
	s3 "$BUCKET" head t1/big >head.out &&
	test_grep "^23068673 [0-9a-f]*-5$" head.out &&
	s3 "$BUCKET" get t1/big >got &&
	cmp big got &&
	s3 "$BUCKET" get t1/big 5242870 20 >seam &&
	dd if=big of=expect bs=1 skip=5242870 count=20 2>/dev/null &&
	test_cmp expect seam
'

test_expect_success 'put-file below the part size is one PUT' '
	s3 --stats "$BUCKET" put-file t1/one data >out 2>stats &&
	test_grep "^requests 1 retries 0" stats &&
	s3 "$BUCKET" get t1/one >got &&
	cmp data got
'

test_done
