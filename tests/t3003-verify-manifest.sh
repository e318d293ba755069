#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify against a manifest: every kind of corruption'
. "$(dirname "$0")/lib.sh"

mk() {
	rm -rf "$1" && "$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-verify-ckpt.py" "$1"
}

test_expect_success 'an intact checkpoint verifies' '
	mk good &&
	ckpt verify good >out &&
	printf "%s\n" "good/a.txt: OK" "good/b.txt: OK" "good/c.json: OK" >expect &&
	test_cmp expect out
'

test_expect_success 'a bit flip in a small tensor names the tensor' '
	mk c1 && ckpt-test-tool flip c1/a.txt 500 &&
	test_expect_code 1 ckpt verify c1 >out &&
	test_grep "^c1/a.txt: FAILED (tensor t.small changed)$" out &&
	test_grep "^c1/b.txt: OK$" out
'

test_expect_success 'a bit flip in a tensor larger than a chunk names it too' '
	mk c2 && ckpt-test-tool flip c2/a.txt 3000 &&
	test_expect_code 1 ckpt verify --json c2 >out.json &&
	"$PYTHON" - <<-\PY
	import json
	c = json.load(open("out.json"))["checkpoints"][0]
	ids = sorted((x["id"], x["subject"]) for x in c["findings"] if x["severity"] == "error")
	assert ("tensor-changed", "t.big") in ids, ids
	assert ("digest-mismatch", None) in ids, ids
	assert ("tensor-changed", "t.small") not in ids, ids
	a = [f for f in c["files"] if f["name"] == "a.txt"][0]
	assert a["status"] == "FAILED" and a["reason"] == "tensor t.big changed", a
	PY
'

test_expect_success 'a bit flip outside any tensor is a digest mismatch' '
	mk c3 && ckpt-test-tool flip c3/a.txt 9500 &&
	test_expect_code 1 ckpt verify -v c3 >out 2>err &&
	test_grep "^c3/a.txt: FAILED (1 of 3 chunks differ" out &&
	test_grep "outside any recorded tensor" out
'

test_expect_success 'a bit flip in a file with a whole-file digest only' '
	mk c4 && ckpt-test-tool flip c4/c.json 3 &&
	test_expect_code 1 ckpt verify c4 >out &&
	test_grep "^c4/c.json: FAILED (SHA-256 differs from the manifest)$" out
'

test_expect_success 'truncation is a size mismatch' '
	mk c5 && ckpt-test-tool truncate c5/b.txt 9999 &&
	test_expect_code 1 ckpt verify c5 >out &&
	test_grep "^c5/b.txt: FAILED (size 9999, expected 10000)$" out
'

test_expect_success 'a missing file is MISSING, an added one EXTRA' '
	mk c6 && rm c6/b.txt && echo new >c6/new.txt &&
	test_expect_code 1 ckpt verify c6 >out &&
	printf "%s\n" "c6/a.txt: OK" "c6/b.txt: MISSING" "c6/c.json: OK" \
		"c6/new.txt: EXTRA" >expect &&
	test_cmp expect out
'

test_expect_success 'an extra file in a subdirectory is EXTRA too' '
	mk c7 && mkdir c7/sub && echo x >c7/sub/x.txt &&
	test_expect_code 1 ckpt verify c7 >out &&
	test_grep "^c7/sub/x.txt: EXTRA$" out
'

test_expect_success 'two swapped files of the same size both fail' '
	mk c8 && mv c8/a.txt t && mv c8/b.txt c8/a.txt && mv t c8/b.txt &&
	test_expect_code 1 ckpt verify c8 >out &&
	test_grep "^c8/a.txt: FAILED (tensor t" out &&
	test_grep "^c8/b.txt: FAILED (3 of 3 chunks differ" out
'

test_expect_success 'every finding is reported, not only the first' '
	mk c9 && ckpt-test-tool flip c9/a.txt 10 && rm c9/c.json &&
	ckpt-test-tool truncate c9/b.txt 5 && echo x >c9/zz &&
	test_expect_code 1 ckpt verify --json c9 >out.json &&
	"$PYTHON" - <<-\PY
	import json
	c = json.load(open("out.json"))["checkpoints"][0]
	st = {f["name"]: f["status"] for f in c["files"]}
	assert st == {"a.txt": "FAILED", "b.txt": "FAILED", "c.json": "MISSING", "zz": "EXTRA"}, st
	ids = {x["id"] for x in c["findings"]}
	assert {"tensor-changed", "size-mismatch", "file-missing", "file-extra"} <= ids, ids
	PY
'

test_expect_success 'a tampered digest in the manifest fails the file' '
	mk m1 &&
	"$PYTHON" -c "
