#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='diff: structure, values against numpy for every dtype, tolerances, maps, metadata, store digests, bad input'
. "$(dirname "$0")/lib.sh"

ORACLE="$TEST_DIRECTORY/helper/numeric-oracle.py"

jq_py() {	# jq_py FILE EXPR: a Python expression over the document d
	"$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

test_expect_success TORCH 'setup: torch fixtures' '
	"$PYTHON" "$TEST_DIRECTORY/fixtures/gen-diff.py" fx
'

test_expect_success TORCH 'a torch file and its safetensors export are identical, views and tied weights included' '
	ckpt diff fx/a.pt fx/a.safetensors >out &&
	test_grep "^tensors: 8 common: 8 identical, 0 different; 0 only in a, 0 only in b$" out &&
	ckpt diff --json fx/a.pt fx/a.safetensors >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"result\"], len(d[\"changed\"])")" = "identical 0"
'

test_expect_success TORCH 'a sharded directory against a single file' '
	ckpt diff fx/shards fx/a.pt >out &&
	test_grep "hf-sharded, 8 tensors" out &&
	test_grep "8 identical" out
'

test_expect_success TORCH 'DDP prefixes: detected, suggested, and mapped' '
	test_expect_code 1 ckpt diff fx/a.pt fx/ddp.pt >out &&
	test_grep "^hint: no tensor names match; try --map =module\\.$" out &&
	test_grep "8 only in a, 8 only in b" out &&
	test_expect_code 1 ckpt diff --json fx/a.pt fx/ddp.pt >out.json &&
	test "$(jq_py out.json "d[\"suggested_map\"]")" = "=module." &&
	ckpt diff --map =module. fx/a.pt fx/ddp.pt >out &&
	test_grep "8 identical" out &&
	ckpt diff --map module.= fx/ddp.pt fx/a.pt >out &&
	test_grep "8 identical" out
'

