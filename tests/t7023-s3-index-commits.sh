#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='the listing index of a store on a real RGW kept current
by the commits (save, --force, push, import) and removals (prune): the first
ls after them reads no summary; an index deleted, truncated, damaged or
stale gives the same listing as no index and is rebuilt; two savers
updating it at once both keep their entries; RUN@STEP is resolved from
its manifest without listing the run'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

STORE="s3://$BUCKET/cx"
IX=cx/.ckpt/index/r.json

# entries: the names the run's index holds, one a line, sorted.
entries() {
	s3 "$BUCKET" get $IX >ix.json &&
	"$PYTHON" -c "
import json, sys
d = json.load(open(\"ix.json\"))
assert d[\"ckpt-run-index\"] == 1
print(\"\n\".join(sorted(d[\"entries\"])))
"
}

# reference: what ls says with no index at all (the index is put back).
reference() {
	s3 "$BUCKET" get $IX >saved.json &&
	s3 "$BUCKET" delete $IX &&
	ckpt -C "$STORE" ls >"$1" &&
	s3 "$BUCKET" put $IX saved.json
}

# summary_reads LOG: GETs of summaries the proxy saw.
summary_reads() {
	grep -c "^GET /$BUCKET/cx/runs/r/.*/ckpt-summary.json" "$1"
}

test_expect_success 'setup: twelve saves, each adding itself to the index' '
	ckpt init -C "$STORE" >/dev/null &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
		printf "weights of step %d\n" $i >w$i.dat &&
		ckpt -C "$STORE" save -q --copy --run r --step $i \
		    --metric loss=0.$i w$i.dat >/dev/null || return 1
	done &&
	entries >names &&
	test $(wc -l <names) = 12 &&
	test_grep "^step-12$" names
'

test_expect_success 'the first ls after the saves reads no summary' '
	rgw_proxy_start pfirst &&
	test_when_finished "rgw_proxy_stop pfirst" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >first.out &&
	test $(grep -c "^r  *[0-9]" first.out) = 12 &&
	test $(summary_reads pfirst.log) = 0 &&
	! grep "ckpt-manifest.json\|ckpt-status.json\|^PUT " pfirst.log &&
	reference ref.out &&
	test_cmp ref.out first.out
'

test_expect_success 'push, import and save --force keep the index current' '
	ckpt -C local init >/dev/null &&
	printf "pushed weights\n" >p.dat &&
	ckpt -C local save -q --run r --step 20 p.dat >/dev/null &&
	ckpt -C local push r@20 "$STORE" >/dev/null &&
	printf "imported weights\n" >i.dat &&
	ckpt -C local save -q --run r --step 21 i.dat >/dev/null &&
	ckpt -C local export r@21 -o r21.tar >/dev/null &&
	ckpt -C "$STORE" import r21.tar >/dev/null &&
	printf "replaced weights of step 3\n" >w3b.dat &&
	ckpt -C "$STORE" save -q --force --copy --run r --step 3 \
	    --metric loss=0.99 w3b.dat >/dev/null &&
	entries >names &&
	test $(wc -l <names) = 14 &&
	test_grep "^step-20$" names &&
	test_grep "^step-21$" names &&
	rgw_proxy_start ppush &&
	test_when_finished "rgw_proxy_stop ppush" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >out &&
	test $(summary_reads ppush.log) = 0 &&
	test_grep "^r  *3 .*loss=0.99" out &&
	test_grep "^r  *20 " out &&
	reference ref.out &&
	test_cmp ref.out out
'

test_expect_success 'prune drops what it removes from the index' '
	s3 "$BUCKET" get $IX >before-prune.json &&
	ckpt -C "$STORE" prune --run r --keep-last 10 >/dev/null &&
	entries >names &&
	test $(wc -l <names) = 10 &&
	! grep "^step-1$" names &&
	! grep "^step-2$" names &&
	rgw_proxy_start pprune &&
	test_when_finished "rgw_proxy_stop pprune" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >out &&
	test $(summary_reads pprune.log) = 0 &&
	test $(grep -c "^r  *[0-9]" out) = 10 &&
	reference ref.out &&
	test_cmp ref.out out
'

test_expect_success 'a stale index (from before the prune) is not believed' '
	s3 "$BUCKET" put $IX before-prune.json &&
	ckpt -C "$STORE" ls >out &&
	test_cmp ref.out out &&
	! grep "^r  *[12] " out
'

test_expect_success 'an index missing entries costs only their reads' '
	"$PYTHON" -c "
import json
d = json.load(open(\"before-prune.json\"))
for k in (\"step-5\", \"step-6\"):
    del d[\"entries\"][k]
json.dump(d, open(\"partial.json\", \"w\"))
" &&
	s3 "$BUCKET" put $IX partial.json &&
	rgw_proxy_start ppart &&
	test_when_finished "rgw_proxy_stop ppart" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >out &&
	test_cmp ref.out out &&
	test $(summary_reads ppart.log) = 2 &&
	test_grep "GET .*/step-5/ckpt-summary.json" ppart.log
'

test_expect_success 'a deleted index: the same listing, and it is rebuilt' '
	s3 "$BUCKET" delete $IX &&
	ckpt -C "$STORE" ls >out &&
	test_cmp ref.out out &&
	entries >names &&
	test $(wc -l <names) = 10
'

test_expect_success 'a truncated index: the same listing, and it is rebuilt' '
	s3 "$BUCKET" get $IX >whole.json &&
	head -c $(($(wc -c <whole.json) / 2)) whole.json >half.json &&
	s3 "$BUCKET" put $IX half.json &&
	rgw_proxy_start ptrunc &&
	test_when_finished "rgw_proxy_stop ptrunc" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >out &&
	test_cmp ref.out out &&
	test $(summary_reads ptrunc.log) = 10 &&
	test_grep "^PUT /$BUCKET/$IX forward" ptrunc.log &&
	entries >names &&
	test $(wc -l <names) = 10
'

test_expect_success 'a damaged summary in the index is not believed' '
	s3 "$BUCKET" get $IX >good.json &&
	"$PYTHON" -c "
import json
d = json.load(open(\"good.json\"))
e = d[\"entries\"][\"step-7\"]
damaged = e[\"summary\"].replace(\"\\\"step\\\": 7,\", \"\\\"step\\\": 70,\")
assert damaged != e[\"summary\"]
e[\"summary\"] = damaged
json.dump(d, open(\"damaged.json\", \"w\"))
" &&
	s3 "$BUCKET" put $IX damaged.json &&
	rgw_proxy_start pdamaged &&
	test_when_finished "rgw_proxy_stop pdamaged" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >out &&
	test_cmp ref.out out &&
	test $(summary_reads pdamaged.log) = 1 &&
	test_grep "GET .*/step-7/ckpt-summary.json" pdamaged.log &&
	s3 "$BUCKET" put $IX good.json
'

test_expect_success 'two savers updating the index at once keep both entries' '
	rgw_proxy_start prace "hold:1:PUT /$BUCKET/$IX" &&
	test_when_finished "rgw_proxy_stop prace" &&
	printf "step 30\n" >w30.dat &&
	printf "step 31\n" >w31.dat &&
	(AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" save -q --copy \
	    --run r --step 30 w30.dat >a.out 2>a.err; echo $? >a.rc) &
	saver=$! &&
	n=0 &&
	while ! grep -q "^PUT /$BUCKET/$IX hold" prace.log; do
		n=$((n + 1)) &&
		test $n -lt 300 || return 1
		sleep 0.1
	done &&
	ckpt -C "$STORE" save -q --copy --run r --step 31 w31.dat >/dev/null &&
	entries >mid &&
	test_grep "^step-31$" mid &&
	! grep "^step-30$" mid &&
	touch prace.log.go &&
	wait $saver &&
	test "$(cat a.rc)" = 0 &&
	test $(grep -c "^PUT /$BUCKET/$IX " prace.log) = 2 &&
	entries >names &&
	test_grep "^step-30$" names &&
	test_grep "^step-31$" names &&
	test $(wc -l <names) = 12 &&
	reference ref.out &&
	ckpt -C "$STORE" ls >out &&
	test_cmp ref.out out
'

test_expect_success 'savers in parallel: the same listing as no index' '
	for k in 1 2 3; do
		(for i in 1 2 3 4; do
			printf "p%d-%d\n" $k $i >par$k$i.dat &&
			ckpt -C "$STORE" save -q --copy --run r \
			    --step $((100 + 10 * k + i)) par$k$i.dat \
			    >/dev/null || exit 1
		done) &
	done &&
	wait &&
	ckpt -C "$STORE" ls >out &&
	test $(grep -c "^r  *1[0-9][0-9] " out) = 12 &&
	reference ref.out &&
	test_cmp ref.out out
'

test_expect_success 'an index that cannot be written never fails a save' '
	rgw_proxy_start pfail "500:all:PUT /$BUCKET/$IX" &&
	test_when_finished "rgw_proxy_stop pfail" &&
	printf "step 40\n" >w40.dat &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" save -q --copy \
	    --run r --step 40 w40.dat >/dev/null &&
	test_grep "^PUT /$BUCKET/$IX 500" pfail.log &&
	! entries | grep "^step-40$" &&
	ckpt -C "$STORE" ls >out &&
	test_grep "^r  *40 " out &&
	reference ref.out &&
	test_cmp ref.out out
'

test_expect_success 'RUN@STEP: its manifest and summary, no listing' '
	rgw_proxy_start pref &&
	test_when_finished "rgw_proxy_stop pref" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" inspect r@7 >out &&
	test_grep "w7.dat" out &&
	! grep "prefix=cx%2Fruns%2Fr%2F \|prefix=cx%2Fruns%2F \|/\.ckpt/index/" \
	    pref.log &&
	test_grep "^HEAD /$BUCKET/cx/runs/r/step-7/ckpt-manifest.json" \
	    pref.log &&
	test $(wc -l <pref.log) -le 8 &&
	: >pref.log &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" verify r@7 >out 2>&1 &&
	! grep "prefix=cx%2Fruns%2Fr%2F \|prefix=cx%2Fruns%2F " pref.log
'

test_expect_success 'RUN@STEP of no checkpoint: the listing says so' '
	test_expect_code 3 ckpt -C "$STORE" inspect r@999 2>err &&
	test_grep "no committed checkpoint r@999" err
'

test_expect_success 'RUN@STEP whose summary names another step: found by listing' '
	for f in ckpt-manifest.json ckpt-summary.json w8.dat; do
		s3 "$BUCKET" copy cx/runs/r/step-8/$f cx/runs/r/step-80/$f ||
		return 1
	done &&
	test_expect_code 3 ckpt -C "$STORE" inspect r@80 2>err &&
	test_grep "no committed checkpoint r@80" err &&
	ckpt -C "$STORE" inspect r@8 >out &&
	test_grep "w8.dat" out
'

test_done
