#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='ckpt inspect --json on torch files agrees with torch'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/torch

# inspect's names, dtypes and shapes against torch's sidecar (the bytes are
# compared by t2101 through ckpt_tensor_read).
check_inspect() {
	ckpt inspect --json "$FX/$1" >out.json &&
	"$PYTHON" - "$FX/$1.expect" <<-\PY
	import json, sys
	doc = json.load(open("out.json"))
	got = sorted((t["name"], t["dtype"], t["shape"])
	             for f in doc["files"] for t in f["tensors"])
	want = []
	for line in open(sys.argv[1]):
	    name, dtype, shape, _ = line.rstrip("\n").split("\t")
	    want.append((name, dtype, json.loads(shape)))
	want.sort()
	if got != want:
	    print("got ", got)
	    print("want", want)
	    sys.exit(1)
	PY
}

for f in dtypes.pt views.pt nested.pt state_dict.pt lightning.ckpt \
    rng_state.pth legacy.pt proto4.pt bigendian.pt script.pt
do
	test_expect_success TORCH "inspect --json $f: names, dtypes, shapes" "
		check_inspect $f
	"
done

test_expect_success TORCH 'inspect --json names the formats' '
	ckpt inspect --json "$FX/legacy.pt" >out.json &&
	test_grep "\"format\": \"torch-legacy\"" out.json &&
	ckpt inspect --json "$FX/script.pt" >out.json &&
	test_grep "\"format\": \"torchscript\"" out.json
'

test_expect_success TORCH 'inspect shows the object tree of a training checkpoint' '
	ckpt inspect "$FX/lightning.ckpt" >out &&
	test_grep "global_step: 100" out &&
	test_grep "hyper_parameters" out
'

test_expect_success TORCH 'inspect reports an unsafe global and exits non-zero or warns' '
	test_might_fail ckpt inspect --json "$FIXTURES_DIR/hostile/p01-zipped.pt" \
		>out.json 2>err &&
	test_grep "os.system" out.json
'

test_expect_success TORCH 'totals separate model weights from optimizer state' '
	"$PYTHON" - <<-\PY &&
	import torch
	m = torch.nn.Linear(4, 3)
	opt = torch.optim.Adam(m.parameters())
	m(torch.ones(2, 4)).sum().backward()
	opt.step()
	torch.save({"model": m.state_dict(), "optimizer": opt.state_dict(),
	            "scheduler": {"last": torch.tensor([1.0])}}, "train.pt")
	PY
	ckpt inspect --no-tensors train.pt >out &&
	test_grep "^total: .* (15 model, 32 optimizer state, 1 other)$" out &&
	ckpt inspect --json --no-tensors train.pt >out.json &&
	"$PYTHON" - <<-\PY &&
	import json
	t = json.load(open("out.json"))["totals"]
	assert t["model_parameters"] == 15, t
	assert t["by_role"]["optimizer"]["parameters"] == 32, t
	assert t["parameters"] == 48, t
	PY
	ckpt inspect --json --no-tensors "$FIXTURES_DIR/store/out/checkpoint-500" >hf.json &&
	"$PYTHON" - <<-\PY
	import json
	t = json.load(open("hf.json"))["totals"]
	assert t["model_parameters"] * 3 < t["parameters"], t
	assert t["by_role"]["optimizer"]["tensors"] > 0, t
	PY
'

test_done
