#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='promote --sign on an s3:// store against a real RGW: the
promote record and its signature are objects put before the registry
commit; log --verify and verify --registry check them (--key files and the
store key objects); a tampered record or signature is found; a wrong key
or a failing service leaves the registry as it was'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

STORE=s3://$BUCKET/ps
export CKPT_STORE=$STORE

# save STEP: commit src/ (a safetensors file) as r@STEP.
save() {
	rm -rf src && mkdir src &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" \
		src/model.safetensors 20000 "$1" &&
	ckpt save -q --run r --step "$1" --copy src
}

# registry FILE: every object of the store's registry and every upload.
registry() {
	s3 "$BUCKET" list ps/registry/ >"$1" &&
	s3 "$BUCKET" uploads ps/ >>"$1"
}

REC=ps/registry/m/v1.record

test_expect_success 'setup: keys and an s3:// store with r@1..r@4' '
	ckpt keygen -o alice --no-passphrase >/dev/null &&
	ckpt keygen -o other --no-passphrase >/dev/null &&
	echo pw >pw && chmod 600 pw &&
	echo wrong >bad && chmod 600 bad &&
	ckpt keygen -o bob --passphrase-file pw >/dev/null &&
	ckpt init &&
	save 1 && save 2 && save 3 && save 4
'

test_expect_success 'promote --sign-key: the record and its signature are objects' '
	ckpt promote r@1 --model m --sign-key alice.key >out &&
	test_grep "^  signed by key [0-9a-f]\{16\}$" out &&
	s3 "$BUCKET" get $REC >record &&
	s3 "$BUCKET" get $REC.sig >sig &&
	test_grep "^trusted comment: promotion m v1\$" sig &&
	ckpt log --model m >log &&
	test_grep "promote v1  *r@1" log &&
	! s3 "$BUCKET" list ps/.ckpt/ | grep lock
'

test_expect_success 'log --verify checks the signed promotion with --key' '
	ckpt log --verify --require-signature --key alice.pub >out 2>err &&
	test_grep "1 signed promotion" err &&
	ckpt verify --registry --require-signature --key alice.pub 2>err &&
	test_expect_code 1 ckpt log --verify --key other.pub 2>err &&
	test_grep "promotion-signature-unknown-key" err
'

test_expect_success 'the store key objects (.ckpt/keys/*.pub) are trusted' '
	test_expect_code 1 ckpt log --verify 2>err &&
	test_grep "promotion-signature-unknown-key" err &&
	s3 "$BUCKET" put ps/.ckpt/keys/alice.pub alice.pub &&
	test_when_finished "s3 \"$BUCKET\" delete ps/.ckpt/keys/alice.pub" &&
	ckpt log --verify >out 2>err &&
	test_grep "1 signed promotion" err
'

test_expect_success 'a tampered record is promotion-record-mismatch' '
	sed "s/\"step\":1/\"step\":7/" record >tampered &&
	! test_cmp record tampered &&
	s3 "$BUCKET" put $REC tampered &&
	test_when_finished "s3 \"$BUCKET\" put $REC record" &&
	test_expect_code 1 ckpt log --verify --key alice.pub 2>err &&
	test_grep "promotion-record-mismatch" err
'

test_expect_success 'a tampered signature is promotion-signature-invalid' '
	sed "s/^trusted comment: .*/trusted comment: promotion m v9/" sig \
	    >tampered &&
	s3 "$BUCKET" put $REC.sig tampered &&
	test_when_finished "s3 \"$BUCKET\" put $REC.sig sig" &&
	test_expect_code 1 ckpt log --verify --key alice.pub 2>err &&
	test_grep "promotion-signature-invalid" err &&
	test_expect_code 1 ckpt verify --registry --key alice.pub 2>err &&
	test_grep "promotion-signature-invalid" err
'

test_expect_success 'a passphrase key signs; an unsigned promotion is found with --require-signature' '
	ckpt promote r@2 --model m --sign-key bob.key \
	    --passphrase-file pw >out &&
	test_grep "signed by key" out &&
	ckpt log --verify --key alice.pub --key bob.pub >out 2>err &&
	test_grep "2 signed promotions" err &&
	ckpt promote r@3 --model m >/dev/null &&
	test_expect_code 1 ckpt log --verify --require-signature \
	    --key alice.pub --key bob.pub 2>err &&
	test_grep "promotion-unsigned" err
'

test_expect_success 'a wrong passphrase or a missing key: refused, registry unchanged' '
	registry before &&
	test_expect_code 3 ckpt promote r@4 --model m --sign-key bob.key \
	    --passphrase-file bad 2>err &&
	test_grep "wrong passphrase" err &&
	test_expect_code 3 ckpt promote r@4 --model m --sign-key nosuch.key \
	    2>err &&
	test_grep "nosuch.key" err &&
	registry after &&
	test_cmp before after &&
	ckpt log --verify --key alice.pub --key bob.pub >/dev/null 2>&1
'

test_expect_success 'the PUT of the record signature failing: exit 3, registry unchanged' '
	registry before &&
	rgw_proxy_start psig "500:all:PUT /$BUCKET/ps/registry/m/v4.record.sig" &&
	test_when_finished "rgw_proxy_stop psig" &&
	AWS_ENDPOINT_URL=$PROXY_URL test_expect_code 3 \
	    ckpt promote r@4 --model m --sign-key alice.key 2>err &&
	test_grep "v4.record.sig: PUT: HTTP 500" err &&
	test $(grep -c "v4.record.sig 500\$" psig.log) -gt 1 &&
	ckpt log --model m >log &&
	! grep "promote v4" log &&
	ckpt log --verify --key alice.pub --key bob.pub >/dev/null 2>&1 &&
	registry after &&
	test_cmp before after
'

test_expect_success 'after the failure the same promotion succeeds, signed' '
	ckpt promote r@4 --model m --sign-key alice.key >out &&
	test_grep "to m v4" out &&
	test_grep "signed by key" out &&
	ckpt log --verify --key alice.pub --key bob.pub 2>err &&
	test_grep "3 signed promotions" err
'

test_done
