#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='prune: removal through the trash, trash modes, partial failure, the lock, crashes'
. "$(dirname "$0")/lib.sh"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

# Every directory under runs/RUN/ that is not a staging dir has a manifest.
store_consistent() {
	for d in "$1"/runs/*/*; do
		case "${d##*/}" in .tmp-*) continue ;; esac
		test -f "$d/ckpt-manifest.json" ||
			{ echo "incomplete checkpoint $d" >&2; return 1; }
	done
}

steps() {
	ls "$1/runs/$2" | sed -n "s/^step-//p" | sort -n | tr "\n" " "
	echo
}

# Starts ckpt-test-tool hold-lock in the background and waits until it
# holds the lock; its pid is in holder.pid.
hold_lock() {
	rm -f locked
	ckpt-test-tool hold-lock "$1" "${2:-60}" >locked &
	echo $! >holder.pid
	i=0
	while ! grep -q locked locked 2>/dev/null; do
		i=$((i + 1))
		test $i -lt 100 || return 1
		sleep 0.1
	done
}

test_expect_success 'setup' '
	mkstore s --time 2026-11-20T08:00:00Z a@1 a@2 a@3 a@4 a@5 b@1 b@2
'

test_expect_success 'prune removes through the trash and reports it' '
	cp -R s s0 &&
	ckpt -C s prune --run a --keep-last 2 >out.raw &&
	sed "s/ *\$//" out.raw >actual &&
	cat >expect <<-\EOF &&
	run a: keep 2 last
	RUN  STEP  TIME                  SIZE  ACTION   REASONS
	a       1  2026-11-20 08:00:00Z  32 B  removed
	a       2  2026-11-20 08:00:00Z  32 B  removed
	a       3  2026-11-20 08:00:00Z  32 B  removed
	a       4  2026-11-20 08:00:00Z  32 B  keep     last
	a       5  2026-11-20 08:00:00Z  32 B  keep     newest, last

	removed 3 of 5 checkpoints (96 B) in 1 run
	EOF
	test_cmp expect actual &&
	echo "4 5 " >expect &&
	steps s a >actual &&
	test_cmp expect actual &&
	test -z "$(ls s/.ckpt/trash)" &&
	echo "1 2 " >expect &&
	steps s b >actual &&
	test_cmp expect actual &&
	test_path_is_missing s/.ckpt/lock
'

test_expect_success 'ls agrees with what prune left' '
	ckpt -C s ls --run a >out &&
	test $(grep -c "^a " out) = 2
'

test_expect_success '--json of a real prune' '
	rm -rf s && cp -R s0 s &&
	ckpt -C s prune --json --all --keep-last 1 >out.json &&
	"$PYTHON" -c "
