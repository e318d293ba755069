#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='promote: versions, aliases, lineage, idempotence, refusals,
storage shared with the run, and MODEL@vN / MODEL@ALIAS everywhere'
. "$(dirname "$0")/lib.sh"

# save STEP LOSS [FILE...]: commit src/ (a safetensors file plus FILEs)
# as r@STEP with metric loss=LOSS.
save() {
	_step=$1 _loss=$2 && shift 2 &&
	rm -rf src && mkdir src &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" \
		src/model.safetensors 20000 "$_step" &&
	for f in "$@"; do cp "$f" src/ || return 1; done &&
	ckpt -C s save -q --run r --step "$_step" --metric loss="$_loss" \
		--copy src
}

inode() {
	stat -c %i "$1"
}

test_expect_success 'setup: a store with r@1..r@3' '
	save 1 0.9 && save 2 0.5 && save 3 0.3
'

test_expect_success 'promote makes v1, moves the alias, records lineage' '
	ckpt -C s promote r@2 --model llama --alias production \
		--note "eval 118" >out &&
	test_grep "^promoted r@2 (sha256:[0-9a-f]*) to llama v1: 2 files" out &&
	test_grep "^  production: -> v1$" out &&
	test_path_is_dir s/registry/llama/v1 &&
	test_path_is_file s/registry/llama/v1/model.safetensors &&
	test_path_is_file s/registry/llama/v1/ckpt-manifest.json &&
	test_path_is_file s/registry/llama/v1.json &&
	ckpt -C s log --json >log.json &&
	"$PYTHON" - <<-\EOF
	import json, hashlib
	doc = json.load(open("log.json"))
	recs = doc["records"]
	assert [r["action"] for r in recs] == ["alias", "promote"], recs
	p = recs[1]
	m = open("s/runs/r/step-2/ckpt-manifest.json", "rb").read()
	assert p["manifest"] == "sha256:" + hashlib.sha256(m).hexdigest()
	assert (p["run"], p["step"], p["version"], p["note"]) == \
	    ("r", 2, 1, "eval 118"), p
	assert p["user"] and p["host"] and p["time"].endswith("Z")
	assert p["storage"] == "link" and p["nfiles"] == 2, p
	assert recs[0]["alias"] == "production" and recs[0]["to"] == 1
	assert recs[0]["from"] is None
	EOF
'

test_expect_success 'the version shares the checkpoint files by hard links' '
	test "$(inode s/registry/llama/v1/model.safetensors)" = \
		"$(inode s/runs/r/step-2/model.safetensors)" &&
	test "$(stat -c %h s/runs/r/step-2/model.safetensors)" = 2
'

test_expect_success 'MODEL@vN and MODEL@ALIAS resolve to the version' '
	ckpt -C s verify llama@production >out 2>err &&
	test_grep "registry/llama/v1/model.safetensors: OK" out &&
	ckpt -C s verify llama@v1 >out &&
	ckpt -C s inspect llama@production >out &&
	test_grep "^path: *.*/registry/llama/v1$" out &&
	ckpt -C s --json inspect llama@v1 >/dev/null
'

test_expect_success 'pin MODEL@ALIAS pins the source checkpoint' '
	ckpt -C s pin llama@production >out &&
	test_grep "^pinned r@2$" out &&
	ckpt -C s unpin r@2
'

test_expect_success 'promoting the same manifest again is a no-op that says so' '
	cp s/registry/.history.jsonl history.before &&
	ckpt -C s promote r@2 --model llama --alias production >out &&
	test_grep "llama v1 holds this checkpoint already" out &&
	test_grep "production: v1 already" out &&
	test_cmp history.before s/registry/.history.jsonl &&
	test_path_is_missing s/registry/llama/v2 &&
	ckpt -C s --json promote s/runs/r/step-2 --model llama >out.json &&
	test_grep "\"created\": false" out.json &&
	test_grep "\"version\": 1" out.json &&
	test_cmp history.before s/registry/.history.jsonl
'

test_expect_success 'the same manifest again with a new alias only moves it' '
	ckpt -C s promote r@2 --model llama --alias staging >out &&
	test_grep "holds this checkpoint already" out &&
	test_grep "staging: -> v1" out &&
	ckpt -C s log -n 1 >out &&
	test_grep "staging -> v1" out
