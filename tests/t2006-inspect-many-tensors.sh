#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect: a torch.save file of many small tensors (issue 17)'
. "$(dirname "$0")/lib.sh"

# 3,000 tensors of varied shapes and dtypes (sizes above and below the
# reader's shared small-int range), views sharing storages, and metadata
# holding the same small ints, bools and None many times over.
test_expect_success TORCH 'make a state dict of 3,000 tensors with torch' '
	"$PYTHON" - <<-\EOF
	import collections, torch
	g = torch.Generator().manual_seed(7)
	sd = collections.OrderedDict()
	for i in range(3000):
	    shape = [(i % 5) + 1, (i * 7) % 1100 + 1] if i % 3 else [i % 40]
	    dt = (torch.float32, torch.bfloat16, torch.int64)[i % 3]
	    t = torch.randn(shape, generator=g).to(dt)
	    sd["blocks.%d.%d.%s" % (i // 10, i % 10,
	                            ("weight", "bias")[i % 2])] = t
	base = torch.arange(5000, dtype=torch.float32)
	sd["view.a"] = base[10:2010]
	sd["view.b"] = base.view(50, 100)[:, 3]
	meta = {"flags": [True, False, None] * 500, "ints": list(range(-20, 2000)),
	        "nested": {"depth": 3, "lr": 0.5, "none": None}}
	torch.save({"model": sd, "meta": meta}, "many.pt")
	EOF
'

test_expect_success TORCH 'every tensor is listed with its dtype, shape and offset' '
	ckpt inspect --json many.pt >out.json &&
	"$PYTHON" - <<-\EOF
	import json, torch
	d = json.load(open("out.json"))["files"][0]
	got = {t["name"]: t for t in d["tensors"]}
	want = torch.load("many.pt")["model"]
	assert len(got) == len(want) == 3002, (len(got), len(want))
	names = [t["name"] for t in d["tensors"]]
	assert names == ["model." + k for k in want], "order differs"
	dts = {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64"}
	for k, t in want.items():
	    g = got["model." + k]
	    assert g["dtype"] == dts[t.dtype], (k, g["dtype"])
	    assert g["shape"] == list(t.shape), (k, g["shape"], t.shape)
	m = d["metadata"]["meta"]
	assert m["flags"] == [True, False, None] * 500
	assert m["ints"] == list(range(-20, 2000))
	assert m["nested"] == {"depth": 3, "lr": 0.5, "none": None}
	EOF
'

test_expect_success TORCH 'values read through the many-entry archive match torch' '
	ckpt inspect --json --stats --filter "model.blocks.1*" many.pt >st.json &&
	"$PYTHON" - <<-\EOF
	import json, torch
	d = json.load(open("st.json"))["files"][0]["tensors"]
	want = torch.load("many.pt")["model"]
	n = 0
	for t in d:
	    w = want[t["name"][len("model."):]]
	    if not w.numel():
	        continue
	    w = w.double()
	    assert t["stats"]["min"] == w.min().item(), t["name"]
	    assert t["stats"]["max"] == w.max().item(), t["name"]
	    n += 1
	assert n > 100, n
	EOF
'

test_expect_success TORCH 'the text view summarises the tensors' '
	ckpt inspect many.pt >out &&
	test_grep "^total: 3002 tensors" out &&
	test_grep "^model\.view\.b  *F32  *\[50\]" out
'

test_done
