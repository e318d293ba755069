#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='ls of a store on a real RGW with 1,000 checkpoints: the
run'"'"'s listing index spares the reads of every summary once written,
gives the same listing, is believed only for the manifest ETag it
recorded, and prune never uses it (t7023: how commits keep it current)'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

STORE="s3://$BUCKET/ix"
IX=ix/.ckpt/index/r.json

test_expect_success 'setup: 1,000 checkpoints of one run, 999 not in the index' '
	ckpt init -C "$STORE" >/dev/null &&
	printf "not a checkpoint format, 40 bytes......\n" >w.dat &&
	ckpt -C "$STORE" save --copy --run r --step 1 w.dat >/dev/null &&
	s3 "$BUCKET" get $IX >ix1.json &&
	test_grep "\"step-1\"" ix1.json &&
	s3 "$BUCKET" clone-steps ix/runs/r/step-1 2 1000 &&
	s3 "$BUCKET" list ix/runs/r/ >keys &&
	test $(grep -c "/ckpt-manifest.json " keys) = 1000
'

test_expect_success 'the first ls reads the summaries and writes the index' '
	rgw_proxy_start pcold &&
	test_when_finished "rgw_proxy_stop pcold" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >cold.out &&
	test $(grep -c "^r  *[0-9]" cold.out) = 1000 &&
	test $(grep -c "^GET /$BUCKET/ix/runs/r/.*/ckpt-summary.json" \
	    pcold.log) = 999 &&
	test_grep "^PUT /$BUCKET/$IX forward" pcold.log &&
	s3 "$BUCKET" head $IX
'

test_expect_success 'the next ls: the same listing from a few requests' '
	rgw_proxy_start pwarm &&
	test_when_finished "rgw_proxy_stop pwarm" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >warm.out &&
	test_cmp cold.out warm.out &&
	! grep "^[A-Z]* /$BUCKET/ix/runs/r/.*/ckpt-\(summary\|status\)" \
	    pwarm.log &&
	! grep "^PUT \|/ckpt-manifest.json" pwarm.log &&
	test $(wc -l <pwarm.log) -le 16
'

test_expect_success 'an index entry for another manifest ETag is not believed' '
	s3 "$BUCKET" get $IX >ix.json &&
	"$PYTHON" -c "
import hashlib, json
d = json.load(open(\"ix.json\"))
s = json.loads(d[\"entries\"][\"step-7\"][\"summary\"])
s[\"tags\"] = [\"forged\"]
t = json.dumps(s)
d[\"entries\"][\"step-7\"] = {
    \"etag\": \"0123456789abcdef0123456789abcdef\",
    \"sha256\": hashlib.sha256(t.encode()).hexdigest(), \"summary\": t}
json.dump(d, open(\"forged.json\", \"w\"))
" &&
	s3 "$BUCKET" put $IX forged.json &&
	rgw_proxy_start pforged &&
	test_when_finished "rgw_proxy_stop pforged" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" ls >out &&
	test_cmp cold.out out &&
	test $(grep -c "^GET /$BUCKET/ix/runs/r/.*/ckpt-summary.json" \
	    pforged.log) = 1 &&
	test_grep "^GET .*/step-7/ckpt-summary.json" pforged.log
'

test_expect_success 'a malformed index is as good as none, and rebuilt' '
	printf "{not json" >bad.json &&
	s3 "$BUCKET" put $IX bad.json &&
	ckpt -C "$STORE" ls >out &&
	test_cmp cold.out out &&
	s3 "$BUCKET" get $IX >rebuilt.json &&
	test_grep "\"ckpt-run-index\":1" rebuilt.json
'

test_expect_success 'an index of the first format (no version) is rebuilt' '
	"$PYTHON" -c "
import json
d = json.load(open(\"rebuilt.json\"))
old = {k: {\"etag\": v[\"etag\"], \"summary\": v[\"summary\"]}
       for k, v in d[\"entries\"].items()}
json.dump(old, open(\"v0.json\", \"w\"))
" &&
	s3 "$BUCKET" put $IX v0.json &&
	ckpt -C "$STORE" ls >out &&
	test_cmp cold.out out &&
	s3 "$BUCKET" get $IX >rebuilt.json &&
	test_grep "\"ckpt-run-index\":1" rebuilt.json
'

test_expect_success 'prune reads every checkpoint itself; the index only once done' '
	ckpt -C "$STORE" ls >/dev/null &&
	rgw_proxy_start pprune &&
	test_when_finished "rgw_proxy_stop pprune" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt -C "$STORE" prune --run r \
	    --keep-last 999 >out &&
	sed "/^DELETE \/$BUCKET\/ix\/.ckpt\/lock /q" pprune.log >decided &&
	test_grep "^DELETE /$BUCKET/ix/runs/r/step-1/ckpt-manifest.json" \
	    decided &&
	! grep "^GET /$BUCKET/$IX" decided &&
	test_grep "^PUT /$BUCKET/$IX" pprune.log &&
	test $(grep -c "^GET /$BUCKET/ix/runs/r/.*/ckpt-summary.json" \
	    pprune.log) = 1000
'

test_expect_success 'prune dropped what it removed from the index' '
	s3 "$BUCKET" get $IX >after.json &&
	! grep "\"step-1\"" after.json &&
	test_grep "\"step-2\"" after.json
'

test_expect_success 'a checkpoint removed since the index was written is not listed' '
	s3 "$BUCKET" put $IX rebuilt.json &&
	ckpt -C "$STORE" ls >out &&
	test $(grep -c "^r  *[0-9]" out) = 999 &&
	! grep "^r  *1 " out
'

test_done