'

test_expect_success 'a second promotion: v2, the alias moves, v1 stays' '
	ckpt -C s promote r@3 --model llama --alias production \
		--gate "loss<0.4" --gate "loss>=0.3" >out &&
	test_grep "to llama v2" out &&
	test_grep "production: v1 -> v2" out &&
	ckpt -C s verify llama@v1 >/dev/null &&
	ckpt -C s --json verify llama@production >v.json &&
	test_grep "registry/llama/v2" v.json
'

test_expect_success 'diff takes MODEL@vN and MODEL@ALIAS' '
	ckpt -C s diff llama@v1 r@2 >out &&
	test_expect_code 1 ckpt -C s diff llama@v1 llama@production >out &&
	test_grep "llama@production" out
'

test_expect_success 'ckpt models lists versions, aliases and sources' '
	ckpt -C s models >out &&
	test_grep "^llama  *v1  *staging  *r@2 .* link " out &&
	test_grep "^llama  *v2  *production  *r@3 " out &&
	ckpt -C s --json models >m.json &&
	"$PYTHON" - <<-\EOF
	import json
	doc = json.load(open("m.json"))
	assert doc["schema"] == 1
	(m,) = doc["models"]
	assert m["model"] == "llama"
	assert m["aliases"]["production"] == {"version": 2, "previous": [1]}
	assert [v["version"] for v in m["versions"]] == [1, 2]
	assert m["versions"][1]["aliases"] == ["production"]
	assert m["versions"][0]["run"] == "r" and m["versions"][0]["step"] == 2
	EOF
'

test_expect_success 'ckpt ls --models is the same listing; models stays an alias' '
	ckpt -C s models >expect &&
	ckpt -C s ls --models >actual &&
	test_cmp expect actual &&
	ckpt -C s --json ls --models llama >lsm.json &&
	ckpt -C s --json models llama >m.json &&
	test_cmp m.json lsm.json &&
	test_expect_code 2 ckpt -C s ls --models nomodel 2>err &&
	test_grep "no model .nomodel." err &&
	test_expect_code 2 ckpt -C s ls --models --run r 2>err &&
	test_expect_code 2 ckpt -C s ls llama 2>err &&
	test_grep "model names after --models" err
'

test_expect_success 'a gate that fails refuses with exit 1 and changes nothing' '
	cp s/registry/.history.jsonl history.before &&
	test_expect_code 1 ckpt -C s promote r@1 --model llama \
		--gate "loss<0.5" 2>err &&
	test_grep "gate .loss<0.5. failed: loss is 0.9$" err &&
	test_grep "refused to promote r@1" err &&
	test_expect_code 1 ckpt -C s promote r@1 --model llama \
		--gate "accuracy>0.5" 2>err &&
	test_grep "has no value for accuracy" err &&
	test_expect_code 1 ckpt -C s --json promote r@1 --model llama \
		--gate "loss<=0.8" >out.json 2>err &&
	test_grep "\"refused\": \"a promotion gate failed\"" out.json &&
	test_cmp history.before s/registry/.history.jsonl &&
	test_path_is_missing s/registry/llama/v3 &&
	test_expect_code 2 ckpt -C s promote r@1 --model llama \
		--gate "loss=1" 2>err &&
	test_grep "expected METRIC<X" err
'

test_expect_success 'a corrupted checkpoint is refused with exit 1' '
	save 4 0.2 &&
	ckpt-test-tool flip s/runs/r/step-4/model.safetensors 9000 &&
	cp s/registry/.history.jsonl history.before &&
	test_expect_code 1 ckpt -C s promote r@4 --model llama 2>err &&
	test_grep "runs/r/step-4/model.safetensors" err &&
	test_grep "does not verify" err &&
	test_cmp history.before s/registry/.history.jsonl &&
	test_path_is_missing s/registry/llama/v3 &&
	ls s/registry/.staging >staging &&
	test_cmp /dev/null staging
'

test_expect_success TORCH 'a checkpoint with an unsafe pickle is refused' '
	# save commits it and says, with exit 1, that it is unsafe
	test_expect_code 1 save 5 0.2 "$FIXTURES_DIR/hostile/p01-zipped.pt" \
		2>/dev/null &&
	test_expect_code 1 ckpt -C s promote r@5 --model llama 2>err &&
	test_grep "os.system" err &&
	test_grep "unsafe-global" err
