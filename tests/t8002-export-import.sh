#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='export and import: bundles between stores keep manifest
digests and signatures; hostile bundles are refused with the store unchanged'
. "$(dirname "$0")/lib.sh"

mkst() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" "$@"
}

hostile() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-hostile-bundle.py" "$@"
}

digest() {	# digest STORE RUN STEP: sha256 of the committed manifest
	sha256sum "$1/runs/$2/step-$3/ckpt-manifest.json" | cut -c1-64
}

snapshot() {	# every path, type, size and digest under a store
	(cd "$1" && find . -path ./.ckpt/lock -prune -o -printf "%p %y %s\n" |
	sort) >"$2"
}

test_expect_success 'setup: a store with two signed checkpoints' '
	mkdir -p src/sub &&
	mkst src/model.safetensors 50000 1 &&
	mkst src/sub/extra.safetensors 3000 2 &&
	echo "{}" >src/config.json &&
	ckpt -C a save --run r --step 5 --copy src >/dev/null &&
	ckpt -C a save --run r --step 7 --copy src >/dev/null &&
	ckpt keygen -o k --no-passphrase >/dev/null &&
	ckpt -C a sign -k k.key r@5 >/dev/null &&
	test_path_is_file a/runs/r/step-5/ckpt-manifest.json.sig
'

test_expect_success 'export then import: same manifest digest, verifies, signed' '
	ckpt -C a export -o b.tar r@5 r@7 >out &&
	test_grep "^exported r@5 (4 files" out &&
	tar tf b.tar >list &&
	head -3 list >first &&
	printf "%s\n" ckpt-bundle.json r@5/ckpt-manifest.json \
	    r@5/ckpt-manifest.json.sig >want &&
	test_cmp want first &&
	ckpt init b >/dev/null &&
	ckpt -C b import b.tar >out &&
	test_grep "^imported r@5 (manifest sha256:$(digest a r 5))" out &&
	test "$(digest a r 5)" = "$(digest b r 5)" &&
	test "$(digest a r 7)" = "$(digest b r 7)" &&
	cmp a/runs/r/step-5/ckpt-manifest.json.sig \
	    b/runs/r/step-5/ckpt-manifest.json.sig &&
	ckpt -C b verify --key k.pub --require-signature r@5 >/dev/null &&
	ckpt -C b verify r@7 >/dev/null &&
	ckpt -C b ls >ls &&
	test_grep "^r  *5 " ls && test_grep "^r  *7 " ls &&
	! ls -a b/runs/r | grep -q "^\\.tmp"
'

test_expect_success 'importing the same bundle again is a no-op' '
	snapshot b before &&
	ckpt -C b import b.tar >out &&
	test_grep "^identical r@5" out &&
	snapshot b after &&
	test_cmp before after
'

test_expect_success 'an existing RUN@STEP with another manifest is refused' '
	ckpt -C c save --run r --step 5 --copy src/config.json >/dev/null &&
	snapshot c before &&
	test_expect_code 2 ckpt -C c import b.tar 2>err &&
	test_grep "r@5 exists already with another manifest" err &&
	snapshot c after &&
	test_cmp before after
'

test_expect_success '--run renames; the manifest (and its digest) stays' '
	ckpt -C c import --run other b.tar >out &&
	test_grep "^imported other@5" out &&
	test "$(digest a r 5)" = "$(digest c other 5)" &&
	ckpt -C c verify --key k.pub other@5 other@7 >/dev/null
'

test_expect_success 'zstd and gzip bundles; streaming through a pipe' '
	ckpt -C a export --gzip -o b.tgz r@7 &&
	gzip -t b.tgz &&
	ckpt -C d import b.tgz >/dev/null &&
	test "$(digest a r 7)" = "$(digest d r 7)" &&
	if ckpt -C a export --zstd -o b.tzst r@7 2>err; then
		ckpt -C e import b.tzst >/dev/null &&
		test "$(digest a r 7)" = "$(digest e r 7)"
	else
		test_grep "cannot compress" err
	fi &&
	ckpt -C a export -o - r@5 | ckpt -C f import - >out &&
	test_grep "^imported r@5" out &&
	test "$(digest a r 5)" = "$(digest f r 5)"
'

test_expect_success 'export refuses to replace a file without --force' '
	cp b.tar keep &&
	test_expect_code 2 ckpt -C a export -o b.tar r@7 2>err &&
	test_grep "exists already" err &&
	cmp keep b.tar &&
	ckpt -C a export --force -o b.tar r@7 >/dev/null &&
	! cmp -s keep b.tar &&
	! ls | grep -q "\\.tmp\\."
