#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='a store on S3 (s3://BUCKET/PREFIX) against a real RGW:
init, save, save --force; the object layout; commands that do not work on
a remote store yet are refused with exit 2; bad URLs and credentials give
clear errors that never show the secret'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

# keys PREFIX: the object keys under PREFIX, sizes dropped.
keys() {
	s3 "$BUCKET" list "$1" | sed "s/ [0-9]*\$//"
}

STORE=s3://$BUCKET/st

test_expect_success 'setup' '
	"$PYTHON" -c "import os; open(\"model.dat\", \"wb\").write(b\"not a checkpoint\\n\" + os.urandom(200000))" &&
	printf "{\"lr\": 1}\n" >cfg.json
'

test_expect_success 'init creates the marker and ckpt.yaml; a second init finds it' '
	ckpt init "$STORE" >out &&
	test_grep "Initialized empty ckpt store in $STORE" out &&
	keys st/ >got &&
	printf "%s\n" st/.ckpt/store.json st/ckpt.yaml >want &&
	test_cmp want got &&
	ckpt init "$STORE/" >out &&
	test_grep "Existing ckpt store in $STORE" out
'

test_expect_success 'init --json through CKPT_STORE' '
	CKPT_STORE=s3://$BUCKET/st2 ckpt --json init >out &&
	test_grep "\"store\": \"s3://$BUCKET/st2\"" out &&
	test_grep "\"created\": true" out
'

test_expect_success 'init refuses a prefix that holds other objects' '
	printf "x\n" >junk &&
	s3 "$BUCKET" put other/junk junk &&
	test_expect_code 2 ckpt init "s3://$BUCKET/other" 2>err &&
	test_grep "s3://$BUCKET/other: not a ckpt store and not empty" err &&
	keys other/ >got &&
	echo other/junk >want &&
	test_cmp want got
'

test_expect_success 'save on an empty prefix creates the store, as on a directory' '
	ckpt -C "s3://$BUCKET/fresh" save --run r --step 1 cfg.json &&
	keys fresh/ >got &&
	cat >want <<-EOF &&
	fresh/.ckpt/index/r.json
	fresh/.ckpt/store.json
	fresh/runs/r/step-1/cfg.json
	fresh/runs/r/step-1/ckpt-manifest.json
	fresh/runs/r/step-1/ckpt-summary.json
	EOF
	test_cmp want got
'

test_expect_success 'malformed URLs and other schemes are refused (exit 2)' '
	test_expect_code 2 ckpt init "s3:///p" 2>err &&
	test_grep "no bucket" err &&
	test_expect_code 2 ckpt init "s3://$BUCKET/a//b" 2>err &&
	test_grep "empty, .\.. or .\.\.. component" err &&
	test_expect_code 2 ckpt init "s3://$BUCKET/a/../b" &&
	test_expect_code 2 ckpt init "gs://$BUCKET/p" 2>err &&
	test_grep "a directory or s3://BUCKET/PREFIX" err &&
	test_expect_code 2 ckpt init "s3://NO_SUCH/p" 2>err &&
	test_grep "bucket name" err
'

test_expect_success 'save uploads the files and commits the manifest last' '
	ckpt -C "$STORE" save --run r1 --step 1 model.dat cfg.json >out &&
	test_grep "^$STORE/runs/r1/step-1\$" out &&
	keys st/runs/ >got &&
	cat >want <<-EOF &&
	st/runs/r1/step-1/cfg.json
	st/runs/r1/step-1/ckpt-manifest.json
	st/runs/r1/step-1/ckpt-summary.json
	st/runs/r1/step-1/model.dat
	EOF
	test_cmp want got &&
	s3 "$BUCKET" get st/runs/r1/step-1/model.dat >back &&
	cmp model.dat back &&
	s3 "$BUCKET" get st/runs/r1/step-1/ckpt-manifest.json >m.json &&
	test_grep "\"model.dat\"" m.json &&
	sha=$(sha256sum model.dat | cut -c1-64) &&
	test_grep "$sha" m.json
