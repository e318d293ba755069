#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='libcurl and libarchive are loaded when first needed:
local commands never map them, the first s3:// store loads libcurl and
the first bundle libarchive, and a missing or broken library is an error
naming it (exit 3) that leaves every other command working'
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

test_expect_success 'the binary links neither libcurl nor libarchive' '
	readelf -d "$CKPT_BUILD/ckpt" >dyn &&
	test_grep "NEEDED.*libc\.so" dyn &&
	! test_grep "libcurl" dyn &&
	! test_grep "libarchive" dyn
'

# neither CMD...: runs CMD (as loaded does) and checks that it loaded
# neither libcurl nor libarchive.
neither() {
	loaded "$@" &&
	! test_grep "libcurl" libs &&
	! test_grep "libarchive" libs
}

test_expect_success 'local commands load neither libcurl nor libarchive' '
	neither ckpt --version &&
	test_grep "^libc\.so" libs &&
	ckpt init st >/dev/null &&
	"$PYTHON" -c "import os; open(\"m.dat\", \"wb\").write(os.urandom(4096))" &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" w.safetensors 1000 3 &&
	neither ckpt inspect --stats w.safetensors &&
	neither ckpt -C st save --run r --step 1 m.dat &&
	neither ckpt -C st save --run r --step 2 w.safetensors &&
	neither ckpt -C st ls &&
	neither ckpt -C st verify r@1 &&
	neither ckpt -C st verify r@2
'

test_expect_success 'export and import load libarchive, at run time' '
	loaded ckpt -C st export -o b.tar r@2 &&
	test_grep "^libarchive\.so\.13" libs &&
	test_grep "file=libarchive\.so\.13 .*dynamically loaded by" ld.log &&
	ckpt init st2 >/dev/null &&
	loaded ckpt -C st2 import b.tar &&
	test_grep "^libarchive\.so\.13" libs &&
	ckpt -C st2 verify -q r@2
'

test_expect_success 'an s3:// store loads it, at run time' '
	test_expect_code 3 loaded s3env ckpt -C s3://bucket/p ls &&
	test_grep "^libcurl\.so\.4" libs &&
	test_grep "file=libcurl\.so\.4 .*dynamically loaded by" ld.log &&
	test_grep "Couldn.t connect to server" ld.log
'

# installed SONAME: the file the loader finds for SONAME ("" if none).
installed() {
	readlink -f "$(ldconfig -p | awk -v so="$1" '$1 == so { print $NF; exit }')"
}

# hide-SONAME.sh CMD... runs CMD in a mount namespace where the installed
# SONAME is an empty file: a machine without the library.  The prereq
# HIDE_SONAME says it could be written.
for so in libcurl.so.4 libarchive.so.13; do
	lib=$(installed $so)
	if unshare -m true 2>/dev/null && test -e "$lib"; then
		printf 'mount --bind /dev/null "%s" || exit 99\n"$@"\n' "$lib" \
		    >"hide-$so.sh" &&
		test_set_prereq "HIDE_$so"
	fi
done

test_expect_success HIDE_libcurl.so.4 'a missing libcurl: exit 3 naming it; local stores still work' '
	test_expect_code 3 s3env unshare -m sh hide-libcurl.so.4.sh ckpt -C s3://bucket/p ls 2>err &&
	test_grep "^ckpt: s3:// stores need libcurl, which cannot be loaded (install libcurl4): .*libcurl\.so\.4" err &&
	test $(wc -l <err) = 1 &&
	unshare -m sh hide-libcurl.so.4.sh ckpt -C st ls >out &&
	test_grep "^r " out
'

test_expect_success HIDE_libarchive.so.13 'a missing libarchive: exit 3 naming it, nothing written; the rest works' '
	test_expect_code 3 unshare -m sh hide-libarchive.so.13.sh ckpt -C st export -o none.tar r@2 2>err &&
	test_grep "^ckpt: bundles and deflated zip members need libarchive, which cannot be loaded (install libarchive13): .*libarchive\.so\.13" err &&
	test $(wc -l <err) = 1 &&
	test ! -e none.tar &&
	ckpt init st3 >/dev/null &&
	test_expect_code 3 unshare -m sh hide-libarchive.so.13.sh ckpt -C st3 import b.tar 2>err &&
	test_grep "need libarchive" err &&
	test $(wc -l <err) = 1 &&
	ckpt -C st3 ls >out 2>&1 &&
	test_grep "no checkpoints" out &&
	unshare -m sh hide-libarchive.so.13.sh ckpt -C st ls >out &&
	test_grep "^r " out &&
	unshare -m sh hide-libarchive.so.13.sh ckpt inspect --stats st/runs/r/step-2/w.safetensors >out &&
	test_grep "^total: 4 tensors" out
'

# A torch zip whose data.pkl is deflated (torch reads such; ckpt inflates
# it through libarchive), beside one stored as torch writes it.
test_expect_success 'a deflated zip member loads libarchive; without it, exit 3 naming the file' '
	"$PYTHON" -c "
import pickle, sys, zipfile
for name, how in ((\"defl.pt\", zipfile.ZIP_DEFLATED), (\"stored.pt\", zipfile.ZIP_STORED)):
    with zipfile.ZipFile(name, \"w\") as z:
        z.writestr(\"archive/data.pkl\", pickle.dumps({\"a\": 1}, protocol=2), compress_type=how)
        z.writestr(\"archive/version\", \"3\\n\")
" &&
	loaded ckpt inspect stored.pt &&
	! test_grep "libarchive" libs &&
	loaded ckpt inspect defl.pt &&
	test_grep "^libarchive\.so\.13" libs &&
	if test_have_prereq HIDE_libarchive.so.13; then
		test_expect_code 3 unshare -m sh hide-libarchive.so.13.sh ckpt inspect defl.pt 2>err &&
		test_grep "defl\.pt.*cannot inflate .archive/data\.pkl.: bundles and deflated zip members need libarchive" err &&
		unshare -m sh hide-libarchive.so.13.sh ckpt inspect stored.pt >out &&
		test_grep "format: *torch-zip" out
	fi
'

test_done
