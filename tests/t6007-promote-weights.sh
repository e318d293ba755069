#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='promote --weights-only: the version holds the weights alone
as safetensors, converted without unpickling, checked by torch; provenance in
its manifest and the history; refusals; idempotence'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/torch

# stcheck SOURCE OUT [ROOT]: numpy reader of OUT against torch.load(SOURCE)
stcheck() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" "$@"
}

# save RUN STEP FILE...: commit the files as RUN@STEP
save() {
	_run=$1 _step=$2 && shift 2 &&
	rm -rf src && mkdir src && cp "$@" src/ &&
	ckpt -C s save -q --run "$_run" --step "$_step" --metric loss=0.5 \
		--copy src >/dev/null
}

test_expect_success TORCH 'setup: a Lightning checkpoint and one with tied weights' '
	save lit 1 "$FX/lightning.ckpt" &&
	save tied 1 "$FX/views.pt"
'

test_expect_success TORCH 'the version is model.safetensors and its own manifest' '
	ckpt -C s promote lit@1 --model m --weights-only --alias prod \
		--note "serving" >out &&
	test_grep "^promoted lit@1 (sha256:[0-9a-f]*) to m v1: weights only, 9 tensors in model.safetensors" out &&
	(cd s/registry/m/v1 && ls) >files &&
	printf "%s\n" ckpt-manifest.json model.safetensors >expect &&
	test_cmp expect files &&
	stcheck "$FX/lightning.ckpt" s/registry/m/v1/model.safetensors \
		state_dict >res &&
	test_grep "^ok 9 tensors" res
'

test_expect_success TORCH 'provenance: the manifest names the checkpoint, the history both digests' '
	ckpt -C s --json log >log.json &&
	"$PYTHON" - <<-\EOF
	import json, hashlib
	man = json.load(open("s/registry/m/v1/ckpt-manifest.json"))
	src = open("s/runs/lit/step-1/ckpt-manifest.json", "rb").read()
	sd = "sha256:" + hashlib.sha256(src).hexdigest()
	assert man["scope"] == "weights-only", man
	assert man["source"]["manifest"] == sd, man["source"]
	assert (man["source"]["run"], man["source"]["step"]) == ("lit", 1)
	assert man["source"]["left_out"] == 19, man["source"]
	assert man["metrics"] == {"loss": 0.5}, man
	(f,) = man["files"]
	assert f["path"] == "model.safetensors" and f["format"] == "safetensors"
	st = open("s/registry/m/v1/model.safetensors", "rb").read()
	assert f["sha256"] == "sha256:" + hashlib.sha256(st).hexdigest()
	rec = [r for r in json.load(open("log.json"))["records"]
	       if r["action"] == "promote"][0]
	vm = open("s/registry/m/v1/ckpt-manifest.json", "rb").read()
	assert rec["manifest"] == "sha256:" + hashlib.sha256(vm).hexdigest()
	assert rec["source_manifest"] == sd and rec["scope"] == "weights-only"
	assert (rec["run"], rec["step"], rec["note"]) == ("lit", 1, "serving")
	v = json.load(open("s/registry/m/v1.json"))
	assert v["scope"] == "weights-only" and v["source_manifest"] == sd, v
	hdr = st[8:8 + int.from_bytes(st[:8], "little")].decode()
	assert "ckpt.source" in hdr and "lit@1" in hdr, hdr
	EOF
'

test_expect_success TORCH 'MODEL@ALIAS verifies against the recorded digest; tampering is found' '
	ckpt -C s verify m@prod >out &&
	ckpt -C s verify --registry m@prod >out &&
	echo "m@v1: OK" >expect && test_cmp expect out &&
	cp s/registry/m/v1/model.safetensors good.st &&
	"$PYTHON" -c "
