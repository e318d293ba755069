#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify, inspect and save read every pickle of a DCP shard
(tensor chunks and bytes items) with the allowlist of a plain .pt'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/diff-dcp
SQ="'"

test_expect_success TORCH 'a clean DCP checkpoint verifies' '
	ckpt verify "$FX/dcp" >out &&
	test_grep "__0_0.distcp: OK$" out &&
	ckpt verify "$FX/single" >out &&
	test_grep "__0_0.distcp: OK$" out
'

test_expect_success TORCH 'a bytes item calling os.system fails verify: shard, archive, offset' '
	test_expect_code 1 ckpt verify --json "$FX/evil-bytes" >out.json &&
	"$PYTHON" - out.json <<-\EOF &&
	import json, re, sys
	d = json.load(open(sys.argv[1]))
	fs = [x for c in d["checkpoints"] for x in c["findings"]
	      if x["id"] == "unsafe-global"]
	assert fs, d
	x = fs[0]
	assert x["path"].endswith("evil-bytes/__0_0.distcp"), x
	assert x["severity"] == "error" and x["subject"] == "posix.system", x
	assert re.match(r"archive at bytes [0-9]+-[0-9]+: data\.pkl: ", x["message"]), x
	assert x["offset"] > 0, x
	EOF
	test_expect_code 1 ckpt verify "$FX/evil-bytes" >out &&
	test_grep "__0_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_path_is_missing "$FX/evil-bytes/pwned"
'

test_expect_success TORCH 'a tensor chunk archive calling os.system fails verify and inspect' '
	test_expect_code 1 ckpt verify "$FX/evil-chunk" >out &&
	test_grep "__1_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_grep "__0_0.distcp: OK$" out &&
	test_might_fail ckpt inspect "$FX/evil-chunk/__1_0.distcp" >out &&
	test_grep "^  posix.system  NOT ALLOWED$" out &&
	test_grep "^  error unsafe-global: archive at bytes [0-9]*-[0-9]*: data.pkl: GLOBAL ${SQ}posix.system${SQ} .* (at byte [0-9]*)$" out &&
	test_path_is_missing "$FX/evil-chunk/pwned"
'

test_expect_success TORCH 'save flags the unsafe shard as it does a .pt; verify fails it' '
	ckpt init -q s &&
	cp -R "$FX/evil-chunk" ec &&
	test_expect_code 1 ckpt -C s save --run r --step 1 ec >out 2>err &&
	test_grep "__1_0.distcp pickles globals that torch.load(weights_only=True) refuses" err &&
	test_grep "can never be allowed.*: posix.system$" err &&
	test_expect_code 1 ckpt -C s verify r@1 >out 2>err &&
	test_grep "__1_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_path_is_missing ec/pwned
'

test_expect_success TORCH 'setup: bytes items aimed at archives the shard walk does not find' '
	cp -R "$FX/dcp" hidden &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-hidden-dcp.py" "$PWD/hidden" \
		stored >hidden-at &&
	cp -R "$FX/dcp" lead &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-hidden-dcp.py" "$PWD/lead" \
		lead >lead-at
'

check_hidden () {
	"$PYTHON" - "$1" "$(cat "$2")" "$3" <<-\EOF
	import json, sys
	d = json.load(open(sys.argv[1]))
	at = int(sys.argv[2])
	fs = [x for c in d["checkpoints"] for x in c["findings"]
	      if x["id"] == "unsafe-global" and x["severity"] == "error"]
	assert len(fs) == 1, d
	x = fs[0]
	assert x["path"].endswith(sys.argv[3] + "/__0_0.distcp"), x
	assert x["subject"] == "posix.system", x
	assert x["message"].startswith("bytes item \x27sched\x27 at bytes %d-" % at), x
	assert "posix.system" in x["message"], x
	assert x["offset"] > at, x
	EOF
}

test_expect_success TORCH 'verify reads an archive hidden in a stored member: item, offset' '
	test_expect_code 1 ckpt verify --json hidden >out.json &&
	check_hidden out.json hidden-at hidden &&
	test_expect_code 1 ckpt verify hidden >out &&
	test_grep "__0_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_expect_code 1 ckpt inspect hidden >out &&
	test_grep "error unsafe-global: bytes item ${SQ}sched${SQ} at bytes $(cat hidden-at)-" out &&
	test_path_is_missing hidden/pwned
'

test_expect_success TORCH 'verify reads an archive in the bytes before the first one' '
	test_expect_code 1 ckpt verify --json lead >out.json &&
	check_hidden out.json lead-at lead &&
	test_path_is_missing lead/pwned
'

