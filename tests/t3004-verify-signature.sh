#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify: signed manifests, trusted keys, --require-signature'
. "$(dirname "$0")/lib.sh"

mk() {
	rm -rf "$1" && "$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-verify-ckpt.py" "$1"
}

test_expect_success 'setup: two keys and a signed checkpoint' '
	ckpt keygen -o alice --no-passphrase >/dev/null &&
	echo pw >pw &&
	chmod 600 pw &&
	ckpt keygen -o bob --passphrase-file pw >/dev/null &&
	mk signed &&
	ckpt sign -k alice.key signed >/dev/null &&
	test_path_is_file signed/ckpt-manifest.json.sig
'

test_expect_success 'a good signature from a given key verifies' '
	ckpt verify --require-signature --key alice.pub signed >out &&
	test_grep "^signed/a.txt: OK" out &&
	ckpt verify --json --key alice.pub signed >out.json &&
	"$PYTHON" - <<-\PY
	import json
	c = json.load(open("out.json"))["checkpoints"][0]
	assert c["signature"]["status"] == "valid", c["signature"]
	assert c["ok"] is True
	assert any(x["id"] == "signature-valid" and x["severity"] == "info" for x in c["findings"])
	PY
'

test_expect_success 'the signature file is not an EXTRA file' '
	ckpt verify --key alice.pub signed >out &&
	! grep "\.sig" out
'

test_expect_success 'a signature by an untrusted key fails' '
	test_expect_code 1 ckpt verify --key bob.pub signed >out &&
	test_grep "FAILED (signature-unknown-key" out &&
	test_expect_code 1 ckpt verify signed >out &&
	test_grep "FAILED (signature-unknown-key" out
'

test_expect_success 'a tampered manifest breaks the signature' '
	rm -rf t1 && cp -a signed t1 &&
	sed -i "s/\"step\": 1/\"step\": 2/" t1/ckpt-manifest.json &&
	test_expect_code 1 ckpt verify --key alice.pub t1 >out &&
	test_grep "ckpt-manifest.json.sig: FAILED (signature-invalid" out &&
	test_grep "^t1/a.txt: OK" out
'

test_expect_success 'a manifest tampered to match tampered data: files pass, signature fails' '
	rm -rf t2 && cp -a signed t2 &&
	echo "{\"epoch\": 4, \"note\": \"whole-file digest only\"}" >t2/c.json &&
	"$PYTHON" - <<-\PY &&
	import hashlib, json, os
	p = "t2/ckpt-manifest.json"
	m = json.load(open(p))
	data = open("t2/c.json", "rb").read()
	for f in m["files"]:
	    if f["path"] == "c.json":
	        f["size"] = len(data)
	        f["sha256"] = "sha256:" + hashlib.sha256(data).hexdigest()
	open(p, "w").write(json.dumps(m, indent=2, sort_keys=True) + "\n")
	PY
	test_expect_code 1 ckpt verify --key alice.pub t2 >out &&
	test_grep "^t2/c.json: OK" out &&
	test_grep "FAILED (signature-invalid" out
'

test_expect_success 'a signature edited in its trusted comment fails' '
	rm -rf t3 && cp -a signed t3 &&
	sed -i "s/^trusted comment: .*/trusted comment: time:2000-01-01T00:00:00Z file:x/" t3/ckpt-manifest.json.sig &&
	test_expect_code 1 ckpt verify --key alice.pub t3 >out &&
	test_grep "FAILED (signature-invalid" out
'

test_expect_success 'a flipped signature byte fails' '
	rm -rf t4 && cp -a signed t4 &&
	"$PYTHON" - <<-\PY &&
	import base64
	p = "t4/ckpt-manifest.json.sig"
	lines = open(p).read().split("\n")
	b = bytearray(base64.b64decode(lines[1]))
	b[40] ^= 1
	lines[1] = base64.b64encode(bytes(b)).decode()
	open(p, "w").write("\n".join(lines))
	PY
	test_expect_code 1 ckpt verify --key alice.pub t4 >out &&
	test_grep "FAILED (signature-invalid" out
'

test_expect_success 'a garbage signature file is malformed, not a crash' '
	rm -rf t5 && cp -a signed t5 &&
	echo garbage >t5/ckpt-manifest.json.sig &&
	test_expect_code 1 ckpt verify --key alice.pub t5 >out &&
	test_grep "FAILED (signature-malformed)" out &&
	head -c 5000 /dev/urandom >t5/ckpt-manifest.json.sig &&
	test_expect_code 1 ckpt verify --key alice.pub t5 >out &&
	test_grep "FAILED (signature-malformed)" out