test_expect_success TORCH 'a changed weight and the pickle values: table and tree diff' '
	test_expect_code 1 ckpt diff fx/full.pt fx/full2.pt >out &&
	test_grep "7 identical, 1 different" out &&
	test_grep "^model.enc.weight  *F32  *\\[4, 6\\]  *0.001" out &&
	test_grep "^  pickle epoch: 3 -> 4$" out &&
	test_grep "^  pickle optimizer.lr: 0.1 -> 0.01$" out &&
	! grep "betas" out &&
	test_expect_code 1 ckpt diff --json fx/full.pt fx/full2.pt >out.json &&
	test "$(jq_py out.json "*(d[\"metadata\"][\"pickle\"][0][k] for k in (\"path\", \"change\", \"a\", \"b\"))")" = "epoch changed 3 4" &&
	test_expect_code 1 ckpt diff --stat fx/full.pt fx/full2.pt >out &&
	test $(wc -l <out) = 3 &&
	ckpt diff --atol 1.1e-3 fx/full.pt fx/full2.pt >out &&
	test_grep "7 identical, 1 within tolerance, 0 different" out &&
	test_expect_code 1 ckpt diff --atol 0.9e-3 fx/full.pt fx/full2.pt
'

test_expect_success TORCH '--filter limits the comparison' '
	ckpt diff --filter "model.emb*" --filter "model.head*" fx/full.pt fx/full2.pt >out &&
	test_grep "^tensors: 2 common: 2 identical" out
'

# Every dtype, random data across block boundaries, every third element
# replaced by another random bit pattern (NaN payloads, Inf, subnormals):
# counts exact, statistics to 1e-12 of numpy float64.
test_expect_success 'statistics equal numpy for every dtype, with and without --equal-nan' '
	mkdir nd &&
	"$PYTHON" "$ORACLE" gendiff nd &&
	test_expect_code 1 ckpt diff --json --atol 1e-3 --rtol 1e-2 nd/a.safetensors nd/b.safetensors >d1.json &&
	"$PYTHON" "$ORACLE" checkdiff nd d1.json 1e-3 1e-2 0 &&
	test_expect_code 1 ckpt diff --json --equal-nan --rtol 0.1 nd/a.safetensors nd/b.safetensors >d2.json &&
	"$PYTHON" "$ORACLE" checkdiff nd d2.json 0 0.1 1 &&
	test_expect_code 1 ckpt diff --json nd/a.safetensors nd/b.safetensors >d3.json &&
	"$PYTHON" "$ORACLE" checkdiff nd d3.json 0 0 0
'

test_expect_success 'portable kernel and any thread count: the same document' '
	for j in 1 3; do
		test_expect_code 1 env CKPT_NUMERIC_KERNEL=portable ckpt diff --json -j $j --atol 1e-3 --rtol 1e-2 nd/a.safetensors nd/b.safetensors >p$j.json &&
		test_cmp d1.json p$j.json || return 1
	done
'

# |a - b| exactly atol + rtol * |b| is within tolerance (numpy agrees);
# one ulp more is not.
test_expect_success 'tolerance boundary: exactly at atol + rtol*|b|' '
	"$PYTHON" - <<-\EOF &&
	import json, struct, math
	import numpy as np
	def st(path, vals):
	    raw = struct.pack("<%dd" % len(vals), *vals)
	    h = json.dumps({"t": {"dtype": "F64", "shape": [len(vals)], "data_offsets": [0, len(raw)]}}).encode()
	    h += b" " * (-len(h) % 8)
	    open(path, "wb").write(struct.pack("<Q", len(h)) + h + raw)
	b = [1.0, 2.0, -4.0, 0.0]
	a = [1.375, 2.625, -5.125, 0.125]     # |a-b| == 0.125 + 0.25*|b|
	st("at.safetensors", a)
	st("b.safetensors", b)
	a2 = list(a); a2[1] = math.nextafter(2.625, 10)
	st("over.safetensors", a2)
	assert np.allclose(a, b, atol=0.125, rtol=0.25)
	assert not np.allclose(a2, b, atol=0.125, rtol=0.25)
	EOF
	ckpt diff --atol 0.125 --rtol 0.25 at.safetensors b.safetensors >out &&
	test_grep "1 within tolerance" out &&
	test_expect_code 1 ckpt diff --json --atol 0.125 --rtol 0.25 over.safetensors b.safetensors >out.json &&
	test "$(jq_py out.json "d[\"changed\"][0][\"beyond_tolerance\"]")" = 1 &&
	test_expect_code 1 ckpt diff at.safetensors b.safetensors
'

test_expect_success TORCH 'a dtype change with the same values: reported, compared, passes with tolerances' '
	"$PYTHON" - <<-\EOF &&
	import torch, json, struct
	t = torch.tensor([1.0, -2.5, 0.15625, 3e38, float("nan")])
	torch.save({"w": t}, "f32.pt")
	bf = t.to(torch.bfloat16)
	raw = bf.view(torch.int16).numpy().tobytes()
	h = json.dumps({"w": {"dtype": "BF16", "shape": [5], "data_offsets": [0, len(raw)]}}).encode()
	h += b" " * (-len(h) % 8)
	open("bf16.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + raw)
	EOF
	test_expect_code 1 ckpt diff --json f32.pt bf16.safetensors >out.json &&
	test "$(jq_py out.json "d[\"changed\"][0][\"dtype_a\"], d[\"changed\"][0][\"dtype_b\"], d[\"summary\"][\"dtype_changed\"], d[\"changed\"][0][\"nan_both\"]")" = "F32 BF16 1 1" &&
	test_expect_code 1 ckpt diff --rtol 0.01 f32.pt bf16.safetensors &&
	ckpt diff --rtol 0.01 --equal-nan f32.pt bf16.safetensors >out &&
	test_grep "1 within tolerance" out
'

test_expect_success 'missing and extra tensors: exit 1 unless allowed' '
	"$PYTHON" - <<-\EOF &&
	import json, struct
	def st(path, names):
	    hdr, off = {}, 0
	    for n in names:
	        hdr[n] = {"dtype": "F32", "shape": [2], "data_offsets": [off, off + 8]}; off += 8
	    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
	    open(path, "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<2f", 1, 2) * len(names))
	st("ab.safetensors", ["a", "b"])
	st("a.safetensors", ["a"])
	EOF
	test_expect_code 1 ckpt diff ab.safetensors a.safetensors &&
	ckpt diff --allow-missing ab.safetensors a.safetensors &&
	test_expect_code 1 ckpt diff --allow-missing a.safetensors ab.safetensors &&
	ckpt diff --allow-extra a.safetensors ab.safetensors &&
	ckpt diff --allow-extra --atol 0 a.safetensors ab.safetensors
'

test_expect_success 'store checkpoints with equal digests: identical without reading data' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" m1.safetensors 3000000 5 &&
	cp m1.safetensors m2.safetensors &&
	echo "{\"optimizer\": {\"lr\": 0.1, \"name\": \"adam\"}, \"layers\": [1, 2]}" >c1.json &&
	echo "{\"optimizer\": {\"lr\": 0.2, \"name\": \"adam\"}, \"layers\": [1, 2, 3], \"seed\": 7}" >c2.json &&
	ckpt -C st save --copy --run r --step 1 --metric loss=0.5 --config c1.json m1.safetensors >/dev/null &&
	ckpt -C st save --copy --run r --step 2 --metric loss=0.25 --config c2.json m2.safetensors >/dev/null &&
	ckpt -C st diff --json r@1 r@2 >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"identical_by_digest\"], d[\"summary\"][\"bytes_read\"]")" = "4 0" &&
	ckpt -C st diff r@1 r@2 >out &&
	test_grep "^4 identical by manifest digest (not read)$" out &&
	test_grep "^  manifest step: 1 -> 2$" out &&
	test_grep "^  manifest metrics.loss: 0.5 -> 0.25$" out &&
	test_grep "^  manifest config.content.optimizer.lr: 0.1 -> 0.2$" out &&
	test_grep "^  manifest config.content.layers\[2\]: only in b: 3$" out &&
	test_grep "^  manifest config.content.seed: only in b: 7$" out &&
	! grep "optimizer.name" out &&
	ckpt -C st diff --no-digests --json r@1 r@2 >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"identical_by_digest\"], d[\"summary\"][\"bytes_read\"] > 0")" = "0 True"
