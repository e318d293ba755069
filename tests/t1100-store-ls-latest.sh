#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='store: init, ls, latest, store discovery, exit codes'
. "$(dirname "$0")/lib.sh"

SQ="'"

json_eval() {
	"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

test_expect_success 'init creates a store with a commented policy' '
	ckpt init st >out &&
	test_grep "Initialized empty ckpt store in .*/st$" out &&
	test_path_is_file st/.ckpt/store.json &&
	test_path_is_dir st/runs &&
	test_grep "^# *keep_last" st/ckpt.yaml &&
	! grep -v "^#" st/ckpt.yaml | grep -q . &&
	ckpt init st >out &&
	test_grep "Existing ckpt store" out
'

test_expect_success 'init refuses a non-empty directory that is no store' '
	mkdir busy && echo x >busy/file &&
	test_expect_code 2 ckpt init busy 2>err &&
	test_grep "not empty" err &&
	test_path_is_missing busy/.ckpt
'

test_expect_success 'init --json' '
	ckpt init --json st2 >out &&
	test_grep "\"created\": true" out &&
	test_grep "\"schema\": 1" out
'

test_expect_success 'ls outside any store exits 2' '
	mkdir -p nostore && (cd nostore && test_expect_code 2 ckpt ls 2>err) &&
	test_grep "not in a ckpt store" nostore/err
'

test_expect_success 'setup a store with runs' '
	mkstore s a@10:loss=0.5,acc=0.9 a@20:loss=0.3 a@3:loss=0.4 b@5 &&
	mkdir -p s/runs/a/.tmp-step-40.99999.x s/runs/a/step-50
'

test_expect_success 'ls lists committed checkpoints by run and numeric step' '
	ckpt -C s ls >out &&
	cat >expect <<-\EOF &&
	RUN  STEP  CREATED               SIZE  METRICS           TAGS  FLAGS
	a       3  2026-01-01 00:00:00Z  32 B  loss=0.4
	a      10  2026-01-01 00:00:00Z  40 B  acc=0.9 loss=0.5
	a      20  2026-01-01 00:00:00Z  40 B  loss=0.3
	b       5  2026-01-01 00:00:00Z  32 B
	EOF
	head -5 out >actual &&
	test_cmp expect actual &&
	! grep " $" out &&
	test_grep "abandoned .*/runs/a/.tmp-step-40" out &&
	test_grep "incomplete .*/runs/a/step-50" out
'

test_expect_success 'the store is found from a subdirectory and CKPT_STORE' '
	(cd s/runs/a && ckpt ls --run b) >out &&
	test_grep "^b " out &&
	CKPT_STORE=s ckpt ls --run b >out2 &&
	test_cmp out out2
'

test_expect_success 'ls --sort METRIC and --where' '
	ckpt -C s ls --sort loss --where "loss<0.45" >out &&
	awk "NR>1 && NR<4 {print \$1, \$2}" out >actual &&
	printf "a 20\na 3\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'ls --json' '
	ckpt -C s ls --json --run b >out &&
	test_grep "\"schema\": 1" out &&
	test_grep "\"step\": 5" out &&
	test_grep "\"size\": 32" out &&
	! test_grep "\"run\": \"a\"" out 2>/dev/null
'

test_expect_success 'ls rejects bad run names and bad --where' '
	test_expect_code 2 ckpt -C s ls --run ../x 2>err &&
	test_grep "run name" err &&
	test_expect_code 2 ckpt -C s ls --where "loss~1" 2>err &&
	test_expect_code 2 ckpt -C s ls --where "loss<abc" 2>err &&
	test_grep "not a number" err
'

test_expect_success 'latest prints the highest step, not the newest file' '
	touch -d "2030-01-01" s/runs/a/step-3 &&
	ckpt -C s latest --run a >out &&
	echo "$(cd s && pwd -P)/runs/a/step-20" >expect &&
	test_cmp expect out
'

test_expect_success 'latest: nothing to resume is 0 and no output; bad use is 2' '
	ckpt -C s latest --run nosuch >out 2>err &&
	test ! -s out &&
	test_grep "run ${SQ}nosuch${SQ} has no checkpoint yet" err &&
	ckpt -C s --json latest --run nosuch >out.json &&
	test "$(json_eval out.json "(d[\"path\"], d[\"checkpoints\"])")" = "(None, 0)" &&
	test_expect_code 2 ckpt -C s latest 2>err &&
	test_expect_code 2 ckpt -C s latest --run "a b" 2>err &&
	test_grep "run name" err
'

test_expect_success 'latest --verified falls back past a damaged checkpoint' '
	ckpt-test-tool flip s/runs/a/step-20/weights.bin 3 &&
	ckpt -C s latest --run a --verified >out 2>err &&
	echo "$(cd s && pwd -P)/runs/a/step-10" >expect &&
	test_cmp expect out &&
	test_grep "a@20 does not verify" err &&
	ckpt -C s latest --run a --verified --json >out &&
	test_grep "\"skipped\": 1" out
'

test_expect_success 'latest --verified exits 1 when nothing verifies' '
	ckpt-test-tool truncate s/runs/b/step-5/weights.bin 3 &&
	test_expect_code 1 ckpt -C s latest --run b --verified 2>err &&
	test_grep "run ${SQ}b${SQ} has 1 checkpoint but none is usable (none verifies)" err
'

test_expect_success 'unknown names are errors with a hint; an empty answer is 0 and says so' '
	test_expect_code 2 ckpt -C s ls --run aa 2>err &&
	test_grep "no run named ${SQ}aa${SQ}" err &&
	test_grep "did you mean ${SQ}a${SQ}" err &&
	test_expect_code 2 ckpt -C s ls --sort los 2>err &&
	test_grep "did you mean ${SQ}loss${SQ}" err &&
	test_expect_code 2 ckpt -C s ls --sort metric 2>err &&
	test_grep "${SQ}step${SQ} or one of: acc, loss" err &&
	test_expect_code 2 ckpt -C s ls --where "nosuch<1" 2>err &&
	test_grep "no metric named ${SQ}nosuch${SQ}" err &&
	test_expect_code 2 ckpt -C s prune --run bb --keep-last 1 2>err &&
	test_grep "did you mean ${SQ}b${SQ}" err &&
	ckpt -C s ls --where "loss<0" >out 2>err &&
	! grep "^a  *[0-9]" out &&
	test_grep "no checkpoint matches --where" err &&
	ckpt -C s ls --run b --where "loss<1" >out 2>err &&
	test ! -s out &&
	test_grep "no checkpoint of run b matches --where" err
'

test_expect_success '--json times are ISO 8601 strings, the saves too' '
	ckpt -C s ls --json >out.json &&
	"$PYTHON" - <<-\PY
	import json, re
	d = json.load(open("out.json"))
	iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
	for c in d["checkpoints"]:
	    assert c["created"] is None or iso.match(c["created"]), c["created"]
	assert d["saves"], d
	for s in d["saves"]:
	    for k in ("started", "updated"):
	        assert s[k] is None or iso.match(s[k]), (k, s[k])
	assert any(s["updated"] for s in d["saves"]), d["saves"]
	PY
'

test_expect_success 'ls --json writes odd values in the sorted, indented layout, the same with the cache' '
	ckpt init odd >/dev/null &&
	mkstore odd a@1:loss=1,acc=0.5 a@2:loss=0.25 a@10:zeta=3,alpha=1e-300 \
	    b@0:loss=2 &&
	"$PYTHON" - <<-\PY &&
	import json
	p = "odd/runs/a/step-2/ckpt-summary.json"
	d = json.load(open(p))
	d["note"] = "say \"hi\"\n\ttab \u0001 \u00fcn\u00ef / \\ end"
	d["tags"] = ["t1", "\u00fc,x", "q\""]
	d["epoch"] = 2.5
	d["metrics"] = {"z": None, "b": 1.0000000000000002, "a": 1e21, "m": -0.0}
	d["scope"] = "weights-only"
	json.dump(d, open(p, "w"))
	p = "odd/runs/b/step-0/ckpt-summary.json"
	d = json.load(open(p))
	d["validation"] = {"result": "from-a-newer-ckpt"}
	d["epoch"] = 3
	json.dump(d, open(p, "w"))
	PY
	printf "{\"load_test\": {\"result\": \"failed\"}, \"schema\": 1}\n" \
	    >odd/runs/a/step-10/ckpt-status.json &&
	ckpt -C odd pin a@1 >/dev/null &&
	rm -rf "$HOME/.cache/ckpt" &&
	ckpt -C odd ls --json >cold.json &&
	ckpt -C odd ls --json >warm.json &&
	test_cmp cold.json warm.json &&
	"$PYTHON" -c "import json, sys
d = json.load(open(sys.argv[1]))
sys.stdout.write(json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + \"\\n\")" \
	    cold.json >expect &&
	test_cmp expect cold.json &&
	"$PYTHON" - <<-\PY
	import json
	d = json.load(open("cold.json"))
	c = {(x["run"], x["step"]): x for x in d["checkpoints"]}
	assert [k for k in c] == [("a", 1), ("a", 2), ("a", 10), ("b", 0)], c
	a2 = c[("a", 2)]
	assert a2["note"] == "say \"hi\"\n\ttab \u0001 \u00fcn\u00ef / \\ end"
	assert a2["tags"] == ["t1", "\u00fc,x", "q\""], a2["tags"]
	assert a2["metrics"] == {"z": None, "b": 1.0000000000000002, "a": 1e21,
	                         "m": -0.0}, a2["metrics"]
	assert a2["epoch"] == 2.5 and a2["scope"] == "weights-only"
	assert "note" not in c[("a", 1)] and c[("a", 1)]["pinned"]
	assert c[("a", 10)]["failed"] and c[("a", 10)]["load_test"] == "failed"
	assert c[("b", 0)]["validation"] == "from-a-newer-ckpt"
	assert d["runs"] == {"a": {"checkpoints": 3, "size": 104},
	                     "b": {"checkpoints": 1, "size": 32}}, d["runs"]
	PY
'

test_expect_success 'remote stores without credentials, of other kinds, or for other commands: exit 2, nothing written' '
	noaws="env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY
		AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent" &&
	test_expect_code 2 $noaws ckpt -C s3://bucket/prefix ls 2>err &&
	test_grep "no S3 credentials" err &&
	test_expect_code 2 $noaws ckpt init s3://bucket/prefix 2>err &&
	test_grep "no S3 credentials" err &&
	test_expect_code 2 $noaws env CKPT_STORE=s3://bucket ckpt prune --all 2>err &&
	test_grep "no S3 credentials" err &&
	test_expect_code 2 $noaws ckpt -C s3://bucket/prefix diff r@1 r@2 2>err &&
	test_grep "no S3 credentials" err &&
	test_expect_code 2 ckpt init gs://bucket/prefix 2>err &&
	test_grep "a directory or s3://BUCKET/PREFIX" err &&
	test_path_is_missing s3: &&
	test_path_is_missing gs:
'

test_done
