#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='save: a failure or a crash at every step of the commit
protocol leaves the store consistent (fault injection with LD_PRELOAD)'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
# The shim is preloaded before a sanitized binary's runtime: allowed.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

mksrc() {
	rm -rf src && mkdir src &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/model.bin 300000 7 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/optimizer.pt 100000 8 &&
	echo '{"step": 2}' >src/state.json
}

# The invariants, after any outcome of "save --run r --step 2":
#  - r@1 (committed before) is listed and untouched;
#  - r@2 is either absent from ls or complete: it verifies;
#  - a zero exit status means r@2 is committed and verifies;
#  - a failure (not a crash) puts moved files back into src.
check_store() {
	_rc=$1 _act=$2
	ckpt -C s ls --json >ls.json || return 1
	grep -q '"path": ".*/runs/r/step-1"' ls.json ||
		{ echo "r@1 vanished"; return 1; }
	if grep -q '"path": ".*/runs/r/step-2"' ls.json; then
		ckpt -C s latest --run r --verified >latest 2>lerr ||
			{ echo "latest failed"; return 1; }
		grep -q "/runs/r/step-2$" latest ||
			{ echo "r@2 listed but does not verify"; cat lerr;
			  return 1; }
	else
		test "$_rc" != 0 || { echo "exit 0 without a commit"; return 1; }
		test ! -e s/runs/r/step-2 ||
			{ echo "step-2 visible without manifest"; return 1; }
		if test "$_act" = fail; then
			test -f src/model.bin && test -f src/optimizer.pt ||
				{ echo "moved files not moved back"; return 1; }
		fi
	fi
	ckpt -C s latest --run r --verified >/dev/null 2>&1 ||
		{ echo "no verified checkpoint left"; return 1; }
	ckpt-test-tool sha256 s/runs/r/step-1/weights.bin >sum1 &&
	test_cmp sum1.orig sum1
}

reset_run() {
	rm -rf s/runs/r/step-2 s/runs/r/.tmp-* s/.ckpt/trash/* s/.ckpt/lock
}

test_expect_success 'setup: a store with r@1, the shim' '
	test -f "$SHIM" &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s r@1:loss=1 &&
	ckpt-test-tool sha256 s/runs/r/step-1/weights.bin >sum1.orig
'

# Every matching call, one at a time, until a save runs without a hit.
crash_every_step() {
	op=$1 action=$2 mode=$3
	n=1
	while test $n -lt 200; do
		reset_run
		mksrc || return 1
		rm -f fault.log
		rc=0
		LD_PRELOAD="$SHIM" CKPT_FAULT_OP=$op CKPT_FAULT_NTH=$n \
		CKPT_FAULT_ACTION=$action CKPT_FAULT_LOG=fault.log \
		CKPT_FAULT_PATH="*/s/*" \
			ckpt -C s save $mode --run r --step 2 src \
			>out 2>err </dev/null || rc=$?
		if ! grep -q "^hit" fault.log 2>/dev/null; then
			test "$rc" = 0 || { cat err; return 1; }
			check_store 0 none || return 1
			echo "$op $action: $((n - 1)) steps"
			return 0
		fi
		if test "$action" = fail && test "$rc" = 0; then
			: # a best-effort write (the staging status) may fail
		elif test "$action" != fail && test "$rc" != 137; then
			echo "expected SIGKILL at $op #$n, got $rc"; cat err
			return 1
		fi
		check_store "$rc" "$action" ||
			{ echo "after $op #$n ($action, rc $rc):";
			  cat fault.log err; return 1; }
		n=$((n + 1))
	done
	echo "too many steps"
	return 1
}

for op in write fsync rename mkdir unlink; do
	for action in fail crash crash-after; do
		test_expect_success "$op: $action at every step (move)" "
			crash_every_step $op $action --move
		"
	done
done

for action in fail crash; do
	test_expect_success "write and link: $action at every step (copy/link)" "
		crash_every_step write $action --copy &&
		crash_every_step link $action --link
	"
done

test_expect_success 'a failed save marks its staging directory failed' '
	reset_run && mksrc &&
	test_must_fail env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=fsync \
		CKPT_FAULT_PATH="*/src/*" CKPT_FAULT_PATH="*model.bin" \
		ckpt -C s save --copy --run r --step 2 src 2>err &&
	test_grep "cannot fsync" err &&
	test_grep "nothing was committed" err &&
	ckpt -C s ls >out &&
	test_grep "failed: .*cannot fsync" out &&
	ckpt -C s ls --json >ls.json &&
	test_grep "\"state\": \"failed\"" ls.json
'

test_expect_success 'kill -9 of a --background save leaves no partial checkpoint' '
	reset_run && mksrc &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=fsync \
		CKPT_FAULT_ACTION=crash CKPT_FAULT_PATH="*/.tmp-*/model.bin" \
		ckpt -C s save --background --run r --step 2 src >out 2>err &&
	test_grep "/runs/r/.tmp-step-2" out &&
	for i in 1 2 3 4 5 6 7 8 9 10; do
		ckpt -C s ls --json >ls.json
		grep -q "\"state\": \"abandoned\"" ls.json && break
		sleep 0.2
	done &&
	test_grep "\"state\": \"abandoned\"" ls.json &&
	check_store 1 crash
'

test_expect_success 'a real kill -9 during a background save' '
	reset_run && rm -rf src && mkdir src &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/big.bin 60000000 3 &&
	ckpt -C s save --background -j 1 --run r --step 2 src >out 2>err &&
	staging=$(cat out) &&
	pid=$(sed -n "s/^  \"pid\": \\([0-9]*\\),*$/\\1/p" \
		"$staging/ckpt-staging.json" 2>/dev/null) &&
	if test -n "$pid"; then test_might_fail kill -9 "$pid" 2>/dev/null; fi &&
	sleep 0.3 &&
	check_store 1 crash
'

test_done
