#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='test-lint: every test body keeps its && chain, ends with an assertion and hides no crash'
. "$(dirname "$0")/lib.sh"

lint() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/test-lint.py" "$@"
}

# sample NAME: writes the body on stdin into NAME.sh as one test.
sample() {
	{
		printf "test_expect_success %s %s\n" "${SQ}sample${SQ}" "$SQ"
		cat
		echo "$SQ"
	} >"$1.sh"
}
SQ="'"

test_expect_success 'every test script of the suite passes the lint' '
	lint "$SRC_DIRECTORY"/tests/t[0-9]*.sh >out &&
	test_must_fail test -s out
'

test_expect_success 'a broken && chain is refused' '
	sample broken <<-\EOF &&
	ckpt ls >out
	test_grep x out
	EOF
	test_expect_code 1 lint broken.sh >out &&
	test_grep "broken.sh:2: broken && chain" out
'

test_expect_success 'a heredoc without && breaks the chain too' '
	sample heredoc <<-\EOF &&
	cat >expect <<-\END
	x
	END
	test_cmp expect actual
	EOF
	test_expect_code 1 lint heredoc.sh >out &&
	test_grep "heredoc.sh:2: broken && chain" out
'

test_expect_success '"|| :" and "|| true" are refused' '
	sample colon <<-\EOF &&
	ckpt ls >out || : &&
	ckpt ls >out || true &&
	test_grep x out
	EOF
	test_expect_code 1 lint colon.sh >out &&
	test_grep "colon.sh:2: .|| :. or .|| true. hides a crash" out &&
	test_grep "colon.sh:3: .|| :. or .|| true. hides a crash" out
'

test_expect_success 'a body without an assertion at its end is refused' '
	sample noassert <<-\EOF &&
	ckpt ls >out &&
	cat out
	EOF
	test_expect_code 1 lint noassert.sh >out &&
	test_grep "noassert.sh:3: the body ends without an assertion" out &&
	sample dangling <<-\EOF &&
	test_grep x out &&
	EOF
	test_expect_code 1 lint dangling.sh >out &&
	test_grep "dangling.sh:2: dangling &&" out
'

test_expect_success 'loops, ifs, case patterns, groups and background jobs pass' '
	sample fine <<-\EOF &&
	for f in a b; do
		echo $f >$f
		test -f $f || exit 1
	done &&
	if test -f a; then
		echo yes
	else
		echo no
	fi &&
	case x in
	x) echo x ;;
	*)
		echo other ;;
	esac &&
	{ sleep 1 & } &&
	pid=$! &&
	sleep 2 &
	other=$! &&
	"$PYTHON" -c "
	print(1)
	" &&
	wait $pid &&
	test_cmp a b
	EOF
	lint fine.sh >out &&
	test_must_fail test -s out
'

test_done
