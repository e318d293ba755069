#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='prune protection of promoted checkpoints comes from the
registry history: state files lost or edited never unprotect, a history
that does not verify protects everything'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
# the shim comes before the ASan runtime in the sanitizer build
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

setup_store() {
	rm -rf s && mkstore s r@1:loss=3 r@2:loss=2 r@3:loss=1 &&
	ckpt -C s promote -q r@1 --model m
}

test_expect_success 'a missing vN.json does not unprotect the source' '
	setup_store &&
	rm s/registry/m/v1.json &&
	ckpt -C s prune --run r --keep-last 1 >out &&
	test_grep "^r  *1 .* keep  *registry" out &&
	test_path_is_dir s/runs/r/step-1 &&
	test_path_is_missing s/runs/r/step-2
'

test_expect_success 'a vN.json edited to name another step does not unprotect' '
	setup_store &&
	sed "s/\"step\": 1/\"step\": 2/" s/registry/m/v1.json >v1 &&
	! cmp -s v1 s/registry/m/v1.json &&
	mv v1 s/registry/m/v1.json &&
	ckpt -C s prune --run r --keep-last 1 >out &&
	test_path_is_dir s/runs/r/step-1 &&
	test_grep "^r  *1 .* keep  *registry" out
'

test_expect_success 'a vN.json replaced by garbage does not unprotect' '
	setup_store &&
	echo "not json" >s/registry/m/v1.json &&
	ckpt -C s prune --run r --keep-last 1 >out 2>err &&
	test_path_is_dir s/runs/r/step-1
'

test_expect_success 'a history that does not parse protects every checkpoint' '
	setup_store &&
	echo garbage >>s/registry/.history.jsonl &&
	ckpt -C s prune --run r --keep-last 1 >out 2>err &&
	test_grep "unreadable registry/.history.jsonl: record 2" err &&
	test_grep "at byte [0-9]" err &&
	test_path_is_dir s/runs/r/step-1 &&
	test_path_is_dir s/runs/r/step-2 &&
	test_path_is_dir s/runs/r/step-3
'

test_expect_success 'a broken hash chain protects every checkpoint' '
	setup_store &&
	ckpt -C s promote -q r@3 --model m &&
	sed "1s/\"step\":1/\"step\":2/" s/registry/.history.jsonl >h &&
	mv h s/registry/.history.jsonl &&
	ckpt -C s prune --run r --keep-last 1 >out 2>err &&
	test_grep "does not chain" err &&
	test_path_is_dir s/runs/r/step-1 &&
	test_path_is_dir s/runs/r/step-2
'

test_expect_success 'a history that is not a file protects every checkpoint' '
	setup_store &&
	rm s/registry/.history.jsonl &&
	mkdir s/registry/.history.jsonl &&
	ckpt -C s prune --run r --keep-last 1 >out 2>err &&
	test_grep "unreadable registry/.history.jsonl: not a regular file" err &&
	test_path_is_dir s/runs/r/step-1 &&
	test_path_is_dir s/runs/r/step-2
'

test_expect_success 'an I/O error reading the history: exit 3, nothing removed' '
	setup_store &&
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=open \
		CKPT_FAULT_PATH="*/.history.jsonl" CKPT_FAULT_NTH=all \
		ckpt -C s prune --run r --keep-last 1 >out 2>err &&
	test_grep "history.jsonl" err &&
	test_path_is_dir s/runs/r/step-1 &&
	test_path_is_dir s/runs/r/step-2
'

test_expect_success 'protection follows the history: a version of another run' '
	setup_store &&
	mkstore s q@5:loss=1 q@6:loss=1 &&
	ckpt -C s promote -q q@5 --model n &&
	rm -rf s/registry/n &&
	ckpt -C s prune --run q --keep-last 1 >out 2>err &&
	test_path_is_dir s/runs/q/step-5
'

test_done