'

test_expect_success 'an unsigned checkpoint is refused with --require-signature' '
	save 6 0.25 &&
	test_expect_code 1 ckpt -C s promote r@6 --model llama \
		--require-signature 2>err &&
	test_grep "signature" err &&
	ckpt -C s keygen -o key --no-passphrase >/dev/null
'

test_expect_success 'a signed checkpoint is promoted with --require-signature' '
	ckpt -C s sign -k key.key r@6 >/dev/null &&
	ckpt -C s promote r@6 --model llama --require-signature >out &&
	test_grep "to llama v3" out &&
	test_path_is_file s/registry/llama/v3/ckpt-manifest.json.sig &&
	ckpt -C s verify --require-signature llama@v3 >/dev/null
'

test_expect_success 'a signed promotion; log --verify checks it' '
	save 8 0.2 &&
	ckpt -C s promote r@8 --model signed --sign-key key.key >out &&
	test_grep "^  signed by key [0-9a-f]\{16\}$" out &&
	test_path_is_file s/registry/signed/v1.record.sig &&
	ckpt -C s log --verify >out 2>err &&
	test_grep "1 signed promotion" err &&
	cp s/registry/signed/v1.record record.good &&
	sed "s/\"step\":8/\"step\":7/" record.good \
		>s/registry/signed/v1.record &&
	test_expect_code 1 ckpt -C s log --verify 2>err &&
	test_grep "promotion-record-mismatch" err &&
	cp record.good s/registry/signed/v1.record &&
	save 9 0.2 &&
	ckpt -C s promote r@9 --model signed >/dev/null &&
	test_expect_code 1 ckpt -C s log --verify --require-signature 2>err &&
	test_grep "promotion-unsigned" err &&
	ckpt -C s log --verify >/dev/null 2>&1
'

test_expect_success 'prune never removes what a version needs' '
	ckpt -C s prune --run r --keep-last 1 >out &&
	test_grep "registry" out &&
	test_path_is_dir s/runs/r/step-2 &&
	test_path_is_dir s/runs/r/step-3 &&
	test_path_is_dir s/runs/r/step-6 &&
	test_path_is_missing s/runs/r/step-1 &&
	rm -rf s/runs/r/step-2 s/runs/r/step-3 &&
	ckpt -C s verify llama@v1 llama@v2 >/dev/null &&
	ckpt -C s log --verify 2>err &&
	test_grep "5 versions match" err
'

test_expect_success '--copy makes a self-contained version' '
	save 7 0.1 &&
	ckpt -C s promote r@7 --model other --copy >out &&
	test_grep "copies" out &&
	test "$(inode s/registry/other/v1/model.safetensors)" != \
		"$(inode s/runs/r/step-7/model.safetensors)" &&
	ckpt -C s models other >out &&
	test_grep "^other  *v1 .* copy " out
'

test_expect_success 'usage errors are exit 2, references naming nothing 3' '
	test_expect_code 2 ckpt -C s promote r@7 2>err &&
	test_grep "model is required" err &&
	test_expect_code 2 ckpt -C s promote r@7 --model llama --alias v2 2>err &&
	test_grep "cannot be an alias" err &&
	test_expect_code 2 ckpt -C s promote r@7 --model "a/b" 2>err &&
	test_expect_code 2 ckpt -C s models nomodel 2>err &&
	test_expect_code 3 ckpt -C s verify llama@v9 2>err &&
	test_grep "has no version 9" err &&
	test_expect_code 3 ckpt -C s verify llama@nosuch 2>err &&
	test_grep "has no alias" err &&
	test_expect_code 3 ckpt -C s verify nomodel@prod 2>err &&
	test_must_fail ckpt -C s promote r@99 --model llama 2>err
'

test_expect_success 'a checkpoint outside the store is refused' '
	mkdir outside && cp s/runs/r/step-7/* outside/ &&
	test_expect_code 2 ckpt -C s promote outside --model llama 2>err &&
	test_grep "not a checkpoint of the store" err
'

test_done