'

test_expect_success 'a manifest value absent on both sides is not a difference' '
	ckpt -C st save --copy --run bare --step 1 m1.safetensors >/dev/null &&
	ckpt -C st save --copy --run bare --step 2 m1.safetensors >/dev/null &&
	ckpt -C st diff bare@1 bare@2 >out &&
	test_grep "^  manifest step: 1 -> 2$" out &&
	! grep "(null)" out &&
	! grep "manifest config" out &&
	ckpt -C st diff --json bare@1 bare@2 >out.json &&
	test "$(jq_py out.json "\",\".join(m[\"path\"] for m in d[\"metadata\"][\"manifest\"])")" = step
'

test_expect_success 'a store checkpoint against a bare file' '
	ckpt -C st diff r@1 m1.safetensors >out &&
	test_grep "4 identical" out
'

test_expect_success 'a digest that differs does not make a tensor different by itself' '
	cp m1.safetensors m3.safetensors &&
	ckpt-test-tool flip m3.safetensors 2000000 &&
	ckpt -C st save --copy --run r --step 3 m3.safetensors >/dev/null &&
	test_expect_code 1 ckpt -C st diff --json r@1 r@3 >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"identical_by_digest\"], d[\"summary\"][\"different\"], d[\"changed\"][0][\"unequal\"]")" = "3 1 1"
'

# Manifest schema 2 gives each tensor "content_sha256"; when both sides
# have it, it decides, even over schema 1's range digest.  Here it is
# written into the manifests by hand: equal for t2 (whose bytes differ:
# the digest is trusted as recorded), different for t0 (whose bytes are
# equal: the data is compared and says identical).
test_expect_success 'content_sha256 digests decide when both manifests have them' '
	"$PYTHON" - st/runs/r/step-1/ckpt-manifest.json st/runs/r/step-3/ckpt-manifest.json <<-\EOF &&
	import json, sys
	for i, path in enumerate(sys.argv[1:]):
	    m = json.load(open(path))
	    for f in m["files"]:
	        for t in f.get("tensors", []):
	            fake = "%x" % (i if t["name"] == "t0" else 7)
	            t["content_sha256"] = "sha256:" + fake * (64 // len(fake))
	    json.dump(m, open(path, "w"), sort_keys=True)
	EOF
	ckpt -C st diff --json r@1 r@3 >out.json &&
	test "$(jq_py out.json "d[\"summary\"][\"identical_by_digest\"], d[\"summary\"][\"identical\"], d[\"summary\"][\"bytes_read\"]")" = "3 4 1500000"
'

# A reference that names nothing is "could not run", as in every command.
test_expect_success 'a reference that names nothing exits 3' '
	test_expect_code 3 ckpt -C st diff r@99 m1.safetensors 2>err &&
	test_grep "no committed checkpoint r@99" err
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 ckpt diff m1.safetensors &&
	test_expect_code 2 ckpt diff --map nope m1.safetensors m2.safetensors &&
	test_expect_code 2 ckpt diff --atol -1 m1.safetensors m2.safetensors &&
	test_expect_code 2 ckpt diff --top -1 m1.safetensors m2.safetensors &&
	test_expect_code 2 ckpt diff --top x m1.safetensors m2.safetensors
'

test_expect_success 'hostile and truncated inputs: a clear error, exit 3' '
	head -c 1000 m1.safetensors >trunc.safetensors &&
	test_expect_code 3 ckpt diff m1.safetensors trunc.safetensors 2>err &&
	test_grep "trunc.safetensors" err &&
	printf "\\377\\377\\377\\377\\377\\377\\377\\177{}" >huge.safetensors &&
	test_expect_code 3 ckpt diff huge.safetensors m1.safetensors 2>err &&
	test_grep "huge.safetensors" err &&
	echo "version https://git-lfs.github.com/spec/v1" >lfs.safetensors &&
	test_expect_code 3 ckpt diff m1.safetensors lfs.safetensors 2>err &&
	test_grep "lfs.safetensors" err
'

test_done
