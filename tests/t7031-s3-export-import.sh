#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='export and import on a store on a real RGW: a bundle goes
local -> S3 -> local with its manifest digest and signature unchanged, each
file checked against its manifest as it streams into the staging prefix
(multipart above the threshold) and committed by the backend (manifest
last); hostile bundles leave the bucket as it was (no object, no upload)'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

mkst() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" "$@"
}

hostile() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-hostile-bundle.py" "$@"
}

s3() {
	ckpt-test-tool s3 "$@"
}

# bucket FILE: every object of the bucket (key and size) and every
# unfinished multipart upload, for "unchanged" checks.
bucket() {
	s3 "$BUCKET" list "" >"$1" &&
	s3 "$BUCKET" uploads "" >>"$1"
}

# remote_digest KEY: the sha256 of an object.
remote_digest() {
	s3 "$BUCKET" get "$1" | sha256sum | cut -c1-64
}

stop_pids() {	# kills what still runs of the processes given
	for _p
	do
		kill -9 "$_p" 2>/dev/null
	done
	return 0
}

digest() {	# digest STORE RUN STEP: sha256 of a local committed manifest
	sha256sum "$1/runs/$2/step-$3/ckpt-manifest.json" | cut -c1-64
}

ST="s3://$BUCKET/st"

test_expect_success 'setup: a local store with a signed and an unsigned checkpoint' '
	mkdir -p src/sub &&
	mkst src/model.safetensors 50000 1 &&
	mkst src/sub/extra.safetensors 3000 2 &&
	echo "{}" >src/config.json &&
	ckpt -C a save --run r --step 5 --copy src >/dev/null &&
	ckpt -C a save --run r --step 7 --copy src >/dev/null &&
	ckpt keygen -o k --no-passphrase >/dev/null &&
	ckpt keygen -o other --no-passphrase >/dev/null &&
	ckpt -C a sign -k k.key r@5 >/dev/null &&
	ckpt init -C "$ST" >/dev/null
'

test_expect_success 'export local, import into S3, export from S3, import local: same manifest digests' '
	ckpt -C a export -o b.tar r@5 r@7 >/dev/null &&
	ckpt -C "$ST" import b.tar >out &&
	test_grep "^imported r@5 (manifest sha256:$(digest a r 5))" out &&
	test_grep "^imported r@7 (manifest sha256:$(digest a r 7))" out &&
	test "$(remote_digest st/runs/r/step-5/ckpt-manifest.json)" = \
	    "$(digest a r 5)" &&
	s3 "$BUCKET" head st/runs/r/step-5/ckpt-manifest.json.sig &&
	ckpt -C "$ST" ls >ls &&
	test_grep "^r *5 " ls &&
	test_grep "^r *7 " ls &&
	ckpt -C "$ST" export -o c.tar r@5 r@7 >out &&
	test_grep "^exported r@5 (4 files" out &&
	tar tf c.tar >list &&
	test_grep "^r@5/ckpt-manifest.json.sig$" list &&
	ckpt -C c import c.tar >/dev/null &&
	test "$(digest c r 5)" = "$(digest a r 5)" &&
	test "$(digest c r 7)" = "$(digest a r 7)" &&
	test_cmp a/runs/r/step-5/ckpt-manifest.json.sig \
	    c/runs/r/step-5/ckpt-manifest.json.sig &&
	ckpt -C c verify --key k.pub r@5 r@7 &&
	ckpt -C "$ST" verify --key k.pub r@5 r@7
'

test_expect_success 'export from S3 streams to stdout; import into S3 reads stdin' '
	ckpt -C "$ST" export -o - r@7 | ckpt -C d import - >out &&
	test_grep "^imported r@7" out &&
	test "$(digest d r 7)" = "$(digest a r 7)" &&
	ckpt -C a export --zstd -o - r@7 |
	ckpt -C "s3://$BUCKET/piped" import - >out &&
	test_grep "^imported r@7" out &&
	test "$(remote_digest piped/runs/r/step-7/ckpt-manifest.json)" = \
	    "$(digest a r 7)"
'

