#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='save: an interrupted --move never loses the files handed to
it (SIGINT, SIGTERM, SIGHUP: moved back by the save; SIGKILL: moved back
by gc, or kept and named); --copy keeps modes; names a manifest cannot
hold are refused before anything moves'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

mksrc() {
	rm -rf src && mkdir src &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/model.bin 300000 7 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/optimizer.pt 100000 8 &&
	echo '{"step": 2}' >src/state.json &&
	sums_of src >sums.orig
}

reset_run() {
	rm -rf s/runs/r/step-2 s/runs/r/.tmp-* s/runs/r/.new-* s/.ckpt/trash/* \
		s/.ckpt/lock
}

sums_of() {
	for f in model.bin optimizer.pt state.json; do
		ckpt-test-tool sha256 "$1/$f" >sum1 || return 1
		echo "$f $(cut -d" " -f1 sum1)"
	done
}

# No file handed to save is lost: every one is back in src, or r@2 is
# committed and verifies and holds them all (same bytes).
nothing_lost() {
	if test -d s/runs/r/step-2; then
		ckpt -C s verify r@2 >/dev/null 2>verr ||
			{ echo "r@2 does not verify"; cat verr; return 1; }
		sums_of s/runs/r/step-2 >sums
	else
		sums_of src >sums 2>/dev/null ||
			{ echo "source files missing:"; ls -la src s/runs/r/.tmp-* 2>&1;
			  return 1; }
	fi
	test_cmp sums.orig sums
}

test_expect_success 'setup: a store with r@1, the shim' '
	test -f "$SHIM" &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s r@1:loss=1
'

# A signal at the Nth matching call, for every N until a save runs
# through without one.
signal_every_step() {
	op=$1 sig=$2 pat=$3
	n=1
	while test $n -lt 100; do
		reset_run && mksrc || return 1
		rm -f fault.log
		rc=0
		LD_PRELOAD="$SHIM" CKPT_FAULT_OP=$op CKPT_FAULT_NTH=$n \
		CKPT_FAULT_ACTION=signal CKPT_FAULT_SIGNAL=$sig \
		CKPT_FAULT_LOG=fault.log CKPT_FAULT_PATH="$pat" \
			ckpt -C s save --move --run r --step 2 src \
			>out 2>err </dev/null || rc=$?
		if ! grep -q "^hit" fault.log 2>/dev/null; then
			test "$rc" = 0 || { cat err; return 1; }
			nothing_lost || return 1
			echo "$op: $((n - 1)) steps"
			return 0
		fi
		test "$rc" = $((128 + sig)) ||
			{ echo "exit $rc at $op #$n, not $((128 + sig))"; cat err;
			  return 1; }
		nothing_lost || { echo "at $op #$n:"; cat fault.log err; return 1; }
		test_path_is_missing s/.ckpt/lock || return 1
		if ! test -d s/runs/r/step-2; then
			grep -q "interrupted by SIG" err ||
				{ echo "no interrupt message at $op #$n"; cat err;
				  return 1; }
		fi
		n=$((n + 1))
	done
	echo "too many steps"
	return 1
}

test_expect_success 'SIGINT at every rename of a --move save: files back, exit 130' '
	signal_every_step rename 2 "*"
'

test_expect_success 'SIGTERM at every fsync: files back or committed, exit 143' '
	signal_every_step fsync 15 "*/s/*"
'

test_expect_success 'SIGHUP at every write: files back or committed, exit 129' '
	signal_every_step write 1 "*/s/*"
'

test_expect_success 'an interrupted save says so and leaves a failed record' '
	reset_run && mksrc &&
	test_expect_code 130 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=fsync \
		CKPT_FAULT_ACTION=signal CKPT_FAULT_PATH="*/.tmp-*/model.bin" \
		ckpt -C s save --move --run r --step 2 src 2>err &&
	test_grep "interrupted by SIGINT" err &&
	test_grep "nothing was committed (moved files were moved back)" err &&
	nothing_lost &&
	ckpt -C s ls --json >ls.json &&
	test_grep "\"state\": \"failed\"" ls.json
'

# kill -9 after the Nth move into the staging directory: the files are
# there only; gc must move them back, never delete them.
test_expect_success 'kill -9 during the moves: gc --older-than 0s moves them back' '
	for n in 1 2 3; do
		reset_run && mksrc &&
		test_expect_code 137 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=rename \
			CKPT_FAULT_ACTION=crash-after CKPT_FAULT_NTH=$n \
			CKPT_FAULT_PATH="*/.tmp-step-2.*/*" \
			ckpt -C s save --move --run r --step 2 src 2>err &&
		test -n "$(ls -A s/runs/r/.tmp-step-2.*)" &&
		ckpt -C s gc --older-than 0s >out 2>err &&
		test_grep "crashed save; $n moved files\\{0,1\\} moved back" out &&
		nothing_lost &&
		test -z "$(ls -d s/runs/r/.tmp-* 2>/dev/null)" || exit 1
	done
'

test_expect_success 'ls names the abandoned save and the way back; gc --restore' '
	reset_run && mksrc &&
	test_expect_code 137 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=fsync \
		CKPT_FAULT_ACTION=crash CKPT_FAULT_PATH="*/.tmp-*/model.bin" \
		ckpt -C s save --move --run r --step 2 src &&
	test_path_is_missing src/model.bin &&
	ckpt -C s ls >out 2>err &&
	test_grep "abandoned" out &&
	test_grep "ckpt gc --restore" err &&
	ckpt -C s gc --dry-run >out &&
	test_grep "younger than 1d" out &&
	echo junk >s/.ckpt/trash/keep-me &&
	ckpt -C s gc --restore >out &&
	test_grep "crashed save; 3 moved files moved back" out &&
	nothing_lost &&
	test_path_is_file s/.ckpt/trash/keep-me &&
	rm s/.ckpt/trash/keep-me &&
	test -z "$(ls -d s/runs/r/.tmp-* 2>/dev/null)"
'

test_expect_success 'a file back at a source path: gc keeps the directory and says so' '
	reset_run && mksrc &&
	test_expect_code 137 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=fsync \
		CKPT_FAULT_ACTION=crash CKPT_FAULT_PATH="*/.tmp-*/model.bin" \
		ckpt -C s save --move --run r --step 2 src &&
	echo "a new file" >src/model.bin &&
	test_expect_code 1 ckpt -C s gc --older-than 0s >out 2>err &&
	test_grep "kept: 1 moved file cannot go back (cannot move model.bin back to .*/src/model.bin: File exists)" err &&
	staging=$(ls -d s/runs/r/.tmp-step-2.*) &&
	test_path_is_file "$staging/model.bin" &&
	test_path_is_file src/optimizer.pt &&
	echo "a new file" >expect && test_cmp expect src/model.bin &&
	rm src/model.bin &&
	ckpt -C s gc --restore >out &&
	nothing_lost
'

test_expect_success '"moved back" is said only when true' '
	reset_run && mksrc &&
	printf "pid %s\nhost %s\nboot %s\npurpose test\n" $$ "$(uname -n)" \
		"$(cat /proc/sys/kernel/random/boot_id)" >s/.ckpt/lock &&
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=rename \
		CKPT_FAULT_ACTION=fail CKPT_FAULT_NTH=2 \
		CKPT_FAULT_PATH="*/src/model.bin" \
		ckpt -C s save --move --lock-timeout 0 --run r --step 2 src 2>err &&
	rm s/.ckpt/lock &&
	! grep "moved files were moved back" err &&
	test_grep "1 of 3 moved files could not be moved back and is in .*/.tmp-step-2" err &&
	test_path_is_missing src/model.bin &&
	ckpt -C s gc --restore >out &&
	nothing_lost
'

test_expect_success '--copy never widens a mode (0600 stays 0600); --link keeps it' '
	reset_run && mksrc &&
	chmod 600 src/model.bin && chmod 640 src/optimizer.pt &&
	mkdir src/sub && chmod 700 src/sub && echo x >src/sub/f && chmod 600 src/sub/f &&
	(umask 022 && ckpt -C s save --copy --run r --step 2 src >/dev/null) &&
	echo 600 >expect && stat -c %a s/runs/r/step-2/model.bin >actual &&
	test_cmp expect actual &&
	echo 640 >expect && stat -c %a s/runs/r/step-2/optimizer.pt >actual &&
	test_cmp expect actual &&
	echo 600 >expect && stat -c %a s/runs/r/step-2/sub/f >actual &&
	test_cmp expect actual &&
	echo 700 >expect && stat -c %a s/runs/r/step-2/sub >actual &&
	test_cmp expect actual &&
	echo 600 >expect && stat -c %a src/model.bin >actual &&
	test_cmp expect actual &&
	ckpt -C s save --link --run r --step 3 src >/dev/null &&
	echo 600 >expect && stat -c %a s/runs/r/step-3/model.bin >actual &&
	test_cmp expect actual && rm -rf s/runs/r/step-3 &&
	test_path_is_missing s/runs/r/step-3
'

# Names the manifest reader rejects: a newline, a tab, a backslash,
# bytes that are not UTF-8.
test_expect_success 'names a manifest cannot hold: exit 2 before anything moves' '
	for bad in "a
b" "tab	x" "back\\slash" "$(printf "bad\\377name")"; do
		reset_run && mksrc &&
		echo x >"src/$bad" &&
		test_expect_code 2 ckpt -C s save --move --run r --step 2 src 2>err &&
		test_grep "a file name a manifest cannot hold" err &&
		test_path_is_file src/model.bin &&
		test_path_is_file "src/$bad" &&
		test_path_is_missing s/runs/r/step-2 &&
		test -z "$(ls -A s/runs/r | grep -v step-1)" || exit 1
	done &&
	reset_run && mksrc && mkdir src/d && echo x >"src/d/new
line" &&
	test_expect_code 2 ckpt -C s save --copy --run r --step 2 src 2>err &&
	test_grep "d/new\\\\nline" err &&
	rm -r src/d && echo x >"src/ünïcödé.bin" &&
	ckpt -C s save --move --run r --step 2 src >/dev/null &&
	ckpt -C s verify r@2 >/dev/null
'

test_done
