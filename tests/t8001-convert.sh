#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='convert: torch checkpoints to safetensors, checked by torch
itself (every dtype, views, tied weights, big-endian, Lightning, nested state
dicts, legacy files, shards), choices, refusals and atomic output'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/torch

# stcheck SOURCE OUT [ROOT]: numpy reader of OUT against torch.load(SOURCE)
stcheck() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" "$@"
}

test_expect_success TORCH 'every dtype torch can save: bytes as torch.load' '
	ckpt convert "$FX/dtypes.pt" d.safetensors >out &&
	test_grep "weights: the top-level dict of tensors" out &&
	stcheck "$FX/dtypes.pt" d.safetensors >res &&
	test_grep "^ok 12 tensors" res
'

test_expect_success TORCH 'dtypes safetensors lacks are left out and named' '
	ckpt --json convert --force "$FX/dtypes.pt" d.safetensors >out.json &&
	test_grep "C128 has no safetensors dtype" out.json &&
	grep -c "\"reason\": \"quantized tensor\"" out.json >n &&
	echo 3 >want && test_cmp want n
'

test_expect_success TORCH 'views come out contiguous; tied weights once, aliased' '
	ckpt convert "$FX/views.pt" v.safetensors >out &&
	test_grep "tied: lm_head = emb" out &&
	stcheck "$FX/views.pt" v.safetensors >res &&
	echo "ok 12 tensors, 1 aliases" >want &&
	test_cmp want res &&
	head -c 2000 v.safetensors | tr -d "\\000" >hdr &&
	test_grep "\"lm_head\":\"emb\"" hdr &&
	test_grep "\"format\":\"pt\"" hdr &&
	test_grep "\"ckpt.source_sha256\":\"{\\\\\"views.pt\\\\\":\\\\\"sha256:$(sha256sum "$FX/views.pt" | cut -c1-64)" hdr
'

test_expect_success TORCH 'big-endian archives are written little-endian' '
	ckpt --json convert "$FX/bigendian.pt" be.safetensors >out.json &&
	test_grep "\"byteswapped\": true" out.json &&
	stcheck "$FX/bigendian.pt.expect" be.safetensors >res &&
	test_grep "^ok 6 tensors" res
'

test_expect_success TORCH 'Lightning: state_dict chosen, optimizer and values left out' '
	ckpt convert "$FX/lightning.ckpt" l.safetensors >out &&
	test_grep "lightning.ckpt: weights: state_dict" out &&
	test_grep "left out: 19 tensors" out &&
	test_grep "non-tensor values" out &&
	stcheck "$FX/lightning.ckpt" l.safetensors state_dict >res &&
	test_grep "^ok 9 tensors" res &&
	ckpt -v convert "$FX/lightning.ckpt" l2.safetensors >out &&
	test_grep "^left out: lightning.ckpt: optimizer_states.0.state.0.exp_avg (outside the weights)" out &&
	test_grep "^value: epoch = 2" out
'

test_expect_success TORCH '--metadata-json keeps scalars as strings' '
	ckpt convert --metadata-json "$FX/lightning.ckpt" lm.safetensors &&
	head -c 4000 lm.safetensors | tr -d "\\000" >hdr &&
	test_grep "\"epoch\":\"2\"" hdr &&
	test_grep "\"hyper_parameters.name\":\"mlp\"" hdr &&
	stcheck "$FX/lightning.ckpt" lm.safetensors state_dict >res &&
	test_grep "^ok 9 tensors" res
'

test_expect_success TORCH 'legacy (pre-1.6) files convert too' '
	ckpt convert "$FX/legacy.pt" lg.safetensors &&
	stcheck "$FX/legacy.pt" lg.safetensors >res &&
	echo "ok 12 tensors, 1 aliases" >want &&
	test_cmp want res
'

test_expect_success TORCH 'nested state dicts: model.module found; names kept nested' '
	"$PYTHON" -c "
