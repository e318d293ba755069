#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify: a Hugging Face checkpoint made by real torch, and --numerics'
. "$(dirname "$0")/lib.sh"

H="$FIXTURES_DIR/verify-hostile"

test_expect_success TORCH 'a Trainer-style checkpoint directory verifies clean' '
	cp -r "$H/hf" hf &&
	ckpt verify hf >out &&
	for f in config.json optimizer.pt pytorch_model.bin rng_state.pth \
	    scheduler.pt trainer_state.json training_args.bin; do
		test_grep "^hf/$f: OK$" out || exit 1
	done
'

test_expect_success TORCH 'rng_state.pth holds NumPy state and still verifies' '
	test_might_fail ckpt inspect --json hf/rng_state.pth >i.json 2>/dev/null &&
	ckpt verify --numerics hf/rng_state.pth >out &&
	test_grep "OK" out
'

test_expect_success TORCH 'the same directory with a payload in optimizer.pt fails on that file only' '
	cp "$H/z-p01-system.pt" hf/optimizer.pt &&
	test_expect_code 1 ckpt verify hf >out &&
	test_grep "^hf/optimizer.pt: FAILED (unsafe global posix.system)$" out &&
	test $(grep -c ": OK$" out) = 6
'

test_expect_success TORCH '--numerics counts NaN, +Inf and -Inf per tensor and dtype' '
	test_expect_code 1 ckpt verify --numerics --json "$H/numerics.pt" >out.json &&
	"$PYTHON" - <<-\PY
	import json, re
	c = json.load(open("out.json"))["checkpoints"][0]
	got = {}
	for x in c["findings"]:
	    if x["id"] == "tensor-nonfinite":
	        m = re.search(r"\((\w+)\) has (\d+) NaN, (\d+) \+Inf, (\d+) -Inf of (\d+)", x["message"])
	        got[x["subject"]] = (m.group(1),) + tuple(int(v) for v in m.groups()[1:])
	want = {"f32": ("F32", 2, 1, 1, 5), "f64": ("F64", 0, 0, 1, 2),
	        "f16": ("F16", 0, 1, 0, 2), "bf16": ("BF16", 1, 0, 1, 3),
	        "view": ("F32", 1, 0, 0, 2)}
	assert got == want, got
	PY
'

test_expect_success TORCH 'without --numerics values are not read' '
	ckpt verify "$H/numerics.pt" >out &&
	test_grep "OK" out
'

test_expect_success TORCH 'finite tensors pass --numerics' '
	ckpt verify --numerics "$H/finite.pt" >out &&
	test_grep "finite.pt: OK" out
'

test_expect_success TORCH 'the line of a non-finite tensor names it' '
	test_expect_code 1 ckpt verify --numerics "$H/numerics.pt" >out &&
	test_grep "numerics.pt: FAILED (tensor .* not finite)" out
'

D="$FIXTURES_DIR/dcp"

test_expect_success TORCH 'a DCP directory: coverage and the .metadata pickle' '
	ckpt verify "$D/good" >out &&
	test $(grep -c ": OK$" out) = 3 &&
	test_expect_code 1 ckpt verify "$D/gap" >out &&
	test_grep "gap/.metadata: FAILED (dcp-chunk-gap model.w)$" out &&
	test_expect_code 1 ckpt verify "$D/hostile" >out &&
	test_grep "hostile/.metadata: FAILED (unsafe global posix.system)$" out
'

test_expect_success TORCH 'a sharded index naming a missing shard' '
	mkdir sh &&
	cp "$H/z-clean.pt" sh/pytorch_model-00001-of-00002.bin &&
	cat >sh/pytorch_model.bin.index.json <<-\EOF &&
	{"metadata": {"total_size": 16},
	 "weight_map": {"w": "pytorch_model-00001-of-00002.bin",
	                "v": "pytorch_model-00002-of-00002.bin"}}
	EOF
	test_expect_code 1 ckpt verify sh >out &&
	test_grep "FAILED (index-shard-missing" out
'

test_done