f = open(\"s/registry/m/v1/model.safetensors\", \"r+b\")
f.seek(-1, 2); b = f.read(1); f.seek(-1, 2); f.write(bytes([b[0] ^ 1]))
" &&
	test_expect_code 1 ckpt -C s verify m@prod >out &&
	test_expect_code 1 ckpt -C s verify --registry m@v1 >out &&
	test_grep "FAILED" out &&
	cp good.st s/registry/m/v1/model.safetensors &&
	ckpt -C s verify m@v1 >/dev/null
'

test_expect_success TORCH 'promoting the same weights again is a no-op; a full promote is a new version' '
	cp s/registry/.history.jsonl before &&
	ckpt -C s promote lit@1 --model m --weights-only >out &&
	test_grep "m v1 holds this checkpoint.s weights already" out &&
	test_cmp before s/registry/.history.jsonl &&
	ckpt -C s promote lit@1 --model m >out &&
	test_grep "to m v2: 2 files" out &&
	ckpt -C s ls --models m >out &&
	test_grep "^m  *v1  *prod  *lit@1 .* weights-only " out &&
	test_grep "^m  *v2  *lit@1 .* link " out &&
	ckpt -C s --json ls --models m >m.json &&
	"$PYTHON" -c "
import json
vs = json.load(open(\"m.json\"))[\"models\"][0][\"versions\"]
assert [v[\"scope\"] for v in vs] == [\"weights-only\", \"full\"], vs
assert vs[0][\"source_manifest\"].startswith(\"sha256:\")
assert vs[1][\"source_manifest\"] is None
"
'

test_expect_success TORCH 'tied weights are written once and recorded as aliases' '
	ckpt -C s --json promote tied@1 --model t --weights-only >out.json &&
	"$PYTHON" -c "
import json
d = json.load(open(\"out.json\"))
assert d[\"scope\"] == \"weights-only\" and d[\"created\"], d
assert d[\"version_manifest\"].startswith(\"sha256:\"), d
assert d[\"manifest\"] != d[\"version_manifest\"], d
assert d[\"storage\"] == \"copy\" and d[\"copied\"] == 1, d
" &&
	stcheck "$FX/views.pt" s/registry/t/v1/model.safetensors >res &&
	echo "ok 12 tensors, 1 aliases" >expect &&
	test_cmp expect res
'

test_expect_success TORCH 'the source stays protected from prune' '
	save lit 2 "$FX/lightning.ckpt" &&
	save lit 3 "$FX/lightning.ckpt" &&
	ckpt -C s prune --run lit --keep-last 1 >out &&
	test_path_is_dir s/runs/lit/step-1 &&
	test_grep "^lit  *1 .* keep  *registry" out
'

test_expect_success TORCH 'a corrupted checkpoint is refused (exit 1), nothing created' '
	save bad 1 "$FX/lightning.ckpt" &&
	f=s/runs/bad/step-1/lightning.ckpt &&
	"$PYTHON" -c "
f = open(\"$f\", \"r+b\"); f.seek(200); b = f.read(1); f.seek(200)
f.write(bytes([b[0] ^ 0xff]))
" &&
	cp s/registry/.history.jsonl before &&
	test_expect_code 1 ckpt -C s promote bad@1 --model b --weights-only \
		2>err &&
	test_grep "refused to promote bad@1" err &&
	test_cmp before s/registry/.history.jsonl &&
	test_path_is_missing s/registry/b &&
	test -z "$(ls s/registry/.staging)"
'

test_expect_success 'an unsafe pickle is refused (exit 1), never executed' '
	rm -f /tmp/ckpt-t6007-pwned &&
	"$PYTHON" - <<-\EOF &&
	import os, pickle, zipfile
	class P:
	    def __reduce__(self):
	        return (os.system, ("touch /tmp/ckpt-t6007-pwned",))
	data = pickle.dumps({"w": P()}, protocol=2)
	os.makedirs("evil", exist_ok=True)
	with zipfile.ZipFile("evil/model.pt", "w") as z:
	    z.writestr("archive/data.pkl", data)
	    z.writestr("archive/version", "3\n")
	EOF
	test_expect_code 1 ckpt -C s save -q --run evil --step 1 --copy evil \
		>/dev/null 2>&1 &&
	test_path_is_dir s/runs/evil/step-1 &&
	test_expect_code 1 ckpt -C s promote evil@1 --model e --weights-only \
		2>err &&
	test_path_is_missing s/registry/e &&
	test_path_is_missing /tmp/ckpt-t6007-pwned
'

test_expect_success 'usage: --weights-only with --copy or --rollback is exit 2' '
	test_expect_code 2 ckpt -C s promote lit@3 --model m --weights-only \
		--copy 2>err &&
	test_grep "weights-only" err &&
	test_expect_code 2 ckpt -C s promote --rollback m --alias prod \
		--weights-only 2>err
'

test_expect_success TORCH 'a weights-only version exports as MODEL@vN (t8004 imports it)' '
	ckpt -C s export -o w.tar m@prod >out &&
	test_grep "^exported m@v1 (weights only, 1 files" out &&
	tar tf w.tar >names &&
	printf "%s\n" ckpt-bundle.json m@v1/ckpt-manifest.json \
		m@v1/model.safetensors >expect &&
	test_cmp expect names
'

test_expect_success 'a history record claiming weights-only without its source does not replay' '
	cp s/registry/.history.jsonl good &&
	"$PYTHON" - <<-\EOF &&
	import json
	lines = open("good").read().splitlines()
	r = json.loads(lines[0])
	assert r["scope"] == "weights-only"
	del r["source_manifest"]
	lines[0] = json.dumps(r, sort_keys=True, separators=(",", ":"))
	open("s/registry/.history.jsonl", "w").write("\n".join(lines) + "\n")
	EOF
	test_expect_code 3 ckpt -C s ls --models 2>err &&
	test_grep "record 1" err &&
	cp good s/registry/.history.jsonl &&
	ckpt -C s log >/dev/null
'

test_done
