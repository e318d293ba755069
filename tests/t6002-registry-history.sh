#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='registry: alias moves, rollback, the history newest first,
its hash chain, tampering detected, state files checked and repaired'
. "$(dirname "$0")/lib.sh"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

test_expect_success 'setup: three versions of m' '
	mkstore s r@1:loss=3 r@2:loss=2 r@3:loss=1 &&
	ckpt -C s promote -q r@1 --model m --alias prod &&
	ckpt -C s promote -q r@2 --model m &&
	ckpt -C s promote -q r@3 --model m
'

test_expect_success 'alias moves, with notes; moving to the same version records nothing' '
	ckpt -C s alias m prod v2 --note "canary ok" >out &&
	echo "m@prod: v1 -> v2" >expect &&
	test_cmp expect out &&
	ckpt -C s alias m prod 3 >out &&
	echo "m@prod: v2 -> v3" >expect &&
	test_cmp expect out &&
	cp s/registry/.history.jsonl before &&
	ckpt -C s alias m prod v3 >out &&
	echo "m@prod names v3 already" >expect &&
	test_cmp expect out &&
	test_cmp before s/registry/.history.jsonl &&
	ckpt -C s --json alias m staging v1 >out.json &&
	"$PYTHON" -c "
import json
d = json.load(open(\"out.json\"))
assert d == {\"schema\": 1, \"model\": \"m\", \"alias\": \"staging\",
             \"from\": None, \"to\": 1, \"changed\": True}, d
"
'

test_expect_success 'rollback goes back one move at a time' '
	ckpt -C s promote --rollback m --alias prod >out &&
	echo "rolled back m@prod: v3 -> v2" >expect &&
	test_cmp expect out &&
	ckpt -C s verify m@prod >out &&
	test_grep "registry/m/v2/" out &&
	ckpt -C s promote --rollback m --alias prod >out &&
	echo "rolled back m@prod: v2 -> v1" >expect &&
	test_cmp expect out &&
	test_expect_code 2 ckpt -C s promote --rollback m --alias prod 2>err &&
	test_grep "nothing to roll back to" err &&
	test_expect_code 2 ckpt -C s promote --rollback m --alias nosuch &&
	test_expect_code 2 ckpt -C s promote --rollback m 2>err &&
	test_grep "needs one --alias" err
'

test_expect_success 'delete an alias; unknown names are exit 2' '
	ckpt -C s alias --delete m staging >out &&
	echo "deleted m@staging (was v1)" >expect &&
	test_cmp expect out &&
	test_expect_code 3 ckpt -C s verify m@staging 2>err &&
	test_grep "has no alias .staging." err &&
	test_expect_code 2 ckpt -C s alias --delete m staging &&
	test_expect_code 2 ckpt -C s alias m prod v9 2>err &&
	test_grep "has no version 9" err &&
	test_expect_code 2 ckpt -C s alias nomodel prod v1 2>err &&
	test_grep "no model .nomodel." err &&
	test_expect_code 2 ckpt -C s alias m latest v1 &&
	test_expect_code 2 ckpt -C s alias m prod
'

test_expect_success 'ckpt log: newest first, every change, filters' '
	ckpt -C s log >out &&
	sed -n "2,\$p" out | awk "{ print \$1, \$5, \$6, \$7, \$8 }" >actual &&
	cat >expect <<-\EOF &&
	10 delete staging (v1) 
	9 rollback prod v2 ->
	8 rollback prod v3 ->
	7 staging -> v1 
	6 prod v2 -> v3
	5 prod v1 -> v2
	4 promote v3 r@3 sha256:
	3 promote v2 r@2 sha256:
	2 prod -> v1 
	1 promote v1 r@1 sha256:
	EOF
	sed "s/sha256:[0-9a-f]*/sha256:/" actual >actual2 &&
	test_cmp expect actual2 &&
	test_grep "canary ok" out &&
	ckpt -C s log --alias staging >out &&
	test "$(wc -l <out)" = 3 &&
	ckpt -C s log --model m -n 2 >out &&
	test "$(wc -l <out)" = 3 &&
	ckpt -C s log --model other >out 2>err &&
	test_cmp /dev/null out
'

test_expect_success 'ckpt log --json: stable keys, chained digests' '
	ckpt -C s --json log >log.json &&
	"$PYTHON" - <<-\EOF
	import json, hashlib
	doc = json.load(open("log.json"))
	recs = doc["records"]
	lines = open("s/registry/.history.jsonl", "rb").read().splitlines()
	assert len(recs) == len(lines) == 10
	assert [r["seq"] for r in recs] == list(range(10, 0, -1))
	for r, line in zip(reversed(recs), lines):
	    assert r["digest"] == "sha256:" + hashlib.sha256(line).hexdigest()
	prev = None
	for r in reversed(recs):
	    assert r["prev"] == prev, (r, prev)
	    prev = r["digest"]
	assert doc["head"] == prev
	EOF
'

test_expect_success 'log --verify passes on an intact registry' '
	ckpt -C s log --verify >out 2>err &&
	test_grep "^m@v1: OK$" out &&
	test_grep "^m@v3: OK$" out &&
	test_grep "chain intact" err
'

test_expect_success 'a tampered record is detected and everything fails closed' '
	cp s/registry/.history.jsonl good &&
	sed "3s/\"step\":2/\"step\":1/" good >s/registry/.history.jsonl &&
	! test_cmp good s/registry/.history.jsonl >/dev/null &&
	test_expect_code 1 ckpt -C s log --verify >out 2>err &&
	test_grep "record 4 does not chain to the record before it" err &&
	test_grep "WARNING: the registry did NOT verify" err &&
	test_expect_code 3 ckpt -C s log 2>err &&
	test_grep "history.jsonl: record 4 does not chain.*(at byte [0-9]*)" err &&
	test_expect_code 3 ckpt -C s verify m@prod 2>err &&
	test_expect_code 3 ckpt -C s models 2>err &&
	test_expect_code 3 ckpt -C s alias m prod v3 2>err &&
	test_expect_code 3 ckpt -C s promote r@1 --model m 2>err
'

test_expect_success 'a removed record, a cut line and a bad JSON line are detected' '
	sed 3d good >s/registry/.history.jsonl &&
	test_expect_code 1 ckpt -C s log --verify 2>err &&
	test_grep "record 3 does not chain" err &&
	head -c -1 good >s/registry/.history.jsonl &&
	test_expect_code 3 ckpt -C s log 2>err &&
	test_grep "not terminated by a newline" err &&
	{ head -n 2 good && echo "{not json" && sed 1,2d good; } \
		>s/registry/.history.jsonl &&
	test_expect_code 3 ckpt -C s log 2>err &&
	test_grep "record 3" err &&
	cp good s/registry/.history.jsonl &&
	ckpt -C s log --verify >/dev/null 2>&1
'

test_expect_success 'a changed version file is detected by log --verify' '
	echo extra >>s/registry/m/v2/weights.bin &&
	test_expect_code 1 ckpt -C s log --verify >out 2>err &&
	test_grep "^m@v2: FAILED" out &&
	test_expect_code 1 ckpt -C s verify m@v2 >/dev/null 2>&1 &&
	rm -rf s && mkstore s r@1:loss=3 &&
	ckpt -C s promote -q r@1 --model m --alias prod &&
	rm -rf s/registry/m/v1 &&
	test_expect_code 1 ckpt -C s log --verify 2>err &&
	test_grep "registry-version-missing" err
'

test_expect_success 'state files that disagree with the history are rewritten' '
	rm -rf s && mkstore s r@1:loss=3 r@2:loss=2 &&
	ckpt -C s promote -q r@1 --model m --alias prod &&
	ckpt -C s promote -q r@2 --model m --alias prod &&
	cp s/registry/m/aliases.json aliases.good &&
	sed "s/\"version\": 2/\"version\": 1/" aliases.good \
		>s/registry/m/aliases.json &&
	rm s/registry/m/v1.json &&
	ckpt -C s log --verify 2>err &&
	test_grep "completed 2 changes" err &&
	test_cmp aliases.good s/registry/m/aliases.json &&
	test_path_is_file s/registry/m/v1.json
'

test_expect_success 'a version directory with no record goes to the trash, not away' '
	mkdir -p s/registry/m/v3 && echo x >s/registry/m/v3/f &&
	echo "{}" >s/registry/m/v3.json &&
	ckpt -C s log --verify 2>err &&
	test_path_is_missing s/registry/m/v3 &&
	test_path_is_missing s/registry/m/v3.json &&
	ls s/.ckpt/trash >trash &&
	test_grep "registry-m-v3\." trash
'

test_expect_success 'verify --registry checks the chain and the named versions' '
	rm -rf s && mkstore s r@1:loss=3 r@2:loss=2 &&
	ckpt -C s promote -q r@1 --model m &&
	ckpt -C s promote -q r@2 --model m --alias prod &&
	ckpt -C s verify --registry >out 2>err &&
	test_grep "^m@v1: OK$" out && test_grep "^m@v2: OK$" out &&
	test_grep "2 versions match their manifests" err &&
	ckpt -C s verify --registry m@prod >out 2>err &&
	echo "m@v2: OK" >expect && test_cmp expect out &&
	ckpt -C s verify --registry m@v1 m@2 >out &&
	test "$(wc -l <out)" = 2 &&
	ckpt -C s verify --registry m >out &&
	test "$(wc -l <out)" = 2
'

test_expect_success 'verify --registry: a changed version file is exit 1, others still OK' '
	echo x >>s/registry/m/v1/weights.bin &&
	test_expect_code 1 ckpt -C s verify --registry m@v1 >out 2>err &&
	test_grep "^m@v1: FAILED (size-mismatch)$" out &&
	test_grep "did NOT verify" err &&
	ckpt -C s verify --registry m@prod >out &&
	test_expect_code 1 ckpt -C s --json verify --registry >out.json &&
	"$PYTHON" -c "
import json
d = json.load(open(\"out.json\"))
assert d[\"ok\"] is False
assert [(v[\"version\"], v[\"ok\"]) for v in d[\"versions\"]] == \
    [(1, False), (2, True)], d
"
'

test_expect_success 'verify --registry: a tampered history is exit 1, names what, nothing repaired' '
	rm -rf s && mkstore s r@1:loss=3 r@2:loss=2 &&
	ckpt -C s promote -q r@1 --model m &&
	ckpt -C s promote -q r@2 --model m &&
	sed "1s/\"step\":1/\"step\":2/" s/registry/.history.jsonl >h &&
	mv h s/registry/.history.jsonl &&
	test_expect_code 1 ckpt -C s verify --registry 2>err &&
	test_grep "does not chain" err
'

test_expect_success 'verify --registry: unknown names are exit 3, bad options exit 2' '
	rm -rf s && mkstore s r@1:loss=3 &&
	ckpt -C s promote -q r@1 --model m --alias prod &&
	test_expect_code 3 ckpt -C s verify --registry m@v9 2>err &&
	test_grep "m@v9: no such model, version or alias" err &&
	test_expect_code 3 ckpt -C s verify --registry m@staging 2>err &&
	test_expect_code 3 ckpt -C s verify --registry other 2>err &&
	test_expect_code 2 ckpt -C s verify --registry --fast 2>err &&
	test_expect_code 2 ckpt -C s verify --registry --all 2>err &&
	test_expect_code 2 ckpt -C s verify --registry "m/x" 2>err
'

test_expect_success 'verify --registry --require-signature: an unsigned promotion is exit 1' '
	test_expect_code 1 ckpt -C s verify --registry --require-signature \
		m@prod 2>err &&
	test_grep "promotion-unsigned" err
'

test_done
