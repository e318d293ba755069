# SPDX-License-Identifier: MIT
#
# The ckpt Makefile: hand-written GNU make that works with pkg-config alone.
# ./configure is optional; when run it writes config.mak.autogen, which is
# read below.  Your own overrides go in config.mak (never committed).
#
#   make                 build ckpt, libckpt.{a,so}, libckpt.pc, test tools
#   make check           install missing packages, build, run every test
#                        (plain and under ASan+UBSan)
#   make demo            install missing packages, build, tour a sample run
#   make bench           run the benchmarks (bench/README.md)
#   make install         PREFIX=/usr/local DESTDIR=
#   V=1                  show full commands
#   SANITIZE=address,undefined    build with sanitizers
#   DEVELOPER=1          strict warnings as errors
#   O=DIR                put build outputs in DIR (default: the source tree)

all::

-include config.mak.autogen
-include config.mak

VERSION = 0.1.0
ABI = 0

O ?= .
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
# "make install PREFIX=..." wins over ./configure --prefix.
ifeq ($(origin PREFIX),command line)
prefix := $(PREFIX)
endif
bindir ?= $(prefix)/bin
libdir ?= $(prefix)/lib
includedir ?= $(prefix)/include
datadir ?= $(prefix)/share
mandir ?= $(datadir)/man
pkgconfigdir ?= $(libdir)/pkgconfig

CC ?= cc
PKG_CONFIG ?= pkg-config
DEPS ?= libsodium jansson yaml-0.1 libcrypto
# Built against, not linked: loaded when first needed (lib/util/dl.h),
# libcurl for s3:// stores, libarchive for bundles and deflated zip members.
LOADED_DEPS ?= libcurl libarchive
DEP_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags $(DEPS) $(LOADED_DEPS) \
	2>/dev/null)
DEP_LIBS ?= $(shell $(PKG_CONFIG) --libs $(DEPS) 2>/dev/null)
CHECK_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS ?= $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
# Without Check, ckpt still builds; "make check" then fails, saying why.
HAVE_CHECK ?= $(shell $(PKG_CONFIG) --exists check 2>/dev/null && echo yes)

CFLAGS ?= -O2 -g
BASIC_CFLAGS = -std=c11 -Wall -Wextra -Wno-unused-parameter -fPIC \
	-fvisibility=hidden -pthread -MMD -MP -Ilib/include
BASIC_LDFLAGS = -pthread
EXTRA_LIBS = -lm

ifdef DEVELOPER
BASIC_CFLAGS += -Werror -Wvla -Wstrict-prototypes -Wold-style-definition \
	-Wwrite-strings -fno-common -Wshadow -Wmissing-prototypes -Wformat=2 \
	-Wno-format-nonliteral
endif
ifdef SANITIZE
BASIC_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
BASIC_LDFLAGS += -fsanitize=$(SANITIZE)
endif
ifdef NO_OPENSSL
BASIC_CFLAGS += -DCKPT_NO_OPENSSL
DEPS := $(filter-out libcrypto,$(DEPS))
endif

