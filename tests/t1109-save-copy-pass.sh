#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='save --copy: the copy and its digests in one read pass (short reads, a full disk, a source changed while copied)'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
# The shim is preloaded before a sanitized binary's runtime: allowed.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS

# same_files A B: the files of A are in B, byte for byte.
same_files() {
	for f in "$1"/*; do
		test -d "$f" || cmp "$f" "$2/${f##*/}" || return 1
	done
}

# no_step N: nothing of r@N is committed, and the sources are untouched.
no_step() {
	test ! -e "s/runs/r/step-$1" &&
	ckpt-test-tool sha256 src/model.safetensors >sum &&
	test_cmp sum.orig sum
}

test_expect_success 'setup: safetensors of several chunks, a subdirectory; a file of no known format, an empty one' '
	test -f "$SHIM" &&
	mkdir src src/sub &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/model.safetensors 3000000 7 5 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src/sub/opt.safetensors 200000 8 &&
	mkdir other &&
	"$PYTHON" -c "import random, sys; open(sys.argv[1], \"wb\").write(random.Random(3).randbytes(100003))" other/blob.bin &&
	: >other/empty &&
	echo "{\"step\": 1}" >src/state.json &&
	chmod 600 src/sub/opt.safetensors &&
	ckpt-test-tool sha256 src/model.safetensors >sum.orig &&
	ckpt init -q s
'

test_expect_success 'a copy is byte-exact, verifies, and records the digests a move records' '
	ckpt -C s save -q --copy --chunk-size 65536 --run r --step 1 src >/dev/null &&
	same_files src s/runs/r/step-1 &&
	same_files src/sub s/runs/r/step-1/sub &&
	ckpt -C s verify -q r@1 &&
	cp -R src moved &&
	ckpt -C s save -q --move --chunk-size 65536 --run m --step 1 moved >/dev/null &&
	"$PYTHON" -c "
