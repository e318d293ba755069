#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='libcurl is loaded for s3:// stores only: local commands
never map it, the first s3:// store loads it, and a missing or broken
libcurl is an error naming it (exit 3) that leaves local commands working'
. "$(dirname "$0")/lib.sh"

# loaded CMD...: runs CMD with the loader's file log in "ld.log" (and
# its own stderr mixed in), then lists the libraries it loaded by name.
loaded() {
	LD_DEBUG=files "$@" 2>ld.log
	rc=$?
	sed -n "s/.*file=\([^ ]*\) .*/\1/p" ld.log | sort -u >libs
	return $rc
}

# Credentials and an endpoint where nothing listens (port 9, discard).
s3env() {
	env AWS_ENDPOINT_URL=http://127.0.0.1:9 AWS_ACCESS_KEY_ID=k \
	    AWS_SECRET_ACCESS_KEY=s AWS_REGION=us-east-1 "$@"
}

test_expect_success 'the binary does not link libcurl' '
	readelf -d "$CKPT_BUILD/ckpt" >dyn &&
	test_grep "NEEDED.*libc\.so" dyn &&
	! test_grep "libcurl" dyn
'

test_expect_success 'local commands never load it' '
	loaded ckpt --version &&
	test_grep "^libc\.so" libs &&
	! test_grep "libcurl" libs &&
	ckpt init st >/dev/null &&
	"$PYTHON" -c "import os; open(\"m.dat\", \"wb\").write(os.urandom(4096))" &&
	loaded ckpt -C st save --run r --step 1 m.dat &&
	! test_grep "libcurl" libs &&
	loaded ckpt -C st ls &&
	! test_grep "libcurl" libs &&
	loaded ckpt -C st verify r@1 &&
	! test_grep "libcurl" libs
'

test_expect_success 'an s3:// store loads it, at run time' '
	test_expect_code 3 loaded s3env ckpt -C s3://bucket/p ls &&
	test_grep "^libcurl\.so\.4" libs &&
	test_grep "file=libcurl\.so\.4 .*dynamically loaded by" ld.log &&
	test_grep "Couldn.t connect to server" ld.log
'

# A mount namespace hides the installed libcurl behind an empty file.
unshare -m true 2>/dev/null && test -e "$(readlink -f "$(ldconfig -p |
	sed -n "s/.*libcurl\.so\.4 .*=> //p" | head -n 1)")" &&
	test_set_prereq UNSHARE

test_expect_success UNSHARE 'a missing libcurl: exit 3 naming it; local stores still work' '
	lib=$(readlink -f "$(ldconfig -p |
	    sed -n "s/.*libcurl\.so\.4 .*=> //p" | head -n 1)") &&
	cat >hide.sh <<-EOF &&
	mount --bind /dev/null "$lib" || exit 99
	"\$@"
	EOF
	test_expect_code 3 s3env unshare -m sh hide.sh ckpt -C s3://bucket/p ls 2>err &&
	test_grep "^ckpt: s3:// stores need libcurl, which cannot be loaded (install libcurl4): .*libcurl\.so\.4" err &&
	test $(wc -l <err) = 1 &&
	unshare -m sh hide.sh ckpt -C st ls >out &&
	test_grep "^r " out
'

test_done
