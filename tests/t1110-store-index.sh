#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='the listing cache: deleted, truncated, damaged or stale, it gives the answers of no cache; latest reads only what it needs; prune reads the files'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
N=2000

# The answers of ls, latest and prune --dry-run, into DIR.
answers() {
	mkdir -p "$1" &&
	ckpt -C s ls --json >"$1/ls" &&
	ckpt -C s ls >"$1/ls.txt" &&
	ckpt -C s latest --run r >"$1/latest" &&
	ckpt -C s latest --run r --json >"$1/latest.json" &&
	ckpt -C s prune --dry-run --run r --keep-last 3 --keep-best 2 \
	    --metric loss --json >"$1/prune" &&
	ckpt -C s prune --dry-run --all --keep-last 1 >"$1/prune.txt"
}

# The answers without any cache (the reference), then with one: equal.
same_answers() {
	rm -rf "$HOME/.cache/ckpt" &&
	answers ref &&
	answers cold &&
	answers warm &&
	for f in ls ls.txt latest latest.json prune prune.txt; do
		test_cmp ref/$f cold/$f && test_cmp ref/$f warm/$f || return 1
	done
}

# shim VAR=VALUE... cmd...: cmd under the fault shim (ASan allows it).
shim() {
	env ASAN_OPTIONS="verify_asan_link_order=0:$ASAN_OPTIONS" \
	    LD_PRELOAD="$SHIM" "$@"
}

index_file() {
	find "$HOME/.cache/ckpt/index" -type f -name r
}

test_expect_success 'setup: two runs, one of many checkpoints' '
	ckpt-test-tool mkstore s r 0 $N &&
	ckpt-test-tool mkstore s q 0 3 &&
	same_answers &&
	test "$(index_file | wc -l)" = 1 &&
	test_grep "/runs/r/step-$((N - 1))$" ref/latest
'

# The listing sorts a run by step, then name (list.c sort_keys, a heap
# sort in place); copies of a checkpoint under other names share its
# step.  Cold, warm and without a cache: one order, the sorted one.
test_expect_success 'a run is listed by step, then name, from the cache or not' '
	ckpt-test-tool mkstore o r 0 500 &&
	cp -R o/runs/r/step-7 o/runs/r/step-7b &&
	cp -R o/runs/r/step-7 o/runs/r/a-step-7 &&
	cp -R o/runs/r/step-499 o/runs/r/z &&
	rm -rf "$HOME/.cache/ckpt" &&
	ckpt -C o ls --json >o-cold.json &&
	ckpt -C o ls --json >o-warm.json &&
	test_cmp o-cold.json o-warm.json &&
	"$PYTHON" - <<-\EOF
	import json
	c = json.load(open("o-cold.json"))["checkpoints"]
	keys = [(x["step"], x["path"].rsplit("/", 1)[1]) for x in c]
	assert len(keys) == 503, len(keys)
	assert keys == sorted(keys), keys[:12]
	assert keys[7:10] == [(7, "a-step-7"), (7, "step-7"), (7, "step-7b")], keys[7:10]
	assert keys[-2:] == [(499, "step-499"), (499, "z")], keys[-2:]
	EOF
'

test_expect_success 'the cache lives outside the store' '
	(cd s && find . | sort) >before &&
	rm -rf "$HOME/.cache/ckpt" &&
	ckpt -C s ls >/dev/null &&
	ckpt -C s prune --dry-run --all --keep-last 1 >/dev/null &&
	(cd s && find . | sort) >after &&
	test_cmp before after &&
	test -s "$(index_file)"
'

test_expect_success 'a deleted index gives the same answers' '
	answers warm &&
	rm -f "$(index_file)" &&
	answers gone &&
	for f in ls latest prune prune.txt; do
		test_cmp warm/$f gone/$f || return 1
	done
'

