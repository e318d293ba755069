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

# The reader gives back the nodes of a rebuild call once the tensor has
# copied them, unless something else can reach them: here the size and
# stride tuples, the hooks and a whole argument tuple are also values of
# the dict (before and after the call), so the pickle names them again.
test_expect_success TORCH 'values shared with a rebuild call survive it' '
	"$PYTHON" - <<-\EOF &&
	import collections, torch
	class Call:
	    def __init__(self, args):
	        self.args = args
	    def __reduce__(self):
	        return (torch._utils._rebuild_tensor_v2, self.args)
	t = torch.arange(6000, dtype=torch.float32)
	size, stride, hooks = (3, 2000), (2000, 1), collections.OrderedDict()
	args = (t.storage(), 0, (2, 1500), (1500, 1), False,
	        collections.OrderedDict())
	sd = collections.OrderedDict()
	sd["size_before"] = size
	sd["a"] = Call((t.storage(), 0, size, stride, False, hooks))
	sd["stride_after"] = stride
	sd["hooks_after"] = hooks
	sd["b"] = Call(args)
	sd["args_after"] = args
	sd["c"] = Call(args)
	torch.save(sd, "shared.pt")
	EOF
	ckpt inspect --json shared.pt >shared.json &&
	"$PYTHON" - <<-\EOF
	import json
	d = json.load(open("shared.json"))["files"][0]
	shapes = {t["name"]: t["shape"] for t in d["tensors"]}
	assert shapes == {"a": [3, 2000], "b": [2, 1500], "c": [2, 1500]}, shapes
	m = d["metadata"]
	assert m["size_before"] == [3, 2000], m["size_before"]
	assert m["stride_after"] == [2000, 1], m["stride_after"]
	assert m["hooks_after"] == {}, m["hooks_after"]
	assert m["args_after"][2:5] == [[2, 1500], [1500, 1], False], m["args_after"]
	EOF
'

# inspect --json writes the document as it goes and prints the metadata
# from its text (cmd/output.c); Python's json module, given the same
# document, must write the same bytes (sorted keys, two-space indent,
# shortest reals, UTF-8 kept), and the text view must list each key.
test_expect_success TORCH 'inspect --json is the document Python writes for it' '
	"$PYTHON" - <<-\EOF &&
	import collections, torch
	g = torch.Generator().manual_seed(3)
	sd = collections.OrderedDict()
	for k in ["b", "a\"q", "a#q", "a\\\\b", "\u00e9t\u00e9", "\U0001f600", "Z", "a b"]:
	    sd[k] = torch.randn(2, generator=g)
	meta = {"lr": 0.1, "eps": 1e-08, "neg": -0.0, "big": 2 ** 62, "n": None,
	        "l": [1, 2.5, "x"], "e": {}, "el": [], 7: "seven", "t": True}
	torch.save({"model": sd, "meta": meta, "w": torch.ones(1)}, "keys.pt")
	EOF
	ckpt inspect --json keys.pt >keys.json &&
	"$PYTHON" - <<-\EOF &&
	import json
	text = open("keys.json", encoding="utf-8").read()
	d = json.loads(text)
	want = json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
	assert text == want, "not the sorted, indented document"
	f = d["files"][0]
	assert [t["name"] for t in f["tensors"]][:2] == ["model.b", "model.a\"q"]
	assert f["metadata"]["model"]["\U0001f600"] == {"$tensor": "model.\U0001f600"}
	assert f["metadata"]["meta"]["eps"] == 1e-08
	EOF
	ckpt inspect keys.pt >keys.txt &&
	test_grep "^  model: (8 tensors)" keys.txt &&
	test_grep "^  w: (tensor)" keys.txt &&
	test_grep "^    eps: 1e-8" keys.txt &&
	ckpt inspect --depth 1 keys.pt >keys1.txt &&
	test_grep "^  meta: {...} (10 keys)" keys1.txt
'

# Each tensor's object is written member by member (inspect.c
# stream_tensor), a name that is not ASCII through jansson: with
# statistics (no finite value: null), a strided view and a storage
# offset, the bytes are still the document Python writes.
test_expect_success TORCH 'inspect --json --stats of streamed tensors is the document Python writes' '
	"$PYTHON" - <<-\EOF &&
	import collections, torch
	base = torch.arange(60, dtype=torch.float32)
	sd = collections.OrderedDict()
	sd["plain"] = torch.tensor([1.0, -2.5, 0.0])
	sd["odd"] = torch.tensor([float("nan"), float("inf")])
	sd["strided"] = base.view(6, 10)[:, 2]
	sd["offset"] = base[7:19]
	sd["\u00e9t\u00e9"] = torch.ones(2, 2, dtype=torch.float64)
	sd["tab\tq\"b\\"] = torch.zeros(1, dtype=torch.int64)
	sd["scalar"] = torch.tensor(4.0)
	torch.save(sd, "stream.pt")
	EOF
	ckpt inspect --json --stats stream.pt >stream.json &&
	"$PYTHON" - <<-\EOF
	import json
	text = open("stream.json", encoding="utf-8").read()
	d = json.loads(text)
	want = json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
	assert text == want, "not the sorted, indented document"
	t = {x["name"]: x for x in d["files"][0]["tensors"]}
	assert len(t) == 7, sorted(t)
	st = t["odd"]["stats"]
	assert st["max"] is None and st["nan"] == st["pos_inf"] == 1, st
	assert t["plain"]["stats"]["min"] == -2.5, t["plain"]["stats"]
	assert t["strided"]["strides"] == [10] and not t["strided"]["contiguous"]
	assert t["strided"]["storage_offset"] == 2, t["strided"]
	assert t["offset"]["storage_offset"] == 7 and t["offset"]["shape"] == [12]
	assert t["\u00e9t\u00e9"]["dtype"] == "F64" and t["scalar"]["shape"] == []
	assert t["tab\tq\"b\\"]["parameters"] == 1
	EOF
