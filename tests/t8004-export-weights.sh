#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='export of a weights-only model version (promote
--weights-only) with its lineage, and import: the same version manifest,
weights torch reads back, nothing left staged; the aliases of an exported
version travel and are set on import where the store has none of that
name, never moved when it has; hostile weights entries refused'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/torch

edit_list() {	# edit_list IN OUT PYTHON: rewrite the bundle's list
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/edit-bundle-list.py" "$@"
}

snapshot() {	# every path, type and size under a store
	(cd "$1" && find . -path ./.ckpt/lock -prune -o -printf "%p %y %s\n" |
	sort) >"$2"
}

# digest STORE MODEL VERSION: the version's manifest digest (ls --models)
digest() {
	ckpt -C "$1" --json ls --models >models.json &&
	"$PYTHON" - "$2" "$3" <<-\EOF
	import json, sys
	doc = json.load(open("models.json"))
	(m,) = [m for m in doc["models"] if m["model"] == sys.argv[1]]
	(v,) = [v for v in m["versions"] if v["version"] == int(sys.argv[2])]
	print(v["manifest"], v["scope"], v["source_manifest"])
	EOF
}

test_expect_success TORCH 'setup: a weights-only version with aliases prod and canary' '
	mkdir src && cp "$FX/lightning.ckpt" src/ &&
	ckpt -C a save -q --run lit --step 1 --metric loss=0.5 --copy src \
		>/dev/null &&
	ckpt -C a promote -q lit@1 --model m --weights-only --alias prod &&
	ckpt -C a alias m canary v1 >/dev/null &&
	ckpt init b >/dev/null
'

test_expect_success TORCH 'export MODEL@ALIAS of a weights-only version: its files, lineage and aliases' '
	ckpt -C a export -o w.tar m@prod >out &&
	test_grep "^exported m@v1 (weights only, 1 files" out &&
	tar xOf w.tar ckpt-bundle.json >list.json &&
	"$PYTHON" - <<-\EOF
	import json
	doc = json.load(open("list.json"))
	(c,) = doc["checkpoints"]
	assert (c["dir"], c["scope"], c["run"], c["step"]) == \
	    ("m@v1", "weights-only", "lit", 1), c
	(m,) = doc["models"]
	assert (m["model"], m["version"], m["checkpoint"]) == ("m", 1, "m@v1")
	assert m["aliases"] == ["canary", "prod"], m
	hist = open("a/registry/.history.jsonl").read().splitlines(True)
	assert m["lineage"] == hist[0], (m["lineage"], hist)
	EOF
'

test_expect_success TORCH 'import recreates it: same manifest digest, lineage kept, verifies' '
	ckpt -C b import w.tar >out &&
	test_grep "^imported m v1 from m@v1 (weights only; v1 where exported, lineage kept)$" out &&
	digest a m 1 >expect &&
	digest b m 1 >actual &&
	test_cmp expect actual &&
	test_grep " weights-only sha256:" actual &&
	test_cmp a/registry/m/v1/ckpt-manifest.json b/registry/m/v1/ckpt-manifest.json &&
	head -n 1 a/registry/.history.jsonl >expect &&
	test_cmp expect b/registry/m/v1.lineage.jsonl &&
	ckpt -C b verify --registry m@v1 >out &&
	echo "m@v1: OK" >expect && test_cmp expect out &&
	ckpt -C b log --verify 2>err &&
	test_grep "1 version matches" err &&
	test_path_is_missing b/runs/lit &&
	ls b/registry/.staging >left && test_cmp /dev/null left
'

test_expect_success TORCH 'torch reads the imported weights: every tensor as torch.load gave it' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" \
		"$FX/lightning.ckpt" b/registry/m/v1/model.safetensors \
		state_dict >res &&
	test_grep "^ok 9 tensors" res
'

test_expect_success TORCH 'the aliases were set (absent here) and importing again changes nothing' '
	ckpt -C b --json ls --models >m.json &&
	"$PYTHON" - <<-\EOF &&
	import json
	(m,) = json.load(open("m.json"))["models"]
	assert {k: v["version"] for k, v in m["aliases"].items()} == \
	    {"prod": 1, "canary": 1}, m["aliases"]
	EOF
	snapshot b before &&
	ckpt -C b import w.tar >out &&
	test_grep "^identical m v1 from m@v1" out &&
	test_grep "^unchanged alias m prod on v1$" out &&
	snapshot b after &&
	test_cmp before after
'