import torch
enc = torch.nn.Linear(3, 4)
sd = {\"encoder\": enc.state_dict(), \"head\": {\"w\": torch.randn(2, 4),
      \"tied\": enc.weight.data}}
torch.save({\"epoch\": 1, \"model\": {\"module\": sd},
            \"optimizer\": {\"state\": {0: {\"m\": torch.zeros(3)}}}},
           \"nested.pt\")
" &&
	ckpt convert nested.pt n.safetensors >out &&
	test_grep "nested.pt: weights: model.module" out &&
	test_grep "tied: head.tied = encoder.weight" out &&
	stcheck nested.pt n.safetensors model.module >res &&
	echo "ok 3 tensors, 1 aliases" >want &&
	test_cmp want res
'

test_expect_success TORCH '--select keeps the prefix; --strip-prefix removes it' '
	ckpt convert --select a "$FX/nested.pt" s.safetensors &&
	stcheck "$FX/nested.pt" s.safetensors >res &&
	test_grep "^ok 3 tensors" res &&
	ckpt convert --select a.1 --strip-prefix "$FX/nested.pt" s2.safetensors &&
	stcheck "$FX/nested.pt" s2.safetensors a.1 >res &&
	test_grep "^ok 2 tensors" res
'

test_expect_success TORCH 'no weights where expected: exit 2 with a hint' '
	test_expect_code 2 ckpt convert "$FX/nested.pt" x.safetensors 2>err &&
	test_grep "choose with --select" err &&
	test_path_is_missing x.safetensors &&
	test_expect_code 2 ckpt convert --select nope "$FX/views.pt" x.safetensors &&
	test_path_is_missing x.safetensors
'

test_expect_success TORCH 'sharded output loads through its index' '
	mkdir sh &&
	ckpt convert --shard-size 200 "$FX/views.pt" sh/model.safetensors >out &&
	test_grep "wrote sh/model.safetensors.index.json" out &&
	test_path_is_file sh/model-00003-of-00003.safetensors &&
	test_path_is_missing sh/model.safetensors &&
	stcheck "$FX/views.pt" sh/model.safetensors.index.json >res &&
	echo "ok 12 tensors, 1 aliases" >want &&
	test_cmp want res
'

test_expect_success TORCH 'an existing output is refused without --force' '
	cp v.safetensors keep &&
	test_expect_code 2 ckpt convert "$FX/state_dict.pt" v.safetensors 2>err &&
	test_grep "exists already (use --force" err &&
	cmp keep v.safetensors &&
	ckpt convert --force "$FX/state_dict.pt" v.safetensors &&
	stcheck "$FX/state_dict.pt" v.safetensors >res &&
	test_grep "^ok" res &&
	! ls | grep -q "\\.tmp\\."
'

test_expect_success TORCH 'unsafe pickles are refused unless their globals are allowed' '
	"$PYTHON" -c "
import argparse, torch
torch.save({\"state_dict\": {\"w\": torch.ones(2)},
            \"args\": argparse.Namespace(lr=0.1)}, \"args.pt\")
" &&
	test_expect_code 1 ckpt convert args.pt a.safetensors 2>err &&
	test_grep "argparse.Namespace" err &&
	test_grep "allow-global" err &&
	test_path_is_missing a.safetensors &&
	ckpt convert --allow-global argparse.Namespace args.pt a.safetensors &&
	stcheck args.pt a.safetensors state_dict >res &&
	test_grep "^ok 1 tensors" res
'

test_expect_success TORCH 'a reference and a directory convert too' '
	mkdir src && cp "$FX/state_dict.pt" src/pytorch_model.bin &&
	cp "$FX/optimizer.pt" src/optimizer.pt &&
	ckpt convert src dir.safetensors >out &&
	test_grep "pytorch_model.bin: weights: the top-level" out &&
	test_grep "optimizer.pt: no weights found here" out &&
	stcheck "$FX/state_dict.pt" dir.safetensors >res &&
	test_grep "^ok 9 tensors" res &&
	ckpt -C st save --run r --step 3 --copy src >/dev/null &&
	ckpt -C st convert r@3 ref.safetensors &&
	head -c 600 ref.safetensors | tr -d "\\000" >hdr &&
	test_grep "\"ckpt.source\":\"r@3\"" hdr &&
	stcheck "$FX/state_dict.pt" ref.safetensors >res &&
	test_grep "^ok 9 tensors" res
'

test_expect_success TORCH 'a DCP checkpoint is consolidated from its chunks' '
	"$PYTHON" -c "
import torch
torch.manual_seed(3)   # as tests/fixtures/gen-dcp.py makes it
w = torch.randn(4, 6)
torch.save({\"model\": {\"w\": w, \"b\": torch.arange(5)},
            \"scale\": torch.tensor(2.5, dtype=torch.float64)}, \"dcp.pt\")
" &&
	ckpt -v convert "$FIXTURES_DIR/dcp/good" dcp.safetensors >out &&
	test_grep "^.metadata: weights: model" out &&
	test_grep "^left out: .metadata: scale (outside the weights)" out &&
	stcheck dcp.pt dcp.safetensors model >res &&
	echo "ok 2 tensors, 0 aliases" >want &&
	test_cmp want res &&
	ckpt --json convert --select model.w --select scale \
	    "$FIXTURES_DIR/dcp/good" dcp2.safetensors >out.json &&
	test_grep "__0_0.distcp" out.json &&
	test_grep "__1_0.distcp" out.json &&
	"$PYTHON" -c "
import torch
d = torch.load(\"dcp.pt\")
torch.save({\"model\": {\"w\": d[\"model\"][\"w\"]}, \"scale\": d[\"scale\"]},
           \"dcp2.pt\")
" &&
	stcheck dcp2.pt dcp2.safetensors >res &&
	test_grep "^ok 2 tensors" res
'

test_expect_success TORCH 'a DCP tensor sharded by columns is assembled row by row' '
	ckpt convert "$FIXTURES_DIR/dcp/cols" cols.safetensors &&
	stcheck dcp.pt cols.safetensors model >res &&
	echo "ok 2 tensors, 0 aliases" >want &&
	test_cmp want res
'

test_expect_success TORCH 'a DCP checkpoint with a gap or an unsafe pickle is refused' '
	test_expect_code 3 ckpt convert "$FIXTURES_DIR/dcp/gap" x.safetensors 2>err &&
	test_grep "cover 12 of its 24 elements" err &&
	test_expect_code 1 ckpt convert "$FIXTURES_DIR/dcp/hostile" x.safetensors 2>err &&
	test_grep "posix.system" err &&
	test_path_is_missing x.safetensors
'

# A chunk's archive goes through the same refusal as any pickle: a tensor
# subclass is a global outside the allowlist, admitted by --allow-global.
test_expect_success TORCH 'a DCP chunk of a tensor subclass: refused, then admitted by --allow-global' '
	cp -r "$FIXTURES_DIR/dcp/good" sub &&
	"$PYTHON" - "$SRC_DIRECTORY/tests/fixtures/gen-dcp.py" <<-\EOF &&
	import importlib.util, io, pickle, sys, torch
	spec = importlib.util.spec_from_file_location("gen_dcp", sys.argv[1])
	g = importlib.util.module_from_spec(spec)
	spec.loader.exec_module(g)    # the classes .metadata refers to
	class MyT(torch.Tensor):
	    pass
	w = torch.load("dcp.pt")["model"]["w"]
	b = io.BytesIO()
	torch.save(w[2:4].clone().as_subclass(MyT), b)
	m = pickle.load(open("sub/.metadata", "rb"))
	for k, v in m.storage_data.items():
	    if k.fqn == "model.w" and tuple(k.offset) == (2, 0):
	        shard = open("sub/" + v.relative_path, "rb").read()
	        open("sub/" + v.relative_path, "wb").write(shard + b.getvalue())
	        v.offset, v.length = len(shard), len(b.getvalue())
	open("sub/.metadata", "wb").write(pickle.dumps(m, protocol=4))
	EOF
	test_expect_code 1 ckpt convert sub sub.safetensors 2>err &&
	test_grep "__1_0.distcp: the pickle references 1 global outside the allowlist (__main__.MyT).*--allow-global" err &&
	test_path_is_missing sub.safetensors &&
	ckpt convert --allow-global __main__.MyT sub sub.safetensors &&
	stcheck dcp.pt sub.safetensors model >res &&
	echo "ok 2 tensors, 0 aliases" >want &&
	test_cmp want res
'

test_done