ALL_CFLAGS = $(BASIC_CFLAGS) $(DEP_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(BASIC_LDFLAGS) $(LDFLAGS)

LIB_SRCS := $(sort $(wildcard lib/*/*.c))
CMD_SRCS := $(sort $(wildcard cmd/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
TOOL_SRCS := $(sort $(wildcard tests/helper/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
CMD_OBJS := $(CMD_SRCS:%.c=$(O)/%.o)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(O)/%.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(O)/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(O)/%.o)
FUZZ_OBJS := $(FUZZ_SRCS:%.c=$(O)/%.o)
FUZZ_PROGS := $(patsubst %.c,$(O)/%,$(filter tests/fuzz/fuzz-%.c,$(FUZZ_SRCS)))
BENCH_PROGS := $(BENCH_SRCS:%.c=$(O)/%)

LIB_A = $(O)/lib/libckpt.a
LIB_SO = $(O)/lib/libckpt.so.$(ABI)
PROG = $(O)/ckpt
UNIT = $(O)/tests/unit/ckpt-unit
TOOL = $(O)/tests/helper/ckpt-test-tool
PCFILE = $(O)/libckpt.pc
# The fault-injection shim of the crash tests (LD_PRELOAD).
FAULT_SO = $(O)/tests/helper/libckpt-fault.so

ifneq ($(V),1)
QUIET_CC = @echo '   ' CC $@;
QUIET_AR = @echo '   ' AR $@;
QUIET_LINK = @echo '   ' LINK $@;
QUIET_GEN = @echo '   ' GEN $@;
endif

all:: $(PROG) $(LIB_A) $(LIB_SO) $(PCFILE) $(TOOL) $(FUZZ_PROGS) $(FAULT_SO)
ifeq ($(HAVE_CHECK),yes)
all:: $(UNIT)
else
# A stale runner from an earlier build must not pass for this one.
all::
	@rm -f $(UNIT)
	@echo "warning: Check (pkg-config check) not found: the unit tests are not built" >&2
endif

# Rebuild everything when the flags change (git's GIT-CFLAGS).
$(O)/CKPT-CFLAGS: FORCE
	@mkdir -p $(O)
	@flags='$(ALL_CFLAGS)'; \
	if test x"$$flags" != x"`cat $@ 2>/dev/null`"; then \
		echo "$$flags" >$@; fi

$(O)/%.o: %.c $(O)/CKPT-CFLAGS
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Library sources name their internal headers by layer: "format/file.h".
$(O)/lib/%.o: ALL_CFLAGS += -Ilib

# The test tool and fuzz harnesses reach the S3 client's internal header.
$(O)/tests/helper/%.o $(O)/tests/fuzz/%.o: ALL_CFLAGS += -Ilib

$(O)/tests/unit/%.o: ALL_CFLAGS += $(CHECK_CFLAGS) -Ilib -I$(O)/tests/unit \
	-Wno-missing-prototypes

# The suite table is generated from the sources (libarchive's list.h): every
# "NAME_suite(void)" definition in tests/unit/check_*.c is a suite.
$(O)/tests/unit/suites.inc: $(filter tests/unit/check_%,$(UNIT_SRCS))
	@mkdir -p $(dir $@)
	$(QUIET_GEN)sed -n 's/^\([a-z_0-9]*_suite\)(void)$$/SUITE(\1)/p' $^ >$@+ && \
		mv $@+ $@

$(O)/tests/unit/main.o: $(O)/tests/unit/suites.inc

$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	$(QUIET_AR)$(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJS)
	$(QUIET_LINK)$(CC) -shared -Wl,-soname,libckpt.so.$(ABI) \
		$(ALL_LDFLAGS) -o $@ $^ $(DEP_LIBS) $(EXTRA_LIBS)

$(PROG): $(CMD_OBJS) $(LIB_A)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $(CMD_OBJS) $(LIB_A) \
		$(DEP_LIBS) $(EXTRA_LIBS)

$(UNIT): $(UNIT_OBJS) $(LIB_A)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $(UNIT_OBJS) $(LIB_A) \
		$(CHECK_LIBS) $(DEP_LIBS) $(EXTRA_LIBS)

$(TOOL): $(TOOL_OBJS) $(LIB_A)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $(TOOL_OBJS) $(LIB_A) \
		$(DEP_LIBS) $(EXTRA_LIBS)

# Fuzz harnesses: with FUZZ=1 (scripts/fuzz, clang) libFuzzer provides
# main(); otherwise tests/fuzz/replay.c does, and make check replays the
# corpus through them.
ifdef FUZZ
FUZZ_MAIN =
FUZZ_LDFLAGS = -fsanitize=fuzzer
else
FUZZ_MAIN = $(O)/tests/fuzz/replay.o
FUZZ_LDFLAGS =
endif
$(FUZZ_PROGS): $(O)/tests/fuzz/%: $(O)/tests/fuzz/%.o $(FUZZ_MAIN) $(LIB_A)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_MAIN) \
		$(LIB_A) $(DEP_LIBS) $(EXTRA_LIBS)

fuzzers: $(FUZZ_PROGS)

# Benchmark tools: one program per bench/*.c, linked against libckpt.a.
$(BENCH_PROGS): $(O)/bench/%: $(O)/bench/%.o $(LIB_A)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) \
		$(DEP_LIBS) $(EXTRA_LIBS)

# Built without sanitizers: it is preloaded into sanitized binaries too.
$(FAULT_SO): tests/helper/inject/fault.c
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) -shared -fPIC -O2 -Wall -o $@ $< -ldl

$(PCFILE): lib/libckpt.pc.in Makefile
	@mkdir -p $(dir $@)
	$(QUIET_GEN)sed -e 's|@prefix@|$(prefix)|' -e 's|@libdir@|$(libdir)|' \
		-e 's|@includedir@|$(includedir)|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@DEPS@|$(DEPS)|' $< >$@

# Tests ---------------------------------------------------------------

# "check" is the one command of the README: it installs what is missing,
# builds, then runs every test plainly and again under ASan+UBSan.
# The sub-makes run in parallel on every core unless -j was given.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SUBMAKE = $(MAKE) --no-print-directory \
	$(if $(findstring j,$(filter-out --%,$(MAKEFLAGS))),,-j$(JOBS))

check:
	@scripts/install-deps
	@scripts/install-deps rgw || \
		echo "warning: Ceph RGW not installed: the S3 tests will skip" >&2
	@$(SUBMAKE) all
	@$(SUBMAKE) O=build-asan SANITIZE=address,undefined CFLAGS='-O1 -g' all
	@tests/run-tests --build . --build build-asan

# Run the tests of one build without installing anything.
test: all
	@tests/run-tests --build $(O)

demo:
	@scripts/install-deps
	@$(SUBMAKE) all
	@scripts/demo

bench: all $(BENCH_PROGS)
	@CKPT_BUILD=$(abspath $(O)) bench/run

lint-man:
	@if command -v mandoc >/dev/null; then \
		mandoc -Tlint -W warning man/*.[0-9]; \
	else echo "mandoc not found; skipping man page lint"; fi

# Fuzzing (libFuzzer, clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 30
fuzz:
	@scripts/fuzz $(FUZZ_SECONDS)

# Install -------------------------------------------------------------

MAN1 := $(wildcard man/*.1)
MAN5 := $(wildcard man/*.5)

# Only what it installs, so that an install-only build stays small.
install: $(PROG) $(LIB_A) $(LIB_SO) $(PCFILE)
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(libdir) \
		$(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir) \
		$(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man5 \
		$(DESTDIR)$(datadir)/bash-completion/completions \
		$(DESTDIR)$(datadir)/zsh/site-functions \
		$(DESTDIR)$(datadir)/fish/vendor_completions.d
	install -m 755 $(PROG) $(DESTDIR)$(bindir)/ckpt
	install -m 644 $(LIB_A) $(DESTDIR)$(libdir)/libckpt.a
	install -m 755 $(LIB_SO) $(DESTDIR)$(libdir)/libckpt.so.$(ABI)
	ln -sf libckpt.so.$(ABI) $(DESTDIR)$(libdir)/libckpt.so
	install -m 644 lib/include/ckpt.h $(DESTDIR)$(includedir)/ckpt.h
	install -m 644 $(PCFILE) $(DESTDIR)$(pkgconfigdir)/libckpt.pc
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(mandir)/man1)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(mandir)/man5)
	install -m 644 completions/ckpt.bash \
		$(DESTDIR)$(datadir)/bash-completion/completions/ckpt
	install -m 644 completions/_ckpt $(DESTDIR)$(datadir)/zsh/site-functions/_ckpt
	install -m 644 completions/ckpt.fish \
		$(DESTDIR)$(datadir)/fish/vendor_completions.d/ckpt.fish

uninstall:
	rm -f $(DESTDIR)$(bindir)/ckpt $(DESTDIR)$(libdir)/libckpt.a \
		$(DESTDIR)$(libdir)/libckpt.so.$(ABI) $(DESTDIR)$(libdir)/libckpt.so \
		$(DESTDIR)$(includedir)/ckpt.h $(DESTDIR)$(pkgconfigdir)/libckpt.pc \
		$(DESTDIR)$(datadir)/bash-completion/completions/ckpt \
		$(DESTDIR)$(datadir)/zsh/site-functions/_ckpt \
		$(DESTDIR)$(datadir)/fish/vendor_completions.d/ckpt.fish
	rm -f $(addprefix $(DESTDIR)$(mandir)/man1/,$(notdir $(MAN1))) \
		$(addprefix $(DESTDIR)$(mandir)/man5/,$(notdir $(MAN5)))

configure: configure.ac config.mak.in m4/pkg.m4
	autoconf

clean:
	rm -rf build-asan build-fuzz tests/trash.* tests/out
	rm -f tests/unit/suites.inc ckpt lib/libckpt.a lib/libckpt.so.* libckpt.pc CKPT-CFLAGS \
		tests/unit/ckpt-unit tests/helper/ckpt-test-tool $(BENCH_PROGS) \
		$(FUZZ_PROGS) tests/helper/libckpt-fault.so
	rm -rf bench/out
	find cmd lib tests bench -name '*.[od]' -delete

distclean: clean
	rm -rf config.mak.autogen config.log config.status configure \
		autom4te.cache tests/fixtures-gen

.PHONY: all check test demo bench install uninstall clean distclean \
	lint-man fuzz fuzzers FORCE

-include $(LIB_OBJS:.o=.d) $(CMD_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) \
	$(TOOL_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