'

test_expect_success 'setup: a fresh two-checkpoint bundle' '
	ckpt -C a export --force -o good.tar r@5 r@7 >/dev/null &&
	ckpt init h >/dev/null &&
	snapshot h empty
'

for kind in dotdot absolute symlink hardlink device duplicate bigger \
    truncated tampered unlisted
do
	test_expect_success "a hostile bundle ($kind) is refused, store unchanged" "
		hostile good.tar $kind $kind.tar &&
		test_expect_code 3 ckpt -C h import $kind.tar 2>$kind.err &&
		test_grep \"^ckpt: $kind.tar: \" $kind.err &&
		test_grep '(at byte [0-9]*)' $kind.err &&
		snapshot h now &&
		test_cmp empty now
	"
done

test_expect_success 'hostile bundles say what is wrong' '
	test_grep "entry .\.\./evil.: a .\.\.. component" dotdot.err &&
	test_grep "entry ./tmp/evil.: an absolute path" absolute.err &&
	test_grep "a symbolic link" symlink.err &&
	test_grep "a hard link to .ckpt-bundle.json." hardlink.err &&
	test_grep "a device node" device.err &&
	test_grep "entry .r@5/ckpt-manifest.json.: a duplicate entry" \
	    duplicate.err &&
	test_grep "7344 bytes, the manifest says 3248 (refused before writing)" \
	    bigger.err &&
	test_grep "SHA-256 .*differs from the manifest" tampered.err &&
	grep -i "truncated" truncated.err &&
	test_grep "zzz-extra.: expected r@7/" unlisted.err
'

test_expect_success 'a manifest that is not the one the list names is refused' '
	"$PYTHON" -c "
import io, tarfile
src = tarfile.open(\"good.tar\")
out = tarfile.open(\"swap.tar\", \"w\", format=tarfile.PAX_FORMAT)
for m in src.getmembers():
    data = src.extractfile(m).read()
    if m.name == \"r@5/ckpt-manifest.json\":
        data = data.replace(b\"\\\"step\\\": 5\", b\"\\\"step\\\": 6\")
        m.size = len(data)
    out.addfile(m, io.BytesIO(data))
out.close()
" &&
	test_expect_code 3 ckpt -C h import swap.tar 2>err &&
	test_grep "the bundle.s list says" err &&
	snapshot h now &&
	test_cmp empty now
'

# holes FILE: 4 KiB of x, a hole to 1 MiB, 4 KiB of y (a sparse file)
holes() {
	"$PYTHON" -c "
import sys
with open(sys.argv[1], \"wb\") as f:
    f.write(b\"x\" * 4096)
    f.seek(1 << 20)
    f.write(b\"y\" * 4096)
" "$1"
}

test_expect_success 'a sparse entry (tar --sparse of a bundle): its holes are zeros, checked' '
	mkdir sp && holes sp/w.bin &&
	ckpt -C sps save --run s --step 1 --copy sp >/dev/null &&
	ckpt -C sps export -o sp.tar s@1 >/dev/null &&
	tar tf sp.tar >order &&
	mkdir spx && tar -C spx -xf sp.tar &&
	rm spx/s@1/w.bin && holes spx/s@1/w.bin &&
	tar -C spx --sparse --format=pax -cf sparse.tar $(cat order) &&
	tar tvf sparse.tar | grep -q "w.bin" &&
	ckpt init spy >/dev/null &&
	ckpt -C spy import sparse.tar >out &&
	test_grep "^imported s@1 " out &&
	cmp sp/w.bin spy/runs/s/step-1/w.bin &&
	ckpt -C spy verify s@1 >/dev/null &&
	rm spx/s@1/w.bin && holes spx/s@1/w.bin &&
	printf z | dd of=spx/s@1/w.bin bs=1 seek=500000 conv=notrunc 2>/dev/null &&
	tar -C spx --sparse --format=pax -cf sparse2.tar $(cat order) &&
	test_expect_code 3 ckpt -C h import sparse2.tar 2>err &&
	test_grep "entry .s@1/w.bin.: the SHA-256 .*differs" err &&
	snapshot h now &&
	test_cmp empty now
'

test_expect_success 'not a bundle at all' '
	echo hello >junk &&
	test_expect_code 3 ckpt -C h import junk 2>err &&
	test_grep "junk" err &&
	: >empty.tar &&
	test_expect_code 3 ckpt -C h import empty.tar &&
	snapshot h now &&
	test_cmp empty now
'

test_done
