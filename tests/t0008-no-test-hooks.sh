#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='the shipped library and binary hold no test hooks

Crashes and failures for the tests come from the LD_PRELOAD shim
(tests/helper/inject/fault.c); nothing in libckpt or ckpt reads an
environment variable that kills the process or fails a step.'
. "$(dirname "$0")/lib.sh"

test_expect_success 'no CKPT_TEST_* variable in libckpt.so, libckpt.a or ckpt' '
	for f in "$CKPT_BUILD/lib/libckpt.so.0" "$CKPT_BUILD/lib/libckpt.a" \
		"$CKPT_BUILD/ckpt"; do
		test -f "$f" || { echo "missing $f"; exit 1; }
		strings -a "$f" >strings.out &&
		test_grep "ckpt-staging.json" strings.out &&
		! grep "CKPT_TEST_\|CKPT_FAULT_" strings.out || exit 1
	done
'

# The documented ones (ckpt(1) ENVIRONMENT): CKPT_NUMERIC_KERNEL
# (kernels.o) and CKPT_SHA256_KERNEL (sha256.o), both read by
# ckpt_cpu_kernel_pick (sys.o), USER (sys.o),
# XDG_CACHE_HOME/HOME (vcache.o, index.o), the AWS_* settings of remote stores
# and CKPT_S3_ADDRESSING_STYLE (s3conf.o), TMPDIR for the upload spool of
# a save to a remote store (backend-s3.o).
test_expect_success 'no getenv in the library but its documented ones' '
	nm -A "$CKPT_BUILD/lib/libckpt.a" 2>/dev/null | grep " U getenv$" |
		sed "s/^[^:]*:\\([^:]*\\):.*/\\1/" | sort -u >users &&
	printf "%s\n" backend-s3.o index.o s3conf.o sys.o vcache.o >expect &&
	test_cmp expect users &&
	nm -A "$CKPT_BUILD/lib/libckpt.a" 2>/dev/null |
		grep " U ckpt_cpu_kernel_pick$" |
		sed "s/^[^:]*:\\([^:]*\\):.*/\\1/" | sort -u >users &&
	printf "%s\n" kernels.o sha256.o >expect &&
	test_cmp expect users
'

test_done
