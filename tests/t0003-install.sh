#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='make install/uninstall with DESTDIR; a program builds against the result'
. "$(dirname "$0")/lib.sh"

# A fresh plain build of its own (O=), so that the test never rebuilds the
# tree under test with other flags.  The sanitizer run would only repeat it.
D=$TRASH_DIRECTORY/dest
B=$TRASH_DIRECTORY/build
MAKE_INSTALL="make -s -C $SRC_DIRECTORY O=$B DESTDIR=$D PREFIX=/usr"

test_expect_success NOT_SANITIZED 'make install DESTDIR=... PREFIX=/usr' '
	$MAKE_INSTALL -j2 install >install.log 2>&1 ||
		{ cat install.log >&2; exit 1; }
'

test_expect_success NOT_SANITIZED 'binary, library, header, .pc, man pages and completions' '
	for f in bin/ckpt lib/libckpt.a lib/libckpt.so.0 include/ckpt.h \
	    lib/pkgconfig/libckpt.pc share/man/man1/ckpt.1 \
	    share/bash-completion/completions/ckpt \
	    share/zsh/site-functions/_ckpt \
	    share/fish/vendor_completions.d/ckpt.fish; do
		test_path_is_file "$D/usr/$f" || exit 1
	done &&
	test -x "$D/usr/bin/ckpt" &&
	test -L "$D/usr/lib/libckpt.so" &&
	test "$(readlink "$D/usr/lib/libckpt.so")" = libckpt.so.0 &&
	for m in "$SRC_DIRECTORY"/man/*.[0-9]; do
		s=${m##*.}
		test_path_is_file "$D/usr/share/man/man$s/${m##*/}" || exit 1
	done
'

test_expect_success NOT_SANITIZED 'the installed binary runs' '
	"$D/usr/bin/ckpt" --version >out &&
	test_grep "^ckpt version " out
'

test_expect_success NOT_SANITIZED 'the .pc file names /usr and works through pkg-config' '
	test_grep "^prefix=/usr$" "$D/usr/lib/pkgconfig/libckpt.pc" &&
	PKG_CONFIG_PATH=$D/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D \
		pkg-config --cflags --libs libckpt >flags &&
	test_grep "[-]I$D/usr/include" flags &&
	test_grep "[-]L$D/usr/lib" flags &&
	test_grep "[-]lckpt" flags
'

cat >prog.c <<'EOF'
#include <ckpt.h>
#include <stdio.h>
#include <string.h>

int
main(void)
{
	unsigned char d[CKPT_SHA256_BYTES];
	char hex[CKPT_HASH_HEX_MAX];
	struct ckpt_error err;

	if (ckpt_hash_buffer(CKPT_HASH_SHA256, "abc", 3, d, &err))
		return 1;
	ckpt_hex(d, sizeof(d), hex);
	printf("%s %s\n", ckpt_version(), hex);
	return strcmp(ckpt_strerror(CKPT_ERR_IO), "") ? 0 : 1;
}
EOF
echo "$(ckpt --version | cut -d" " -f3)" \
    ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad >prog.expect

test_expect_success NOT_SANITIZED 'a program builds and runs against the shared library' '
	flags=$(PKG_CONFIG_PATH=$D/usr/lib/pkgconfig \
		PKG_CONFIG_SYSROOT_DIR=$D pkg-config --cflags --libs libckpt) &&
	cc -std=c11 -Wall -Werror -o prog prog.c $flags &&
	LD_LIBRARY_PATH=$D/usr/lib ./prog >out &&
	test_cmp prog.expect out &&
	LD_LIBRARY_PATH=$D/usr/lib ldd ./prog >ldd.out &&
	test_grep "libckpt.so.0 => $D/usr/lib/libckpt.so.0" ldd.out
'

# Static libckpt, shared dependencies (Debian lacks some static ones that
# libarchive would pull in): the .pc file's Requires.private names them.
test_expect_success NOT_SANITIZED 'a program links against libckpt.a' '
	deps=$(PKG_CONFIG_PATH=$D/usr/lib/pkgconfig \
		pkg-config --print-requires-private libckpt) &&
	test -n "$deps" &&
	cc -std=c11 -I"$D/usr/include" -o prog-static prog.c \
		"$D/usr/lib/libckpt.a" $(pkg-config --libs $deps) -lm -pthread &&
	./prog-static >out &&
	test_cmp prog.expect out &&
	! ldd ./prog-static | grep -q libckpt
'

test_expect_success NOT_SANITIZED 'the header compiles alone as C and C++ without dependencies' '
	echo "#include <ckpt.h>" >h.c &&
	cc -std=c99 -Wall -Wextra -Werror -pedantic -I"$D/usr/include" -c h.c -o h.o &&
	if command -v c++ >/dev/null; then
		cp h.c h.cc && c++ -Wall -Werror -I"$D/usr/include" -c h.cc -o hh.o
	fi
'

test_expect_success NOT_SANITIZED 'make uninstall removes everything it installed' '
	$MAKE_INSTALL uninstall >uninstall.log 2>&1 ||
		{ cat uninstall.log >&2; exit 1; } &&
	find "$D" ! -type d >left &&
	test_cmp /dev/null left
'

test_done
