#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify: bare files and directories, output, exit codes'
. "$(dirname "$0")/lib.sh"

test_expect_success 'a plain text file verifies (structure only)' '
	echo hello >a.txt &&
	ckpt verify a.txt >out 2>err &&
	echo "a.txt: OK" >expect &&
	test_cmp expect out
'

test_expect_success 'a missing path: exit 3, nothing on stdout' '
	test_expect_code 3 ckpt verify no-such-thing >out 2>err &&
	test ! -s out &&
	test_grep "no-such-thing" err
'

test_expect_success 'nothing to verify is a usage error' '
	test_expect_code 2 ckpt verify 2>err &&
	test_grep "^usage: ckpt verify" err
'

test_expect_success 'bad --subset values are usage errors' '
	test_expect_code 2 ckpt verify --subset 0/3 &&
	test_expect_code 2 ckpt verify --subset 4/3 &&
	test_expect_code 2 ckpt verify --subset x &&
	test_expect_code 2 ckpt verify --all --subset 1/2 &&
	test_expect_code 2 ckpt verify --all a.txt
'

test_expect_success 'a directory: one line per file, sorted, recursive' '
	mkdir -p d/sub && echo 1 >d/b.txt && echo 2 >d/a.txt && echo 3 >d/sub/c.txt &&
	ckpt verify d >out &&
	printf "%s\n" "d/a.txt: OK" "d/b.txt: OK" "d/sub/c.txt: OK" >expect &&
	test_cmp expect out
'

test_expect_success 'a symlink in a checkpoint is a finding, not followed' '
	mkdir e && echo x >e/real && ln -s /etc/passwd e/link &&
	test_expect_code 1 ckpt verify e >out &&
	test_grep "^e/link: FAILED (symlink)" out &&
	test_grep "^e/real: OK" out
'

test_expect_success 'an unrecognised file named like weights is a warning finding' '
	printf "\001\002\003\004\005" >blob.bin &&
	test_expect_code 1 ckpt verify blob.bin >out &&
	test_grep "^blob.bin: FAILED (unrecognised-format: too short for any checkpoint format (5 bytes))$" out
'

test_expect_success 'an opaque binary under another name is an info finding only' '
	printf "\001\002\003\004\005\006\007\010\011\012" >tokenizer.model &&
	ckpt verify tokenizer.model >out &&
	test_grep "^tokenizer.model: OK" out &&
	ckpt verify --json tokenizer.model >out.json &&
	grep -q "\"severity\": \"info\"" out.json &&
	grep -q "unrecognised-format" out.json
'

test_expect_success 'an empty file is flagged' '
	: >empty &&
	test_expect_code 1 ckpt verify empty >out &&
	test_grep "^empty: FAILED" out
'

test_expect_success 'an empty directory is a finding' '
	mkdir nothing &&
	test_expect_code 1 ckpt verify nothing >out &&
	test_grep "FAILED (empty)" out
'

test_expect_success '-q prints only failures' '
	ckpt verify -q d a.txt >out 2>err &&
	test ! -s out && test ! -s err &&
	test_expect_code 1 ckpt verify -q d blob.bin >out &&
	echo "blob.bin: FAILED (unrecognised-format: too short for any checkpoint format (5 bytes))" >expect &&
	test_cmp expect out
'

test_expect_success 'names with a newline are escaped like sha256sum' '
	mkdir nl && echo x >"nl/a
b" &&
	ckpt verify nl >out &&
	printf "%s\n" "\\nl/a\\nb: OK" >expect &&
	test_cmp expect out
'

test_expect_success '--json: one document, schema 1, findings with ids' '
	test_expect_code 1 ckpt verify --json a.txt blob.bin >out.json &&
	$PYTHON - <<-\PY
	import json
	d = json.load(open("out.json"))
	assert d["schema"] == 1
	cps = d["checkpoints"]
	assert [c["path"] for c in cps] == ["a.txt", "blob.bin"]
	assert cps[0]["ok"] is True and cps[1]["ok"] is False
	f = cps[1]["files"][0]
	assert f["status"] == "FAILED" and f["name"] == "blob.bin", f
	ids = [x["id"] for x in cps[1]["findings"]]
	assert "unrecognised-format" in ids, ids
	for x in cps[1]["findings"]:
	    assert set(x) == {"id", "severity", "path", "subject", "message", "offset"}
	s = d["summary"]
	assert s["checkpoints"] == 2 and s["failed_checkpoints"] == 1, s
	assert s["files"] == 2 and s["ok"] == 1 and s["failed"] == 1, s
	PY
'

test_expect_success 'one unreadable path among good ones: the rest is checked, exit 3' '
	test_expect_code 3 ckpt verify --json a.txt gone >out.json &&
	$PYTHON -c "import json; d = json.load(open(\"out.json\")); assert d[\"checkpoints\"][1][\"ok\"] is False"
'

test_expect_success 'an unreadable file is a finding, not a crash' '
	if test "$(id -u)" = 0; then exit 0; fi &&
	echo x >locked && chmod 000 locked &&
	test_expect_code 1 ckpt verify locked >out &&
	test_grep "^locked: " out
'

test_expect_success 'a failure line keeps its reason: LFS hint, byte offset' '
	printf "version https://git-lfs.github.com/spec/v1\noid sha256:%064d\nsize 12345\n" 0 >lfs.safetensors &&
	test_expect_code 1 ckpt verify lfs.safetensors >out 2>err &&
	test_grep "^lfs.safetensors: FAILED (unrecognised-format: a Git LFS pointer.*git lfs pull" out &&
	"$PYTHON" -c "
import struct
open(\"cut.safetensors\", \"wb\").write(struct.pack(\"<Q\", 1 << 20) + b\"{}\")
" &&
	test_expect_code 1 ckpt verify cut.safetensors >out 2>err &&
	test_grep "^cut.safetensors: FAILED (format-error: header length .* exceeds file size" out
'

test_expect_success 'a reference that names nothing: the rest is checked, then exit 3' '
	ckpt init st >/dev/null &&
	mkdir ck && echo hello >ck/a.txt &&
	ckpt -C st save --copy --run r --step 1 ck >/dev/null &&
	test_expect_code 3 ckpt -C st verify r@999 r@1 >out 2>err &&
	test_grep "r@1/a.txt: OK\|step-1/a.txt: OK" out &&
	test_grep "r@999" err &&
	test_expect_code 3 ckpt -C st verify nosuchrun@latest 2>err &&
	test_expect_code 3 ckpt -C st --json verify r@1 nosuchrun@latest >out.json 2>err &&
	$PYTHON -c "
import json
d = json.load(open(\"out.json\"))
assert [c[\"ok\"] for c in d[\"checkpoints\"]] == [True, False], d
assert d[\"summary\"][\"failed_checkpoints\"] == 1, d
"
'

test_done
