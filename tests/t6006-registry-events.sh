#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='ckpt log shows pins, unpins, prunes and save --force from
the hash-chained history; an event that cannot be recorded is not done'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
# the shim comes before the ASan runtime in the sanitizer build
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

# the history unwritable: every rename onto it fails with EIO
no_history() {
	env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=rename \
		CKPT_FAULT_PATH="*/registry/.history.jsonl" CKPT_FAULT_NTH=all \
		"$@"
}

test_expect_success 'setup' '
	mkstore s r@1:loss=3 r@2:loss=2 r@3:loss=1 r@4:loss=1 q@7:loss=1 &&
	ckpt -C s promote -q r@1 --model m &&
	mkdir src && echo replacement >src/w.bin
'

test_expect_success 'pin, unpin, prune and save --force are logged, newest first' '
	ckpt -C s pin r@2 --note "keep for eval" &&
	ckpt -C s pin r@2 &&
	ckpt -C s unpin r@2 &&
	ckpt -C s prune --run r --keep-last 1 -q &&
	ckpt -C s save -q --run r --step 4 --copy src --force >/dev/null &&
	ckpt -C s log >out &&
	sed -n "2,\$p" out | awk "{ print \$1, \$4, \$5 }" >actual &&
	cat >expect <<-\EOF &&
	5 - save
	4 - prune:
	3 - unpin
	2 - pin
	1 m promote
	EOF
	test_cmp expect actual &&
	test_grep "prune: r@2, r@3 *$" out &&
	test_grep "^2 .* pin  *r@2  *keep for eval$" out
'

test_expect_success 'the records carry what was removed and what replaced what' '
	ckpt -C s --json log >log.json &&
	"$PYTHON" - <<-\EOF
	import json, hashlib
	recs = json.load(open("log.json"))["records"]
	sf, pr, un, pi = recs[0], recs[1], recs[2], recs[3]
	assert "model" not in sf and "model" not in pr
	new = open("s/runs/r/step-4/ckpt-manifest.json", "rb").read()
	assert sf["action"] == "save-force" and sf["run"] == "r", sf
	assert sf["step"] == 4, sf
	assert sf["manifest"] == "sha256:" + hashlib.sha256(new).hexdigest()
	assert sf["replaced"].startswith("sha256:") and \
	    sf["replaced"] != sf["manifest"], sf
	assert pr["action"] == "prune", pr
	assert [(x["run"], x["step"]) for x in pr["removed"]] == \
	    [("r", 2), ("r", 3)], pr
	assert all(x["size"] == 32 for x in pr["removed"]), pr
	assert (un["action"], un["run"], un["step"]) == ("unpin", "r", 2)
	assert (pi["action"], pi["note"]) == ("pin", "keep for eval"), pi
	assert all(r["user"] and r["host"] and r["time"] for r in recs)
	for a, b in zip(recs, recs[1:]):
	    assert a["prev"] == b["digest"], (a, b)
	EOF
'

test_expect_success 'log --run selects one run; --model leaves run events out' '
	ckpt -C s pin q@7 &&
	ckpt -C s log --run q >out &&
	test "$(wc -l <out)" = 2 &&
	test_grep "pin  *q@7" out &&
	ckpt -C s log --model m >out &&
	test "$(wc -l <out)" = 2 &&
	test_grep "promote v1" out &&
	test_expect_code 2 ckpt -C s log --run q --model m 2>err
'

test_expect_success 'log --verify checks the chain through the run events' '
	ckpt -C s log --verify 2>err &&
	test_grep "registry verified: 6 records" err &&
	cp s/registry/.history.jsonl good &&
	sed "2s/\"step\":2/\"step\":3/" good >s/registry/.history.jsonl &&
	test_expect_code 1 ckpt -C s log --verify 2>err &&
	test_grep "record 3 does not chain" err &&
	test_expect_code 3 ckpt -C s log 2>err &&
	cp good s/registry/.history.jsonl &&
	ckpt -C s log >/dev/null
'

test_expect_success 'a pin the history cannot record is not made' '
	test_expect_code 3 no_history ckpt -C s pin r@4 2>err &&
	test_grep "history.jsonl" err &&
	test_path_is_missing s/.ckpt/pins/r@4 &&
	test_cmp good s/registry/.history.jsonl
'

test_expect_success 'an unpin the history cannot record leaves the pin' '
	test_expect_code 3 no_history ckpt -C s unpin q@7 2>err &&
	test_path_is_file s/.ckpt/pins/q@7 &&
	test_cmp good s/registry/.history.jsonl
'

test_expect_success 'save --force is refused when the history cannot record it' '
	cp s/runs/r/step-4/ckpt-manifest.json before &&
	echo other >src/w.bin &&
	test_expect_code 3 no_history ckpt -C s save -q --run r --step 4 \
		--copy src --force 2>err &&
	test_cmp before s/runs/r/step-4/ckpt-manifest.json &&
	test_cmp good s/registry/.history.jsonl
'

test_expect_success 'a prune the history cannot record is done, with a warning' '
	mkstore s p@1:loss=1 p@2:loss=1 &&
	no_history ckpt -C s prune --run p --keep-last 1 >out 2>err &&
	test_grep "warning: the removals are not recorded in the registry history" err &&
	test_path_is_missing s/runs/p/step-1 &&
	test_cmp good s/registry/.history.jsonl
'

test_expect_success 'a dry run and a prune removing nothing record nothing' '
	ckpt -C s prune --run r --keep-last 1 --dry-run >/dev/null &&
	ckpt -C s prune --run r --keep-last 5 >/dev/null &&
	test_cmp good s/registry/.history.jsonl
'

test_expect_success 'a run event naming a model does not replay' '
	cp good h &&
	"$PYTHON" - <<-\EOF &&
	import json, hashlib
	lines = open("h").read().splitlines()
	last = hashlib.sha256(lines[-1].encode()).hexdigest()
	rec = {"schema": 1, "seq": len(lines) + 1, "prev": "sha256:" + last,
	       "action": "pin", "model": "m", "run": "r", "step": 1,
	       "time": "2026-01-01T00:00:00Z", "user": "u", "host": "h"}
	open("h", "a").write(json.dumps(rec, sort_keys=True,
	    separators=(",", ":")) + "\n")
	EOF
	cp h s/registry/.history.jsonl &&
	test_expect_code 3 ckpt -C s log 2>err &&
	test_grep "none for a run event" err &&
	cp good s/registry/.history.jsonl &&
	ckpt -C s log >/dev/null
'

test_done
