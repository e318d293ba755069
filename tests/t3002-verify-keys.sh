#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='keygen and sign: key files, passphrases, refusals'
. "$(dirname "$0")/lib.sh"

test_expect_success 'keygen --no-passphrase writes a 0600 secret key and a public key' '
	ckpt keygen -o k1 --no-passphrase >out &&
	test_path_is_file k1.pub && test_path_is_file k1.key &&
	test "$(stat -c %a k1.key)" = 600 &&
	test_grep "^untrusted comment: ckpt public key [0-9a-f]\{16\}$" k1.pub &&
	test_grep "^untrusted comment: ckpt secret key [0-9a-f]\{16\}$" k1.key &&
	id=$(sed -n "s/^key id: *//p" out) &&
	test_grep "$id" k1.pub
'

test_expect_success 'keygen never overwrites a key' '
	cp k1.key k1.key.orig && cp k1.pub k1.pub.orig &&
	test_expect_code 2 ckpt keygen -o k1 --no-passphrase 2>err &&
	test_grep "refusing to overwrite" err &&
	test_cmp k1.key.orig k1.key && test_cmp k1.pub.orig k1.pub
'

test_expect_success 'keygen refuses when only the secret key exists' '
	cp k1.key k3.key &&
	test_expect_code 2 ckpt keygen -o k3 --no-passphrase &&
	test_path_is_missing k3.pub
'

test_expect_success 'keygen without a terminal wants a passphrase decision' '
	test_expect_code 2 ckpt keygen -o k4 </dev/null 2>err &&
	test_grep "passphrase" err &&
	test_path_is_missing k4.key
'

test_expect_success 'keygen with a passphrase file; key ids differ' '
	echo "correct horse" >pass &&
	chmod 600 pass &&
	ckpt keygen -o k2 --passphrase-file pass --json >out.json &&
	test_grep "\"encrypted\": true" out.json &&
	test_grep "passphrase-protected" k2.key &&
	test "$(sed -n 2p k1.pub)" != "$(sed -n 2p k2.pub)"
'

test_expect_success '--passphrase-file and --no-passphrase exclude each other' '
	test_expect_code 2 ckpt keygen -o k5 --passphrase-file pass --no-passphrase &&
	test_path_is_missing k5.key
'

test_expect_success 'sign a manifest; the signature names the key' '
	mkdir ck && echo "{\"schema\": 1}" >ck/ckpt-manifest.json &&
	ckpt sign -k k2.key --passphrase-file pass ck >out &&
	test_path_is_file ck/ckpt-manifest.json.sig &&
	id=$(sed -n "s/^untrusted comment: ckpt public key //p" k2.pub) &&
	test_grep "signed by key $id" out &&
	test_grep "^untrusted comment: ckpt signature by key $id$" ck/ckpt-manifest.json.sig &&
	test_grep "^trusted comment: " ck/ckpt-manifest.json.sig
'

test_expect_success 'a wrong passphrase is refused and writes nothing' '
	rm -f ck/ckpt-manifest.json.sig &&
	echo "wrong horse" >bad &&
	chmod 600 bad &&
	test_expect_code 3 ckpt sign -k k2.key --passphrase-file bad ck 2>err &&
	test_grep "wrong passphrase" err &&
	test_path_is_missing ck/ckpt-manifest.json.sig
'

test_expect_success 'an encrypted key without a terminal or file is refused' '
	test_expect_code 2 ckpt sign -k k2.key ck </dev/null 2>err &&
	test_grep "passphrase" err
'

test_expect_success 'a damaged secret key is refused' '
	sed "2s/^\(.\{150\}\)./\1A/" k1.key >k6.key &&
	if cmp -s k1.key k6.key; then sed "2s/^\(.\{150\}\)./\1B/" k1.key >k6.key; fi &&
	! cmp -s k1.key k6.key &&
	test_must_fail ckpt sign -k k6.key ck 2>err &&
	test_path_is_missing ck/ckpt-manifest.json.sig
'

test_expect_success 'a public key is not a secret key' '
	test_expect_code 3 ckpt sign -k k1.pub ck 2>err &&
	test_grep "malformed" err
'

test_expect_success 'sign refuses a directory without a manifest' '
	mkdir plain &&
	test_expect_code 3 ckpt sign -k k1.key plain 2>err &&
	test_grep "no manifest" err
'

test_expect_success 'keygen with a store installs the public key there' '
	mkdir -p st/.ckpt &&
	ckpt -C st keygen -o k7 --no-passphrase >out &&
	id=$(sed -n "s/^key id: *//p" out) &&
	test_cmp k7.pub "st/.ckpt/keys/$id.pub"
'

test_expect_success 'a passphrase file or secret key others can read is refused' '
	echo "correct horse" >open-pass &&
	chmod 644 open-pass &&
	test_expect_code 2 ckpt keygen -o perm --passphrase-file open-pass 2>err &&
	test_grep "open-pass. is accessible by group or others (mode 0644)" err &&
	test_grep "chmod 600" err &&
	test_path_is_missing perm.key &&
	ckpt keygen -o perm --passphrase-file open-pass --insecure-permissions >/dev/null 2>err &&
	test_grep "warning: passphrase file" err &&
	cp k2.key open.key && chmod 640 open.key &&
	test_expect_code 2 ckpt sign -k open.key --passphrase-file pass ck 2>err &&
	test_grep "secret key .open.key. is accessible" err &&
	ckpt sign -k open.key --passphrase-file pass --insecure-permissions ck >/dev/null 2>&1
'

test_expect_success 'an empty passphrase is refused' '
	: >empty-pass && chmod 600 empty-pass &&
	test_expect_code 2 ckpt keygen -o nopass --passphrase-file empty-pass 2>err &&
	test_grep "empty passphrase refused; for a key without one, give --no-passphrase" err &&
	test_path_is_missing nopass.key
'

test_expect_success 'a passphrase from a file descriptor, for CI' '
	echo "correct horse" | ckpt keygen -o fdkey --passphrase-fd 0 --json >out.json &&
	test_grep "\"encrypted\": true" out.json &&
	rm -f ck/ckpt-manifest.json.sig &&
	ckpt sign -k fdkey.key --passphrase-fd 3 ck 3<pass >/dev/null 2>err &&
	test_expect_code 3 ckpt sign -k fdkey.key --passphrase-fd 3 ck 3<bad 2>err &&
	test_grep "wrong passphrase" err
'

test_expect_success 'keygen creates the configuration directory when it is missing' '
	XDG_CONFIG_HOME="$PWD/fresh-config" ckpt keygen --no-passphrase >out &&
	test_path_is_file fresh-config/ckpt/ckpt.key &&
	test "$(stat -c %a fresh-config/ckpt)" = 700 &&
	test "$(stat -c %a fresh-config/ckpt/ckpt.key)" = 600 &&
	mkdir home2 && HOME="$PWD/home2" ckpt keygen --no-passphrase >out &&
	test_path_is_file home2/.config/ckpt/ckpt.key
'

test_done
