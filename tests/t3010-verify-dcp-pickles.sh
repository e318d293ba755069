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
