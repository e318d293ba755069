#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify: safetensors structure, tensor digests, F8/BF16 numerics'
. "$(dirname "$0")/lib.sh"

mkst() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-safetensors.py" "$@"
}

test_expect_success 'setup: a safetensors checkpoint with a manifest' '
	mkdir sd &&
	mkst sd/model.safetensors \
		w1:F32:$("$PYTHON" -c "print(\"0000803f\" * 300)") \
		w2:BF16:$("$PYTHON" -c "print(\"803f\" * 1000)") \
		b:F32:0000803f0000803f &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-manifest.py" sd 1024 &&
	ckpt verify sd >out &&
	test_grep "^sd/model.safetensors: OK$" out
'

test_expect_success 'a bit flip in tensor data names the tensor' '
	cp -r sd d1 &&
	off=$("$PYTHON" -c "import struct; print(8 + struct.unpack(\"<Q\", open(\"d1/model.safetensors\", \"rb\").read(8))[0] + 1200 + 100)") &&
	ckpt-test-tool flip d1/model.safetensors $off &&
	test_expect_code 1 ckpt verify d1 >out &&
	test_grep "^d1/model.safetensors: FAILED (tensor w2 changed)$" out
'

test_expect_success 'a bit flip in a small tensor names it' '
	cp -r sd d2 &&
	size=$(stat -c %s d2/model.safetensors) &&
	ckpt-test-tool flip d2/model.safetensors $((size - 2)) &&
	test_expect_code 1 ckpt verify d2 >out &&
	test_grep "^d2/model.safetensors: FAILED (tensor b changed)$" out
'

test_expect_success 'a bit flip in the header is a format error and a digest mismatch' '
	cp -r sd d3 &&
	ckpt-test-tool flip d3/model.safetensors 20 0x20 &&
	test_expect_code 1 ckpt verify --json d3 >out.json &&
	"$PYTHON" - <<-\PY
	import json
	c = json.load(open("out.json"))["checkpoints"][0]
	ids = {x["id"] for x in c["findings"]}
	assert "format-error" in ids and "digest-mismatch" in ids, ids
	PY
'

test_expect_success 'a header flip is caught without a manifest too' '
	cp sd/model.safetensors bare.safetensors &&
	ckpt-test-tool flip bare.safetensors 20 0x20 &&
	test_expect_code 1 ckpt verify bare.safetensors >out &&
	test_grep "FAILED (format-error: invalid JSON in header: .*, at byte 14)$" out
'

test_expect_success 'a corrupt header length is caught' '
	cp sd/model.safetensors len.safetensors &&
	ckpt-test-tool flip len.safetensors 5 0x10 &&
	test_expect_code 1 ckpt verify len.safetensors >out &&
	test_grep "FAILED" out
'

test_expect_success 'truncation without a manifest is a structure finding' '
	cp sd/model.safetensors short.safetensors &&
	ckpt-test-tool truncate short.safetensors 500 &&
	test_expect_code 1 ckpt verify short.safetensors >out &&
	test_grep "FAILED" out
'

test_expect_success 'without a manifest, a data flip cannot be seen (why manifests exist)' '
	cp sd/model.safetensors data.safetensors &&
	ckpt-test-tool flip data.safetensors 300 &&
	ckpt verify data.safetensors >out &&
	test_grep "OK" out
'

test_expect_success '--numerics: NaN and Inf encodings of F8 variants and BF16' '
	mkst f8.safetensors e4m3:F8_E4M3:7fff7e00 e5m2:F8_E5M2:7cfc7d00 \
		fnuz:F8_E4M3FNUZ:8000 e5fnuz:F8_E5M2FNUZ:8001 e8m0:F8_E8M0:ff7f \
		bf16:BF16:807f0000c0ff u8:U8:ffff ok:F8_E4M3:7e01 &&
	test_expect_code 1 ckpt verify -v --numerics f8.safetensors 2>err >out &&
	test_grep "tensor e4m3 (F8_E4M3) has 2 NaN, 0 +Inf, 0 -Inf of 4" err &&
	test_grep "tensor e5m2 (F8_E5M2) has 1 NaN, 1 +Inf, 1 -Inf of 4" err &&
	test_grep "tensor fnuz (F8_E4M3FNUZ) has 1 NaN, 0 +Inf, 0 -Inf of 2" err &&
	test_grep "tensor e5fnuz (F8_E5M2FNUZ) has 1 NaN, 0 +Inf, 0 -Inf of 2" err &&
	test_grep "tensor e8m0 (F8_E8M0) has 1 NaN, 0 +Inf, 0 -Inf of 2" err &&
	test_grep "tensor bf16 (BF16) has 1 NaN, 1 +Inf, 0 -Inf of 3" err &&
	! grep "tensor u8\|tensor ok " err
'

test_done
