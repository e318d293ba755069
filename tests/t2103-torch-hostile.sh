#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='hostile pickles and zips: each caught with its finding'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/hostile

# findings [--crc] FILE: never a crash or a sanitizer report (status > 1)
findings() {
	ckpt-test-tool findings "$@" >out 2>err
	st=$?
	if test $st -gt 1; then
		echo "ckpt-test-tool died with status $st on $*" >&2
		cat err >&2
		return 1
	fi
	return 0
}

if test_have_prereq TORCH && test -f "$FX/EXPECT"; then
	while IFS='	' read -r file flags re; do
		opt=
		test "$flags" = crc && opt=--crc
		test_expect_success "$file: /$re/" '
			findings $opt "$FX/$file" &&
			grep -E -e "$re" out || { cat out; false; }
		'
	done <"$FX/EXPECT"
else
	test_expect_success TORCH 'hostile fixtures were generated' 'false'
fi

test_expect_success TORCH 'every hostile file opens or fails cleanly' '
	for f in "$FX"/*.p*; do
		findings "$f" && findings --crc "$f" || exit 1
		st=0
		ckpt-test-tool tensors "$f" >/dev/null 2>&1 || st=$?
		test $st -le 1 || { echo "tensors died on $f"; exit 1; }
		st=0
		ckpt-test-tool metadata "$f" >/dev/null 2>&1 || st=$?
		test $st -le 1 || { echo "metadata died on $f"; exit 1; }
	done
'

test_expect_success TORCH 'a clean crafted archive has no findings' '
	findings --crc "$FX/z00-clean.pt" &&
	test $(wc -l <out) = 1 &&
	findings --crc "$FX/t00-crafted-ok.pt" &&
	test $(wc -l <out) = 1
'

test_expect_success TORCH 'a global outside the allowlist is recorded, not allowed' '
	ckpt-test-tool globals "$FX/p02-memo-stack-global.pkl" >out &&
	test_grep "^os.system not-allowed$" out
'

test_expect_success TORCH 'the tree keeps the opaque node' '
	ckpt-test-tool metadata "$FX/p01-zipped.pt" >out &&
	test_grep "{\"\$global\":\"os.system\",\"\$args\":\[\"true\"\]}" out
'

test_done
