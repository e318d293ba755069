#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='fuzz harnesses replay their seed corpus and saved crashers'
. "$(dirname "$0")/lib.sh"

FUZZ_SRC=$SRC_DIRECTORY/tests/fuzz
FUZZ_BIN=$CKPT_BUILD/tests/fuzz

targets() {
	for c in "$FUZZ_SRC"/fuzz-*.c; do
		n=${c##*/fuzz-}
		echo "${n%.c}"
	done
}

test_expect_success 'every harness is built and has a seed corpus' '
	test -n "$(targets)" &&
	for t in $(targets); do
		test -x "$FUZZ_BIN/fuzz-$t" ||
			{ echo "fuzz-$t not built" >&2; exit 1; }
		ls "$FUZZ_SRC/corpus/$t" | grep -q . ||
			{ echo "no seeds for $t" >&2; exit 1; }
	done
'

test_expect_success 'seeds are small (< 4 KiB)' '
	find "$FUZZ_SRC/corpus" "$FUZZ_SRC/regress" -type f -size +4095c >big &&
	test_cmp /dev/null big
'

test_expect_success 'the replayer fails on an unreadable input' '
	test_must_fail "$FUZZ_BIN/fuzz-file" does-not-exist 2>err &&
	test_grep "does-not-exist" err
'

for t in $(targets); do
	test_expect_success "fuzz-$t replays corpus/$t and regress/$t" "
		set -- '$FUZZ_SRC/corpus/$t' &&
		if test -d '$FUZZ_SRC/regress/$t'; then
			set -- \"\$@\" '$FUZZ_SRC/regress/$t'
		fi &&
		'$FUZZ_BIN/fuzz-$t' -v \"\$@\" >out 2>err ||
			{ tail -n 30 err >&2; exit 1; }
		test_grep '^[1-9][0-9]* inputs$' out
	"
done

test_done
