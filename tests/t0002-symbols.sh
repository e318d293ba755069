#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='libckpt.so exports exactly the CKPT_API functions of ckpt.h; libckpt.a has no unprefixed global'
. "$(dirname "$0")/lib.sh"

HEADER=$SRC_DIRECTORY/lib/include/ckpt.h
SO=$CKPT_BUILD/lib/libckpt.so.0

# Names of the functions declared with CKPT_API: the header with comments
# and preprocessor lines removed, joined, each "CKPT_API ... name(".
declared() {
	sed -e 's://.*$::' "$1" |
	awk 'BEGIN { c = 0 }
	    { line = $0
	      while (1) {
		if (c) { i = index(line, "*/"); if (!i) { line = ""; break }
			 line = substr(line, i + 2); c = 0 }
		i = index(line, "/*"); if (!i) break
		rest = substr(line, i + 2); line = substr(line, 1, i - 1) " "
		j = index(rest, "*/")
		if (j) line = line substr(rest, j + 2); else c = 1
	      }
	      if (line !~ /^[ \t]*#/) printf "%s ", line }' |
	grep -o 'CKPT_API[^;{]*(' |
	sed 's/[[:space:]]*($//; s/.*[^A-Za-z0-9_]//' | sort -u
}

exported() {
	nm -D --defined-only "$1" | awk '$2 ~ /^[TW]$/ { print $3 }' | sort -u
}

test_expect_success 'the header declares CKPT_API functions' '
	declared "$HEADER" >declared &&
	test_grep "^ckpt_file_open$" declared &&
	test_grep "^ckpt_hash_new$" declared &&
	test_grep "^ckpt_version$" declared &&
	! grep -v "^ckpt_[a-z0-9_]*$" declared
'

test_expect_success 'the parser handles multi-line and pointer-returning declarations' '
	cat >t.h <<-\EOF &&
	#define CKPT_API __attribute__((visibility("default")))
	/* CKPT_API int not_me(void); */
	CKPT_API const struct ckpt_finding *ckpt_a(
	    const struct ckpt_file *f, size_t i);
	CKPT_API int
	    ckpt_b(int x);
	int ckpt_c(void);
	EOF
	declared t.h >actual &&
	printf "%s\n" ckpt_a ckpt_b >expect &&
	test_cmp expect actual
'

test_expect_success 'every export is declared with CKPT_API' '
	declared "$HEADER" >declared &&
	exported "$SO" >exported &&
	test -s exported &&
	comm -13 declared exported >extra &&
	test_cmp /dev/null extra
'

test_expect_success 'every CKPT_API function is exported' '
	declared "$HEADER" >declared &&
	exported "$SO" >exported &&
	comm -23 declared exported >missing &&
	test_cmp /dev/null missing
'

test_expect_success 'no data symbols are exported' '
	nm -D --defined-only "$SO" | awk "\$2 !~ /^[TW]$/" >data &&
	test_cmp /dev/null data
'

# Global symbols libckpt.a defines: a program that links it statically
# shares their namespace, so every one starts with ckpt_ (the public
# functions, and the internal ones, which hidden visibility keeps out of
# the .so).  ASan adds an __odr_asan.NAME for each global NAME.
globals_of() {
	nm -g --defined-only "$1" |
	awk "NF == 3 { sub(/^__odr_asan[.]/, \"\", \$3); print \$3 }" | sort -u
}

test_expect_success 'libckpt.a defines no global without the ckpt_ prefix' '
	globals_of "$CKPT_BUILD/lib/libckpt.a" >globals &&
	test_grep "^ckpt_file_open$" globals &&
	awk "!/^ckpt_/" globals >unprefixed &&
	test_cmp /dev/null unprefixed
'

test_expect_success 'libckpt.so defines no global without the ckpt_ prefix' '
	nm -D --defined-only "$SO" |
	awk "NF == 3 && \$3 !~ /^ckpt_/ { print \$3 }" >unprefixed &&
	test_cmp /dev/null unprefixed
'

test_expect_success 'the check catches an unprefixed global' '
	printf "int flist_add(void);\nint flist_add(void) { return 0; }\n" >g.c &&
	${CC:-cc} -c g.c -o g.o &&
	ar rc g.a g.o &&
	globals_of g.a | awk "!/^ckpt_/" >unprefixed &&
	test_grep "^flist_add$" unprefixed
'

test_expect_success 'the installed header names no tracker issue' '
	! grep -n "issue #\|(#[0-9]" "$HEADER"
'

# Option-value parsers and file readers of the command line live in the
# uninstalled lib/include/ckpt-cli.h, hidden in the shared library.
test_expect_success 'CLI helpers are neither in the installed header nor exported' '
	printf "%s\n" ckpt_config_to_json ckpt_duration_format \
	    ckpt_duration_parse ckpt_json_from_python ckpt_size_parse >cli &&
	declared "$HEADER" >declared &&
	comm -12 cli declared >in_header &&
	test_cmp /dev/null in_header &&
	exported "$SO" >exported &&
	comm -12 cli exported >in_so &&
	test_cmp /dev/null in_so &&
	globals_of "$CKPT_BUILD/lib/libckpt.a" >globals &&
	comm -12 cli globals >in_a &&
	test_cmp cli in_a
'

test_expect_success 'the soname is libckpt.so.0' '
	objdump -p "$SO" | awk "\$1 == \"SONAME\" { print \$2 }" >actual &&
	echo libckpt.so.0 >expect &&
	test_cmp expect actual
'

test_done
