#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify: OpenSSF model signing bundles (key method, files, SHA-256)'
. "$(dirname "$0")/lib.sh"

if ! "$PYTHON" -c 'import cryptography' >/dev/null 2>&1; then
	say "1..0 # SKIP $PYTHON has no cryptography module"
	exit 0
fi

mkoms() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-oms-bundle.py" "$@"
}

test_expect_success 'setup: a model directory signed by the spec' '
	mkdir -p m/sub && echo weights >m/a.bin.txt && echo "{}" >m/sub/c.json &&
	mkoms m m.sig k &&
	test_path_is_file m.sig && test_path_is_file k.pem
'

test_expect_success 'a valid bundle verifies' '
	ckpt verify --oms-bundle m.sig --oms-key k.pem --json m >out.json &&
	"$PYTHON" - <<-\PY
	import json
	c = json.load(open("out.json"))["checkpoints"][0]
	assert c["ok"], c
	assert any(x["id"] == "oms-valid" for x in c["findings"]), c["findings"]
	PY
'

test_expect_success 'a changed, a missing and an unsigned file are each reported' '
	cp -r m m2 && echo x >>m2/a.bin.txt && rm m2/sub/c.json && echo n >m2/new &&
	test_expect_code 1 ckpt verify --oms-bundle m.sig --oms-key k.pem m2 >out &&
	test_grep "FAILED (oms-digest-mismatch a.bin.txt)" out &&
	test_grep "FAILED (oms-file-missing sub/c.json)" out &&
	test_grep "FAILED (oms-file-extra new)" out
'

test_expect_success 'another key does not verify the bundle' '
	mkdir other && echo y >other/f && mkoms other other.sig k2 &&
	test_expect_code 1 ckpt verify --oms-bundle m.sig --oms-key k2.pem m >out &&
	test_grep "FAILED (oms-signature-invalid)" out
'

test_expect_success 'an edited statement breaks the signature' '
	"$PYTHON" - <<-\PY &&
	import base64, json
	b = json.load(open("m.sig"))
	st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
	st["predicate"]["resources"][0]["digest"] = "0" * 64
	b["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
	json.dump(b, open("edited.sig", "w"))
	PY
	test_expect_code 1 ckpt verify --oms-bundle edited.sig --oms-key k.pem m >out &&
	test_grep "FAILED (oms-signature-invalid)" out
'

test_expect_success 'a bundle inside the model directory is not a resource; P-384 keys' '
	mkdir m3 && echo z >m3/w.txt && mkoms m3 m3/model.sig k3 p384 &&
	ckpt verify --oms-bundle m3/model.sig --oms-key k3.pem m3 >out
'

test_expect_success 'garbage bundles are malformed, not crashes' '
	echo "{}" >empty.sig && echo "not json" >junk.sig &&
	test_expect_code 1 ckpt verify --oms-bundle empty.sig --oms-key k.pem m >out &&
	test_grep "FAILED (oms-malformed)" out &&
	test_expect_code 1 ckpt verify --oms-bundle junk.sig --oms-key k.pem m >out &&
	test_grep "FAILED (oms-malformed)" out &&
	test_expect_code 1 ckpt verify --oms-bundle m.sig --oms-key m.sig m >out &&
	test_grep "FAILED (oms-signature-invalid)" out
'

test_expect_success '--oms-bundle needs --oms-key' '
	test_expect_code 2 ckpt verify --oms-bundle m.sig m 2>err &&
	test_grep "go together" err
'

test_done
