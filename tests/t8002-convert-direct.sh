#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='convert writes its output with O_DIRECT where the
filesystem can (util/dwrite.c), in several 16 MiB buffers: the bytes are
torch'"'"'s, the same as through the page cache, when the filesystem refuses
a direct write at the start or midway, after a short write; a failing
write leaves nothing behind'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"

# fault VAR=VALUE... -- ckpt convert under the shim
fault() {
	env LD_PRELOAD="$SHIM" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" "$@"
}

# 72 MiB: more 16 MiB buffers than the ring has, a transposed view, and a
# tail that is no whole block.
test_expect_success TORCH 'setup: a torch file of 72 MiB' '
	"$PYTHON" - big.pt <<-\PYEOF
	import sys, torch
	g = torch.Generator().manual_seed(14)
	sd = {
	    "a.big": torch.rand(16 * 1024 * 1024, generator=g),
	    "b.view": torch.rand(1024, 1024, generator=g, dtype=torch.float64).t(),
	    "c.odd": torch.randint(-999, 999, (12345,), generator=g, dtype=torch.int16),
	    "d.u8": torch.randint(0, 255, (77,), generator=g, dtype=torch.uint8),
	}
	torch.save({"state_dict": sd, "step": 7}, sys.argv[1])
	PYEOF
'

test_expect_success TORCH 'the output holds torch'"'"'s bytes' '
	ckpt convert big.pt direct.safetensors >out &&
	test_grep "weights: state_dict" out &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" big.pt \
	    direct.safetensors state_dict >res &&
	echo "ok 4 tensors, 0 aliases" >want &&
	test_cmp want res &&
	! ls | grep -q "\.tmp\."
'

for nth in 1 2 4
do
	test_expect_success TORCH "O_DIRECT refused at write $nth: the rest buffered, same bytes" '
		fault CKPT_FAULT_OP=write CKPT_FAULT_PATH="*/b$nth.safetensors.tmp.*" \
		    CKPT_FAULT_ERRNO=22 CKPT_FAULT_NTH='"$nth"' \
		    CKPT_FAULT_LOG="$PWD/log$nth" \
		    ckpt convert big.pt b'"$nth"'.safetensors &&
		test_grep "^hit write .*/b'"$nth"'.safetensors.tmp." log'"$nth"' &&
		cmp direct.safetensors b'"$nth"'.safetensors
	'
done

test_expect_success TORCH 'a short write: the rest buffered, same bytes' '
	fault CKPT_FAULT_OP=write CKPT_FAULT_PATH="*/short.safetensors.tmp.*" \
	    CKPT_FAULT_ACTION=short CKPT_FAULT_NTH=2 CKPT_FAULT_LOG="$PWD/logs" \
	    ckpt convert big.pt short.safetensors &&
	test_grep "^hit write" logs &&
	cmp direct.safetensors short.safetensors
'

test_expect_success TORCH 'a full disk midway: exit 3, nothing left behind' '
	test_expect_code 3 fault CKPT_FAULT_OP=write \
	    CKPT_FAULT_PATH="*/full.safetensors.tmp.*" CKPT_FAULT_NTH=3 \
	    ckpt convert big.pt full.safetensors 2>err &&
	test_grep "full.safetensors.tmp.*: cannot write: No space left" err &&
	test_path_is_missing full.safetensors &&
	! ls | grep -q "^full\.safetensors\.tmp\."
'

test_done
