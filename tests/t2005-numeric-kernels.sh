#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='numeric kernels: inspect --stats and verify --numerics against numpy, every dtype, both kernels, any thread count'
. "$(dirname "$0")/lib.sh"

ORACLE="$TEST_DIRECTORY/helper/numeric-oracle.py"

# For every dtype: every bit pattern of the 8- and 16-bit types (so every
# subnormal, signed zero, Inf, NaN payload and F8 saturation value), the
# edges of the wider ones, and random data of 5*1024+3 elements, which
# crosses every block boundary of the kernels.
test_expect_success 'setup: data and numpy float64 statistics' '
	mkdir d &&
	"$PYTHON" "$ORACLE" gen d &&
	ls d/*.safetensors >files &&
	test $(wc -l <files) -eq 19
'

test_expect_success 'SIMD kernel: statistics equal numpy float64' '
	ckpt inspect --json --stats $(cat files) >simd.json &&
	"$PYTHON" "$ORACLE" check d simd.json
'

test_expect_success 'portable kernel: the same bits' '
	CKPT_NUMERIC_KERNEL=portable ckpt inspect --json --stats $(cat files) >portable.json &&
	test_cmp simd.json portable.json
'

test_expect_success 'thread counts 1, 2, 3 and 5: the same bits' '
	for t in 1 2 3 5; do
		ckpt inspect --json --stats --jobs $t $(cat files) >t$t.json &&
		test_cmp simd.json t$t.json || return 1
	done
'

# verify --numerics counts NaN/Inf from the raw bits where it can (F32,
# F64, F16, BF16, complex) and through the decoders elsewhere.
test_expect_success 'verify --numerics counts what numpy counts: -j 1, -j 2, portable' '
	for run in "-j 1" "-j 2" "portable"; do
		case $run in
		portable) test_expect_code 1 env CKPT_NUMERIC_KERNEL=portable ckpt verify --json --numerics $(cat files) >out ;;
		*) test_expect_code 1 ckpt verify --json --numerics $run $(cat files) >out ;;
		esac &&
		grep -v "\"seconds\":" out >"v-${run#-j }.json" || return 1
	done &&
	test_cmp v-1.json v-2.json &&
	test_cmp v-1.json v-portable.json &&
	"$PYTHON" - d/expected.json v-1.json <<-\EOF
	import json, re, sys
	exp = json.load(open(sys.argv[1]))
	doc = json.load(open(sys.argv[2]))
	found = {}
	def walk(x):
	    if isinstance(x, dict):
	        if x.get("id") == "tensor-nonfinite":
	            m = re.match(r"tensor (\S+) \((\S+)\) has (\d+) NaN, (\d+) \+Inf, (\d+) -Inf of (\d+)", x["message"])
	            found[(m[2], m[1])] = tuple(int(v) for v in m.groups()[2:])
	        for v in x.values(): walk(v)
	    elif isinstance(x, list):
	        for v in x: walk(v)
	walk(doc)
	floats = [dt for dt in exp if dt.startswith(("F", "C", "BF"))]
	bad = 0
	for dt in floats:
	    for name in ("edge", "rand"):
	        e = exp[dt][name]
	        want = (e["nan"], e["pos_inf"], e["neg_inf"], e["count"])
	        got = found.get((dt, name), (0, 0, 0, e["count"]))
	        if got != want:
	            print(dt, name, got, "!=", want); bad += 1
	if len(found) < 10:
	    print("too few findings", found); bad += 1
	sys.exit(1 if bad else 0)
	EOF
'

test_done
