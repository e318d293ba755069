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

# Tensors of several pieces: the cut into big pieces and into the small
# ones of the job's tail depends only on the tensors, so every thread
# count merges the same pieces in the same order.
test_expect_success 'tensors cut into pieces: numpy float64, and the same bits for -j 1, 2, 3, 5' '
	mkdir big &&
	"$PYTHON" "$ORACLE" genbig big &&
	for t in 1 2 3 5; do
		ckpt inspect --json --stats --jobs $t big/big.safetensors >big$t.json || return 1
	done &&
	"$PYTHON" "$ORACLE" check big big1.json &&
	for t in 2 3 5; do
		test_cmp big1.json big$t.json || return 1
	done &&
	CKPT_NUMERIC_KERNEL=portable ckpt inspect --json --stats --jobs 2 big/big.safetensors >bigp.json &&
	test_cmp big1.json bigp.json
'

# The caller only waits while its threads work; when the first thread
# cannot start it works alone, when a later one cannot, beside those
# that started.
test_expect_success 'threads that cannot start (EAGAIN): the same bits' '
	SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so" &&
	for nth in 1 2 3 all; do
		env ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		    LD_PRELOAD="$SHIM" CKPT_FAULT_OP=thread CKPT_FAULT_NTH=$nth \
		    CKPT_FAULT_LOG="$PWD/thread$nth.log" \
		    ckpt inspect --json --stats --jobs 4 big/big.safetensors >bigf$nth.json &&
		test_grep "^hit thread" thread$nth.log &&
		test_cmp big1.json bigf$nth.json || return 1
	done
'

test_expect_success 'tensors cut into pieces: verify --numerics and diff, the same for -j 1 and -j 3' '
	for t in 1 3; do
		test_expect_code 1 ckpt verify --json --numerics -j $t big/big.safetensors >out &&
		grep -v "\"seconds\":" out >vbig$t.json || return 1
	done &&
	test_cmp vbig1.json vbig3.json &&
	grep "tensor w (F32) has 2 NaN, 1 +Inf, 1 -Inf of 13631493" vbig1.json &&
	cp big/big.safetensors big/b2.safetensors &&
	# 4 bytes of w in the small pieces, and of h
	printf "\\377\\377\\377\\177" | dd of=big/b2.safetensors bs=1 seek=52000000 conv=notrunc 2>/dev/null &&
	printf "\\001\\002\\003\\004" | dd of=big/b2.safetensors bs=1 seek=60000000 conv=notrunc 2>/dev/null &&
	for t in 1 3; do
		test_expect_code 1 ckpt diff --json -j $t big/big.safetensors big/b2.safetensors >dbig$t.json || return 1
	done &&
	test_cmp dbig1.json dbig3.json &&
	grep "\"different\": 2" dbig1.json
'

test_done