test_expect_success 'importing the same bundle again into S3 is a no-op' '
	bucket before &&
	ckpt -C "$ST" import b.tar >out &&
	test_grep "^identical r@5" out &&
	test_grep "^identical r@7" out &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'an existing RUN@STEP with another manifest is refused: exit 2, bucket unchanged' '
	mkdir other &&
	mkst other/model.safetensors 4000 9 &&
	ckpt -C o save --run r --step 5 --copy other >/dev/null &&
	ckpt -C o export -o o.tar r@5 >/dev/null &&
	bucket before &&
	test_expect_code 2 ckpt -C "$ST" import o.tar 2>err &&
	test_grep "r@5 exists already with another manifest" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success '--run renames on S3; the manifest and its digest stay' '
	ckpt -C "$ST" import --run r2 o.tar >out &&
	test_grep "^imported r2@5" out &&
	test "$(remote_digest st/runs/r2/step-5/ckpt-manifest.json)" = \
	    "$(digest o r 5)" &&
	ckpt -C "$ST" verify r2@5
'

test_expect_success 'a weights-only model version is refused on S3: exit 2, nothing imported' '
	mkdir w &&
	mkst w/model.safetensors 5000 3 &&
	ckpt -C ws save --run wr --step 1 --copy w >/dev/null &&
	ckpt -C ws promote --weights-only --model wm wr@1 >/dev/null &&
	ckpt -C ws export -o w.tar wm@v1 >/dev/null &&
	bucket before &&
	test_expect_code 2 ckpt -C "$ST" import w.tar 2>err &&
	test_grep "wm@v1 is a weights-only model version" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'a model version travels through S3 with its lineage' '
	mkdir -p a/.ckpt/keys &&
	cp k.pub a/.ckpt/keys/k.pub &&
	ckpt -C a promote --model m r@5 >/dev/null &&
	ckpt -C a export -o m.tar m@v1 >/dev/null &&
	ckpt init -C "s3://$BUCKET/reg" >/dev/null &&
	s3 "$BUCKET" put "reg/.ckpt/keys/k.pub" k.pub &&
	ckpt -C "s3://$BUCKET/reg" import m.tar >out &&
	test_grep "^imported m v1 from r@5" out &&
	ckpt -C "s3://$BUCKET/reg" export -o m2.tar m@v1 >/dev/null &&
	ckpt init -C c2 >/dev/null &&
	mkdir c2/.ckpt/keys &&
	cp k.pub c2/.ckpt/keys/k.pub &&
	ckpt -C c2 import m2.tar >out &&
	test_grep "^imported m v1 from r@5" out &&
	test "$(digest c2 r 5)" = "$(digest a r 5)" &&
	ckpt -C c2 log --model m >log &&
	test_grep "import v1" log
'

test_expect_success 'setup: a two-checkpoint bundle of a run the S3 store lacks' '
	ckpt -C h save --run h --step 1 --copy src >/dev/null &&
	ckpt -C h save --run h --step 2 --copy src >/dev/null &&
	ckpt -C h export -o good.tar h@1 h@2 >/dev/null &&
	bucket clean
'

for kind in dotdot absolute symlink hardlink device duplicate bigger \
    truncated tampered unlisted; do
	test_expect_success "a hostile bundle ($kind) into S3 is refused, bucket unchanged" "
		hostile good.tar $kind $kind.tar &&
		test_expect_code 3 ckpt -C '$ST' import $kind.tar 2>$kind.err &&
		test_grep \"^ckpt: $kind.tar: \" $kind.err &&
		bucket now &&
		test_cmp clean now
	"
done

test_expect_success 'hostile bundles into S3 say what is wrong, as locally' '
	test_grep "entry .\.\./evil.: a .\.\.. component" dotdot.err &&
	test_grep "entry ./tmp/evil.: an absolute path" absolute.err &&
	test_grep "a symbolic link" symlink.err &&
	test_grep "a hard link to .ckpt-bundle.json." hardlink.err &&
	test_grep "a device node" device.err &&
	test_grep "entry .h@1/ckpt-manifest.json.: a duplicate entry" \
	    duplicate.err &&
	test_grep "refused before writing" bigger.err &&
	test_grep "SHA-256 .*differs from the manifest" tampered.err &&
	grep -i "truncated" truncated.err &&
	test_grep "zzz-extra.: expected h@2/" unlisted.err
'

