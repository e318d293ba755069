#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='exit codes: enum ckpt_exit, ckpt(1) EXIT STATUS and README agree'
. "$(dirname "$0")/lib.sh"

# "NAME VALUE" for each member of enum ckpt_exit in cmd/ckpt.h.
enum_codes() {
	sed -n '/^enum ckpt_exit {/,/^};/p' "$SRC_DIRECTORY/cmd/ckpt.h" |
		sed -n 's/^[[:space:]]*\(CKPT_EXIT_[A-Z_]*\) = \([0-9]*\),\{0,1\}.*/\2/p'
}

# The numbers listed in the EXIT STATUS section of ckpt(1), as rendered.
man_codes() {
	mandoc -T ascii -O width=300 "$SRC_DIRECTORY/man/ckpt.1" | col -bx |
		awk '/^EXIT STATUS$/ { on = 1; next }
		    on && /^[^ ]/ { exit }
		    on && /^     [0-9]+ / { print $1 }'
}

test_expect_success 'enum ckpt_exit is 0, 1, 2, 3' '
	enum_codes >actual &&
	printf "%s\n" 0 1 2 3 >expect &&
	test_cmp expect actual
'

test_expect_success MANDOC 'ckpt(1) EXIT STATUS documents exactly those codes' '
	enum_codes >expect &&
	man_codes >actual &&
	test_cmp expect actual
'

test_expect_success MANDOC 'each code has the meaning given in cmd/ckpt.h' '
	mandoc -T ascii -O width=300 "$SRC_DIRECTORY/man/ckpt.1" | col -bx |
		sed -n "/^EXIT STATUS/,/^[A-Z]/p" >exit.txt &&
	test_grep "^     0 *Success" exit.txt &&
	test_grep "^     1 *The answer is \"no\": the input was read but is broken, unsafe or" exit.txt &&
	test_grep "^     2 *Usage error" exit.txt &&
	test_grep "^     3 *Could not run: ckpt could not do its job" exit.txt
'

test_expect_success 'README lists the same codes' '
	sed -n "/^Exit status/,/^[A-Z][a-z]*$/p" "$SRC_DIRECTORY/README" |
		sed -n "s/^    \([0-9]\)  .*/\1/p" >actual &&
	enum_codes >expect &&
	test_cmp expect actual
'

test_expect_success 'exit 0: success' '
	test_expect_code 0 ckpt --version >/dev/null &&
	test_expect_code 0 ckpt help >/dev/null
'

test_expect_success 'exit 2: usage errors, with nothing on stdout' '
	test_expect_code 2 ckpt >out 2>err &&
	test_cmp /dev/null out &&
	test_expect_code 2 ckpt no-such-command >out 2>err &&
	test_cmp /dev/null out &&
	for c in $(ckpt --list-commands); do
		test_expect_code 2 ckpt --json $c --no-such-option >out 2>err &&
		test_cmp /dev/null out &&
		test -s err || { echo "ckpt $c" >&2; exit 1; }
	done
'

test_expect_success 'exit 3: cannot run; --json is still one document naming the error' '
	test_expect_code 3 ckpt --json inspect does-not-exist >out 2>err &&
	test_grep "\"error\": {" out &&
	test_grep "\"exit_status\": 3" out &&
	test_grep "does-not-exist" err
'

test_expect_success 'exit 3: a write error on stdout is not success' '
	for args in help --version -h "ls -h" --list-commands; do
		test_expect_code 3 ckpt $args >/dev/full 2>err &&
		test_grep "write failure" err || exit 1
	done
'

test_done
