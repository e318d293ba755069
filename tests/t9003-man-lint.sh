#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='every manual page is clean under mandoc -Tlint -W warning'
. "$(dirname "$0")/lib.sh"

for page in "$SRC_DIRECTORY"/man/*.[0-9]; do
	test -f "$page" || continue
	name=${page##*/}
	test_expect_success MANDOC "mandoc -Tlint -W warning $name" "
		mandoc -Tlint -W warning '$page' >lint.out 2>&1 ||
			{ cat lint.out >&2; exit 1; }
		test ! -s lint.out || { cat lint.out >&2; exit 1; }
	"
done

test_expect_success MANDOC 'the lint catches a broken page' '
	printf ".Dd November 27, 2026\n.Dt X 1\n.Sh NAME\n.Bl -tag\n" >bad.1 &&
	test_must_fail mandoc -Tlint -W warning bad.1
'

test_expect_success 'there is a page for ckpt itself' '
	test_path_is_file "$SRC_DIRECTORY/man/ckpt.1"
'

test_done