test_expect_success 'a big file streams into a multipart upload; tampered, nothing is left' '
	cat >aws.conf <<-\EOF &&
	[default]
	s3 =
	    multipart_threshold = 1MB
	    multipart_chunksize = 5MB
	EOF
	mkdir big &&
	"$PYTHON" -c "import os; open(\"big/blob.bin\", \"wb\").write(os.urandom(12000000))" &&
	ckpt -C bg save --run big --step 1 --copy big >/dev/null &&
	ckpt -C bg export -o big.tar big@1 >/dev/null &&
	"$PYTHON" - <<-\PY &&
	import io, tarfile
	src = tarfile.open("big.tar")
	out = tarfile.open("bigbad.tar", "w", format=tarfile.PAX_FORMAT)
	for m in src.getmembers():
	    data = src.extractfile(m).read()
	    if m.name.endswith("blob.bin"):
	        b = bytearray(data)
	        b[len(b) - 10] ^= 1
	        data = bytes(b)
	    out.addfile(m, io.BytesIO(data))
	out.close()
	PY
	bucket before &&
	test_expect_code 3 env AWS_CONFIG_FILE=$PWD/aws.conf \
		ckpt -C "$ST" import bigbad.tar 2>err &&
	test_grep "big@1/blob.bin.: the SHA-256 of its bytes" err &&
	bucket after &&
	test_cmp before after &&
	AWS_CONFIG_FILE=$PWD/aws.conf ckpt -C "$ST" import big.tar >out &&
	test_grep "^imported big@1" out &&
	s3 "$BUCKET" head st/runs/big/step-1/blob.bin >head &&
	test_grep "^12000000 [0-9a-f]*-3$" head &&
	test "$(remote_digest st/runs/big/step-1/blob.bin)" = \
	    "$(sha256sum <big/blob.bin | cut -c1-64)"
'

