#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='prune: the plan (dry-run tables, --json), every rule, invariants, refusals, ckpt.yaml'
. "$(dirname "$0")/lib.sh"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

# The table without the trailing blanks of empty REASONS cells.
plan() {
	ckpt -C s prune --dry-run "$@" >out.raw &&
	sed "s/ *\$//" out.raw
}

# Kept steps of run $1 in a --json document on stdin: "1000 500 ...".
json_kept() {
	"$PYTHON" -c '
import json, sys
doc = json.load(sys.stdin)
assert doc["schema"] == 1
for r in doc["runs"]:
    if r["run"] == sys.argv[1]:
        print(" ".join(str(k["step"]) for k in r["keep"]))
' "$1"
}

test_expect_success 'setup: run a (steps 100..1000, days apart) and a stale run b' '
	mkstore s \
		--time 2026-11-20T08:00:00Z a@100:loss=0.5 \
		--time 2026-11-20T20:00:00Z a@200:loss=0.3 \
		--time 2026-11-21T08:00:00Z a@300:loss=0.3 \
		--time 2026-11-22T08:00:00Z a@400:loss=nan \
		--time 2026-11-23T08:00:00Z a@500 \
		--time 2026-11-24T08:00:00Z a@1000:loss=0.9 \
		--time 2026-01-01T00:00:00Z b@5000 \
		--time 2026-01-02T00:00:00Z b@6000 &&
	(cd s && find runs .ckpt | sort) >before
'

test_expect_success 'dry-run table: keep-last with keep-best, ties, NaN, missing' '
	plan --run a --keep-last 2 --keep-best 1 --metric loss >actual &&
	cat >expect <<-\EOF &&
	run a: keep 2 last, 1 best by loss (min)
	RUN  STEP  TIME                  SIZE  loss  ACTION  REASONS
	a     100  2026-11-20 08:00:00Z  48 B   0.5  remove
	a     200  2026-11-20 20:00:00Z  48 B   0.3  remove
	a     300  2026-11-21 08:00:00Z  48 B   0.3  keep    best loss=0.3 (1/1)
	a     400  2026-11-22 08:00:00Z  48 B     -  keep    no-metric loss
	a     500  2026-11-23 08:00:00Z  48 B     -  keep    last, no-metric loss
	a    1000  2026-11-24 08:00:00Z  56 B   0.9  keep    newest, last

	would remove 2 of 6 checkpoints (96 B) in 1 run
	EOF
	test_cmp expect actual
'

test_expect_success 'a dry run changes nothing and takes no lock' '
	(cd s && find runs .ckpt | sort) >after &&
	test_cmp before after
'

test_expect_success '--missing drop and --mode max' '
	plan --run a --keep-best 1 --metric loss --missing drop >actual &&
	test_grep "^a     300 .* keep    best loss=0.3 (1/1)$" actual &&
	test_grep "^a     400 .* remove$" actual &&
	test_grep "^a     500 .* remove$" actual &&
	plan --run a --keep-best 2 --metric loss --mode max >actual &&
	test_grep "^a    1000 .* keep    newest, best loss=0.9 (1/2)$" actual &&
	test_grep "^a     100 .* keep    best loss=0.5 (2/2)$" actual &&
	test_grep "^a     300 .* remove$" actual
'

test_expect_success 'calendar buckets across runs: the stale run b is its own group' '
	plan --all --keep-last 1 --keep-daily 2 >actual &&
	cat >expect <<-\EOF &&
	run a: keep 1 last, 2 daily
	RUN  STEP  TIME                  SIZE  ACTION  REASONS
	a     100  2026-11-20 08:00:00Z  48 B  remove
	a     200  2026-11-20 20:00:00Z  48 B  remove
	a     300  2026-11-21 08:00:00Z  48 B  remove
	a     400  2026-11-22 08:00:00Z  48 B  remove
	a     500  2026-11-23 08:00:00Z  48 B  keep    daily 2026-11-23
	a    1000  2026-11-24 08:00:00Z  56 B  keep    newest, last, daily 2026-11-24

	run b: keep 1 last, 2 daily
	RUN  STEP  TIME                  SIZE  ACTION  REASONS
	b    5000  2026-01-01 00:00:00Z  56 B  keep    daily 2026-01-01
	b    6000  2026-01-02 00:00:00Z  56 B  keep    newest, last, daily 2026-01-02

	would remove 4 of 8 checkpoints (192 B) in 2 runs
	EOF
	test_cmp expect actual
