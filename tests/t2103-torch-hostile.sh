#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='hostile pickles and zips: each caught with its finding'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/hostile

# findings [--crc] FILE: never a crash or a sanitizer report (status > 1)
findings() {
	ckpt-test-tool findings "$@" >out 2>err
	st=$?
	if test $st -gt 1; then
		echo "ckpt-test-tool died with status $st on $*" >&2
		cat err >&2
		return 1
	fi
	return 0
}

if test_have_prereq TORCH && test -f "$FX/EXPECT"; then
	while IFS='	' read -r file flags re; do
		opt=
		test "$flags" = crc && opt=--crc
		test_expect_success "$file: /$re/" '
			findings $opt "$FX/$file" &&
			grep -E -e "$re" out || { cat out; false; }
		'
	done <"$FX/EXPECT"
else
	test_expect_success TORCH 'hostile fixtures were generated' 'false'
fi

test_expect_success TORCH 'every hostile file opens or fails cleanly' '
	for f in "$FX"/*.p*; do
		findings "$f" && findings --crc "$f" || exit 1
		st=0
		ckpt-test-tool tensors "$f" >/dev/null 2>&1 || st=$?
		test $st -le 1 || { echo "tensors died on $f"; exit 1; }
		st=0
		ckpt-test-tool metadata "$f" >/dev/null 2>&1 || st=$?
		test $st -le 1 || { echo "metadata died on $f"; exit 1; }
	done
'

test_expect_success TORCH 'a clean crafted archive has no findings' '
	findings --crc "$FX/z00-clean.pt" &&
	test $(wc -l <out) = 1 &&
	findings --crc "$FX/t00-crafted-ok.pt" &&
	test $(wc -l <out) = 1
'

test_expect_success TORCH 'a global outside the allowlist is recorded, not allowed' '
	ckpt-test-tool globals "$FX/p02-memo-stack-global.pkl" >out &&
	test_grep "^os.system not-allowed$" out
'

test_expect_success TORCH 'the tree keeps the opaque node' '
	ckpt-test-tool metadata "$FX/p01-zipped.pt" >out &&
	test_grep "{\"\$global\":\"os.system\",\"\$args\":\[\"true\"\]}" out
'

test_expect_success 'a memo fan-out is shown once, then as shared references' '
	"$PYTHON" - <<-\PY &&
	import pickle, struct
	# "s" once; inner: 2000 references to it; mid: 100 to inner; outer:
	# 100 to mid.  Expanded, 20 million nodes from 4 KB.
	out = bytearray(b"\x80\x02X" + struct.pack("<I", 1) + b"sq\x000")
	out += b"]q\x01(" + b"h\x00" * 2000 + b"e0"
	out += b"]q\x02(" + b"h\x01" * 100 + b"e0"
	out += b"]q\x03(" + b"h\x02" * 100 + b"e."
	open("fan.pkl", "wb").write(out)
	assert len(pickle.loads(bytes(out))) == 100
	PY
	ckpt inspect --json fan.pkl >out.json &&
	"$PYTHON" - <<-\PY
	import json
	f = json.load(open("out.json"))["files"][0]
	ids = [x["id"] for x in f["findings"]]
	assert "pickle-limit" not in ids, ids
	top = f["metadata"]
	assert len(top) == 100, len(top)
	assert len(top[0][0]) == 2000 and top[0][0][0] == "s", top[0][0][:3]
	assert top[0][1] == {"$shared": True}, top[0][1]
	assert top[1] == {"$shared": True}, top[1]
	PY
'

test_expect_success TORCH 'a tensor under a shared container is still listed under each name' '
	"$PYTHON" - <<-\PY &&
	import torch
	t = torch.arange(40, dtype=torch.float32)
	inner = {"w": t, "pad": list(range(100))}
	torch.save({"a": inner, "b": inner}, "tied.pt")
	PY
	ckpt inspect --json tied.pt >out.json &&
	"$PYTHON" - <<-\PY
	import json
	f = json.load(open("out.json"))["files"][0]
	names = sorted(t["name"] for t in f["tensors"])
	assert names == ["a.w", "b.w"], names
	PY
'

test_done