test_expect_success 'an import killed mid-upload: nothing visible; gc removes its staging and upload' '
	bucket before &&
	mkfifo feed &&
	{ AWS_CONFIG_FILE=$PWD/aws.conf TMPDIR=$PWD \
		ckpt -C "$ST" import --run big9 - <feed >/dev/null 2>&1 &
	} &&
	pid=$! &&
	# the list, the manifest and half of the 12 MB file, then nothing
	{ "$PYTHON" -c "
import sys, time
sys.stdout.buffer.write(open(\"big.tar\", \"rb\").read(7000000))
sys.stdout.flush()
time.sleep(60)
" >feed & } &&
	feeder=$! &&
	test_when_finished "stop_pids $feeder $pid" &&
	n=0 &&
	while test -z "$(s3 "$BUCKET" uploads st/runs/big9/)"
	do
		n=$((n + 1)) &&
		test $n -lt 200 &&
		sleep 0.1 || return 1
	done &&
	kill -9 $pid &&
	{ wait $pid; echo $? >rc; } &&
	echo 137 >want &&
	test_cmp want rc &&
	ckpt -C "$ST" ls >ls &&
	! grep "^big9  *1  *20[0-9][0-9]-" ls &&
	test_grep "^big9  *1  *abandoned" ls &&
	ckpt -C "$ST" gc --older-than 0 >out &&
	test_grep "^staging .*big9@\.tmp-step-1\..* removed  *crashed save" out &&
	test_grep "^upload .*big9/.*blob.bin?uploadId=.*part of a staging area that goes" out &&
	bucket after &&
	test_cmp before after
'

# ---- signatures of remote checkpoints -------------------------------

# findings DIR|URL ARGS...: verify --json's exit code, signature status
# and the ids and severities of its findings, paths left out.
findings() {
	_where=$1
	shift
	ckpt verify --json "$@" "$_where" >f.json 2>/dev/null
	echo "exit $?"
	"$PYTHON" -c "
import json
c = json.load(open(\"f.json\"))[\"checkpoints\"][0]
print(\"signature\", c[\"signature\"][\"status\"])
for x in sorted((x[\"id\"], x[\"severity\"]) for x in c[\"findings\"]):
    print(*x)
"
}

test_expect_success 'remote verify checks a signature as local verify does' '
	# a copy outside any store: no store keys on either side
	rm -rf t0 && cp -a a/runs/r/step-5 t0 &&
	findings t0 --key k.pub >local &&
	findings "$ST/runs/r/step-5" --key k.pub >remote &&
	test_grep "^exit 0" remote &&
	test_grep "^signature valid" remote &&
	test_grep "^signature-valid info" remote &&
	test_cmp local remote &&
	ckpt -C "$ST" verify --key k.pub r@5 2>err &&
	test_grep "signature: valid (key " err
'

test_expect_success 'remote verify: an untrusted key is exit 1, as locally' '
	findings t0 --key other.pub >local &&
	findings "$ST/runs/r/step-5" --key other.pub >remote &&
	test_grep "^exit 1" remote &&
	test_grep "^signature-unknown-key error" remote &&
	test_cmp local remote
'

test_expect_success 'remote verify trusts the store keys (.ckpt/keys/*.pub objects)' '
	test_expect_code 1 ckpt -C "$ST" verify r@5 >out &&
	test_grep "FAILED (signature-unknown-key" out &&
	s3 "$BUCKET" put st/.ckpt/keys/k.pub k.pub &&
	ckpt -C "$ST" verify r@5 2>err &&
	test_grep "signature: valid" err &&
	ckpt verify "$ST/runs/r/step-5" 2>err &&
	test_grep "signature: valid" err &&
	s3 "$BUCKET" delete st/.ckpt/keys/k.pub
'

test_expect_success 'remote verify: a tampered signature is exit 1 (signature-invalid), as locally' '
	rm -rf t3 && cp -a a/runs/r/step-5 t3 &&
	sed -i "s/^trusted comment: .*/trusted comment: time:2000-01-01T00:00:00Z file:x/" \
	    t3/ckpt-manifest.json.sig &&
	s3 "$BUCKET" get st/runs/r/step-5/ckpt-manifest.json.sig >sig.good &&
	s3 "$BUCKET" put st/runs/r/step-5/ckpt-manifest.json.sig \
	    t3/ckpt-manifest.json.sig &&
	test_when_finished "s3 \"$BUCKET\" put st/runs/r/step-5/ckpt-manifest.json.sig sig.good" &&
	findings t3 --key k.pub >local &&
	findings "$ST/runs/r/step-5" --key k.pub >remote &&
	test_grep "^exit 1" remote &&
	test_grep "^signature-invalid error" remote &&
	test_cmp local remote
'

test_expect_success 'remote verify: a tampered manifest breaks the signature, as locally' '
	rm -rf t1 && cp -a a/runs/r/step-5 t1 &&
	sed -i "s/\"step\": 5/\"step\": 6/" t1/ckpt-manifest.json &&
	! test_cmp a/runs/r/step-5/ckpt-manifest.json t1/ckpt-manifest.json &&
	s3 "$BUCKET" put st/runs/r/step-5/ckpt-manifest.json \
	    t1/ckpt-manifest.json &&
	test_when_finished "s3 \"$BUCKET\" put st/runs/r/step-5/ckpt-manifest.json a/runs/r/step-5/ckpt-manifest.json" &&
	findings t1 --key k.pub >local &&
	findings "$ST/runs/r/step-5" --key k.pub >remote &&
	test_grep "^exit 1" remote &&
	test_grep "^signature-invalid error" remote &&
	test_cmp local remote
'

test_expect_success 'remote verify: a malformed signature, and --require-signature on an unsigned one' '
	rm -rf t4 && cp -a a/runs/r/step-5 t4 &&
	echo garbage >t4/ckpt-manifest.json.sig &&
	s3 "$BUCKET" put st/runs/r/step-5/ckpt-manifest.json.sig \
	    t4/ckpt-manifest.json.sig &&
	test_when_finished "s3 \"$BUCKET\" put st/runs/r/step-5/ckpt-manifest.json.sig sig.good" &&
	findings t4 --key k.pub >local &&
	findings "$ST/runs/r/step-5" --key k.pub >remote &&
	test_grep "^signature-malformed error" remote &&
	test_cmp local remote &&
	rm -rf t7 && cp -a a/runs/r/step-7 t7 &&
	findings t7 --require-signature >local &&
	findings "$ST/runs/r/step-7" --require-signature >remote &&
	test_grep "^exit 1" remote &&
	test_grep "^signature-missing error" remote &&
	test_cmp local remote
'

test_expect_success 'a checkpoint signed in the remote store exports with its signature' '
	ckpt -C "$ST" sign -k k.key r@7 >/dev/null &&
	ckpt -C "$ST" export -o s7.tar r@7 >/dev/null &&
	tar tf s7.tar >list &&
	test_grep "^r@7/ckpt-manifest.json.sig$" list &&
	rm -rf s7 &&
	ckpt -C s7 import s7.tar >/dev/null &&
	ckpt -C s7 verify --require-signature --key k.pub r@7 >/dev/null
'

test_done