test_expect_success TORCH 'the hidden archive honours the allowlist; verify fails it saved' '
	cp -R "$FX/dcp" hidden-class &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-hidden-dcp.py" \
		"$PWD/hidden-class" stored class >/dev/null &&
	test_expect_code 1 ckpt verify hidden-class >out &&
	test_grep "__0_0.distcp: FAILED (unsafe global __main__.Hidden)$" out &&
	ckpt verify --allow-global __main__.Hidden hidden-class &&
	ckpt init -q h &&
	cp -R hidden hidden-save &&
	test_expect_code 1 ckpt -C h save --run r --step 1 hidden-save &&
	test_expect_code 1 ckpt -C h verify r@1 >out &&
	test_grep "__0_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_path_is_missing hidden/pwned &&
	test_path_is_missing h/runs/r/step-1/pwned
'

# The manifest's validation of checkpoint $1 in store $2 names file $3
# with result $4 and, for "ok", unsafe global $5, or else an error
# starting with $5.
check_validation () {
	"$PYTHON" - "$2/runs/r/step-$1/ckpt-manifest.json" "$3" "$4" "$5" <<-\EOF
	import json, sys
	v = json.load(open(sys.argv[1]))["validation"]
	fs = [f for f in v["files"] if f["path"] == sys.argv[2]]
	assert len(fs) == 1 and len(v["files"]) == 1, v
	f = fs[0]
	assert f["result"] == sys.argv[3] and v["result"] == sys.argv[3], v
	if sys.argv[3] == "ok":
	    assert f["unsafe_globals"] == [sys.argv[4]], v
	else:
	    assert f["error"].startswith(sys.argv[4]), v
	EOF
}

test_expect_success TORCH 'save runs the whole-DCP check: a hidden archive is named, as a .pt is' '
	ckpt init -q hs &&
	cp -R hidden hidden-mv &&
	cp -R hidden hidden-ref &&
	test_expect_code 1 ckpt -C hs save --move --run r --step 1 \
		hidden-mv >out 2>err &&
	test_grep "r@1: __0_0.distcp pickles globals that torch.load(weights_only=True) refuses" err &&
	test_grep "can never be allowed.*: posix.system$" err &&
	check_validation 1 hs __0_0.distcp ok posix.system &&
	test_expect_code 1 ckpt -C hs verify r@1 >out &&
	test_grep "__0_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_path_is_missing hidden-mv &&
	for f in .metadata __0_0.distcp __1_0.distcp __2_0.distcp
	do
		test_cmp hidden-ref/$f hs/runs/r/step-1/$f || return 1
	done &&
	cp -R lead lead-save &&
	test_expect_code 1 ckpt -C hs save --run r --step 2 lead-save 2>err &&
	test_grep "r@2: __0_0.distcp pickles globals" err &&
	check_validation 2 hs __0_0.distcp ok posix.system &&
	test_path_is_missing hs/runs/r/step-1/pwned &&
	test_path_is_missing lead-save/pwned
'

test_expect_success TORCH 'a clean DCP checkpoint saves (exit 0, validation ok) and verifies' '
	cp -R "$FX/dcp" clean &&
	ckpt -C hs save --move --run r --step 3 clean >out 2>err &&
	test_grep "^saved r@3 (manifest sha256:[0-9a-f]*)$" err &&
	test "$(wc -l <err)" = 1 &&
	"$PYTHON" -c "import json, sys; v = json.load(open(sys.argv[1]))[\"validation\"]; assert v == {\"result\": \"ok\", \"files\": [], \"checked\": 4}, v" \
		hs/runs/r/step-3/ckpt-manifest.json &&
	ckpt -C hs verify r@3
'

test_expect_success TORCH 'setup: chunk storage entries aimed at archives that do not hold the chunk' '
	for m in half short rank object tail
	do
		cp -R "$FX/dcp" chunk-$m &&
		"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-chunk-dcp.py" \
			"$PWD/chunk-$m" $m >chunk-$m-at || return 1
	done
'

# verify --json of $1 has exactly one error: id $2, in __0_0.distcp of
# $1, subject model.w|0,0, at the byte offset in $1-at, message $3 (a
# regular expression).
check_chunk () {
	test_expect_code 1 ckpt verify --json "$1" >out.json &&
	"$PYTHON" - out.json "$1" "$2" "$(cat "$1-at")" "$3" <<-\EOF
	import json, re, sys
	d = json.load(open(sys.argv[1]))
	fs = [x for c in d["checkpoints"] for x in c["findings"]
	      if x["severity"] == "error"]
	assert len(fs) == 1, fs
	x = fs[0]
	assert x["id"] == sys.argv[3], x
	assert x["path"].endswith(sys.argv[2] + "/__0_0.distcp"), x
	assert x["subject"] == "model.w|0,0", x
	assert x["offset"] == int(sys.argv[4]), x
	assert re.fullmatch(sys.argv[5], x["message"]), x
	EOF
}

