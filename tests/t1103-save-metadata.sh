#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='save: Hugging Face adoption on a real torch directory;
metadata capture (git state, config YAML/JSON, data fingerprint, env,
resumed-from); every reference form'
. "$(dirname "$0")/lib.sh"

manifest_py() {	# manifest_py DIR 'python expression using m'
	"$PYTHON" -c "
import json, sys
m = json.load(open(sys.argv[1] + '/ckpt-manifest.json'))
$2
" "$1"
}

test_expect_success TORCH 'adopt a Hugging Face checkpoint made by torch' '
	cp -r "$FIXTURES_DIR/store/out" out &&
	ckpt -C st save --adopt out/checkpoint-500 >path &&
	dir=$(cat path) &&
	test "$dir" = "$(cd st && pwd -P)/runs/out/step-500" &&
	manifest_py "$dir" "
exp = json.load(open(\"out/checkpoint-500.expect.json\"))
assert m[\"run\"] == \"out\" and m[\"step\"] == exp[\"step\"], m[\"step\"]
assert m[\"epoch\"] == exp[\"epoch\"]
assert m[\"metrics\"] == exp[\"metrics\"], m[\"metrics\"]
assert m[\"scope\"] == \"full\", m.get(\"scope\")
assert m[\"environment\"][\"frameworks\"][\"transformers\"] == \"4.36.2\"
assert m[\"trainer_state\"][\"best_model_checkpoint\"] == \"out/checkpoint-500\"
assert m[\"trainer_state\"][\"best_metric\"] == 0.42
assert \"best_metric\" not in m[\"metrics\"], m[\"metrics\"]
names = [f[\"path\"] for f in m[\"files\"]]
assert names == sorted(names)
for n in (\"pytorch_model.bin\", \"optimizer.pt\", \"scheduler.pt\",
          \"trainer_state.json\", \"config.json\"):
    assert n in names, n
" &&
	test "$(stat -c %i out/checkpoint-500/pytorch_model.bin)" = \
	     "$(stat -c %i "$dir/pytorch_model.bin")" &&
	test_path_is_file out/checkpoint-500/trainer_state.json &&
	ckpt -C st latest --run out >latest &&
	test_cmp path latest
'

test_expect_success TORCH 'adopt: --run and --step override; a run name is needed' '
	ckpt -C st save --adopt out/checkpoint-500 --run hf --step 7 2>err >/dev/null &&
	test_grep "overrides global_step 500" err &&
	test_path_is_dir st/runs/hf/step-7 &&
	mkdir -p "bad name" && cp -r out/checkpoint-500 "bad name/" &&
	test_expect_code 2 ckpt -C st save --adopt "bad name/checkpoint-500" 2>err &&
	test_grep "give one with --run" err
'

test_expect_success 'adopt without trainer_state.json takes the step from checkpoint-N' '
	mkdir -p o2/checkpoint-30 && echo x >o2/checkpoint-30/w.bin &&
	ckpt -C st save --adopt o2/checkpoint-30 >path &&
	test_grep "/runs/o2/step-30$" path &&
	mkdir -p o3/final && echo x >o3/final/w.bin &&
	test_expect_code 2 ckpt -C st save --adopt o3/final 2>err &&
	test_grep "give --step" err
'

test_expect_success 'git state of a scratch repository is recorded' '
	git init -q repo &&
	(cd repo && git config user.email t@t && git config user.name t &&
	 echo a >f && git add f && git commit -qm one &&
	 git checkout -qb feature) &&
	commit=$(git -C repo rev-parse HEAD) &&
	mkdir -p repo/ck && echo w >repo/ck/w.bin &&
	(cd repo && ckpt -C ../st save --run g --step 1 ck) &&
	manifest_py st/runs/g/step-1 "
g = m[\"git\"]
assert g[\"commit\"] == \"$commit\", g
assert g[\"branch\"] == \"feature\", g
assert g[\"dirty\"] is False, g
" &&
	echo b >>repo/f && mkdir -p repo/ck && echo w >repo/ck/w.bin &&
	(cd repo && ckpt -C ../st save --run g --step 2 ck) &&
	manifest_py st/runs/g/step-2 "assert m[\"git\"][\"dirty\"] is True" &&
	(cd repo && git checkout -q --detach) &&
	mkdir -p repo/ck && echo w >repo/ck/w.bin &&
	(cd repo && ckpt -C ../st save --run g --step 3 ck) &&
	manifest_py st/runs/g/step-3 "assert m[\"git\"][\"branch\"] is None" &&
	mkdir -p nogit/ck && echo w >nogit/ck/w.bin &&
	(cd nogit && GIT_CEILING_DIRECTORIES="$(pwd)/.." \
		ckpt -C ../st save --run g --step 4 ck) &&
	manifest_py st/runs/g/step-4 "assert \"git\" not in m, m.get(\"git\")"
'

test_expect_success 'a --background save records the git state too' '
	mkdir -p repo/ck && echo w >repo/ck/w.bin &&
	commit=$(git -C repo rev-parse HEAD) &&
	(cd repo && ckpt -C ../st save --background --run g --step 5 ck) &&
	for i in $(seq 100); do
		test -f st/runs/g/step-5/ckpt-manifest.json && break
		sleep 0.1
	done &&
	manifest_py st/runs/g/step-5 "
g = m[\"git\"]
assert g[\"commit\"] == \"$commit\", g
assert g[\"toplevel\"].endswith(\"/repo\"), g
"
'

test_expect_success 'GPU models from nvidia-smi, beside the environment file' '
	mkdir -p fakebin &&
	printf "#!/bin/sh\nprintf \"NVIDIA A100-SXM4-80GB\\\\nNVIDIA H100 PCIe\\\\n\"\n" \
		>fakebin/nvidia-smi &&
	chmod +x fakebin/nvidia-smi &&
	echo "torch==1.13.1" >req.txt &&
	mkdir -p ck && echo w >ck/w.bin &&
	PATH="$(pwd)/fakebin:$PATH" ckpt -C st save --run gpu --step 1 \
		--env req.txt ck &&
	manifest_py st/runs/gpu/step-1 "
e = m[\"environment\"]
assert e[\"gpus\"] == [\"NVIDIA A100-SXM4-80GB\", \"NVIDIA H100 PCIe\"], e
assert e[\"file\"][\"file\"] == \"req.txt\", e
" &&
	printf "#!/bin/sh\nexit 9\n" >fakebin/nvidia-smi &&
	mkdir -p ck && echo w >ck/w.bin &&
	PATH="$(pwd)/fakebin:$PATH" ckpt -C st save --run gpu --step 2 ck &&
	manifest_py st/runs/gpu/step-2 "assert \"gpus\" not in m.get(\"environment\", {}), m"
'

test_expect_success 'a YAML config is embedded as JSON' '
	cat >conf.yaml <<-\EOF &&
	model:
	  layers: 12
	  dropout: 0.1
	  act: gelu
	lr: 3.0e-4
	use_amp: true
	resume: null
	"quoted": "12"
	tags: [a, b]
	1: numeric key
	EOF
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run c --step 1 --config conf.yaml ck &&
	manifest_py st/runs/c/step-1 "
c = m[\"config\"]
assert c[\"file\"] == \"conf.yaml\"
assert c[\"content\"] == {\"model\": {\"layers\": 12, \"dropout\": 0.1,
    \"act\": \"gelu\"}, \"lr\": 3.0e-4, \"use_amp\": True, \"resume\": None,
    \"quoted\": \"12\", \"tags\": [\"a\", \"b\"], \"1\": \"numeric key\"}, c
import hashlib
assert c[\"sha256\"] == \"sha256:\" + hashlib.sha256(open(\"conf.yaml\", \"rb\").read()).hexdigest()
"
'

test_expect_success 'a JSON config is embedded as is' '
	echo "{\"lr\": 0.1, \"layers\": [1, 2]}" >conf.json &&
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run c --step 2 --config conf.json ck &&
	manifest_py st/runs/c/step-2 "assert m[\"config\"][\"content\"] == {\"lr\": 0.1, \"layers\": [1, 2]}"
'

test_expect_success 'bad YAML and JSON configs: exit 2 with line and column' '
	printf "a: 1\nb: [1, 2\nc: 3\n" >bad.yaml &&
	mkdir -p ck && echo w >ck/w.bin &&
	test_expect_code 2 ckpt -C st save --run c --step 3 --config bad.yaml ck 2>err &&
	test_grep "bad.yaml: line [0-9]*, column [0-9]*: " err &&
	printf "a: 1\n  b: 2\n" >bad2.yaml &&
	test_expect_code 2 ckpt -C st save --run c --step 3 --config bad2.yaml ck 2>err &&
	test_grep "bad2.yaml: line 2, column" err &&
	printf "a: &x 1\nb: *x\n" >alias.yaml &&
	test_expect_code 2 ckpt -C st save --run c --step 3 --config alias.yaml ck 2>err &&
	test_grep "not supported" err &&
	printf "{\"a\": 1,\n \"a\": 2}\n" >dup.json &&
	test_expect_code 2 ckpt -C st save --run c --step 3 --config dup.json ck 2>err &&
	test_grep "dup.json: line 2" err &&
	test_path_is_missing st/runs/c/step-3 &&
	test_path_is_file ck/w.bin
'

test_expect_success 'data fingerprint: stable when moved, changes with content' '
	mkdir -p d1/train && echo one >d1/train/a.txt && echo two >d1/train/b.txt &&
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run d --step 1 --data d1/train --data-version v7 ck &&
	mkdir -p elsewhere && cp -r d1/train elsewhere/ &&
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run d --step 2 --data elsewhere/train/ ck &&
	echo changed >elsewhere/train/b.txt &&
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run d --step 3 --data elsewhere/train ck &&
	"$PYTHON" -c "
import json
d = [json.load(open(\"st/runs/d/step-%d/ckpt-manifest.json\" % i))[\"data\"] for i in (1, 2, 3)]
assert d[0][\"files\"] == 2 and d[0][\"size\"] == 8, d[0]
assert d[0][\"version\"] == \"v7\"
assert d[0][\"digest\"] == d[1][\"digest\"], d
assert d[2][\"digest\"] != d[1][\"digest\"], d
assert d[0][\"digest\"].startswith(\"sha256:\")
" &&
	mkdir -p ck && echo w >ck/w.bin &&
	test_expect_code 2 ckpt -C st save --run d --step 4 --data nosuch ck 2>err &&
	test_grep "nosuch" err
'

test_expect_success 'environment file, tags, note, epoch, NaN metric' '
	printf "torch==1.13.1\nnumpy==1.24\n" >requirements.txt &&
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run e --step 1 --env requirements.txt --tag a \
		--tag b --note "first try" --epoch 2.5 --metric loss=nan \
		--metric acc=0.75 ck &&
	manifest_py st/runs/e/step-1 "
e = m[\"environment\"][\"file\"]
assert e[\"file\"] == \"requirements.txt\"
assert e[\"content\"].startswith(\"torch==1.13.1\")
assert e[\"sha256\"].startswith(\"sha256:\")
assert m[\"tags\"] == [\"a\", \"b\"] and m[\"note\"] == \"first try\"
assert m[\"epoch\"] == 2.5
assert m[\"metrics\"] == {\"loss\": None, \"acc\": 0.75}
assert m[\"user\"] and m[\"host\"]
"
'

test_expect_success '--resumed-from records the run, step and manifest digest' '
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run e --step 2 --resumed-from e@1 ck &&
	want=$(sha256sum st/runs/e/step-1/ckpt-manifest.json | cut -d" " -f1) &&
	manifest_py st/runs/e/step-2 "
r = m[\"resumed_from\"]
assert r == {\"ref\": \"e@1\", \"run\": \"e\", \"step\": 1,
             \"manifest\": \"sha256:$want\"}, r
" &&
	mkdir -p ck && echo w >ck/w.bin &&
	test_expect_code 3 ckpt -C st save --run e --step 3 --resumed-from e@99 ck 2>err &&
	test_grep "no committed checkpoint e@99" err
'

test_expect_success 'every reference form resolves (through --resumed-from)' '
	for s in 1 2 3; do
		mkdir -p ck && echo $s >ck/w.bin &&
		ckpt -C st save --run ref --step $s --metric loss=0.$((4 - s)) \
			--metric acc=0.$s ck || exit 1
	done &&
	ckpt -C st promote -q ref@2 --model mod --alias production &&
	for r in ref@2:2 ref@latest:3 mod@v1:2 mod@production:2; do
		mkdir -p ck && echo w >ck/w.bin &&
		ckpt -C st save --run from --step 1 --force \
			--resumed-from ${r%:*} ck >/dev/null || exit 1
		manifest_py st/runs/from/step-1 \
			"assert m[\"resumed_from\"][\"step\"] == ${r#*:}, m[\"resumed_from\"]" ||
			exit 1
	done &&
	ckpt -C st ls --run ref >lsout &&
	test_grep "^ref  *2 .*registry" lsout
'

test_expect_success 'RUN@best takes the metric and mode of the policy' '
	cat >st/ckpt.yaml <<-\EOF &&
	default:
	  keep_last: 1
	  metric: acc
	  mode: max
	EOF
	mkdir -p ck && echo w >ck/w.bin &&
	ckpt -C st save --run from --step 2 --resumed-from ref@best ck &&
	manifest_py st/runs/from/step-2 "assert m[\"resumed_from\"][\"step\"] == 3"
'

# keep_last 1 keeps step 4; step 3 stays as the best by acc (ckpt-prune(1)).
test_expect_success 'save --prune applies the policy after the commit' '
	for s in 1 2 3; do
		mkdir -p ck && echo $s >ck/w.bin &&
		ckpt -C st save --run pr --step $s --metric acc=0.$s ck ||
			exit 1
	done &&
	ckpt -C st ls --run pr --json >before &&
	test "$(grep -c "\"step\": " before)" = 3 &&
	mkdir -p ck && echo 4 >ck/w.bin &&
	ckpt -C st save --run pr --step 4 --prune ck 2>err &&
	test_grep "pruned 2 checkpoints of run pr" err &&
	ckpt -C st ls --run pr --json >after &&
	# the newest, and the best by the metric of the policy (acc, max)
	test "$(grep -c "\"path\": .*/runs/pr/step-" after)" = 2 &&
	test_grep "/runs/pr/step-4\"" after &&
	test_grep "/runs/pr/step-3\"" after
'

test_expect_success 'a prune that is refused does not undo the commit' '
	echo "default: {}" >st/ckpt.yaml &&
	mkdir -p ck && echo 5 >ck/w.bin &&
	ckpt -C st save --run pr --step 5 --prune ck 2>err &&
	test_grep "not pruned" err &&
	test_path_is_dir st/runs/pr/step-5
'

test_expect_success TORCH 'an adopted file edited in place: verify names the hard link as the cause' '
	rm -rf hl && cp -r "$FIXTURES_DIR/store/out" hl &&
	ckpt -C st save --adopt hl/checkpoint-500 --run hl >/dev/null 2>&1 &&
	ckpt-test-tool flip hl/checkpoint-500/pytorch_model.bin 700 &&
	test_expect_code 1 ckpt -C st verify hl@500 >vout 2>verr &&
	test_grep "pytorch_model.bin: FAILED" vout &&
	test_grep "pytorch_model.bin: the file has 2 hard links and its content changed" verr &&
	ckpt -C st save --copy --run cp --step 1 --force hl/checkpoint-500 >/dev/null 2>&1 &&
	ckpt-test-tool flip st/runs/cp/step-1/pytorch_model.bin 700 &&
	test_expect_code 1 ckpt -C st verify cp@1 >vout 2>verr &&
	! test_grep "hard links" verr
'

test_done