import json
p = \"m1/ckpt-manifest.json\"
m = json.load(open(p))
f = [f for f in m[\"files\"] if f[\"path\"] == \"c.json\"][0]
f[\"sha256\"] = \"sha256:\" + \"0\" * 64
open(p, \"w\").write(json.dumps(m, indent=2, sort_keys=True))
" &&
	test_expect_code 1 ckpt verify m1 >out &&
	test_grep "^m1/c.json: FAILED" out
'

test_expect_success 'a manifest that does not read is a finding, not a pass' '
	mk m2 && echo "{ broken" >m2/ckpt-manifest.json &&
	test_expect_code 1 ckpt verify m2 >out &&
	test_grep "FAILED (manifest-invalid)" out
'

test_expect_success 'a manifest with a non-canonical path is refused' '
	mk m3 && sed -i "s|\"path\": \"b.txt\"|\"path\": \"../b.txt\"|" m3/ckpt-manifest.json &&
	test_expect_code 1 ckpt verify m3 >out &&
	test_grep "FAILED (manifest-invalid)" out
'

test_expect_success 'verify one file of a checkpoint against its manifest' '
	mk f1 && ckpt verify f1/b.txt >out &&
	echo "f1/b.txt: OK" >expect && test_cmp expect out &&
	ckpt-test-tool flip f1/b.txt 1 &&
	test_expect_code 1 ckpt verify f1/b.txt >out &&
	test_grep "^f1/b.txt: FAILED" out
'

test_expect_success 'a full verify hashes every byte; --fast then uses the cache' '
	mk k1 &&
	ckpt verify --json k1 >full.json &&
	"$PYTHON" -c "import json; d = json.load(open(\"full.json\")); assert d[\"summary\"][\"bytes_hashed\"] >= 20000, d[\"summary\"]" &&
	test_path_is_file "$HOME/.cache/ckpt/digests" &&
	ckpt verify --fast --json k1 >fast.json &&
	"$PYTHON" -c "
import json
s = json.load(open(\"fast.json\"))[\"summary\"]
assert s[\"bytes_hashed\"] == 0 and s[\"bytes_cached\"] >= 20000, s
"
'

test_expect_success '--fast notices a change with a new mtime' '
	mk k2 && ckpt verify k2 >/dev/null &&
	ckpt-test-tool flip k2/b.txt 100 && touch -d "2030-01-01" k2/b.txt &&
	test_expect_code 1 ckpt verify --fast k2 >out &&
	test_grep "^k2/b.txt: FAILED" out
'

test_expect_success '--fast trusts unchanged stat data; a full verify does not' '
	mk k3 && ckpt verify k3 >/dev/null &&
	touch -r k3/b.txt ref && ckpt-test-tool flip k3/b.txt 100 &&
	touch -r ref k3/b.txt &&
	ckpt verify --fast k3 >out &&
	test_grep "^k3/b.txt: OK" out &&
	test_expect_code 1 ckpt verify k3 >out &&
	test_grep "^k3/b.txt: FAILED" out
'

test_expect_success '--no-cache neither reads nor writes the cache' '
	rm -rf "$HOME/.cache" && mk k4 &&
	ckpt verify --no-cache k4 >/dev/null &&
	test_path_is_missing "$HOME/.cache/ckpt/digests"
'

test_expect_success 'a corrupt cache file is ignored' '
	mk k5 && mkdir -p "$HOME/.cache/ckpt" &&
	printf "ckpt-digest-cache 1\nnonsense\n1 2 3\n" >"$HOME/.cache/ckpt/digests" &&
	ckpt verify --fast k5 >out &&
	test_grep "^k5/a.txt: OK" out
'

test_expect_success 'a listed file swapped for a symlink is not followed' '
	mk l1 && mv l1/b.txt outside.txt && ln -s ../outside.txt l1/b.txt &&
	test_expect_code 1 ckpt verify l1 >out &&
	test_grep "^l1/b.txt: FAILED (symlink)$" out
'

test_expect_success 'the mutable status file is not an EXTRA file' '
	mk st1 && echo "{\"load_test\": \"ok\"}" >st1/ckpt-status.json &&
	ckpt verify st1 >out &&
	! grep status out
'

test_expect_success 'a file replaced by a directory is reported' '
	mk dd && rm dd/c.json && mkdir dd/c.json && echo x >dd/c.json/y &&
	test_expect_code 1 ckpt verify dd >out &&
	test_grep "^dd/c.json: MISSING$" out &&
	test_grep "^dd/c.json/y: EXTRA$" out
'

test_expect_success '-j 1 and -j 4 give the same verdicts' '
	mk j1 && ckpt-test-tool flip j1/a.txt 3000 &&
	test_expect_code 1 ckpt verify -j 1 j1 >out1 &&
	test_expect_code 1 ckpt verify -j 4 j1 >out4 &&
	test_cmp out1 out4
'

test_done