test_expect_success TORCH 'an alias the store has is never moved: kept, said, exit 0' '
	ckpt init c >/dev/null &&
	mkdir src2 && cp "$FX/views.pt" src2/ &&
	ckpt -C c save -q --run other --step 1 --copy src2 >/dev/null &&
	ckpt -C c promote -q other@1 --model m --alias prod &&
	cp c/registry/m/aliases.json aliases.before &&
	ckpt -C c import w.tar >out &&
	test_grep "^imported m v2 from m@v1" out &&
	test_grep "^kept alias m prod on v1 (the bundle has it on the imported v2; .ckpt alias m prod v2. moves it)$" out &&
	test_grep "^set alias m canary on v2$" out &&
	ckpt -C c --json ls --models >m.json &&
	"$PYTHON" - <<-\EOF
	import json
	(m,) = json.load(open("m.json"))["models"]
	assert {k: v["version"] for k, v in m["aliases"].items()} == \
	    {"prod": 1, "canary": 2}, m["aliases"]
	EOF
'

test_expect_success TORCH 'import --json reports what became of each alias' '
	rm -rf d && ckpt init d >/dev/null &&
	ckpt -C d --json import w.tar >out.json &&
	"$PYTHON" - <<-\EOF
	import json
	doc = json.load(open("out.json"))
	(m,) = doc["models"]
	assert m["scope"] == "weights-only" and m["status"] == "imported", m
	assert sorted((a["alias"], a["status"], a["version"])
	    for a in m["aliases"]) == [("canary", "set", 1),
	    ("prod", "set", 1)], m["aliases"]
	assert "staged" not in m and "lineage" not in m, m
	EOF
'

test_expect_success TORCH 'full versions carry their aliases too' '
	ckpt -C c export -o full.tar m@prod >/dev/null &&
	tar xOf full.tar ckpt-bundle.json >list.json &&
	"$PYTHON" - <<-\EOF
	import json
	(m,) = json.load(open("list.json"))["models"]
	assert m["aliases"] == ["prod"] and m["checkpoint"] == "other@1", m
	EOF
'

# refused EDIT MESSAGE: w.tar with its list edited so is refused (exit 3)
# with MESSAGE and a fresh store stays as it was
refused() {
	edit_list w.tar bad.tar "$1" &&
	rm -rf e && ckpt init e >/dev/null && snapshot e before &&
	test_expect_code 3 ckpt -C e import bad.tar 2>err &&
	test_grep "$2" err &&
	snapshot e after &&
	test_cmp before after
}

test_expect_success TORCH 'hostile: a weights-only version without its model entry' '
	refused "del doc[\"models\"]" \
		"m@v1 is a weights-only version without its model entry"
'

test_expect_success TORCH 'hostile: a weights entry named otherwise, or another scope' '
	refused "doc[\"checkpoints\"][0][\"dir\"] = \"lit@1\"" \
		"checkpoint 0 is malformed" &&
	refused "doc[\"checkpoints\"][0][\"scope\"] = \"full\"" \
		"checkpoint 0 is malformed" &&
	refused "doc[\"models\"][0][\"version\"] = 2" \
		"model version 0 is not the weights-only version m@v1"
'

test_expect_success TORCH 'hostile: aliases that are not alias names' '
	refused "doc[\"models\"][0][\"aliases\"] = [\"v2\"]" \
		"\"aliases\" is not a list of distinct alias names" &&
	refused "doc[\"models\"][0][\"aliases\"] = [\"prod\", \"prod\"]" \
		"\"aliases\" is not a list of distinct alias names" &&
	refused "doc[\"models\"][0][\"aliases\"] = \"prod\"" \
		"\"aliases\" is not a list"
'

test_expect_success TORCH 'hostile: a full checkpoint listed as a weights-only version' '
	ckpt -C a export -o ck.tar lit@1 >/dev/null &&
	"$PYTHON" - <<-\EOF &&
	import io, json, tarfile
	with tarfile.open("ck.tar") as tin, tarfile.open("bad.tar", "w",
	        format=tarfile.PAX_FORMAT) as tout:
	    for m in tin.getmembers():
	        data = tin.extractfile(m).read()
	        if m.name == "ckpt-bundle.json":
	            doc = json.loads(data)
	            c = doc["checkpoints"][0]
	            c["dir"], c["scope"] = "m@v1", "weights-only"
	            # a lineage that verifies: one record, promoting the
	            # checkpoint manifest to m v1
	            rec = json.loads(open("a/registry/.history.jsonl")
	                .readline())
	            rec["manifest"] = c["manifest"]
	            doc["models"] = [dict(model="m", version=1,
	                checkpoint="m@v1", manifest=c["manifest"],
	                lineage=json.dumps(rec, sort_keys=True,
	                separators=(",", ":")) + "\n")]
	            data = json.dumps(doc).encode()
	        else:
	            m.name = "m@v1/" + m.name.split("/", 1)[1]
	        m.size = len(data)
	        tout.addfile(m, io.BytesIO(data))
	EOF
	rm -rf e && ckpt init e >/dev/null && snapshot e before &&
	test_expect_code 3 ckpt -C e import bad.tar 2>err &&
	test_grep "not the manifest of a weights-only version" err &&
	snapshot e after && test_cmp before after
'

test_done
