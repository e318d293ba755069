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
	test_might_fail ckpt -C h save --run r --step 1 hidden-save &&
	test_expect_code 1 ckpt -C h verify r@1 >out &&
	test_grep "__0_0.distcp: FAILED (unsafe global posix.system)$" out &&
	test_path_is_missing hidden/pwned &&
	test_path_is_missing h/runs/r/step-1/pwned
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