'

test_expect_success '--require-signature fails an unsigned checkpoint' '
	mk unsigned &&
	ckpt verify unsigned >/dev/null &&
	test_expect_code 1 ckpt verify --require-signature unsigned >out &&
	test_grep "ckpt-manifest.json: FAILED (signature-missing)" out
'

test_expect_success '--require-signature fails a bare file' '
	echo x >bare.txt &&
	test_expect_code 1 ckpt verify --require-signature bare.txt >out &&
	test_grep "FAILED (signature-missing)" out
'

test_expect_success 'a signature copied from another checkpoint fails' '
	mk other && cp signed/ckpt-manifest.json.sig other/ &&
	sed -i "s/\"run\": \"r\"/\"run\": \"q\"/" other/ckpt-manifest.json &&
	test_expect_code 1 ckpt verify --key alice.pub other >out &&
	test_grep "FAILED (signature-invalid" out
'

test_expect_success 'sign with a passphrase-protected key; re-signing replaces' '
	mk s2 &&
	ckpt sign -k bob.key --passphrase-file pw s2 >/dev/null &&
	ckpt verify --require-signature --key bob.pub s2 >/dev/null &&
	ckpt sign -k alice.key s2 >/dev/null &&
	test_expect_code 1 ckpt verify --require-signature --key bob.pub s2 >/dev/null &&
	ckpt verify --require-signature --key alice.pub s2 >/dev/null
'

test_expect_success 'store: keys in .ckpt/keys are trusted; references resolve' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" st r1@1 r1@2 &&
	for s in 1 2; do
		d=st/runs/r1/step-$s &&
		rm -rf "$d" &&
		"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-verify-ckpt.py" "$d" 4096 r1 $s || exit 1
	done &&
	ckpt -C st ls >ls.out &&
	ckpt -C st keygen -o carol --no-passphrase >out &&
	ckpt -C st sign -k carol.key r1@2 >/dev/null &&
	ckpt -C st verify --require-signature r1@2 >out &&
	test_grep "step-2/a.txt: OK" out &&
	test_expect_code 1 ckpt -C st verify --require-signature r1@1 >out &&
	test_grep "FAILED (signature-missing)" out
'

test_expect_success 'store: --all and --subset' '
	test_expect_code 1 ckpt -C st verify --all --require-signature >out &&
	test_grep "step-1/ckpt-manifest.json: FAILED (signature-missing)" out &&
	ckpt -C st verify --all >all &&
	test $(grep -c ": OK$" all) = 6 &&
	: >slices &&
	for k in 1 2 3; do ckpt -C st verify --subset $k/3 >>slices || exit 1; done &&
	sort all >a && sort slices >b && test_cmp a b
'

test_expect_success 'MODEL@vN: the manifest must have the digest the registry recorded' '
	d=$(sha256sum st/runs/r1/step-2/ckpt-manifest.json | cut -d" " -f1) &&
	mkdir -p st/registry/m &&
	printf "{\"schema\": 1, \"model\": \"m\", \"version\": 1, \"run\": \"r1\", \"step\": 2, \"manifest\": \"sha256:%s\"}\n" "$d" >st/registry/m/v1.json &&
	printf "{\"schema\": 1, \"model\": \"m\", \"version\": 2, \"run\": \"r1\", \"step\": 1, \"manifest\": \"sha256:%s\"}\n" "$d" >st/registry/m/v2.json &&
	ckpt -C st verify m@v1 >out &&
	test_grep "step-2/a.txt: OK" out &&
	test_expect_code 1 ckpt -C st verify m@v2 >out &&
	test_grep "FAILED (manifest-digest-mismatch)" out
'

test_expect_success 'an unknown reference is an error, not a pass' '
	test_must_fail ckpt -C st verify r1@99 >out 2>err &&
	test ! -s out
'

test_expect_success 'the human summary says what became of the signature' '
	ckpt verify --key alice.pub signed 2>err >/dev/null &&
	test_grep "; signature: valid (key [0-9a-zA-Z:]*)$" err &&
	mk unsigned &&
	ckpt verify unsigned 2>err >/dev/null &&
	test_grep "; signature: missing$" err &&
	test_expect_code 1 ckpt verify --key bob.pub signed 2>err >/dev/null &&
	test_grep "; signature: by an unknown key$" err &&
	test_expect_code 1 ckpt verify --key alice.pub signed unsigned --require-signature 2>err >/dev/null &&
	test_grep "; signatures: 1 valid (key [^)]*), 1 missing$" err
'

test_done
