#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify: unsafe pickles and corrupt containers (security.md section 2), each caught with its finding'
. "$(dirname "$0")/lib.sh"

H="$FIXTURES_DIR/verify-hostile"

# expect FILE ID [SUBJECT]: verify fails (orderly) with that finding
expect() {
	test_expect_code 1 ckpt verify --json "$H/$1" >out.json || return 1
	"$PYTHON" - "$2" "${3:-}" <<-\PY
	import json, sys
	want_id, want_subject = sys.argv[1], sys.argv[2]
	c = json.load(open("out.json"))["checkpoints"][0]
	assert c["ok"] is False
	got = [(x["id"], x["subject"]) for x in c["findings"]]
	ok = any(i in want_id.split("|") and (not want_subject or s == want_subject)
	         for (i, s) in got)
	assert ok, "wanted %s %s, got %s" % (want_id, want_subject, got)
	assert c["files"][0]["status"] == "FAILED", c["files"]
	PY
}

test_expect_success TORCH 'P01: GLOBAL posix.system + REDUCE' '
	expect p01-global-system.pkl unsafe-global posix.system &&
	expect p01-global-system.pkl unsafe-call posix.system &&
	expect p01-builtins-eval.pkl unsafe-global builtins.eval
'

test_expect_success TORCH 'the line names the global' '
	test_expect_code 1 ckpt verify "$H/p01-global-system.pkl" >out &&
	test_grep "p01-global-system.pkl: FAILED (unsafe global posix.system)$" out
'

test_expect_success TORCH 'P02: STACK_GLOBAL resolved through the memo' '
	expect p02-memo-stack-global.pkl unsafe-global posix.system
'

test_expect_success TORCH 'P03: STACK_GLOBAL first with STRING operands, and protocol 0 posing as text' '
	expect p03-stack-global-first.pkl unsafe-global posix.system &&
	expect p03-proto0.txt unsafe-global posix.system &&
	expect p03-proto0.txt text-pickle &&
	expect p03-proto0.bin unsafe-global posix.system
'

test_expect_success TORCH 'P04: a payload before a broken stream is reported, never clean' '
	expect p04-payload-then-broken.pkl unsafe-global posix.system &&
	expect p04-payload-then-broken.pkl pickle-malformed
'

test_expect_success TORCH 'P06: legacy file whose magic number is computed' '
	expect p06-legacy-eval-magic.pt unsafe-global builtins.eval
'

test_expect_success TORCH 'P09: dotted names' '
	expect p09-dotted.pkl unsafe-global pathlib.os.system &&
	expect p09-builtins-attr.pkl unsafe-global numpy.__builtins__.eval
'

test_expect_success TORCH 'P10: underscore stdlib modules' '
	expect p10-operator.pkl unsafe-global _operator.attrgetter
'

test_expect_success TORCH 'P11: INST and OBJ' '
	expect p11-inst.pkl unsafe-opcode &&
	expect p11-obj.pkl unsafe-opcode &&
	expect p11-inst.pkl unsafe-global posix.system
'

test_expect_success TORCH 'P12: a nested pickle' '
	expect p12-nested.pkl unsafe-global pickle.loads &&
	expect p12-nested.pkl pickle-nested
'

test_expect_success TORCH 'P13: FRAME ending inside an opcode' '
	expect p13-frame.pkl pickle-malformed
'

test_expect_success TORCH 'P14: Python 2 names are mapped before the allowlist' '
	expect p14-py2-builtin.pkl unsafe-global builtins.eval &&
	expect p14-copy-reg.pkl unsafe-global copyreg._reconstructor &&
	expect p14-copy-reg.pkl unsafe-global posix.system
'

test_expect_success TORCH 'P15: bombs hit limits, never memory' '
	expect p15-deep-marks.pkl pickle-limit &&
	expect p15-huge-length.pkl pickle-malformed
'

test_expect_success TORCH 'P16: a second pickle after STOP' '
	expect p16-two-pickles.pkl pickle-trailing-data &&
	expect z-p16-trailing.pt pickle-trailing-data
'

test_expect_success TORCH 'a hostile data.pkl inside a real torch archive' '
	expect z-p01-system.pt unsafe-global posix.system
'

test_expect_success TORCH 'T08/P05: a pickle hidden in an unreferenced member' '
	expect z-t08-unreferenced.pt zip-unreferenced archive/data.txt
'

test_expect_success TORCH 'T02/T03: storage size and view bounds' '
	expect z-t02-storage-size.pt torch-storage-size &&
	expect z-t02-storage-size.pt torch-view-out-of-bounds
'

test_expect_success TORCH 'Z03: a bit flip in member data is a CRC mismatch' '
	expect z-z03-crc.pt zip-crc-mismatch archive/data/0
'

test_expect_success TORCH 'Z03 is a structure check: --fast skips CRCs' '
	ckpt verify --fast "$H/z-z03-crc.pt" >out &&
	test_grep "OK" out
'

test_expect_success TORCH 'a bit flip in the central directory' '
	expect z-cd-flip.pt zip-header-mismatch archive/data.pkl
'

test_expect_success TORCH 'Z01: local and central names disagree' '
	expect z-z01-lfh-name.pt format-error &&
	test_expect_code 1 ckpt verify -v "$H/z-z01-lfh-name.pt" >out 2>err &&
	test_grep "z-z01-lfh-name.pt: FAILED (format-error: .*, at byte [0-9]*)$" out
'

test_expect_success TORCH 'Z04: pickle with a zip appended is read as the pickle torch sees' '
	expect z-z04-polyglot.pt unsafe-global posix.system
'

test_expect_success TORCH 'Z08: duplicate member names' '
	expect z-z08-duplicate.pt zip-duplicate-name
'

test_expect_success TORCH 'Z18: a truncated archive' '
	expect z-z18-truncated.pt "format-error|unrecognised-format" &&
	test_expect_code 1 ckpt verify -v "$H/z-z18-truncated.pt" 2>err &&
	test_grep "truncated\|central directory" err
'

test_expect_success TORCH 'clean files stay clean' '
	ckpt verify "$H/clean.pkl" "$H/z-clean.pt" >out &&
	test $(grep -c ": OK$" out) = 2
'

test_expect_success TORCH 'a directory of all of them: every file reported, no crash' '
	mkdir all && cp "$H"/*.pkl "$H"/*.pt "$H"/*.txt "$H"/*.bin all/ &&
	rm all/clean.pkl all/z-clean.pt all/numerics.pt all/finite.pt &&
	test_expect_code 1 ckpt verify all >out &&
	n=$(ls all | wc -l) &&
	test $(grep -c ": FAILED (" out) = "$n"
'

test_expect_success TORCH 'a payload renamed to look harmless is still sniffed' '
	cp "$H/p01-global-system.pkl" notes.json &&
	cp "$H/z-p01-system.pt" model.safetensors &&
	test_expect_code 1 ckpt verify notes.json model.safetensors >out &&
	test_grep "notes.json: FAILED (unsafe global posix.system)" out &&
	test_grep "model.safetensors: FAILED (unsafe global posix.system)" out
'

test_done
