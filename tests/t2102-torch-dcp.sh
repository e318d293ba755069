#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='DCP .metadata: strict reading of the dataclass pickle'
. "$(dirname "$0")/lib.sh"

FX=$FIXTURES_DIR/dcp

test_expect_success TORCH '.metadata is sniffed by content and read' '
	cp "$FX/good/.metadata" renamed.bin &&
	ckpt-test-tool findings renamed.bin >out &&
	test_grep "^format dcp-metadata$" out &&
	test $(wc -l <out) = 1
'

test_expect_success TORCH 'metadata JSON: tensors, chunks, storage data' '
	ckpt-test-tool metadata "$FX/good/.metadata" >meta &&
	test_grep "\"model.w\":{\"type\":\"tensor\",\"at\":[0-9]*,\"dtype\":\"F32\",\"size\":\[4,6\],\"chunks\":\[{\"offsets\":\[0,0\],\"sizes\":\[2,6\],\"at\":[0-9]*},{\"offsets\":\[2,0\],\"sizes\":\[2,6\],\"at\":[0-9]*}\]}" meta &&
	test_grep "\"extra\":{\"type\":\"bytes\"}" meta &&
	test_grep "\"scale\":{\"type\":\"tensor\",\"at\":[0-9]*,\"dtype\":\"F64\",\"size\":\[\]" meta &&
	test_grep "\"model.w|2,0\":{\"relative_path\":\"__1_0.distcp\",\"offset\":0,\"length\":[0-9]*}" meta &&
	test_grep "\"extra|\":{\"relative_path\":\"__0_0.distcp\"" meta
'

test_expect_success TORCH 'one tensor per logical tensor, kind dcp, no data' '
	test_might_fail ckpt-test-tool tensors "$FX/good/.metadata" >out &&
	test_grep "^model.w	F32	\[4,6\]	error" out
'

test_expect_success TORCH 'the DCP classes are allowed, nothing else' '
	ckpt-test-tool globals "$FX/good/.metadata" >out &&
	! grep not-allowed out &&
	test_grep "^torch.distributed.checkpoint.metadata.Metadata allowed" out &&
	ckpt-test-tool findings "$FX/hostile/.metadata" >out &&
	test_grep "^unsafe-global error [0-9]* posix.system: " out &&
	test_grep "^unsafe-call error [0-9]* posix.system: " out
'

test_expect_success TORCH 'the same classes in a torch zip data.pkl are not allowed' '
	$PYTHON - <<-\PY &&
	import zipfile
	src = open("'"$FX"'/good/.metadata", "rb").read()
	z = zipfile.ZipFile("dcp-in-zip.pt", "w")
	z.writestr("x/data.pkl", src)
	z.writestr("x/version", "3\n")
	z.close()
	PY
	ckpt-test-tool findings dcp-in-zip.pt >out &&
	test_grep "^unsafe-global error .* torch.distributed.checkpoint.metadata.Metadata: " out
'

test_expect_success TORCH 'a .distcp shard is named, not misread as one zip' '
	ckpt-test-tool findings "$FX/good/__0_0.distcp" >out &&
	test_grep "^format dcp-shard$" out &&
	test_grep "3 archives back to back" out
'

test_done