'

test_expect_success 'save keeps the source files and leaves no spool behind' '
	mkdir spool &&
	TMPDIR=$PWD/spool ckpt -C "$STORE" save --run r0 --step 1 model.dat &&
	test -f model.dat &&
	test -z "$(ls -A spool)"
'

test_expect_success 'saving an existing RUN@STEP is refused, the store unchanged' '
	s3 "$BUCKET" list st/ >before &&
	test_expect_code 2 ckpt -C "$STORE" save --run r1 --step 1 cfg.json 2>err &&
	test_grep "r1@1 exists already" err &&
	s3 "$BUCKET" list st/ >after &&
	test_cmp before after
'

test_expect_success 'save --force replaces it; the old one goes to the trash' '
	printf "{\"lr\": 2}\n" >cfg2.json &&
	ckpt -C "$STORE" save --force --run r1 --step 1 cfg2.json &&
	keys st/runs/r1/ >got &&
	cat >want <<-EOF &&
	st/runs/r1/step-1/cfg2.json
	st/runs/r1/step-1/ckpt-manifest.json
	st/runs/r1/step-1/ckpt-summary.json
	EOF
	test_cmp want got &&
	keys st/.ckpt/trash/ >trash &&
	test_grep "/model.dat\$" trash &&
	test_grep "/ckpt-manifest.json\$" trash
'

test_expect_success 'save --move takes the files: they are in the store only' '
	cp model.dat moved.dat &&
	ckpt -C "$STORE" save --move --run r1 --step 2 moved.dat &&
	! test -e moved.dat &&
	s3 "$BUCKET" get st/runs/r1/step-2/moved.dat >back &&
	cmp model.dat back
'

test_expect_success 'import of a file that is not a bundle into s3://: exit 3, nothing changed' '
	s3 "$BUCKET" list st/ >before &&
	printf "x\n" >b.tar &&
	test_expect_code 3 ckpt -C "$STORE" import b.tar 2>err &&
	test_grep "^ckpt: b.tar: " err &&
	s3 "$BUCKET" list st/ >after &&
	test_cmp before after
'

test_expect_success 'save --load-test needs a local store: exit 2 before any upload' '
	s3 "$BUCKET" list st/ >before &&
	test_expect_code 2 ckpt -C "$STORE" save --load-test true --run r9 --step 1 cfg.json 2>err &&
	test_grep "load-test needs a local store" err &&
	s3 "$BUCKET" list st/ >after &&
	test_cmp before after
'

test_expect_success 'no credentials: a clear error, exit 2' '
	test_expect_code 2 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
		ckpt -C "$STORE" save --run r1 --step 3 cfg.json 2>err &&
	test_grep "no S3 credentials: set AWS_ACCESS_KEY_ID" err
'

test_expect_success 'a wrong secret: names the store key and the service code, never the secret' '
	test_expect_code 2 env AWS_SECRET_ACCESS_KEY=wrong-secret-1234567890 \
		ckpt -C "$STORE" save --run r1 --step 3 cfg.json 2>err &&
	test_grep "$STORE/.ckpt/store.json: GET: HTTP 403 SignatureDoesNotMatch" err &&
	! grep -e wrong-secret -e "$AWS_SECRET_ACCESS_KEY" err &&
	test_expect_code 2 env AWS_SECRET_ACCESS_KEY=wrong-secret-1234567890 \
		ckpt init "s3://$BUCKET/st3" 2>err &&
	! grep -e wrong-secret err
'

test_expect_success 'the manifest and the store never hold the credentials' '
	s3 "$BUCKET" list st/ | while read k size
	do
		s3 "$BUCKET" get "$k" >obj &&
		! grep -e "$AWS_SECRET_ACCESS_KEY" -e "$AWS_ACCESS_KEY_ID" obj ||
		return 1
	done
'

test_done