test_expect_success 'a truncated index is rebuilt, never believed' '
	f=$(index_file) &&
	size=$(wc -c <"$f") &&
	ckpt-test-tool truncate "$f" $((size / 2)) &&
	answers cut &&
	test_cmp ref/ls cut/ls &&
	test_cmp ref/latest cut/latest &&
	test_cmp ref/prune cut/prune &&
	test "$(wc -c <"$f")" = "$size" &&
	ckpt-test-tool truncate "$f" 10 &&
	answers cut &&
	test_cmp ref/ls cut/ls
'

# The rebuilt index must equal the one before the damage, byte for byte:
# both are written once the run is older than RACY_NS (2 s), or the
# first may carry the racy flag that the second does not (the tests
# above can run within 2 s of the setup on a fast machine).
test_expect_success 'a damaged index is rebuilt, never believed' '
	sleep 3 &&
	ckpt -C s ls >/dev/null &&
	f=$(index_file) &&
	cp "$f" good.idx &&
	ckpt-test-tool flip "$f" 5000 &&
	answers flipped &&
	test_cmp ref/ls flipped/ls &&
	test_cmp ref/latest flipped/latest &&
	test_cmp ref/prune flipped/prune &&
	cmp good.idx "$f"
'

test_expect_success 'an index of another version is rebuilt, never believed' '
	f=$(index_file) &&
	"$PYTHON" - "$f" <<-\PY &&
	import hashlib, struct, sys
	d = bytearray(open(sys.argv[1], "rb").read())
	assert struct.unpack_from("<I", d, 8)[0] == 2
	struct.pack_into("<I", d, 8, 1)
	d[-32:] = hashlib.sha256(d[:-32]).digest()
	open(sys.argv[1], "wb").write(d)
	PY
	answers v1 &&
	test_cmp ref/ls v1/ls &&
	test_cmp ref/latest v1/latest &&
	test_cmp ref/prune v1/prune &&
	"$PYTHON" -c "import struct, sys