'

test_expect_success 'daily keeps the newest of a day; weekly/monthly/yearly; oldest rule' '
	plan --run a --keep-daily 10 >actual &&
	test_grep "^a     200 .* keep    daily 2026-11-20$" actual &&
	test_grep "^a     100 .* keep    oldest daily 2026-11-20$" actual &&
	plan --run a --keep-daily 3 >actual &&
	test_grep "^a     100 .* remove$" actual &&
	test_grep "^a     400 .* keep    daily 2026-11-22$" actual &&
	test_grep "^a     300 .* remove$" actual &&
	plan --run a --keep-weekly 1 --keep-monthly 1 --keep-yearly 1 >actual &&
	test_grep "^a    1000 .* keep    newest, weekly 2026-W48, monthly 2026-11, yearly 2026$" actual &&
	test $(grep -c "  keep  " actual) = 1 &&
	plan --run a --keep-hourly 2 >actual &&
	test_grep "^a     500 .* keep    hourly 2026-11-23 08h$" actual
'

test_expect_success 'keep-every and keep-within (relative to the newest, not now)' '
	plan --run a --keep-every 200 >actual &&
	test_grep "^a     200 .* keep    every 200$" actual &&
	test_grep "^a     400 .* keep    every 200$" actual &&
	test_grep "^a    1000 .* keep    newest, every 200$" actual &&
	test_grep "^a     300 .* remove$" actual &&
	plan --run a --keep-within 1d12h >actual &&
	test_grep "^a     500 .* keep    within 1d12h$" actual &&
	test_grep "^a     400 .* remove$" actual &&
	plan --run a --keep-within 2d >actual &&
	test_grep "^a     400 .* remove$" actual &&
	plan --run a --keep-within 2d1s >actual &&
	test_grep "^a     400 .* keep    within 2d1s$" actual
'

test_expect_success 'max-size: a cap after the rules, oldest first, with and without rules' '
	plan --run a --keep-last 4 --max-size 110 >actual &&
	test_grep "^a     300 .* remove  max-size$" actual &&
	test_grep "^a     400 .* remove  max-size$" actual &&
	test_grep "^a     500 .* keep    last$" actual &&
	test_grep "^a    1000 .* keep    newest, last$" actual &&
	plan --run a --max-size 199 >actual &&
	test_grep "^a     400 .* keep    max-size$" actual &&
	test_grep "^a     300 .* remove  max-size$" actual &&
	test $(grep -c "  keep  " actual) = 3
'

test_expect_success 'max-size below what must be kept: kept, with a warning' '
	ckpt -C s prune --dry-run --run a --max-size 10 >actual 2>err &&
	test_grep "^a    1000 .* keep    newest$" actual &&
	test_grep "run a: the checkpoints that must be kept exceed max_size by 46 B" err
'

test_expect_success 'pinned and registry checkpoints are kept whatever the policy' '
	ckpt -C s pin a@100 &&
	mkdir -p s/registry/m &&
	echo "{\"schema\":1,\"model\":\"m\",\"version\":1,\"run\":\"a\",\"step\":200}" \
		>s/registry/m/v1.json &&
	plan --run a --keep-last 1 >actual &&
	test_grep "^a     100 .* keep    pinned$" actual &&
	test_grep "^a     200 .* keep    registry$" actual &&
	test_grep "^a     300 .* remove$" actual &&
	ckpt -C s unpin a@100 &&
	rm -r s/registry &&
	plan --run a --keep-last 1 >actual &&
	test_grep "^a     100 .* remove$" actual
