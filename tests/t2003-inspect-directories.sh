#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect: directories, Hugging Face checkpoints, sharded indexes'
. "$(dirname "$0")/lib.sh"

SQ="'"

json_eval() {
	"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

test_expect_success 'setup: fixtures' '
	"$PYTHON" "$TEST_DIRECTORY/fixtures/gen-safetensors.py" fx
'

test_expect_success 'a Hugging Face checkpoint directory prints every file, sorted' '
	ckpt inspect fx/hf >out &&
	test_grep "^path:    fx/hf$" out &&
	test_grep "^kind:    hf-checkpoint$" out &&
	test_grep "^files:   3, " out &&
	grep "^file:" out >files &&
	cat >expect <<-\EOF &&
	file:    config.json
	file:    model.safetensors
	file:    trainer_state.json
	EOF
	test_cmp expect files &&
	test_grep "^  model_type: llama$" out &&
	test_grep "^  global_step: 500$" out &&
	test_grep "^checkpoint total: 2 tensors, 16 parameters, 32 B$" out &&
	! grep "findings" out
'

test_expect_success 'a trailing slash names the same checkpoint' '
	ckpt inspect --json fx/hf/ >out.json &&
	test "$(json_eval out.json "d[\"path\"]")" = fx/hf &&
	test "$(json_eval out.json "d[\"kind\"]")" = hf-checkpoint
'

test_expect_success '--json for a directory: files, metadata, totals' '
	ckpt inspect --json fx/hf >out.json &&
	test "$(json_eval out.json "[f[\"path\"] for f in d[\"files\"]]")" = \
		"[${SQ}config.json${SQ}, ${SQ}model.safetensors${SQ}, ${SQ}trainer_state.json${SQ}]" &&
	test "$(json_eval out.json "d[\"files\"][2][\"metadata\"][\"global_step\"]")" = 500 &&
	test "$(json_eval out.json "d[\"files\"][0][\"format\"]")" = json &&
	test "$(json_eval out.json "d[\"totals\"][\"by_dtype\"][\"BF16\"][\"parameters\"]")" = 16 &&
	test "$(json_eval out.json "d[\"findings\"]")" = "[]"
'

test_expect_success 'subdirectories are walked; symbolic links are not followed' '
	mkdir -p tree/sub &&
	cp fx/small.safetensors tree/sub/a.safetensors &&
	cp fx/dtypes/F32.safetensors tree/b.safetensors &&
	ln -s ../fx/small.safetensors tree/link.safetensors &&
	ckpt inspect --json tree >out.json &&
	test "$(json_eval out.json "[f[\"path\"] for f in d[\"files\"]]")" = \
		"[${SQ}b.safetensors${SQ}, ${SQ}sub/a.safetensors${SQ}]" &&
	test "$(json_eval out.json "d[\"kind\"]")" = safetensors &&
	test "$(json_eval out.json "[f[\"id\"] for f in d[\"findings\"]]")" = \
		"[${SQ}symlink-not-followed${SQ}]"
'

test_expect_success 'a good sharded model: index checks pass' '
	ckpt inspect fx/sharded >out &&
	test_grep "^kind:    hf-sharded$" out &&
	test_grep "^checkpoint total: 3 tensors, 10 parameters, 32 B$" out &&
	! grep "checkpoint findings" out &&
	ckpt inspect --json fx/sharded >out.json &&
	test "$(json_eval out.json "d[\"findings\"]")" = "[]"
'

test_expect_success 'a broken sharded model: every mismatch is a finding' '
	test_expect_code 1 ckpt inspect --json fx/sharded-broken >out.json &&
	json_eval out.json "sorted((f[\"id\"], f[\"subject\"], f[\"severity\"]) for f in d[\"findings\"])" >ids &&
	echo "[(${SQ}index-shard-missing${SQ}, ${SQ}model-00003-of-00003.safetensors${SQ}, ${SQ}error${SQ}), (${SQ}index-tensor-missing${SQ}, ${SQ}layers.9.w${SQ}, ${SQ}error${SQ}), (${SQ}index-tensor-unmapped${SQ}, ${SQ}layers.0.b${SQ}, ${SQ}warning${SQ})]" >expect &&
	test_cmp expect ids &&
	test_expect_code 1 ckpt inspect fx/sharded-broken >out &&
	test_grep "^checkpoint findings:$" out &&
	test_grep "^  error index-shard-missing: shard ${SQ}model-00003-of-00003.safetensors${SQ} named by the index is missing$" out
'

test_expect_success 'total_size disagreeing with the shards is a warning' '
	cp -r fx/sharded ts &&
	sed "s/\"total_size\": 32/\"total_size\": 40/" fx/sharded/model.safetensors.index.json >ts/model.safetensors.index.json &&
	ckpt inspect --json ts >out.json &&
	test "$(json_eval out.json "[(f[\"id\"], f[\"severity\"]) for f in d[\"findings\"]]")" = \
		"[(${SQ}index-total-size-mismatch${SQ}, ${SQ}warning${SQ})]"
'

test_expect_success 'a shard path leaving the directory is refused' '
	cp -r fx/sharded esc &&
	sed "s/model-00002-of-00002.safetensors/..\\/x.safetensors/" fx/sharded/model.safetensors.index.json >esc/model.safetensors.index.json &&
	test_expect_code 1 ckpt inspect --json esc >out.json &&
	json_eval out.json "[f[\"id\"] for f in d[\"findings\"]]" >ids &&
	test_grep "index-bad-shard-path" ids
'

test_expect_success 'a truncated shard: exit 1 and the index says so' '
	cp -r fx/sharded unr &&
	ckpt-test-tool truncate unr/model-00002-of-00002.safetensors 108 &&
	test_expect_code 1 ckpt inspect unr >out 2>err &&
	test_grep "model-00002-of-00002.safetensors: file truncated" err &&
	test_grep "index-shard-unreadable" out &&
	test_grep "^error:   file truncated: tensor data ends at byte 112" out
'

test_expect_success 'an invalid index is an error with its offset' '
	mkdir badidx &&
	printf "{\"weight_map\": {\"a\": 1}}" >badidx/model.safetensors.index.json &&
	test_expect_code 1 ckpt inspect badidx 2>err &&
	test_grep "weight_map entry ${SQ}a${SQ} is not a file name" err &&
	printf "{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}" >badidx/model.safetensors.index.json &&
	test_expect_code 1 ckpt inspect badidx 2>err &&
	test_grep "duplicate object key" err
'

test_expect_success 'an LFS pointer among the weights of a directory: exit 1' '
	cp -r fx/hf lfs &&
	cp fx/bad/lfs.safetensors lfs/model.safetensors &&
	test_expect_code 1 ckpt inspect lfs >out 2>err &&
	test_grep "model.safetensors: unrecognised format: a Git LFS pointer" err &&
	test_grep "^file:    config.json" out
'

test_expect_success 'other unknown files in a directory are listed, not fatal' '
	cp -r fx/hf tok &&
	printf "\001\002\003\004\005binary" >tok/tokenizer.model &&
	ckpt inspect tok >out &&
	test_grep "^file:    tokenizer.model$" out &&
	test_grep "unrecognised-format" out
'

test_expect_success 'an empty directory' '
	mkdir empty &&
	ckpt inspect --json empty >out.json &&
	test "$(json_eval out.json "d[\"kind\"]")" = directory &&
	test "$(json_eval out.json "d[\"files\"]")" = "[]"
'

test_done