assert struct.unpack_from(\"<I\", open(sys.argv[1], \"rb\").read(), 8)[0] == 2" "$f"
'

test_expect_success 'a stale index: a newest checkpoint marked failed' '
	f=$(index_file) &&
	cp "$f" before-failed.idx &&
	printf "{\"load_test\": {\"result\": \"failed\"}, \"schema\": 1}\n" \
	    >s/runs/r/step-$((N - 1))/ckpt-status.json &&
	same_answers &&
	test_grep "/runs/r/step-$((N - 2))$" ref/latest &&
	cp before-failed.idx "$f" &&
	answers stale &&
	test_cmp ref/latest stale/latest &&
	test_cmp ref/ls stale/ls &&
	test_cmp ref/prune stale/prune
'

test_expect_success 'a stale index: checkpoints removed, added, replaced' '
	f=$(index_file) &&
	cp "$f" old.idx &&
	rm -rf s/runs/r/step-$((N - 2)) s/runs/r/step-7 &&
	ckpt-test-tool mkstore s r $N 2 &&
	rm -rf s/runs/r/step-100 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s \
	    r@100:loss=0.0001 &&
	same_answers &&
	test_grep "/runs/r/step-$((N + 1))$" ref/latest &&
	"$PYTHON" -c "
import json
d = json.load(open(\"ref/prune\"))
keep = [c[\"step\"] for c in d[\"runs\"][0][\"keep\"]]
assert 100 in keep, keep
" &&
	cp old.idx "$f" &&
	answers stale &&
	for x in ls latest prune prune.txt; do
		test_cmp ref/$x stale/$x || return 1
	done
'

test_expect_success 'a stale index: a failed checkpoint that is fine again' '
	rm s/runs/r/step-$((N - 1))/ckpt-status.json &&
	printf "{\"load_test\": {\"result\": \"failed\"}, \"schema\": 1}\n" \
	    >s/runs/r/step-$((N + 1))/ckpt-status.json &&
	ckpt -C s ls >/dev/null &&
	rm s/runs/r/step-$((N + 1))/ckpt-status.json &&
	ckpt -C s latest --run r >actual &&
	test_grep "/runs/r/step-$((N + 1))$" actual &&
	same_answers
'

# An index written within 2 s of the run's last change is "racy" and
# never trusted (lib/store/index.c, RACY_NS), so the tests of a trusted
# index let the run age first: under load the tests before may end less
# than 2 s after they changed it.
test_expect_success 'latest with a fresh index lists nothing, reads a few files' '
	sleep 3 &&
	ckpt -C s ls >/dev/null &&
	shim CKPT_FAULT_OP=readdir CKPT_FAULT_PATH="*/runs/r" \
	    CKPT_FAULT_NTH=all ckpt -C s latest --run r >actual &&
	test_cmp ref/latest actual &&
	shim CKPT_FAULT_OP=open CKPT_FAULT_NTH=999999999 \
	    CKPT_FAULT_PATH="*/runs/r/*" CKPT_FAULT_LOG=opens.log \
	    ckpt -C s latest --run r >actual &&
	test_cmp ref/latest actual &&
	test "$(grep -c "step-" opens.log)" -le 4
'

test_expect_success 'prune decides on the files: every summary is read' '
	rm -f opens.log &&
	n=$(ls s/runs/r | grep -c "^step-") &&
	shim CKPT_FAULT_OP=open CKPT_FAULT_NTH=999999999 \
	    CKPT_FAULT_PATH="*/runs/r/*/ckpt-summary.json" \
	    CKPT_FAULT_LOG=opens.log \
	    ckpt -C s prune --run r --keep-last $n >/dev/null &&
	test "$(grep -c "ckpt-summary.json" opens.log)" = $n &&
	rm -f opens.log &&
	shim CKPT_FAULT_OP=open CKPT_FAULT_NTH=999999999 \
	    CKPT_FAULT_PATH="*/runs/r/*/ckpt-summary.json" \
	    CKPT_FAULT_LOG=opens.log \
	    ckpt -C s prune --dry-run --run r --keep-last 1 >/dev/null &&
	test_must_fail test -s opens.log
'

# summaries_read LOG cmd...: cmd, logging the summaries it opens to LOG.
summaries_read() {
	log=$1 &&
	shift &&
	rm -f "$log" &&
	shim CKPT_FAULT_OP=open CKPT_FAULT_NTH=999999999 \
	    CKPT_FAULT_PATH="*/runs/r/*/ckpt-summary.json" \
	    CKPT_FAULT_LOG="$log" "$@" >/dev/null &&
	touch "$log"
}

# A rewrite after one checkpoint changed and one went: the records it
# keeps carry their old stamps (list.c takes them from the old index,
# not from the entries), so the next listing reads no summary at all.
test_expect_success 'an index rewritten around a change is trusted next time' '
	sleep 3 &&
	ckpt -C s ls >/dev/null &&
	mkdir s/runs/r/step-3/changed &&
	rm -rf s/runs/r/step-4 &&
	sleep 3 &&
	summaries_read once.log ckpt -C s ls &&
	test "$(grep -c "ckpt-summary.json" once.log)" = 1 &&
	test_grep "/step-3/ckpt-summary.json" once.log &&
	summaries_read twice.log ckpt -C s ls &&
	test_must_fail test -s twice.log &&
	same_answers
'

test_expect_success 'an index behind a symbolic link is not written through' '
	rm -rf "$HOME/.cache/ckpt" elsewhere && mkdir elsewhere &&
	ckpt -C s ls >/dev/null &&
	f=$(index_file) &&
	rm "$f" &&
	ln -s "$PWD/elsewhere/target" "$f" &&
	ckpt -C s ls >/dev/null &&
	test_path_is_missing elsewhere/target &&
	answers linked &&
	test_cmp ref/ls linked/ls
'

test_done
