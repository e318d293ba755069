#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='dispatcher: help, version, exit codes, command table'
. "$(dirname "$0")/lib.sh"

test_expect_success 'ckpt with no command prints usage and exits 2' '
	test_expect_code 2 ckpt 2>err &&
	test_grep "^usage: ckpt" err
'

test_expect_success 'ckpt -h prints usage on stdout and exits 0' '
	ckpt -h >out &&
	test_grep "^usage: ckpt" out &&
	test_grep "^   verify " out
'

test_expect_success '--version prints the library version' '
	ckpt --version >out &&
	test_grep "^ckpt version [0-9][0-9.]*$" out
'

test_expect_success 'an unknown command exits 2 with a hint' '
	test_expect_code 2 ckpt verifx 2>err &&
	test_grep "is not a ckpt command" err &&
	test_grep "verify" err
'

test_expect_success 'an unknown global option exits 2' '
	test_expect_code 2 ckpt --frobnicate ls 2>err &&
	test_grep "unknown option" err
'

test_expect_success '--list-commands is sorted and unique' '
	ckpt --list-commands >cmds &&
	sort -u cmds >sorted &&
	test_cmp sorted cmds &&
	test $(wc -l <cmds) -ge 5
'

test_expect_success 'every command handles -h with exit 0 and usage on stdout' '
	for c in $(ckpt --list-commands); do
		ckpt $c -h >out 2>err || { echo "$c -h failed"; exit 1; }
		test_grep "^usage: ckpt $c" out || exit 1
		test ! -s err || { echo "$c -h wrote to stderr"; exit 1; }
	done
'

test_expect_success 'every command takes --json and -q' '
	for c in $(ckpt --list-commands); do
		ckpt $c -h >out && test_grep "[-][-]json" out || exit 1
		ckpt $c --completion-helper >comp || exit 1
		test_grep "^--json$" comp || exit 1
	done
'

test_expect_success 'an unknown option of a command exits 2 with usage' '
	for c in $(ckpt --list-commands); do
		test_expect_code 2 ckpt $c --no-such-option 2>err || exit 1
		test_grep "^usage: ckpt $c" err || exit 1
	done
'

test_expect_success 'a missing option value exits 2' '
	test_expect_code 2 ckpt ls --store 2>err &&
	test_grep "needs a value" err
'

test_done