import json, sys
def digests(p):
    m = json.load(open(p))
    return sorted((f[\"path\"], r[\"offset\"], r[\"size\"], r[\"sha256\"])
                  for f in m[\"files\"] for r in f[\"ranges\"]
                  if not f[\"path\"].startswith(\"ckpt-\"))
a = digests(\"s/runs/r/step-1/ckpt-manifest.json\")
b = digests(\"s/runs/m/step-1/ckpt-manifest.json\")
assert a == b, (a, b)
assert len(a) >= 12, len(a)
"
'

test_expect_success 'files of no known format: copied in chunks, the digests sha256sum gives' '
	ckpt -C s save -q --copy --file-sha256 --chunk-size 65536 --run o --step 1 other >/dev/null &&
	same_files other s/runs/o/step-1 &&
	"$PYTHON" -c "
import hashlib, json
m = json.load(open(\"s/runs/o/step-1/ckpt-manifest.json\"))
for f in [f for f in m[\"files\"] if not f[\"path\"].startswith(\"ckpt-\")]:
    data = open(\"other/\" + f[\"path\"], \"rb\").read()
    assert f[\"sha256\"] == \"sha256:\" + hashlib.sha256(data).hexdigest(), f
    rs = f[\"ranges\"]
    assert sum(r[\"size\"] for r in rs) == len(data), f
    for r in rs:
        part = data[r[\"offset\"]:r[\"offset\"] + r[\"size\"]]
        assert r[\"sha256\"] == \"sha256:\" + hashlib.sha256(part).hexdigest(), r
assert [len(f[\"ranges\"]) for f in m[\"files\"]
        if f[\"path\"] in (\"blob.bin\", \"empty\")] == [2, 0], m

"
'

test_expect_success 'a copy keeps the source mode, never wider' '
	test "$(stat -c %a s/runs/r/step-1/sub/opt.safetensors)" = 600
'

test_expect_success '--file-sha256 with --copy records what sha256sum prints' '
	ckpt -C s save -q --copy --file-sha256 --chunk-size 65536 --run r --step 2 src >/dev/null &&
	for f in model.safetensors sub/opt.safetensors; do
		want=$(sha256sum "src/$f" | cut -d" " -f1) &&
		test_grep "sha256:$want" s/runs/r/step-2/ckpt-manifest.json ||
		return 1
	done &&
	ckpt -C s verify -q r@2
'

test_expect_success 'short reads and short writes make the same copy' '
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=read CKPT_FAULT_ACTION=short \
	    CKPT_FAULT_NTH=all CKPT_FAULT_PATH="*/src/*" \
	    ckpt -C s save -q --copy --chunk-size 65536 --run r --step 3 src >/dev/null &&
	same_files src s/runs/r/step-3 &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=write CKPT_FAULT_ACTION=short \
	    CKPT_FAULT_NTH=all CKPT_FAULT_PATH="*/.tmp-step-4.*/*.safetensors" \
	    CKPT_FAULT_LOG="$PWD/short.log" \
	    ckpt -C s save -q --copy --chunk-size 65536 --run r --step 4 src >/dev/null &&
	test_grep "^hit write .*/model.safetensors" short.log &&
	same_files src s/runs/r/step-4 &&
	ckpt -C s verify -q r@3 &&
	ckpt -C s verify -q r@4
'

test_expect_success 'a full disk while copying fails the save and commits nothing' '
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=write \
	    CKPT_FAULT_NTH=3 CKPT_FAULT_PATH="*/.tmp-step-5.*/model.safetensors" \
	    ckpt -C s save -q --copy --run r --step 5 src >out 2>err &&
	test_grep "model.safetensors: cannot write at byte [0-9]*: No space left on device" err &&
	no_step 5 &&
	ckpt -C s latest --run r >latest &&
	test_grep "/step-4$" latest
'

test_expect_success 'a source read error names the file and commits nothing' '
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=read \
	    CKPT_FAULT_NTH=all CKPT_FAULT_PATH="*/src/sub/opt.safetensors" \
	    ckpt -C s save -q --copy --run r --step 6 src >out 2>err &&
	test_grep "src/sub/opt.safetensors: cannot read at byte [0-9]*" err &&
	no_step 6
'

test_expect_success 'a source that grows while copied fails the save' '
	cp other/blob.bin src/blob.bin &&
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=read \
	    CKPT_FAULT_NTH=1 CKPT_FAULT_PATH="*/src/blob.bin" \
	    CKPT_FAULT_ACTION=run CKPT_FAULT_RUN="printf x >>\"$PWD/src/blob.bin\"" \
	    ckpt -C s save -q --copy --run r --step 7 src >out 2>err &&
	test_grep "src/blob.bin: changed while being copied (100003 bytes, then 100004)" err &&
	rm src/blob.bin &&
	no_step 7
'

# The 6th read of the source: 3 plan the copy (its header), the copy
# pass reads each of its 6 ranges at least once.
test_expect_success 'a source rewritten in place while copied fails the save' '
	cp src/model.safetensors keep.st &&
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=read \
	    CKPT_FAULT_NTH=6 CKPT_FAULT_PATH="*/src/model.safetensors" \
	    CKPT_FAULT_ACTION=run CKPT_FAULT_RUN="printf zz | dd of=\"$PWD/src/model.safetensors\" bs=1 seek=1000000 conv=notrunc 2>/dev/null" \
	    ckpt -C s save -q --copy --chunk-size 65536 --run r --step 8 src >out 2>err &&
	test_grep "src/model.safetensors: changed while being copied" err &&
	cp keep.st src/model.safetensors &&
	no_step 8
'

test_expect_success 'a header changed between planning and copying: the copy is hashed again and verifies' '
	# The reader plans from the header (the first open); the run
	# action rewrites the file before the copy pass opens it (the
	# second), with other tensor bounds, the same size and mtime.
	# two tensors instead of five, the header padded to the same length
	"$PYTHON" -c "
import json, random, struct, sys
src = open(sys.argv[1], \"rb\").read()
hlen = struct.unpack(\"<Q\", src[:8])[0]
n = len(src) - 8 - hlen
h = json.dumps({\"a\": {\"dtype\": \"U8\", \"shape\": [1000], \"data_offsets\": [0, 1000]},
                \"t2\": {\"dtype\": \"U8\", \"shape\": [n - 1000], \"data_offsets\": [1000, n]}}).encode()
h += b\" \" * (hlen - len(h))
open(sys.argv[2], \"wb\").write(struct.pack(\"<Q\", hlen) + h + random.Random(9).randbytes(n))
" src/model.safetensors other.st &&
	test "$(wc -c <other.st)" = "$(wc -c <src/model.safetensors)" &&
	cp src/model.safetensors keep.st &&
	touch -r src/model.safetensors stamp &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=open CKPT_FAULT_NTH=2 \
	    CKPT_FAULT_PATH="*/src/model.safetensors" CKPT_FAULT_ACTION=run \
	    CKPT_FAULT_LOG="$PWD/plan.log" \
	    CKPT_FAULT_RUN="cp \"$PWD/other.st\" \"$PWD/src/model.safetensors\" && touch -r \"$PWD/stamp\" \"$PWD/src/model.safetensors\"" \
	    ckpt -C s save -q --copy --chunk-size 65536 --run r --step 9 src >/dev/null &&
	cp keep.st src/model.safetensors &&
	cmp other.st s/runs/r/step-9/model.safetensors &&
	ckpt -C s verify -q r@9 &&
	ckpt -C s inspect s/runs/r/step-9/model.safetensors >insp &&
	test_grep "t2" insp
'

# same_manifest A B: the two manifests record the same files the same
# way: every field but the run, the time and the summary's own entry.
same_manifest() {
	"$PYTHON" -c "
import json, sys
def norm(p):
    m = json.load(open(p))
    for k in (\"run\", \"created\"):
        m.pop(k, None)
    m[\"files\"] = [f for f in m[\"files\"]
                  if not f[\"path\"].startswith(\"ckpt-\")]
    return m
a, b = norm(sys.argv[1]), norm(sys.argv[2])
assert a == b, (a, b)
assert len(a[\"files\"]) >= 3, a
" "$1" "$2"
}

test_expect_success 'setup: files larger than the copy ring of a thread (2 MiB)' '
	mkdir big big/sub &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" big/model.safetensors 9000000 9 5 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" big/sub/opt.safetensors 5000000 8 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" big/ema.safetensors 6000001 3 &&
	ckpt -C s save -q --link --file-sha256 --chunk-size 65536 --run l --step 1 big >/dev/null &&
	ckpt -C s save -q --link --run l --step 2 big >/dev/null
'

# The trash directory's filesystem takes O_DIRECT writes (ext4 and tmpfs
# do; some do not, where save writes through the page cache).
if dd if=/dev/zero of=probe bs=4096 count=1 oflag=direct 2>/dev/null; then
	test_set_prereq ODIRECT
fi

# The writes of --copy are another thread's (hashing.c): the manifest
# must be the one a save that copies nothing (--link) records.
for j in 1 2 5; do
	test_expect_success "the manifest of a copy is the one a link records (-j $j)" '
		ckpt -C s save -q -j '$j' --copy --file-sha256 --chunk-size 65536 --run c'$j' --step 1 big >/dev/null &&
		ckpt -C s save -q -j '$j' --copy --run c'$j' --step 2 big >/dev/null &&
		same_manifest s/runs/l/step-1/ckpt-manifest.json s/runs/c'$j'/step-1/ckpt-manifest.json &&
		same_manifest s/runs/l/step-2/ckpt-manifest.json s/runs/c'$j'/step-2/ckpt-manifest.json &&
		same_files big s/runs/c'$j'/step-1 &&
		same_files big/sub s/runs/c'$j'/step-2/sub &&
		ckpt -C s verify -q c'$j'@1 &&
		ckpt -C s verify -q c'$j'@2
	'
done

# The copy's whole blocks are written with O_DIRECT, its partial ones
# buffered (hashing.c); a filesystem that refuses O_DIRECT gets buffered
# writes: the copy and the manifest are the same either way.
test_expect_success ODIRECT 'whole blocks go to the copy with O_DIRECT' '
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=direct CKPT_FAULT_NTH=0 \
	    CKPT_FAULT_PATH="*/.tmp-step-1.*/model.safetensors" \
	    CKPT_FAULT_LOG="$PWD/direct.log" \
	    ckpt -C s save -q --copy --file-sha256 --chunk-size 65536 --run d --step 1 big >/dev/null &&
	test_grep "^call direct .*/model.safetensors" direct.log &&
	same_manifest s/runs/l/step-1/ckpt-manifest.json s/runs/d/step-1/ckpt-manifest.json &&
	same_files big s/runs/d/step-1 &&
	same_files big/sub s/runs/d/step-1/sub &&
	ckpt -C s verify -q d@1
'

test_expect_success ODIRECT 'O_DIRECT writes refused (EINVAL): the copy is written buffered' '
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=direct CKPT_FAULT_NTH=all \
	    CKPT_FAULT_PATH="*/.tmp-step-2.*/*.safetensors" \
	    CKPT_FAULT_LOG="$PWD/einval.log" \
	    ckpt -C s save -q --copy --run d --step 2 big >/dev/null &&
	test_grep "^hit direct .*/model.safetensors" einval.log &&
	# a file is not tried again once refused: at most one refusal
	# per writer thread (4)
	test "$(grep -c "^hit direct .*/model.safetensors" einval.log)" -le 4 &&
	same_manifest s/runs/l/step-2/ckpt-manifest.json s/runs/d/step-2/ckpt-manifest.json &&
	same_files big s/runs/d/step-2 &&
	same_files big/sub s/runs/d/step-2/sub &&
	ckpt -C s verify -q d@2
'

# Threads that cannot start (EAGAIN: the process may start no more).
# save -j 3 --copy starts about nine (the copy's writers, the hashing
# workers, the sync of the sources): the Nth failing, for every N, gives
# each fallback its turn.  The hashing engine then hashes on the caller's
# thread alone (the first worker failed) or beside the workers that
# started (a later one failed).
test_expect_success 'threads that cannot start, each in turn: the same copy and manifest' '
	for nth in 1 2 3 4 5 6 7 8 9 10 11 12 all; do
		LD_PRELOAD="$SHIM" CKPT_FAULT_OP=thread CKPT_FAULT_NTH=$nth \
		    CKPT_FAULT_LOG="$PWD/thread.log" \
		    ckpt -C s save -q -j 3 --copy --chunk-size 65536 --run t$nth --step 1 src >/dev/null &&
		same_manifest s/runs/r/step-1/ckpt-manifest.json s/runs/t$nth/step-1/ckpt-manifest.json &&
		same_files src s/runs/t$nth/step-1 &&
		same_files src/sub s/runs/t$nth/step-1/sub &&
		LD_PRELOAD="$SHIM" CKPT_FAULT_OP=thread CKPT_FAULT_NTH=$nth \
		    ckpt -C s verify -q -j 3 t$nth@1 || return 1
	done &&
	test "$(grep -c "^hit thread" thread.log)" -ge 9
'

test_expect_success 'a copy that cannot be opened with O_DIRECT is written buffered' '
	# the first open creates the copy, the second asks for O_DIRECT
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=open CKPT_FAULT_NTH=2 \
	    CKPT_FAULT_PATH="*/runs/od/.tmp-step-1.*/model.safetensors" \
	    CKPT_FAULT_LOG="$PWD/open.log" \
	    ckpt -C s save -q --copy --file-sha256 --chunk-size 65536 --run od --step 1 big >/dev/null &&
	test_grep "^hit open .*/model.safetensors" open.log &&
	same_manifest s/runs/l/step-1/ckpt-manifest.json s/runs/od/step-1/ckpt-manifest.json &&
	same_files big s/runs/od/step-1 &&
	ckpt -C s verify -q od@1
'

test_expect_success ODIRECT 'a full disk on O_DIRECT writes fails the save and commits nothing' '
	test_expect_code 3 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=write \
	    CKPT_FAULT_NTH=all CKPT_FAULT_PATH="*/.tmp-step-3.*/model.safetensors" \
	    ckpt -C s save -q --copy --run d --step 3 big >out 2>err &&
	test_grep "model.safetensors: cannot write at byte [0-9]*: No space left on device" err &&
	test ! -e s/runs/d/step-3 &&
	ckpt -C s latest --run d >latest &&
	test_grep "/step-2$" latest
'

test_done