'

test_expect_success '--json: the plan as one document' '
	ckpt -C s prune --dry-run --json --all --keep-last 2 --keep-best 1 \
		--metric loss >out.json &&
	json_kept a <out.json >actual &&
	echo "300 400 500 1000" >expect &&
	test_cmp expect actual &&
	json_kept b <out.json >actual &&
	echo "5000 6000" >expect &&
	test_cmp expect actual &&
	"$PYTHON" -c "
import json, sys
doc = json.load(open(\"out.json\"))
assert doc[\"dry_run\"] is True
a = doc[\"runs\"][0]
assert a[\"run\"] == \"a\" and a[\"metric\"] == \"loss\", a
assert [r[\"step\"] for r in a[\"remove\"]] == [100, 200], a[\"remove\"]
assert all(r[\"removed\"] is False for r in a[\"remove\"])
k = {e[\"step\"]: e for e in a[\"keep\"]}
assert k[1000][\"reasons\"] == [\"newest\", \"last\"], k[1000]
assert k[300][\"reasons\"] == [\"best loss=0.3 (1/1)\"]
assert k[400][\"value\"] is None and k[300][\"value\"] == 0.3
assert k[1000][\"size\"] == 56 and k[1000][\"created\"] == \"2026-11-24T08:00:00Z\"
assert k[1000][\"path\"].endswith(\"/runs/a/step-1000\")
assert a[\"removed_bytes\"] == 96
"
'

test_expect_success 'refusals exit 2 and print nothing on stdout' '
	test_expect_code 2 ckpt -C s prune --run a --dry-run >out 2>err &&
	test_grep "no retention policy for run .a." err &&
	test ! -s out &&
	test_expect_code 2 ckpt -C s prune --run a --keep-last 0 >out 2>err &&
	test_grep "refusing a policy that keeps nothing in run .a." err &&
	test ! -s out &&
	test_expect_code 2 ckpt -C s prune --all --keep-every 3000 >out 2>err &&
	test_grep "keeps no checkpoint of run .a." err &&
	test ! -s out &&
	test_expect_code 2 ckpt -C s prune --run a --keep-best 2 --metric acc \
		--missing drop 2>err &&
	test_grep "keeps no checkpoint of run .a." err &&
	test_expect_code 2 ckpt -C s prune --run a --keep-best 2 2>err &&
	test_grep "keep_best needs a metric" err &&
	(cd s && find runs .ckpt | sort) >after &&
	test_cmp before after
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 ckpt -C s prune --keep-last 1 2>err &&
	test_grep "give --run RUN or --all" err &&
	test_expect_code 2 ckpt -C s prune --run a --all --keep-last 1 2>err &&
	test_expect_code 2 ckpt -C s prune --run a --keep-last x 2>err &&
	test_grep "not a count" err &&
	test_expect_code 2 ckpt -C s prune --run a --keep-within 3y 2>err &&
	test_grep "bad duration" err &&
	test_expect_code 2 ckpt -C s prune --run a --max-size lots 2>err &&
	test_expect_code 2 ckpt -C s prune --run a --mode median 2>err &&
	test_expect_code 2 ckpt -C s prune --run nosuch --keep-last 1 2>err &&
	test_grep "no run .nosuch. in the store" err &&
	test_expect_code 2 ckpt -C s prune --run "../x" --keep-last 1 2>err
'

test_expect_success 'the policy comes from ckpt.yaml, per-run overrides by glob' '
	cat >s/ckpt.yaml <<-\EOF &&
	default:
	  keep_last: 1
	  metric: loss
	runs:
	  "b*":
	    keep_last: 2
	  a:
	    keep_best: 1
	EOF
	plan --all >actual &&
	test_grep "^run a: keep 1 last, 1 best by loss (min)$" actual &&
	test_grep "^run b: keep 2 last$" actual &&
	test_grep "^a     300 .* keep    best loss=0.3 (1/1)$" actual &&
	test_grep "^b    5000 .* keep    last$" actual
'

test_expect_success '--json is the sorted, indented document, written as it goes' '
	ckpt -C s prune --dry-run --all --keep-last 2 --keep-best 1 \
	    --metric loss --keep-daily 2 --json >out.json &&
	"$PYTHON" -c "import json, sys
d = json.load(open(sys.argv[1]))
assert len(d[\"runs\"]) >= 2 and d[\"dry_run\"] is True, d
assert any(r[\"remove\"] for r in d[\"runs\"]), d
sys.stdout.write(json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + \"\\n\")" \
	    out.json >expect.json &&
	test_cmp expect.json out.json
'

test_expect_success 'rule flags replace the file policy; --metric/--mode/--missing adjust it' '
	plan --run a --keep-every 500 >actual &&
	test_grep "^run a: keep every 500 steps$" actual &&
	plan --run a --mode max >actual &&
	test_grep "^run a: keep 1 last, 1 best by loss (max)$" actual &&
	test_grep "^a    1000 .* keep    newest, last, best loss=0.9 (1/1)$" actual &&
	plan --run a --missing drop >actual &&
	test_grep "^a     400 .* remove$" actual
'

test_expect_success 'a broken ckpt.yaml: exit 3 with file, line and column' '
	printf "default:\n  keep_lst: 3\n" >s/ckpt.yaml &&
	test_expect_code 3 ckpt -C s prune --run a --dry-run >out 2>err &&
	test ! -s out &&
	test_grep "ckpt.yaml: line 2, column 3: unknown key .keep_lst. in default (did you mean .keep_last.?)" err &&
	printf "default: [\n" >s/ckpt.yaml &&
	test_expect_code 3 ckpt -C s prune --run a --dry-run 2>err &&
	test_grep "ckpt.yaml: line 2, column 1" err
'

test_expect_success 'the example of ckpt-policy(5) is valid' '
	sed -n "/^version: 1$/,/^\.Ed$/p" "$SRC_DIRECTORY/man/ckpt-policy.5" |
		sed "/^\.Ed$/d; s/^\\\\&//" >s/ckpt.yaml &&
	test_grep "sweep-" s/ckpt.yaml &&
	plan --all >actual &&
	test_grep "^run a: keep 3 last, 2 best by val_loss (min), 7 daily, 8 weekly; max size 2T$" actual
'

# A run of 3,000 (ckpt-test-tool mkstore: loss 1/(step+1), one time for
# all): the engine takes the run as listed, by ascending step, without a
# sort or a copy (policy.c sort_items); the plan is still every rule's.
test_expect_success 'a run of 3,000: keep-last, keep-best and keep-every at scale' '
	ckpt-test-tool mkstore big r 0 3000 &&
	ckpt -C big prune --dry-run --json --run r --keep-last 5 --keep-best 3 \
		--metric loss --keep-every 500 --keep-daily 2 >big.json &&
	"$PYTHON" - <<-\EOF
	import json
	r = json.load(open("big.json"))["runs"][0]
	keep = {k["step"]: k["reasons"] for k in r["keep"]}
	want = set(range(2995, 3000)) | set(range(0, 3000, 500))
	assert set(keep) == want, sorted(keep)
	assert [x["step"] for x in r["remove"]] == sorted(set(range(3000)) - want)
	assert keep[2999][:3] == ["newest", "last", "best loss=0.000333333 (1/3)"], keep[2999]
	assert keep[2997] == ["last", "best loss=0.000333556 (3/3)"], keep[2997]
	assert "daily 2026-01-01" in keep[2999], keep[2999]
	assert keep[0] == ["every 500", "oldest daily 2026-01-01"], keep[0]
	EOF
'

test_done
