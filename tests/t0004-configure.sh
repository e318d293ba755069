#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='autoconf && ./configure && make builds, as the plain Makefile does'
. "$(dirname "$0")/lib.sh"

# In a scratch copy of the source (the files git knows, plus new ones not
# ignored), so the tree under test is never configured behind its back.
S=$TRASH_DIRECTORY/src

copy_source() {
	mkdir -p "$S" &&
	if git -C "$SRC_DIRECTORY" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$SRC_DIRECTORY" && git ls-files -co --exclude-standard -z |
			xargs -0 cp --parents -t "$S")
	else
		(cd "$SRC_DIRECTORY" && tar cf - --exclude=./tests/out \
			--exclude='./build-*' --exclude=./bench/out .) |
			(cd "$S" && tar xf -) && (cd "$S" && make -s distclean)
	fi &&
	(cd "$S" && find . -type f | sort) >"$TRASH_DIRECTORY/source.list"
}

if command -v autoconf >/dev/null 2>&1; then
	test_set_prereq AUTOCONF
else
	say "# autoconf is not installed (scripts/install-deps installs it)"
fi

test_expect_success AUTOCONF,NOT_SANITIZED 'autoconf generates configure' '
	copy_source &&
	test_path_is_missing "$S/configure" &&
	(cd "$S" && autoconf) &&
	test -x "$S/configure"
'

test_expect_success AUTOCONF,NOT_SANITIZED './configure finds the dependencies' '
	(cd "$S" && ./configure --prefix=/opt/ckpt >"$TRASH_DIRECTORY/configure.log" 2>&1) ||
		{ cat "$TRASH_DIRECTORY/configure.log" "$S/config.log" >&2; exit 1; } &&
	test_grep "^prefix = /opt/ckpt$" "$S/config.mak.autogen" &&
	test_grep "^DEP_LIBS = .*-lsodium" "$S/config.mak.autogen" &&
	# built against, loaded when first needed (lib/util/dl.h)
	! grep -q "^DEP_LIBS = .*-larchive" "$S/config.mak.autogen" &&
	! grep -q "^DEP_LIBS = .*-lcurl" "$S/config.mak.autogen" &&
	test_grep "^DEP_LIBS = .*-lcrypto" "$S/config.mak.autogen" &&
	test_grep "^HAVE_CHECK = yes" "$S/config.mak.autogen"
'

test_expect_success AUTOCONF,NOT_SANITIZED 'make builds with config.mak.autogen' '
	(cd "$S" && make -j2 >"$TRASH_DIRECTORY/make.log" 2>&1) ||
		{ tail -30 "$TRASH_DIRECTORY/make.log" >&2; exit 1; } &&
	"$S/ckpt" --version &&
	test -x "$S/tests/unit/ckpt-unit" &&
	grep -q "^prefix=/opt/ckpt$" "$S/libckpt.pc"
'

test_expect_success AUTOCONF,NOT_SANITIZED 'make install follows --prefix' '
	(cd "$S" && make -s install DESTDIR="$TRASH_DIRECTORY/d" >/dev/null) &&
	test -x "$TRASH_DIRECTORY/d/opt/ckpt/bin/ckpt" &&
	test -f "$TRASH_DIRECTORY/d/opt/ckpt/share/man/man1/ckpt.1"
'

test_expect_success AUTOCONF,NOT_SANITIZED '--without-openssl builds the libsodium fallback' '
	(cd "$S" && make -s distclean && test_path_is_missing config.mak.autogen &&
	 autoconf && ./configure --without-openssl >"$TRASH_DIRECTORY/configure.log" 2>&1 &&
	 test_grep "^NO_OPENSSL = 1" config.mak.autogen &&
	 ! grep -q "^DEP_LIBS = .*-lcrypto" config.mak.autogen &&
	 make -j2 tests/helper/ckpt-test-tool >"$TRASH_DIRECTORY/make.log" 2>&1) ||
		{ tail -30 "$TRASH_DIRECTORY/make.log" >&2; exit 1; } &&
	"$S/tests/helper/ckpt-test-tool" sha256 "$S/README" >actual &&
	sha256sum "$S/README" | cut -d" " -f1 >expect &&
	cut -d" " -f1 actual >actual1 && test_cmp expect actual1
'

test_expect_success AUTOCONF,NOT_SANITIZED 'make distclean leaves only the source' '
	(cd "$S" && make -s distclean >/dev/null 2>&1) &&
	(cd "$S" && find . -type f | sort) >after &&
	test_cmp source.list after
'

test_expect_success AUTOCONF,NOT_SANITIZED 'a missing dependency stops configure, naming the package' '
	(cd "$S" && autoconf && test_must_fail env PKG_CONFIG_LIBDIR=/nonexistent \
		PKG_CONFIG_PATH= ./configure >"$TRASH_DIRECTORY/out" 2>&1) &&
	test_grep "libsodium-dev" out
'

test_done
