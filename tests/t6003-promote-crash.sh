#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='promote and alias: a crash or a failure at every step
leaves the history and the aliases consistent (fault injection with
LD_PRELOAD), and a retry completes'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
# The shim is preloaded before a sanitized binary's runtime: allowed.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

# The invariants, after any outcome of "promote r@2 --model m --alias
# prod" on a registry holding m v1 (prod -> v1), 2 records:
#  - log --verify passes (it first completes or undoes what the crash
#    left, under the lock);
#  - either nothing happened (2 records, prod -> v1, no m@v2) or all
#    of it did (4 records, prod -> v2, m@v2 verifies);
#  - exit status 0 means all of it happened.
check_registry() {
	_rc=$1
	ckpt -C s log --verify >verify.out 2>verify.err ||
		{ echo "log --verify failed"; cat verify.out verify.err;
		  return 1; }
	ckpt -C s --json log >log.json || return 1
	_n=$(grep -c '"seq":' log.json)
	case $_n in
	2)
		test "$_rc" != 0 || { echo "exit 0 without a commit"; return 1; }
		test_expect_code 3 ckpt -C s verify m@v2 >/dev/null 2>&1 ||
			{ echo "m@v2 resolves without a record"; return 1; }
		ckpt -C s verify m@prod >v.out 2>&1 &&
		grep -q "registry/m/v1/" v.out ||
			{ echo "prod moved without a record"; return 1; }
		test_path_is_missing s/registry/m/v2 &&
		test_path_is_missing s/registry/m/v2.json
		;;
	4)
		ckpt -C s verify m@prod >v.out 2>&1 &&
		grep -q "registry/m/v2/" v.out ||
			{ echo "prod does not name v2"; cat v.out; return 1; }
		;;
	*)
		echo "$_n records"; return 1
		;;
	esac
}

# After the crash: the same command again succeeds and converges.
check_retry() {
	ckpt -C s promote r@2 --model m --alias prod "$@" >retry.out 2>&1 ||
		{ echo "retry failed"; cat retry.out; return 1; }
	ckpt -C s --json log >log.json &&
	test "$(grep -c '"seq":' log.json)" = 4 ||
		{ echo "retry did not converge"; cat log.json; return 1; }
	ckpt -C s log --verify >/dev/null 2>&1 || return 1
	if test $# -gt 0; then
		ckpt -C s log --verify --require-signature >/dev/null 2>&1 ||
			{ echo "a committed promotion is not signed"; return 1; }
	fi
	ls s/registry/.staging >staging.left &&
	test_cmp /dev/null staging.left ||
		{ echo "staging left behind"; return 1; }
}

test_expect_success 'setup: m v1 with prod, r@2 to promote, the shim' '
	test -f "$SHIM" &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s0 r@1:loss=3 \
		r@2:loss=2 &&
	ckpt -C s0 keygen -o key --no-passphrase >/dev/null &&
	ckpt -C s0 promote -q r@1 --model m --alias prod --sign-key key.key
'

# Every call of one kind that changes the store, one at a time, until a
# promote runs without a hit.
crash_every_step() {
	op=$1 action=$2
	shift 2
	n=1
	while test $n -lt 100; do
		rm -rf s && cp -a s0 s || return 1
		rm -f fault.log
		rc=0
		LD_PRELOAD="$SHIM" CKPT_FAULT_OP=$op CKPT_FAULT_NTH=$n \
		CKPT_FAULT_ACTION=$action CKPT_FAULT_LOG=fault.log \
		CKPT_FAULT_PATH="*/s/*" \
			ckpt -C s promote r@2 --model m --alias prod "$@" \
			>out 2>err </dev/null || rc=$?
		if ! grep -q "^hit" fault.log 2>/dev/null; then
			test "$rc" = 0 || { cat err; return 1; }
			check_registry 0 || return 1
			echo "$op $action: $((n - 1)) steps"
			test $n -gt 1 || { echo "no $op at all"; return 1; }
			return 0
		fi
		if test "$action" != fail && test "$rc" != 137; then
			echo "expected SIGKILL at step $n, got $rc"; cat err
			return 1
		fi
		{ check_registry "$rc" && check_retry "$@"; } ||
			{ echo "after step $n ($action, rc $rc):";
			  grep "^hit" fault.log; cat err; return 1; }
		n=$((n + 1))
	done
	echo "too many steps"
	return 1
}

OPS="mkdir link write fsync rename unlink"

for action in crash crash-after fail; do
	test_expect_success "promote: $action at every step" "
		for op in $OPS; do
			crash_every_step \$op $action || return 1
		done
	"
done

test_expect_success 'signed promote: a crash at every step' '
	for op in link write rename; do
		crash_every_step $op crash --sign-key key.key || return 1
	done
'

# A crash at every call of one kind in "alias m prod v2".
alias_every_step() {
	op=$1
	n=1
	while test $n -lt 40; do
		rm -rf s && cp -a s0 s && rm -f fault.log &&
		ckpt -C s promote -q r@2 --model m || return 1
		rc=0
		LD_PRELOAD="$SHIM" CKPT_FAULT_OP=$op CKPT_FAULT_NTH=$n \
		CKPT_FAULT_ACTION=crash CKPT_FAULT_LOG=fault.log \
		CKPT_FAULT_PATH="*/s/*" \
			ckpt -C s alias m prod v2 >out 2>err </dev/null || rc=$?
		ckpt -C s log --verify >/dev/null 2>&1 ||
			{ echo "$op $n: log --verify failed"; return 1; }
		ckpt -C s verify m@prod >v.out 2>&1 || return 1
		if grep -q "registry/m/v2/" v.out; then
			test "$(ckpt -C s log --alias prod | wc -l)" = 3 || return 1
		else
			test "$rc" != 0 &&
			test "$(ckpt -C s log --alias prod | wc -l)" = 2 || return 1
		fi
		grep -q "^hit" fault.log || break
		n=$((n + 1))
	done
	test $n -gt 1 || { echo "no $op at all"; return 1; }
}

test_expect_success 'alias: a crash at every step leaves old or new' '
	for op in write fsync rename unlink; do
		alias_every_step $op || return 1
	done
'

test_done