import json
doc = json.load(open(\"out.json\"))
assert doc[\"dry_run\"] is False
runs = {r[\"run\"]: r for r in doc[\"runs\"]}
assert [k[\"step\"] for k in runs[\"a\"][\"keep\"]] == [5]
assert [k[\"step\"] for k in runs[\"a\"][\"remove\"]] == [1, 2, 3, 4]
assert all(k[\"removed\"] for k in runs[\"a\"][\"remove\"])
assert [k[\"step\"] for k in runs[\"b\"][\"remove\"]] == [1]
" &&
	echo "5 " >expect && steps s a >actual && test_cmp expect actual
'

test_expect_success 'trash: keep leaves the removed checkpoints for gc' '
	rm -rf s && cp -R s0 s &&
	echo "trash: keep" >s/ckpt.yaml &&
	ckpt -C s -q prune --run a --keep-last 1 >out &&
	test ! -s out &&
	test $(ls s/.ckpt/trash | wc -l) = 4 &&
	for t in s/.ckpt/trash/*; do
		test -f "$t/ckpt-manifest.json" || exit 1
		case "${t##*/}" in a@step-[1-4].*) ;; *) exit 1 ;; esac
	done &&
	ckpt -C s gc >out &&
	test_grep "^removed 4 items (" out &&
	test -z "$(ls s/.ckpt/trash)"
'

# Faults come from the LD_PRELOAD shim: the library has no test hooks.
SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

# fault OP ACTION PATTERN CMD...: the first OP on a path matching PATTERN
# fails (EIO) or kills ckpt with SIGKILL before (crash) or after it.
fault() {
	_op=$1 _act=$2 _pat=$3 && shift 3 &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=$_op CKPT_FAULT_ACTION=$_act \
		CKPT_FAULT_PATH="$_pat" "$@"
}

# The crash points of a prune: after the first rename into the trash,
# after all renames (before the trash's fsync), before the first delete,
# and in the middle of one (just after its manifest went).
# crash_at POINT CMD...
crash_at() {
	_pt=$1 && shift &&
	case $_pt in
	after-first-rename) fault rename crash-after "*/.ckpt/trash/*" "$@" ;;
	after-renames) fault fsync crash "*/.ckpt/trash" "$@" ;;
	before-delete) fault unlink crash "*/.ckpt/trash/*" "$@" ;;
	mid-delete) fault unlink crash-after "*/.ckpt/trash/*/ckpt-manifest.json" "$@" ;;
	esac
}

test_expect_success 'a failed removal: exit 1, the rest removed, the failure named' '
	rm -rf s && cp -R s0 s &&
	fault rename fail "*/runs/a/step-2" test_expect_code 1 ckpt -C s prune --run a \
		--keep-last 1 >out.raw 2>err &&
	sed "s/ *\$//" out.raw >out &&
	test_grep "a@2: cannot move .*/runs/a/step-2 into the trash: Input/output error" err &&
	test_grep "^a       2 .* FAILED$" out &&
	test_grep "^removed 3 of 5 checkpoints" out &&
	echo "2 5 " >expect && steps s a >actual && test_cmp expect actual &&
	fault rename fail "*/runs/a/step-2" test_expect_code 1 ckpt -C s prune --json \
		--run a --keep-last 1 >out.json &&
	test_grep "\"removed\": false" out.json &&
	test_grep "\"error\": \"cannot move" out.json &&
	"$PYTHON" -c "import json, sys
d = json.load(open(sys.argv[1]))
sys.stdout.write(json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + \"\\n\")" \
	    out.json >expect.json &&
	test_cmp expect.json out.json
'

test_expect_success 'lock held: exit 3 at once with --lock-timeout 0, after the wait otherwise' '
	rm -rf s && cp -R s0 s &&
	hold_lock s &&
	test_when_finished "kill \$(cat holder.pid) 2>/dev/null" &&
	test_expect_code 3 ckpt -C s prune --run a --keep-last 1 --lock-timeout 0 >out 2>err &&
	test ! -s out &&
	grep -i "lock" err &&
	test_expect_code 3 ckpt -C s prune --run a --keep-last 1 --lock-timeout 1 2>err &&
	test_expect_code 3 ckpt -C s pin a@1 --lock-timeout 0 2>err &&
	test_expect_code 3 ckpt -C s unpin a@1 --lock-timeout 0 2>err &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	ckpt -C s prune --run a --keep-last 1 --dry-run >out &&
	test_grep "^would remove 4 of 5" out &&
	echo "1 2 3 4 5 " >expect && steps s a >actual && test_cmp expect actual
'

test_expect_success 'a prune waits for a lock that is released' '
	rm -rf s && cp -R s0 s &&
	hold_lock s 1 &&
	ckpt -C s prune --run a --keep-last 1 --lock-timeout 20 >out &&
	wait $(cat holder.pid) &&
	echo "5 " >expect && steps s a >actual && test_cmp expect actual
'

for point in after-first-rename after-renames before-delete mid-delete
do
	test_expect_success "kill -9 at $point: the store stays consistent" '
		rm -rf s && cp -R s0 s &&
		crash_at '$point' test_expect_code 137 \
			sh -c "exec ckpt -C s prune --run a --keep-last 2" >out 2>&1 &&
		store_consistent s &&
		ckpt -C s ls --run a >ls.out &&
		n=$(grep -c "^a " ls.out) &&
		test "$n" -ge 2 && test "$n" -le 5 &&
		test $(ls s/runs/a | wc -l) = "$n" &&
		ckpt -C s prune --run a --keep-last 2 >out 2>err &&
		echo "4 5 " >expect && steps s a >actual && test_cmp expect actual &&
		store_consistent s &&
		ckpt -C s gc >out &&
		test -z "$(ls s/.ckpt/trash)" &&
		test_path_is_missing s/.ckpt/lock
	'
done

test_expect_success 'a crash while holding the lock: the next prune breaks the stale lock' '
	rm -rf s && cp -R s0 s &&
	crash_at after-renames test_expect_code 137 \
		sh -c "exec ckpt -C s prune --run a --keep-last 2" &&
	test_path_is_file s/.ckpt/lock &&
	echo "4 5 " >expect && steps s a >actual && test_cmp expect actual &&
	test $(ls s/.ckpt/trash | wc -l) = 3 &&
	ckpt -C s prune --run b --keep-last 1 >out 2>err &&
	test_grep "broke a stale store lock of pid [0-9]* on .* (prune)" err &&
	echo "2 " >expect && steps s b >actual && test_cmp expect actual &&
	crash_at after-renames test_expect_code 137 \
		sh -c "exec ckpt -C s prune --run a --keep-last 1" &&
	ckpt -C s gc >out 2>err &&
	test_grep "broke a stale store lock of pid [0-9]* on .* (prune)" err &&
	test -z "$(ls s/.ckpt/trash)"
'

test_expect_success 'mid-delete: the manifest goes first' '
	rm -rf s && cp -R s0 s &&
	crash_at mid-delete test_expect_code 137 \
		sh -c "exec ckpt -C s prune --run a --keep-last 4" &&
	t=$(ls -d s/.ckpt/trash/*) &&
	test_path_is_missing "$t/ckpt-manifest.json" &&
	test_path_is_file "$t/weights.bin"
'

test_done
