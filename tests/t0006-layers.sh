#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='libckpt layers: every dependency points downward'
. "$(dirname "$0")/lib.sh"

test_expect_success 'the built objects use no symbol of a higher layer' '
	"$SRC_DIRECTORY/scripts/check-layers" "$CKPT_BUILD" 2>err &&
	! test -s err
'

test_expect_success 'every library source is in a layer folder' '
	find "$SRC_DIRECTORY/lib" -maxdepth 1 -name "*.c" >flat &&
	! test -s flat
'

# The check must be able to fail: a fake object of the lowest layer that
# calls a function of the store layer is caught.
test_expect_success 'an upward call is reported' '
	mkdir -p fake/lib/util fake/lib/store &&
	cp "$CKPT_BUILD"/lib/store/store.o fake/lib/store/ &&
	printf "int ckpt_store_open(void);\nint f(void) { return ckpt_store_open(); }\n" >up.c &&
	${CC:-cc} -c -o fake/lib/util/up.o up.c &&
	test_expect_code 1 "$SRC_DIRECTORY/scripts/check-layers" fake 2>err &&
	test_grep "lib/util/up.o (util) uses ckpt_store_open from store" err
'

test_done