CH="chunk 0 of tensor ${SQ}model.w${SQ} at bytes [0-9]*-[0-9]*"
test_expect_success TORCH 'verify holds each chunk archive to its metadata: dtype, shape, rank' '
	check_chunk chunk-half dcp-chunk-mismatch \
		"$CH is a F16 tensor of shape \[2, 6\], not one readable F32 tensor of 2 dimensions" &&
	check_chunk chunk-short dcp-chunk-mismatch \
		"$CH has shape \[1, 6\], the metadata says \[2, 6\]" &&
	check_chunk chunk-rank dcp-chunk-mismatch \
		"$CH is a F32 tensor of shape \[2, 6, 1\], not one readable F32 tensor of 2 dimensions" &&
	check_chunk chunk-object dcp-chunk-mismatch \
		"$CH holds 0 tensors, not one F32 tensor" &&
	check_chunk chunk-tail dcp-storage-out-of-range \
		"storage entry ${SQ}model.w\|0,0${SQ} reaches byte 0 \+ [0-9]* of ${SQ}__0_0.distcp${SQ}, which has [0-9]* bytes" &&
	test_expect_code 1 ckpt verify chunk-short >out &&
	test_grep "__0_0.distcp: FAILED (dcp-chunk-mismatch model.w|0,0)$" out
'

test_expect_success TORCH 'save records the chunk mismatch: failed validation, file and byte offset' '
	ckpt init -q cs &&
	cp -R chunk-short short-mv &&
	test_expect_code 1 ckpt -C cs save --move --run r --step 1 \
		short-mv 2>err &&
	test_grep "r@1 was committed as given, but its post-save validation failed: __0_0.distcp: chunk 0 of tensor ${SQ}model.w${SQ} at bytes $(cat chunk-short-at)-[0-9]* has shape \[1, 6\], the metadata says \[2, 6\]; " err &&
	check_validation 1 cs __0_0.distcp failed "chunk 0 of tensor" &&
	test_path_is_missing short-mv &&
	cp -R chunk-tail tail-save &&
	test_expect_code 1 ckpt -C cs save --run r --step 2 tail-save 2>err &&
	test_grep "post-save validation failed: __0_0.distcp: storage entry ${SQ}model.w|0,0${SQ} reaches byte 0 + [0-9]* of ${SQ}__0_0.distcp${SQ}, which has [0-9]* bytes (at byte 0); " err &&
	test_expect_code 1 ckpt -C cs verify r@1 r@2 &&
	test_expect_code 1 ckpt -C cs latest --run r 2>err &&
	test_grep "r@1 is marked failed (its load test or validation failed)" err
'

test_expect_success TORCH 'every clean DCP fixture still verifies' '
	for d in dcp single changed rand-0 rand-1 rand-2 rand-3 rand-4 rand-5 \
		rand-6 rand-7
	do
		ckpt verify "$FX/$d" >out || return 1
	done &&
	ckpt verify "$FIXTURES_DIR/dcp/good" &&
	ckpt verify "$FIXTURES_DIR/dcp/cols"
'

test_expect_success TORCH 'setup: a lone shard whose bytes item pickles a class' '
	mkdir lone &&
	"$PYTHON" - <<-\EOF
	import io, torch
	class Config:
	    def __init__(self):
	        self.lr = 0.1
	b = io.BytesIO()
	torch.save(torch.arange(3.0), b)
	torch.save({"cfg": Config()}, b)
	open("lone/__0_0.distcp", "wb").write(b.getvalue())
	EOF
'

test_expect_success TORCH 'the class is admitted by --allow-global and ckpt.yaml only' '
	test_expect_code 1 ckpt verify lone/__0_0.distcp >out &&
	test_grep "FAILED (unsafe global __main__.Config)$" out &&
	ckpt verify --allow-global __main__.Config lone/__0_0.distcp &&
	ckpt init -q t &&
	printf "verify:\n  allow_globals:\n    - __main__.Config\n" >t/ckpt.yaml &&
	ckpt -C t save --run r --step 1 lone &&
	ckpt -C t verify r@1 &&
	printf "verify:\n  allow_globals:\n    - __main__.Other\n" >t/ckpt.yaml &&
	test_expect_code 1 ckpt -C t verify r@1
'

test_done
