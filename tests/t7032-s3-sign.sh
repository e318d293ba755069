#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='ckpt sign of a checkpoint in a store on a real RGW: the
signature object is put beside the manifest under the store lock, verify
finds it good, a tampered one fails; a wrong or missing key, a checkpoint
without manifest and a failing service each leave the bucket unchanged'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

mkst() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" "$@"
}

s3() {
	ckpt-test-tool s3 "$@"
}

# bucket FILE: every object of the store (key and size) and every
# unfinished multipart upload, for "unchanged" checks.
bucket() {
	s3 "$BUCKET" list sg/ >"$1" &&
	s3 "$BUCKET" uploads sg/ >>"$1"
}

# sigstatus ARGS...: verify --json's exit code and signature status.
sigstatus() {
	ckpt -C "$ST" verify --json "$@" >f.json 2>/dev/null
	echo "exit $?"
	"$PYTHON" -c "
import json
for c in json.load(open(\"f.json\"))[\"checkpoints\"]:
    print(\"signature\", c[\"signature\"][\"status\"])
    for x in sorted((x[\"id\"], x[\"severity\"]) for x in c[\"findings\"]
                    if x[\"id\"].startswith(\"signature\")):
        print(*x)
"
}

ST="s3://$BUCKET/sg"
SIG=sg/runs/r/step-1/ckpt-manifest.json.sig

test_expect_success 'setup: two keys, a store on RGW with two checkpoints' '
	ckpt keygen -o alice --no-passphrase >/dev/null &&
	echo pw >pw &&
	chmod 600 pw &&
	echo wrong >bad &&
	chmod 600 bad &&
	ckpt keygen -o bob --passphrase-file pw >/dev/null &&
	mkdir src &&
	mkst src/model.safetensors 40000 1 &&
	ckpt init -C "$ST" >/dev/null &&
	ckpt -C "$ST" save --run r --step 1 --copy src >/dev/null &&
	ckpt -C "$ST" save --run r --step 2 --copy src >/dev/null &&
	test_expect_code 1 ckpt -C "$ST" verify --require-signature r@1 >out
'

test_expect_success 'sign RUN@STEP in the remote store: the .sig object, verify good' '
	ckpt -C "$ST" sign -k alice.key r@1 >out &&
	test_grep "^$ST/runs/r/step-1/ckpt-manifest.json.sig: signed by key [0-9a-f]\{16\}\$" out &&
	s3 "$BUCKET" head $SIG &&
	s3 "$BUCKET" get $SIG >sig &&
	test_grep "^trusted comment: time:20[0-9-]*T[0-9:]*Z file:r@1\$" sig &&
	! s3 "$BUCKET" list sg/.ckpt/ | grep "lock" &&
	sigstatus --key alice.pub --require-signature r@1 >st &&
	test_grep "^exit 0" st &&
	test_grep "^signature valid" st &&
	ckpt -C "$ST" verify --key alice.pub r@1 2>err &&
	test_grep "signature: valid (key " err
'

test_expect_success 'the remote signature is the one pulled: it verifies locally too' '
	ckpt -C "$ST" pull r@1 local >/dev/null &&
	test_cmp sig local/ckpt-manifest.json.sig &&
	ckpt verify --require-signature --key alice.pub local >/dev/null
'

test_expect_success 'sign --json names the remote manifest, signature and key id' '
	ckpt -C "$ST" --json sign -k alice.key r@1 >out.json &&
	"$PYTHON" -c "
import json, sys
d = json.load(open(\"out.json\"))[\"signed\"]
assert len(d) == 1, d
assert d[0][\"manifest\"] == sys.argv[1] + \"/runs/r/step-1/ckpt-manifest.json\", d
assert d[0][\"signature\"] == d[0][\"manifest\"] + \".sig\", d
assert len(d[0][\"key_id\"]) == 16, d
" "$ST"
'

test_expect_success 're-signing replaces the signature, as locally (passphrase key)' '
	ckpt -C "$ST" sign -k bob.key --passphrase-file pw r@1 >/dev/null &&
	sigstatus --key bob.pub r@1 >st &&
	test_grep "^signature valid" st &&
	sigstatus --key alice.pub r@1 >st &&
	test_grep "^exit 1" st &&
	test_grep "^signature-unknown-key error" st
'

test_expect_success 'several checkpoints in one call, one passphrase' '
	ckpt -C "$ST" sign -k bob.key --passphrase-file pw r@1 r@latest >out &&
	test $(grep -c ": signed by key " out) = 2 &&
	sigstatus --key bob.pub --require-signature r@1 r@2 >st &&
	test_grep "^exit 0" st &&
	test $(grep -c "^signature valid" st) = 2
'

test_expect_success 'a tampered signature object fails verify (signature-invalid)' '
	s3 "$BUCKET" get $SIG >good &&
	sed "s/^trusted comment: .*/trusted comment: time:2000-01-01T00:00:00Z file:x/" \
	    good >tampered &&
	! test_cmp good tampered &&
	s3 "$BUCKET" put $SIG tampered &&
	test_when_finished "s3 \"$BUCKET\" put $SIG good" &&
	sigstatus --key bob.pub r@1 >st &&
	test_grep "^exit 1" st &&
	test_grep "^signature-invalid error" st &&
	test_expect_code 1 ckpt -C "$ST" verify --key bob.pub r@1 >out
'

test_expect_success 'a wrong passphrase: exit 3, the signature left as it was' '
	bucket before &&
	s3 "$BUCKET" get $SIG >sig.before &&
	test_expect_code 3 ckpt -C "$ST" sign -k bob.key --passphrase-file bad r@1 2>err &&
	test_grep "wrong passphrase" err &&
	bucket after &&
	test_cmp before after &&
	s3 "$BUCKET" get $SIG >sig.after &&
	test_cmp sig.before sig.after &&
	! s3 "$BUCKET" list sg/.ckpt/ | grep "lock"
'

test_expect_success 'a missing key or a public key as secret key: refused as locally, nothing written' '
	bucket before &&
	test_expect_code 3 ckpt -C "$ST" sign -k nosuch.key r@2 2>err &&
	test_grep "nosuch.key" err &&
	test_expect_code 3 ckpt -C "$ST" sign -k alice.pub r@2 2>err &&
	test_grep "alice.pub" err &&
	chmod 644 alice.key &&
	test_when_finished "chmod 600 alice.key" &&
	test_expect_code 2 ckpt -C "$ST" sign -k alice.key r@2 2>err &&
	test_grep "alice.key" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'a missing checkpoint: exit 3, nothing written' '
	bucket before &&
	test_expect_code 3 ckpt -C "$ST" sign -k alice.key r@9 2>err &&
	test_grep "r@9" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'objects without a manifest are not signed, and stay invisible' '
	s3 "$BUCKET" put sg/runs/r/step-5/model.safetensors src/model.safetensors &&
	bucket before &&
	test_expect_code 3 ckpt -C "$ST" sign -k alice.key r@5 2>err &&
	test_expect_code 3 ckpt -C "$ST" sign -k alice.key "$ST/runs/r/step-5" 2>err &&
	test_grep "$ST/runs/r/step-5: has no manifest (ckpt-manifest.json): only committed checkpoints can be signed" err &&
	bucket after &&
	test_cmp before after &&
	ckpt -C "$ST" ls >out &&
	! grep "^r  *5 " out &&
	s3 "$BUCKET" delete sg/runs/r/step-5/model.safetensors
'

test_expect_success 'a remote checkpoint outside the store named: refused, exit 2' '
	test_expect_code 2 ckpt sign -k alice.key "$ST/runs/r/step-2" 2>err &&
	test_grep "signed in its store" err &&
	test_expect_code 2 ckpt -C "s3://$BUCKET/other" sign -k alice.key \
	    "$ST/runs/r/step-2" 2>err &&
	bucket before &&
	test_expect_code 2 ckpt -C "$ST" sign -k alice.key \
	    "$ST/runs/r/step-2/../step-1" 2>err &&
	test_grep "not a checkpoint of the store" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'the PUT of the signature refused every time: exit 3 naming it, store unchanged' '
	bucket before &&
	rgw_proxy_start psig "500:all:PUT /$BUCKET/sg/runs/r/step-2/ckpt-manifest.json.sig" &&
	test_when_finished "rgw_proxy_stop psig" &&
	AWS_ENDPOINT_URL=$PROXY_URL test_expect_code 3 \
	    ckpt -C "$ST" sign -k alice.key r@2 2>err &&
	test_grep "$ST/runs/r/step-2/ckpt-manifest.json.sig: PUT: HTTP 500 InternalError" err &&
	test $(grep -c "ckpt-manifest.json.sig 500\$" psig.log) -gt 1 &&
	bucket after &&
	test_cmp before after &&
	sigstatus --key bob.pub r@2 >st &&
	test_grep "^signature valid" st
'

test_expect_success 'the manifest GET failing: exit 3, store unchanged' '
	bucket before &&
	rgw_proxy_start pget "reset:all:GET /$BUCKET/sg/runs/r/step-2/ckpt-manifest.json " &&
	test_when_finished "rgw_proxy_stop pget" &&
	AWS_ENDPOINT_URL=$PROXY_URL test_expect_code 3 \
	    ckpt -C "$ST" sign -k alice.key "$ST/runs/r/step-2" 2>err &&
	test_grep "step-2/ckpt-manifest.json" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'a store lock held elsewhere: exit 3 after the timeout, nothing written' '
	printf "pid 4242\nhost elsewhere.example\ntime 1\nboot b\nstart 1\npidns pid:[1]\nmachine m\npurpose save\nlease 600\n" >lock &&
	s3 "$BUCKET" put sg/.ckpt/lock lock --if-absent &&
	test_when_finished "s3 \"$BUCKET\" delete sg/.ckpt/lock" &&
	bucket before &&
	test_expect_code 3 ckpt -C "$ST" sign --lock-timeout 0 -k alice.key r@2 2>err &&
	test_grep "lock" err &&
	bucket after &&
	test_cmp before after
'

test_expect_success 'prune removes a signed checkpoint with its signature' '
	ckpt -C "$ST" prune --run r --keep-last 1 >/dev/null &&
	s3 "$BUCKET" list sg/runs/r/ >left &&
	! grep "step-1/" left &&
	test_grep "step-2/ckpt-manifest.json.sig" left
'

test_done
