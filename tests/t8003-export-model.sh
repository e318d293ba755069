#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='export of a model version carries its lineage (the history
up to its promotion); import recreates the version with that lineage kept and
verifiable; hostile model entries are refused with the store unchanged'
. "$(dirname "$0")/lib.sh"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

edit_list() {	# edit_list IN OUT PYTHON: rewrite the bundle's list
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/edit-bundle-list.py" "$@"
}

snapshot() {	# every path, type and size under a store
	(cd "$1" && find . -path ./.ckpt/lock -prune -o -printf "%p %y %s\n" |
	sort) >"$2"
}

test_expect_success 'setup: a store with a history, llama v1 and v2 (production)' '
	mkstore a r@1:loss=3 r@2:loss=2 r@3:loss=1 &&
	ckpt -C a promote -q r@1 --model llama &&
	ckpt -C a pin r@3 &&
	ckpt -C a promote -q r@2 --model llama --alias production \
		--note "eval 118" &&
	ckpt -C a alias llama staging v1 &&
	ckpt init b >/dev/null
'

test_expect_success 'export MODEL@ALIAS: the checkpoint and the lineage up to its promotion' '
	ckpt -C a export -o m.tar llama@production >out &&
	test_grep "^exported r@2 " out &&
	tar xOf m.tar ckpt-bundle.json >list.json &&
	"$PYTHON" - <<-\EOF
	import json
	doc = json.load(open("list.json"))
	(m,) = doc["models"]
	assert (m["model"], m["version"], m["checkpoint"]) == \
	    ("llama", 2, "r@2"), m
	hist = open("a/registry/.history.jsonl").read().splitlines(True)
	# records 1-3: promote v1, pin, promote v2 (the alias move after it
	# is not part of the lineage)
	assert m["lineage"] == "".join(hist[:3]), (m["lineage"], hist)
	assert m["manifest"] == doc["checkpoints"][0]["manifest"]
	EOF
'

test_expect_success 'import recreates the version: lineage kept, chain and files verify' '
	ckpt -C b import m.tar >out &&
	test_grep "^imported r@2 " out &&
	test_grep "^imported llama v1 from r@2 (v2 where exported, lineage kept)$" out &&
	head -n 3 a/registry/.history.jsonl >expect &&
	test_cmp expect b/registry/llama/v1.lineage.jsonl &&
	ckpt -C b log >out &&
	test_grep "llama  *import v1 (v2 there)  *r@2" out &&
	ckpt -C b verify --registry llama@v1 >out 2>err &&
	echo "llama@v1: OK" >expect && test_cmp expect out &&
	ckpt -C b --json ls --models >m.json &&
	"$PYTHON" - <<-\EOF
	import json, hashlib
	(m,) = json.load(open("m.json"))["models"]
	(v,) = m["versions"]
	last = open("a/registry/.history.jsonl").read().splitlines()[2]
	assert v["imported"] == {"version": 2, "record": "sha256:" +
	    hashlib.sha256(last.encode()).hexdigest()}, v
	a = json.load(open("a/registry/llama/v2.json"))
	assert v["manifest"] == a["manifest"] and v["run"] == "r", v
	EOF
'

test_expect_success 'importing again changes nothing' '
	snapshot b before &&
	ckpt -C b import m.tar >out &&
	test_grep "^identical llama v1 from r@2" out &&
	snapshot b after &&
	test_cmp before after
'

test_expect_success 'into a store where the model exists: the next version' '
	ckpt -C a export -o v1.tar llama@staging >/dev/null &&
	ckpt -C b import v1.tar >out &&
	test_grep "^imported llama v2 from r@1 (v1 where exported" out &&
	head -n 1 a/registry/.history.jsonl >expect &&
	test_cmp expect b/registry/llama/v2.lineage.jsonl &&
	ckpt -C b log --verify 2>err &&
	test_grep "2 versions match" err
'

test_expect_success 'a lineage file edited after import is found by log --verify' '
	cp b/registry/llama/v1.lineage.jsonl good &&
	sed "1s/\"step\":1/\"step\":3/" good >b/registry/llama/v1.lineage.jsonl &&
	test_expect_code 1 ckpt -C b log --verify 2>err &&
	test_grep "registry-lineage-invalid" err &&
	test_expect_code 1 ckpt -C b verify --registry llama@v1 2>err &&
	cp good b/registry/llama/v1.lineage.jsonl &&
	ckpt -C b log --verify 2>err
'

# refused EDIT MESSAGE: a bundle with its list edited so is refused (exit
# 3) with MESSAGE and a fresh store stays as it was
refused() {
	edit_list m.tar bad.tar "$1" &&
	rm -rf c && ckpt init c >/dev/null && snapshot c before &&
	test_expect_code 3 ckpt -C c import bad.tar 2>err &&
	test_grep "$2" err &&
	snapshot c after &&
	test_cmp before after
}

test_expect_success 'hostile: a lineage record edited (the chain breaks)' '
	refused "m = doc[\"models\"][0]; m[\"lineage\"] = m[\"lineage\"].replace(\"\\\"step\\\":1\", \"\\\"step\\\":3\", 1)" \
		"llama v2: the lineage its hash chain or a record does not verify"
'

test_expect_success 'hostile: a lineage promoting another manifest' '
	refused "m = doc[\"models\"][0]; m[\"lineage\"] = \"\".join(m[\"lineage\"].splitlines(True)[:1])" \
		"the lineage its last record is not the promotion of this manifest"
'

test_expect_success 'hostile: a model version naming no checkpoint of the bundle' '
	refused "doc[\"models\"][0][\"checkpoint\"] = \"r@9\"" \
		"model version 0 is malformed or names no checkpoint" &&
	refused "doc[\"models\"][0][\"version\"] = 0" \
		"model version 0 is malformed" &&
	refused "doc[\"models\"][0][\"model\"] = \"../x\"" \
		"model version 0 is malformed" &&
	refused "doc[\"models\"] = {}" "\"models\" is not a list" &&
	refused "doc[\"models\"].append(dict(doc[\"models\"][0]))" \
		"listed twice"
'

test_expect_success 'hostile: an empty lineage, and a lineage that is not text' '
	refused "doc[\"models\"][0][\"lineage\"] = \"\"" "llama v2: the lineage" &&
	refused "doc[\"models\"][0][\"lineage\"] = 5" "model version 0 is malformed"
'

test_expect_success '--run cannot rename a bundle with model versions (exit 2)' '
	rm -rf c && ckpt init c >/dev/null && snapshot c before &&
	test_expect_code 2 ckpt -C c import --run other m.tar 2>err &&
	test_grep "cannot rename" err &&
	snapshot c after && test_cmp before after
'

test_expect_success 'a bundle without models imports as before (no registry change)' '
	ckpt -C a export -o plain.tar r@3 >/dev/null &&
	rm -rf c && ckpt init c >/dev/null &&
	ckpt -C c import plain.tar >out &&
	test_path_is_missing c/registry/.history.jsonl
'

test_done
