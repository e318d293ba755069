#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect: torch pickles (tree, globals), DCP chunks, store references'
. "$(dirname "$0")/lib.sh"

SQ="'"
T=$FIXTURES_DIR/torch
D=$FIXTURES_DIR/dcp
H=$FIXTURES_DIR/verify-hostile

json_eval() {
	"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

test_expect_success TORCH 'optimizer state: hyperparameters as a tree, tensors collapsed' '
	ckpt inspect "$T/optimizer.pt" >out &&
	test_grep "^format:  torch-zip$" out &&
	test_grep "^  state: (18 tensors)$" out &&
	test_grep "^      lr: 0.001$" out &&
	test_grep "^      betas: \[0.9, 0.999\]$" out &&
	test_grep "^  torch._utils._rebuild_tensor_v2  allowed$" out &&
	test_grep "^state.0.exp_avg  *F32  *\[8, 4\]  *32  *128 B$" out
'

test_expect_success TORCH '--depth cuts the tree with a count' '
	ckpt inspect --depth 2 "$T/optimizer.pt" >out &&
	test_grep "^    0: {...} (12 keys)$" out &&
	ckpt inspect --depth 1 "$T/lightning.ckpt" >out &&
	test_grep "^  epoch: 2$" out &&
	test_grep "^  loops: {...} (1 key)$" out &&
	test_grep "^  hyper_parameters: {...} (3 keys)$" out
'

test_expect_success TORCH '--json: metadata tree, globals, dotted tensor names' '
	ckpt inspect --json "$T/lightning.ckpt" >out.json &&
	test "$(json_eval out.json "d[\"files\"][0][\"metadata\"][\"epoch\"]")" = 2 &&
	test "$(json_eval out.json "d[\"files\"][0][\"metadata\"][\"hyper_parameters\"][\"name\"]")" = mlp &&
	test "$(json_eval out.json "all(g[\"allowed\"] for g in d[\"files\"][0][\"globals\"])")" = True &&
	json_eval out.json "[t[\"name\"] for t in d[\"files\"][0][\"tensors\"]]" >names &&
	test_grep "optimizer_states.0.state.0.exp_avg" names
'

test_expect_success TORCH 'numpy values of rng_state.pth print as data' '
	ckpt inspect "$T/rng_state.pth" >out &&
	test_grep "^    1: numpy array <u4 \[624\] (2496 bytes)$" out &&
	test_grep "^  numpy.core.multiarray._reconstruct  allowed$" out
'

test_expect_success TORCH 'a global outside the allowlist: shown, never resolved' '
	test_expect_code 1 ckpt inspect "$H/p01-global-system.pkl" >out &&
	test_grep "^  (top level): <global posix.system, not allowed>$" out &&
	test_grep "^  posix.system  NOT ALLOWED$" out &&
	test_grep "error unsafe-global" out &&
	test_path_is_missing PWNED &&
	test_expect_code 1 ckpt inspect --json "$H/p01-global-system.pkl" >out.json &&
	test "$(json_eval out.json "d[\"files\"][0][\"globals\"]")" = \
		"[{${SQ}allowed${SQ}: False, ${SQ}name${SQ}: ${SQ}posix.system${SQ}}]"
'

test_expect_success TORCH '--stats reads torch tensors (views and big-endian too)' '
	ckpt inspect --json --stats "$T/views.pt" "$T/bigendian.pt" >out.json &&
	"$PYTHON" - "$T" <<-\EOF
	import json, sys, torch
	d = json.load(open("out.json"))["checkpoints"]
	bad = 0
	for c, f in zip(d, ("views.pt", "bigendian.pt")):
	    obj = torch.load(sys.argv[1] + "/" + f)
	    flat = {}
	    def walk(p, o):
	        if isinstance(o, torch.Tensor):
	            flat[p] = o
	        elif isinstance(o, dict):
	            for k, v in o.items():
	                walk(p + "." + str(k) if p else str(k), v)
	        elif isinstance(o, (list, tuple)):
	            for i, v in enumerate(o):
	                walk(p + "." + str(i) if p else str(i), v)
	    walk("", obj)
	    for t in c["files"][0]["tensors"]:
	        x = flat[t["name"]].contiguous()
	        if f == "bigendian.pt":
	            # torch 1.13 predates the byteorder record: swap here
	            unit = x.element_size() // (2 if x.is_complex() else 1)
	            b = x.reshape(-1).view(torch.uint8).reshape(-1, unit).flip(1)
	            x = b.reshape(-1).contiguous().view(x.dtype).reshape(x.shape)
	        if x.is_complex():
	            x = torch.view_as_real(x)
	        x = x.double().flatten()
	        s = t["stats"]
	        if s["count"] != x.numel():
	            print(f, t["name"], "count"); bad += 1
	        if x.numel() and abs(s["mean"] - x.mean().item()) > 1e-9 * (1 + abs(x.mean().item())):
	            print(f, t["name"], s["mean"], x.mean().item()); bad += 1
	sys.exit(bad)
	EOF
'

test_expect_success TORCH 'a DCP directory: chunk table, coverage checked' '
	ckpt inspect "$D/good" >out &&
	test_grep "^kind:    dcp$" out &&
	sed -n "/^chunks:/,/^$/p" out >chunks &&
	cat >expect <<-\EOF &&
	chunks:
	item     offsets  sizes  file          offset  length
	model.w  [0,0]    [2,6]  __0_0.distcp       0     747
	model.w  [2,0]    [2,6]  __1_0.distcp       0     747
	model.b  [0]      [5]    __0_0.distcp     747     747
	scale    []       []     __1_0.distcp     747     747
	extra    (bytes)         __0_0.distcp    1494     431

	EOF
	test_cmp expect chunks &&
	test_grep "^model.w  *F32  *\[4, 6\]" out &&
	! grep "^checkpoint findings" out &&
	ckpt inspect --stats "$D/good" >out &&
	test_grep "^model.w  *F32  *\[4, 6\]  *24  *96 B  *(no data)  *-" out
'

test_expect_success TORCH 'DCP: a chunk missing from the metadata is a gap' '
	test_expect_code 1 ckpt inspect --json "$D/gap" >out.json &&
	test "$(json_eval out.json "[(f[\"id\"], f[\"subject\"]) for f in d[\"findings\"]]")" = \
		"[(${SQ}dcp-chunk-gap${SQ}, ${SQ}model.w${SQ})]"
'

test_expect_success TORCH 'DCP: a missing or short data file' '
	cp -r "$D/good" miss && rm miss/__1_0.distcp &&
	test_expect_code 1 ckpt inspect --json miss >out.json &&
	json_eval out.json "sorted(set(f[\"id\"] for f in d[\"findings\"]))" >ids &&
	test_grep "dcp-storage-file-missing" ids &&
	cp -r "$D/good" short &&
	ckpt-test-tool truncate short/__0_0.distcp 1000 &&
	test_expect_code 1 ckpt inspect --json short >out.json 2>/dev/null &&
	json_eval out.json "[f[\"subject\"] for f in d[\"findings\"] if f[\"id\"] == \"dcp-storage-out-of-range\"]" >subj &&
	echo "[${SQ}model.b|0${SQ}, ${SQ}extra|${SQ}]" >expect &&
	test_cmp expect subj
'

test_expect_success 'store references: RUN@STEP, RUN@latest, RUN@best, unknown' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" st r1@1:loss=0.5 r1@2:loss=0.7 &&
	ckpt -C st inspect --no-tensors r1@2 >out &&
	test_grep "^ref:     r1@2$" out &&
	test_grep "^path:    .*/st/runs/r1/step-2$" out &&
	ckpt -C st inspect --json r1@latest >out.json &&
	test "$(json_eval out.json "d[\"ref\"]")" = r1@latest &&
	ckpt -C st inspect --json --metric loss r1@best >out.json &&
	json_eval out.json "d[\"path\"]" >p &&
	test_grep "step-1$" p &&
	test_expect_code 3 ckpt -C st inspect r1@9 >out 2>err &&
	test ! -s out &&
	test_grep "r1@9" err &&
	test_expect_code 2 ckpt -C st inspect --mode sideways r1@1 2>err
'

test_expect_success 'a store checkpoint: a short checkpoint block; --manifest shows the manifest whole' '
	ckpt -C st inspect r1@1 >out &&
	sed -n "/^checkpoint:$/,/^$/p" out >block &&
	test_grep "^  run:        r1$" block &&
	test_grep "^  step:       1$" block &&
	test_grep "^  metrics:    loss=0.5$" block &&
	test_grep "^  signature:  none$" block &&
	test_grep "^file:    ckpt-manifest.json (ckpt.s record" out &&
	test $(wc -l <out) -lt 60 &&
	! test_grep "^  ckpt_version: " out &&
	ckpt -C st inspect --manifest r1@1 >full &&
	test_grep "^file:    ckpt-manifest.json$" full &&
	test_grep "^  ckpt_version: " full &&
	ckpt -C st inspect --json r1@1 >out.json &&
	test "$(json_eval out.json "(d[\"checkpoint\"][\"run\"], d[\"checkpoint\"][\"step\"])")" = "(${SQ}r1${SQ}, 1)"
'

# A shard holding one archive is a whole torch file by its bytes; its
# chunk is read through the .metadata, never counted a second time.
test_expect_success TORCH 'a DCP shard of one archive is a shard: its chunk is not a tensor' '
	S=$FIXTURES_DIR/diff-dcp/single &&
	ckpt inspect "$S" >out &&
	test_grep "^checkpoint total: 1 tensor, 24 parameters, 96 B$" out &&
	test_grep "1 archive: a distributed checkpoint shard" out &&
	ckpt inspect --json "$S" >out.json &&
	test "$(json_eval out.json "(d[\"totals\"][\"tensors\"], d[\"totals\"][\"parameters\"])")" = "(1, 24)" &&
	ckpt verify --json "$S" >out.json &&
	test "$(json_eval out.json "[f[\"format\"] for f in d[\"checkpoints\"][0][\"files\"]]")" = "[${SQ}dcp-metadata${SQ}, ${SQ}dcp-shard${SQ}]" &&
	ckpt-test-tool findings "$S/__0_0.distcp" >out &&
	test_grep "^format dcp-shard$" out
'

test_done
