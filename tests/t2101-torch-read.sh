#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='torch readers: names, dtypes, shapes and bytes match torch'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/torch

# tensors FILE: what libckpt reads, sorted, against torch's sidecar.
check_tensors() {
	ckpt-test-tool tensors "$FX/$1" >got.raw &&
	sort got.raw >got &&
	sort "$FX/$1.expect" >want &&
	test -s want &&
	test_cmp want got
}

for f in dtypes.pt views.pt nested.pt state_dict.pt params.pt \
    lightning.ckpt optimizer.pt rng_state.pth legacy.pt legacy_dtypes.pt \
    proto4.pt buffer.pt bare_tensor.pt bigendian.pt deflated.pt script.pt \
    sparse.pt
do
	test_expect_success TORCH "$f: names, dtypes, shapes, bytes as torch" "
		check_tensors $f
	"
done

test_expect_success TORCH 'formats are named' '
	for f in dtypes.pt lightning.ckpt rng_state.pth bigendian.pt; do
		ckpt-test-tool findings "$FX/$f" >out &&
		test_grep "^format torch-zip$" out || exit 1
	done &&
	ckpt-test-tool findings "$FX/legacy.pt" >out &&
	test_grep "^format torch-legacy$" out &&
	ckpt-test-tool findings "$FX/script.pt" >out &&
	test_grep "^format torchscript$" out &&
	test_grep "^torchscript warning" out
'

test_expect_success TORCH 'stock torch files have no findings, CRCs included' '
	for f in dtypes.pt views.pt nested.pt state_dict.pt lightning.ckpt \
	    rng_state.pth legacy.pt buffer.pt bigendian.pt deflated.pt; do
		ckpt-test-tool findings --crc "$FX/$f" >out &&
		test $(wc -l <out) = 1 || { cat out; exit 1; }
	done
'

test_expect_success TORCH 'protocol 4 data.pkl: compat opcodes are warnings' '
	ckpt-test-tool findings "$FX/proto4.pt" >out &&
	test_grep "^pickle-compat-opcode warning .* STACK_GLOBAL" out &&
	! grep " error " out
'

test_expect_success TORCH 'numpy values in rng_state.pth are allowed data' '
	ckpt-test-tool globals "$FX/rng_state.pth" >out &&
	test_grep "^numpy.core.multiarray._reconstruct allowed" out &&
	test_grep "^numpy.core.multiarray.scalar allowed" out &&
	! grep not-allowed out &&
	ckpt-test-tool metadata "$FX/rng_state.pth" >meta &&
	test_grep "\"\$ndarray\":{\"dtype\":\"<u4\",\"shape\":\[624\],\"nbytes\":2496}" meta &&
	test_grep "\"np_scalar\":2.5," meta &&
	test_grep "\"np_int\":7," meta
'

test_expect_success TORCH 'object tree: values, tensors, bytes, big ints' '
	ckpt-test-tool metadata "$FX/nested.pt" >meta &&
	test_grep "{\"x\":{\"\$tensor\":\"a.1.1.x\"}}" meta &&
	test_grep "\"epoch\":3," meta &&
	test_grep "\"big\":\"1180591620717411303424\"" meta &&
	test_grep "\"b\":{\"\$bytes\":5}" meta &&
	test_grep "\"c\":{\"\$complex\":\[1.0,2.0\]}" meta &&
	test_grep "\"3\":\"int key\"" meta &&
	ckpt-test-tool metadata "$FX/lightning.ckpt" >meta &&
	test_grep "\"global_step\":100," meta &&
	test_grep "optimizer_states.0.state.0.exp_avg" meta
'

test_expect_success TORCH 'tied weights and views share one storage' '
	ckpt-test-tool tensors "$FX/views.pt" >out &&
	emb=$(grep "^emb	" out | cut -f4) &&
	test "$(grep "^lm_head	" out | cut -f4)" = "$emb"
'

test_expect_success TORCH 'a flipped data byte changes the tensor and the CRC' '
	cp "$FX/views.pt" v.pt &&
	ckpt-test-tool tensors v.pt >before &&
	# where data/0 starts: its local header gives name and extra lengths
	pos=$($PYTHON -c "
import struct, zipfile
z = zipfile.ZipFile(\"v.pt\")
i = [i for i in z.infolist() if i.filename.endswith(\"/data/0\")][0]
h = open(\"v.pt\", \"rb\").read()[i.header_offset:i.header_offset + 30]
n, x = struct.unpack(\"<HH\", h[26:30])
print(i.header_offset + 30 + n + x)
") &&
	test -n "$pos" &&
	ckpt-test-tool flip v.pt $((pos + 1)) 0x40 &&
	ckpt-test-tool tensors v.pt >after &&
	! test_cmp before after >/dev/null &&
	ckpt-test-tool findings --crc v.pt >out &&
	test_grep "^zip-crc-mismatch error .*/data/0: " out &&
	ckpt-test-tool findings v.pt >out &&
	! grep zip-crc-mismatch out
'

test_done