'

# A rebuilt tensor points at its storage's record and the storage's node
# is given back; a storage pickled again (beside its tensors, or for a
# second view) gets a node of its own for the same record.
test_expect_success TORCH 'a storage saved beside its tensors keeps its record' '
	"$PYTHON" - <<-\EOF &&
	import torch
	base = torch.arange(100, dtype=torch.float32)
	torch.save({"a": base[:10], "s": base.storage(), "b": base[50:],
	            "c": torch.ones(3)}, "storage.pt")
	EOF
	ckpt inspect --json storage.pt >storage.json &&
	"$PYTHON" - <<-\EOF
	import json
	f = json.load(open("storage.json"))["files"][0]
	t = {x["name"]: x for x in f["tensors"]}
	assert t["a"]["storage"] == t["b"]["storage"] != t["c"]["storage"], t
	assert t["b"]["storage_offset"] == 50 and t["b"]["shape"] == [50], t["b"]
	assert t["b"]["offset"] - t["a"]["offset"] == 200, t
	assert "$storage" in json.dumps(f["metadata"]["s"]), f["metadata"]["s"]
	assert not [x for x in f["findings"] if x["severity"] == "error"], f["findings"]
	EOF
'

# A state dict goes into the table as data.pkl runs, with no tree kept
# (pickle.c direct_take); the issue's case is 40,000 tensors.
test_expect_success TORCH 'a state dict of 40,000 tensors: every name, in order' '
	"$PYTHON" - <<-\EOF &&
	import torch
	g = torch.Generator().manual_seed(1)
	sd = {"model.layers.%d.block.%d.weight" % (i // 100, i % 100):
	      torch.randn(88, generator=g) for i in range(40000)}
	torch.save(sd, "sd40k.pt")
	EOF
	ckpt inspect --json sd40k.pt >sd40k.json &&
	"$PYTHON" - <<-\EOF &&
	import json
	f = json.load(open("sd40k.json"))["files"][0]
	want = ["model.layers.%d.block.%d.weight" % (i // 100, i % 100)
	        for i in range(40000)]
	assert [t["name"] for t in f["tensors"]] == want
	assert all(t["shape"] == [88] and t["dtype"] == "F32"
	           for t in f["tensors"])
	offs = [t["offset"] for t in f["tensors"]]
	assert len(set(offs)) == 40000, "offsets repeat"
	assert sorted(f["metadata"]) == sorted(want)	# --json sorts keys
	assert all(f["metadata"][k] == {"$tensor": k} for k in want)
	assert not f["findings"], f["findings"]
	EOF
	ckpt inspect sd40k.pt >sd40k.txt &&
	test_grep "^total: 40000 tensors" sd40k.txt &&
	test $(grep -c "^  model\.layers\.[0-9]*\.block\.[0-9]*\.weight: (tensor)$" sd40k.txt) = 40000
'

# When the root dict turns out to hold more than fresh tensors under
# plain keys, after many were taken, the file is read again the old way:
# the table, metadata and findings are the tree walk's.
test_expect_success TORCH 'a dict that is not a plain state dict after all reads as before' '
	"$PYTHON" - <<-\EOF &&
	import collections, torch, zipfile
	t = torch.arange(12, dtype=torch.float32)
	sd = collections.OrderedDict(("w%d" % i, torch.ones(i % 7 + 1))
	                             for i in range(3000))
	sd["epoch"] = 5
	torch.save(sd, "late-int.pt")
	sd = collections.OrderedDict(("w%d" % i, torch.ones(2)) for i in range(100))
	sd["t"] = t
	sd["again"] = t
	sd["view"] = t[2:5]
	torch.save(sd, "late-shared.pt")
	torch.save({"keyAAAA1": torch.ones(2), "keyAAAA2": torch.ones(3),
	            "keyAAAA3": torch.ones(4)}, "dup-src.pt")
	zin = zipfile.ZipFile("dup-src.pt")
	with zipfile.ZipFile("dup.pt", "w") as z:
	    for i in zin.infolist():
	        b = zin.read(i.filename)
	        if i.filename.endswith("data.pkl"):
	            b = b.replace(b"keyAAAA3", b"keyAAAA1")
	        z.writestr(zipfile.ZipInfo(i.filename, i.date_time), b)
	EOF
	ckpt inspect --json late-int.pt >late-int.json &&
	ckpt inspect --json late-shared.pt >late-shared.json &&
	ckpt inspect --json dup.pt >dup.json &&
	"$PYTHON" - <<-\EOF
	import json, torch
	for name in ("late-int", "late-shared", "dup"):
	    f = json.load(open(name + ".json"))["files"][0]
	    want = torch.load(name + ".pt")
	    tensors = [(k, list(v.shape)) for k, v in want.items()
	               if isinstance(v, torch.Tensor)]
	    got = [(t["name"], t["shape"]) for t in f["tensors"]]
	    assert got == tensors, (name, got[:5], tensors[:5])
	    assert sorted(f["metadata"]) == sorted(want), name
	    ids = [x["id"] for x in f["findings"]]
	    if name == "dup":
	        assert ids == ["pickle-duplicate-key"], ids
	    else:
	        assert not ids, (name, ids)
	f = json.load(open("late-int.json"))["files"][0]
	assert f["metadata"]["epoch"] == 5
	EOF
'

test_done
