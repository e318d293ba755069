#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='diff: values of distributed (DCP) checkpoints, sparse and meta tensors, hostile chunks'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/diff-dcp
SQ="'"

jq_py() {	# jq_py FILE EXPR: a Python expression over the document d
	"$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

test_expect_success TORCH 'a DCP checkpoint and its consolidated torch file are identical' '
	ckpt diff "$FX/dcp" "$FX/model.pt" >out &&
	test_grep "^tensors: 5 common: 5 identical, 0 different; 0 only in a, 0 only in b$" out &&
	ckpt diff --json "$FX/dcp" "$FX/model.pt" >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"result\"], d[\"summary\"][\"bytes_read\"]")" = "identical 712"
'

test_expect_success TORCH 'a safetensors export against the DCP checkpoint, and DCP against itself' '
	ckpt diff "$FX/model.safetensors" "$FX/dcp" >out &&
	test_grep "5 identical, 0 different" out &&
	ckpt diff "$FX/dcp" "$FX/dcp" >out &&
	test_grep "5 identical, 0 different" out &&
	ckpt diff "$FIXTURES_DIR/dcp/good" "$FIXTURES_DIR/dcp/cols" >out &&
	test_grep "3 identical, 0 different" out
'

# The views read from the chunks must be the right elements: a check
# that only compared sums or sorted values would pass a transposed chunk.
test_expect_success TORCH 'a chunk stored as a strided view and a 2 x 2 grid are assembled in order' '
	"$PYTHON" - "$FX/model.pt" <<-\EOF &&
	import sys, torch
	sd = torch.load(sys.argv[1])
	g = sd["model.g"].clone()
	g[0:2, :, 4:8] = g[0:2, :, 4:8].flip(2)
	sd["model.g"] = g
	torch.save(sd, "flipped.pt")
	EOF
	test_expect_code 1 ckpt diff --json "$FX/dcp" flipped.pt >out.json &&
	test "$(jq_py out.json "[c[\"name\"] for c in d[\"changed\"]]")" = "[${SQ}model.g${SQ}]"
'

test_expect_success TORCH 'a shard holding one archive: its chunk is no tensor of its own' '
	ckpt diff "$FX/single" "$FX/w.pt" >out &&
	test_grep "^tensors: 1 common: 1 identical, 0 different; 0 only in a, 0 only in b$" out
'

# Any grid, any rank, strided chunks: the assembled tensor equals the
# consolidated one, and one changed element is found at its place.
test_expect_success TORCH 'random grids: identical, and one changed element is the only one' '
	for n in 0 1 2 3 4 5 6 7; do
		ckpt diff "$FX/rand-$n" "$FX/rand-$n.pt" >out &&
		test_grep "^tensors: 1 common: 1 identical" out &&
		test_expect_code 1 ckpt diff --json "$FX/rand-$n" "$FX/rand-$n-one.pt" >out.json &&
		test "$(jq_py out.json "d[\"changed\"][0][\"unequal\"]")" = 1 || return 1
	done
'

test_expect_success TORCH 'names: the model. prefix is suggested and mapped' '
	test_expect_code 1 ckpt diff --filter "model.*" "$FX/dcp" "$FX/noprefix.pt" >out &&
	test_grep "^hint: no tensor names match; try --map model\\.=$" out &&
	ckpt diff --map model.= "$FX/dcp" "$FX/noprefix.pt" >out &&
	test_grep "5 identical" out
'

# Statistics of the assembled tensors equal numpy's on the consolidated
# ones (torch.load of the .pt files made from the same tensors).
test_expect_success TORCH 'changed DCP values: statistics equal numpy, tolerances gate' '
	test_expect_code 1 ckpt diff --json "$FX/dcp" "$FX/changed" >out.json &&
	"$PYTHON" - "$FX/model.pt" "$FX/changed.pt" out.json <<-\EOF &&
	import json, sys
	import numpy as np, torch
	a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
	d = json.load(open(sys.argv[3]))
	got = {c["name"]: c for c in d["changed"]}
	assert sorted(got) == ["model.g", "model.w"], sorted(got)
	for name, c in got.items():
	    x = a[name].to(torch.float64).numpy().ravel()
	    y = b[name].to(torch.float64).numpy().ravel()
	    diff = np.abs(x - y)
	    assert c["count"] == x.size and c["unequal"] == int((x != y).sum()), c
	    assert c["max_abs"] == diff.max(), (c["max_abs"], diff.max())
	    for key, want in (("mean_abs", diff.mean()),
	                      ("rel_l2", np.linalg.norm(x - y) / np.linalg.norm(x))):
	        assert abs(c[key] - want) <= 1e-12 * abs(want), (name, key, c[key], want)
	assert d["summary"]["identical"] == 3 and d["summary"]["different"] == 2
	EOF
	ckpt diff --atol 1.1e-3 --filter model.w "$FX/dcp" "$FX/changed" >out &&
	test_grep "1 within tolerance" out &&
	test_expect_code 1 ckpt diff --atol 0.9e-3 --filter model.w "$FX/dcp" "$FX/changed" &&
	test_expect_code 1 ckpt diff "$FX/changed" "$FX/model.pt" >out &&
	test_grep "3 identical, 2 different" out
'

test_expect_success TORCH 'hostile chunks: a clear error naming file and byte, exit 3, the rest reported' '
	test_expect_code 3 ckpt diff "$FX/past-end" "$FX/dcp" >out 2>err &&
	test_grep "^ckpt: model.w: .*past-end/__1_0.distcp: chunk \[2, 0\] of ${SQ}model.w${SQ} is stored at bytes 1048576 + [0-9]*, past the end of the file ([0-9]* bytes) (at byte 1048576)$" err &&
	test_grep "4 identical, 0 different, 1 unreadable" out &&
	test_expect_code 3 ckpt diff "$FX/dcp" "$FX/overlap" 2>err &&
	test_grep "overlap/.metadata: chunks 0 and 1 of tensor ${SQ}model.w${SQ} overlap (at byte [0-9]*)$" err &&
	test_expect_code 3 ckpt diff "$FX/shape" "$FX/dcp" 2>err &&
	test_grep "shape/__1_0.distcp: chunk \[2, 0\] of ${SQ}model.w${SQ} has shape \[2, 5\], the metadata says \[2, 6\] (at byte 0)$" err &&
	test_expect_code 3 ckpt diff --json "$FX/bounds" "$FX/dcp" >out.json 2>err &&
	test_grep "bounds/.metadata: chunk 1 of tensor ${SQ}model.w${SQ} (offsets \[3, 0\], sizes \[2, 6\]) lies outside its size \[4, 6\] (at byte [0-9]*)$" err &&
	test "$(jq_py out.json "d[\"summary\"][\"unreadable\"], d[\"summary\"][\"exit\"], d[\"changed\"][0][\"status\"]")" = "1 3 unreadable"
'

test_expect_success TORCH 'a chunk gap and a missing shard are errors too' '
	test_expect_code 3 ckpt diff "$FIXTURES_DIR/dcp/gap" "$FIXTURES_DIR/dcp/good" 2>err &&
	test_grep "gap/.metadata: the chunks of tensor ${SQ}model.w${SQ} cover 12 of its 24 elements (at byte [0-9]*)$" err &&
	cp -r "$FX/dcp" noshard &&
	rm noshard/__2_0.distcp &&
	test_expect_code 3 ckpt diff noshard "$FX/dcp" >out 2>err &&
	test_grep "noshard/.metadata: chunk \[0\] of ${SQ}model.h${SQ} is stored in ${SQ}__2_0.distcp${SQ}, which is missing" err &&
	test_grep "3 identical, 0 different, 2 unreadable" out
'

test_expect_success TORCH 'a truncated shard: the chunk past the end is named' '
	cp -r "$FX/dcp" trunc &&
	size=$(wc -c <trunc/__1_0.distcp) &&
	head -c $((size - 100)) "$FX/dcp/__1_0.distcp" >trunc/__1_0.distcp &&
	test_expect_code 3 ckpt diff trunc "$FX/dcp" 2>err &&
	test_grep "trunc/__1_0.distcp: chunk .* past the end of the file ($((size - 100)) bytes)" err
'

test_expect_success TORCH 'a chunk archive cut short, and one whose pickle calls os.system' '
	cp -r "$FX/dcp" cut &&
	cp -r "$FX/dcp" evil &&
	"$PYTHON" - "$SRC_DIRECTORY/tests/fixtures/gen-dcp.py" <<-\EOF &&
	import importlib.util, io, os, pickle, sys, torch
	spec = importlib.util.spec_from_file_location("gen_dcp", sys.argv[1])
	g = importlib.util.module_from_spec(spec)
	spec.loader.exec_module(g)    # the classes .metadata refers to
	def edit(d, change):
	    m = pickle.load(open(d + "/.metadata", "rb"))
	    for k, v in m.storage_data.items():
	        if k.fqn == "model.w" and tuple(k.offset) == (2, 0):
	            change(v)
	    open(d + "/.metadata", "wb").write(pickle.dumps(m, protocol=4))
	edit("cut", lambda v: setattr(v, "length", 100))
	class Evil:
	    def __reduce__(self):
	        return (os.system, ("true",))
	b = io.BytesIO()
	torch.save({"x": Evil()}, b)
	shard = open("evil/__1_0.distcp", "rb").read()
	open("evil/__1_0.distcp", "wb").write(shard + b.getvalue())
	def point(v):
	    v.offset, v.length = len(shard), len(b.getvalue())
	edit("evil", point)
	EOF
	test_expect_code 3 ckpt diff cut "$FX/dcp" 2>err &&
	test_grep "^ckpt: model.w: cut/__1_0.distcp: truncated zip archive: .* (at byte 100)$" err &&
	test_expect_code 3 ckpt diff evil "$FX/dcp" >out 2>err &&
	test_grep "^ckpt: model.w: evil/__1_0.distcp: chunk \[2, 0\] of ${SQ}model.w${SQ}: data.pkl: GLOBAL ${SQ}posix.system${SQ} .* not resolved (at byte [0-9]*)$" err &&
	test_grep "4 identical, 0 different, 1 unreadable" out
'

# The non-tensor values of a DCP checkpoint (bytes items: each a
# torch.save archive in a shard) are the same object tree as the
# consolidated torch file's: compared as its pickle metadata.
test_expect_success TORCH 'DCP bytes items against the consolidated file: equal values are not reported' '
	ckpt diff --json "$FX/dcp" "$FX/model.pt" >out.json &&
	test "$(jq_py out.json "d[\"metadata\"], d[\"summary\"][\"metadata_differences\"]")" = "{} 0" &&
	ckpt diff "$FX/dcp" "$FX/model.pt" >out &&
	! grep -q "^metadata:" out &&
	test_expect_code 1 ckpt diff --json "$FX/dcp" "$FX/noprefix.pt" >out.json &&
	test "$(jq_py out.json "sorted((m[\"path\"], m[\"change\"]) for m in d[\"metadata\"][\"pickle\"])")" = \
	    "[(${SQ}epoch${SQ}, ${SQ}removed${SQ}), (${SQ}extra${SQ}, ${SQ}removed${SQ}), (${SQ}optim${SQ}, ${SQ}removed${SQ}), (${SQ}sched${SQ}, ${SQ}removed${SQ}), (${SQ}step${SQ}, ${SQ}removed${SQ})]"
'

test_expect_success TORCH 'DCP bytes items: a changed value is reported by path, DCP against DCP and against torch' '
	test_expect_code 1 ckpt diff --json "$FX/dcp" "$FX/changed" >out.json &&
	test "$(jq_py out.json "[(m[\"path\"], m[\"a\"], m[\"b\"]) for m in d[\"metadata\"][\"pickle\"]]")" = \
	    "[(${SQ}epoch${SQ}, 3, 4), (${SQ}optim.param_groups[0].lr${SQ}, 0.001, 0.0005)]" &&
	"$PYTHON" - "$FX/model.pt" <<-\EOF &&
	import sys, torch
	sd = torch.load(sys.argv[1])
	sd["sched"]["_last_lr"] = [0.0005]
	sd["extra"]["amp"] = False
	del sd["step"]
	torch.save(sd, "resaved.pt")
	EOF
	ckpt diff "$FX/dcp" resaved.pt >out &&
	cat >expect <<-\EOF &&
	metadata:
	  pickle step: only in a: 1200
	  pickle extra.amp: true -> false
	  pickle sched._last_lr[0]: 0.00075 -> 0.0005
	EOF
	sed -n "/^metadata:/,\$p" out >actual &&
	test_cmp expect actual
'

test_expect_success TORCH 'a DCP bytes item calling os.system is named, never run' '
	ckpt diff --json "$FX/dcp" "$FX/evil-bytes" >out.json &&
	test "$(jq_py out.json "[(m[\"path\"], m[\"b\"][\"\$global\"]) for m in d[\"metadata\"][\"pickle\"] if m[\"b\"] and \"hook\" in m[\"path\"]]")" = \
	    "[(${SQ}extra.hook${SQ}, ${SQ}posix.system${SQ})]" &&
	test_path_is_missing "$FX/evil-bytes/pwned"
'

test_expect_success TORCH 'a DCP bytes item cut short: its shard, name and offset, exit 3' '
	test_expect_code 3 ckpt diff "$FX/dcp" "$FX/cut-bytes" >out 2>err &&
	test_grep "^ckpt: .*cut-bytes/__0_0.distcp: bytes item ${SQ}sched${SQ}: truncated zip archive: .* (at byte [0-9]*)$" err
'

test_expect_success TORCH 'setup: sparse and meta tensors saved by torch' '
	"$PYTHON" - <<-\EOF 2>/dev/null
	import torch
	i = torch.tensor([[0, 1, 1], [2, 0, 2]])
	v = torch.tensor([3.0, 4.0, 5.0])
	dense = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
	def save(path, coo_values=v, coo_index=i, meta_shape=(3, 4), csr=dense,
	         size=(2, 3)):
	    torch.save({"model": {
	        "emb": torch.sparse_coo_tensor(coo_index, coo_values, size),
	        "csr": csr.to_sparse_csr(),
	        "lazy": torch.empty(meta_shape, device="meta"),
	        "w": torch.ones(2)}}, path)
	save("sp.pt")
	save("sp-values.pt", coo_values=v + torch.tensor([0.0, 0.5, 0.0]))
	save("sp-order.pt", coo_values=v[[1, 0, 2]], coo_index=i[:, [1, 0, 2]])
	save("sp-nnz.pt", coo_values=v[:2], coo_index=i[:, :2])
	save("sp-size.pt", size=(2, 4))
	save("sp-meta.pt", meta_shape=(3, 5))
	save("sp-csr.pt", csr=dense * 2)
	torch.save({"model": {"emb": torch.sparse_coo_tensor(i, v, (2, 3)).to_dense(),
	    "csr": dense, "lazy": torch.zeros(3, 4), "w": torch.ones(2)}}, "dense.pt")
	EOF
'

test_expect_success TORCH 'sparse and meta tensors against themselves: identical, meta said to have no data' '
	ckpt diff sp.pt sp.pt >out &&
	test_grep "^tensors: 4 common: 4 identical, 0 different; 0 only in a, 0 only in b$" out &&
	test_grep "^1 meta tensor (no data): dtype and shape compared$" out &&
	ckpt diff --json sp.pt sp.pt >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"no_data\"], d[\"summary\"][\"common\"], d[\"only_a\"]")" = "1 4 []"
'

test_expect_success TORCH 'sparse values: the statistics of the stored values' '
	test_expect_code 1 ckpt diff --json sp.pt sp-values.pt >out.json &&
	test "$(jq_py out.json "[(c[\"name\"], c[\"layout_a\"], c[\"unequal\"], c[\"max_abs\"], c[\"count\"], c[\"shape_a\"]) for c in d[\"changed\"]]")" = "[(${SQ}model.emb${SQ}, ${SQ}sparse_coo${SQ}, 1, 0.5, 3, [2, 3])]" &&
	ckpt diff --atol 0.5 sp.pt sp-values.pt >out &&
	test_grep "1 within tolerance" out &&
	test_expect_code 1 ckpt diff --json sp.pt sp-csr.pt >out.json &&
	test "$(jq_py out.json "[(c[\"name\"], c[\"layout_b\"], c[\"unequal\"]) for c in d[\"changed\"]]")" = "[(${SQ}model.csr${SQ}, ${SQ}sparse_csr${SQ}, 3)]"
'

test_expect_success TORCH 'sparse: another order, count or size of stored elements is reported as such' '
	test_expect_code 1 ckpt diff sp.pt sp-order.pt >out &&
	test_grep "^model.emb .*sparsity pattern differs (indices not equal): values not compared$" out &&
	test_expect_code 1 ckpt diff sp.pt sp-nnz.pt >out &&
	test_grep "^model.emb .*sparsity pattern differs (3 against 2 stored values): values not compared$" out &&
	test_expect_code 1 ckpt diff sp.pt sp-size.pt >out &&
	test_grep "^model.emb .*\[2, 3\]->\[2, 4\] .*shape changed" out &&
	test_expect_code 1 ckpt diff --atol 1 sp.pt sp-order.pt
'

test_expect_success TORCH 'sparse or meta against dense: a layout change, never silently equal' '
	test_expect_code 1 ckpt diff --json sp.pt dense.pt >out.json &&
	test "$(jq_py out.json "sorted((c[\"name\"], c[\"layout_a\"], c[\"layout_b\"], c[\"status\"]) for c in d[\"changed\"])")" = "[(${SQ}model.csr${SQ}, ${SQ}sparse_csr${SQ}, ${SQ}strided${SQ}, ${SQ}different${SQ}), (${SQ}model.emb${SQ}, ${SQ}sparse_coo${SQ}, ${SQ}strided${SQ}, ${SQ}different${SQ}), (${SQ}model.lazy${SQ}, ${SQ}meta${SQ}, ${SQ}strided${SQ}, ${SQ}different${SQ})]" &&
	test_expect_code 1 ckpt diff sp.pt dense.pt >out &&
	test_grep "^model.lazy .*a meta tensor (no data) in a only: values not compared$" out &&
	test_grep "^model.emb .*layout changed (sparse_coo against strided): values not compared$" out &&
	test_expect_code 1 ckpt diff --atol 100 sp.pt dense.pt
'

test_expect_success TORCH 'meta tensors of another shape; sparse parts are not listed as tensors' '
	test_expect_code 1 ckpt diff sp.pt sp-meta.pt >out &&
	test_grep "^model.lazy .*\[3, 4\]->\[3, 5\]" out &&
	ckpt diff --json sp.pt sp.pt >out.json &&
	! grep "emb\\.0" out.json &&
	test "$(jq_py out.json "d[\"a\"][\"tensors\"]")" = 4
'

test_done
