#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect: safetensors files, human and JSON output, options, errors'
. "$(dirname "$0")/lib.sh"

SQ="'"

# jq-like helper: evaluates a Python expression on the JSON document "d".
json_eval() {
	"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

test_expect_success 'setup: fixtures' '
	"$PYTHON" "$TEST_DIRECTORY/fixtures/gen-safetensors.py" fx
'

test_expect_success 'human output of a small file' '
	cat >expect <<-\EOF &&
	file:    small.safetensors
	format:  safetensors
	size:    292 B

	metadata:
	  format: pt
	  note: tiny

	name            dtype  shape   parameters  bytes
	encoder.weight  F32    [2, 3]           6   24 B
	encoder.bias    F32    [3]              3   12 B
	step            I64    []               1    8 B

	dtype  tensors  parameters  bytes
	F32          2           9   36 B
	I64          1           1    8 B

	total: 3 tensors, 10 parameters, 44 B
	EOF
	(cd fx && ckpt inspect small.safetensors) >actual &&
	test_cmp expect actual
'

test_expect_success '--json: schema, files, tensors with absolute offsets' '
	ckpt inspect --json fx/small.safetensors >out.json &&
	test "$(json_eval out.json "d[\"schema\"]")" = 1 &&
	test "$(json_eval out.json "d[\"format\"]")" = safetensors &&
	test "$(json_eval out.json "d[\"path\"]")" = fx/small.safetensors &&
	test "$(json_eval out.json "d[\"files\"][0][\"size\"]")" = 292 &&
	test "$(json_eval out.json "[t[\"name\"] for t in d[\"files\"][0][\"tensors\"]]")" = \
		"[${SQ}encoder.weight${SQ}, ${SQ}encoder.bias${SQ}, ${SQ}step${SQ}]" &&
	test "$(json_eval out.json "d[\"files\"][0][\"tensors\"][0][\"shape\"]")" = "[2, 3]" &&
	test "$(json_eval out.json "d[\"files\"][0][\"tensors\"][0][\"dtype\"]")" = F32 &&
	test "$(json_eval out.json "d[\"files\"][0][\"tensors\"][0][\"nbytes\"]")" = 24 &&
	test "$(json_eval out.json "d[\"files\"][0][\"tensors\"][2][\"parameters\"]")" = 1 &&
	test "$(json_eval out.json "d[\"files\"][0][\"metadata\"]")" = \
		"{${SQ}format${SQ}: ${SQ}pt${SQ}, ${SQ}note${SQ}: ${SQ}tiny${SQ}}" &&
	test "$(json_eval out.json "d[\"totals\"][\"parameters\"]")" = 10 &&
	test "$(json_eval out.json "d[\"totals\"][\"by_dtype\"][\"F32\"][\"bytes\"]")" = 36
'

test_expect_success '--json offsets point at the tensor bytes' '
	ckpt inspect --json fx/small.safetensors >out.json &&
	off=$(json_eval out.json "d[\"files\"][0][\"tensors\"][1][\"offset\"]") &&
	"$PYTHON" -c "import struct,sys; f=open(\"fx/small.safetensors\",\"rb\"); f.seek($off); print(struct.unpack(\"<3f\", f.read(12)))" >vals &&
	echo "(0.5, -0.5, 0.0)" >expect &&
	test_cmp expect vals
'

test_expect_success '--filter selects by glob, repeatable; totals follow' '
	ckpt inspect --filter "encoder.*" fx/small.safetensors >out &&
	test_grep "^encoder.weight " out &&
	test_grep "^encoder.bias " out &&
	! grep "^step " out &&
	test_grep "^total: 2 tensors, 9 parameters, 36 B$" out &&
	ckpt inspect --filter "*.bias" --filter step fx/small.safetensors >out &&
	test_grep "^total: 2 tensors, 4 parameters, 20 B$" out &&
	ckpt inspect --json --filter "*.weight" fx/small.safetensors >out.json &&
	test "$(json_eval out.json "len(d[\"files\"][0][\"tensors\"])")" = 1
'

test_expect_success '--filter matching nothing says so' '
	ckpt inspect --filter "nope*" fx/small.safetensors >out &&
	test_grep "no tensor matches the filter" out
'

test_expect_success '--no-tensors keeps totals, drops the table' '
	ckpt inspect --no-tensors fx/small.safetensors >out &&
	! grep "^encoder.weight" out &&
	test_grep "^total: 3 tensors, 10 parameters, 44 B$" out &&
	ckpt inspect --json --no-tensors fx/small.safetensors >out.json &&
	test "$(json_eval out.json "len(d[\"files\"][0][\"tensors\"])")" = 0 &&
	test "$(json_eval out.json "d[\"totals\"][\"tensors\"]")" = 3
'

test_expect_success '--depth limits the metadata tree' '
	ckpt inspect --depth 1 fx/hf/trainer_state.json >out &&
	test_grep "^  log_history: \[...\] (5 items)$" out &&
	ckpt inspect --depth 2 fx/hf/trainer_state.json >out &&
	test_grep "^    0: {...} (2 keys)$" out &&
	ckpt inspect fx/hf/trainer_state.json >out &&
	test_grep "^      loss: 0.5$" out &&
	test_expect_code 2 ckpt inspect --depth 0 fx/small.safetensors 2>err &&
	test_grep "at least 1" err
'

test_expect_success 'usage errors exit 2 with nothing on stdout' '
	test_expect_code 2 ckpt inspect >out 2>err &&
	test_grep "^usage: ckpt inspect" err &&
	test ! -s out &&
	test_expect_code 2 ckpt inspect --json --depth x fx/small.safetensors >out 2>err &&
	test ! -s out
'

test_expect_success 'a missing file exits 3 naming it' '
	test_expect_code 3 ckpt inspect nosuch.safetensors 2>err &&
	test_grep "nosuch.safetensors: cannot open" err
'

test_expect_success 'a header length beyond the file: exit 1, message and offset' '
	"$PYTHON" -c "
import struct
h = b\"{}\"
open(\"model.safetensors\", \"wb\").write(struct.pack(\"<Q\", 1 << 40) + h + b\"\\0\" * 502)
" &&
	test_expect_code 1 ckpt inspect model.safetensors >out 2>err &&
	echo "ckpt: model.safetensors: header length 1099511627776 exceeds file size 512 (at byte 0)" >expect &&
	test_cmp expect err &&
	test ! -s out &&
	test_expect_code 1 ckpt inspect --json model.safetensors >out.json 2>err &&
	test "$(json_eval out.json "d[\"exit_status\"]")" = 1
'

test_expect_success 'a bad tensor: the error names it and its byte offset' '
	"$PYTHON" -c "
import struct, json
h = json.dumps({\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]},
                \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [3, 5]}}).encode()
open(\"hole.safetensors\", \"wb\").write(struct.pack(\"<Q\", len(h)) + h + b\"\\0\" * 5)
print(8 + len(h) + 3)
" >off &&
	test_expect_code 1 ckpt inspect hole.safetensors 2>err &&
	test_grep "hole.safetensors: invalid offset for tensor ${SQ}b${SQ}: data_offsets \[3, 5\] leaves a hole" err &&
	test_grep "(at byte $(cat off))$" err
'

test_expect_success 'trailing bytes and truncation are refused' '
	cp fx/small.safetensors trail.safetensors &&
	printf x >>trail.safetensors &&
	test_expect_code 1 ckpt inspect trail.safetensors 2>err &&
	test_grep "1 unexpected bytes after the last tensor" err &&
	cp fx/small.safetensors cut.safetensors &&
	ckpt-test-tool truncate cut.safetensors 290 &&
	test_expect_code 1 ckpt inspect cut.safetensors 2>err &&
	test_grep "file truncated" err
'

test_expect_success 'unrecognised formats: LFS pointer, HTML page, JSON error, empty' '
	test_expect_code 1 ckpt inspect fx/bad/lfs.safetensors >out 2>err &&
	test ! -s out &&
	test_grep "unrecognised format: a Git LFS pointer" err &&
	test_expect_code 1 ckpt inspect fx/bad/page.safetensors 2>err &&
	test_grep "unrecognised format: an HTML or XML document" err &&
	test_expect_code 1 ckpt inspect fx/bad/error.bin 2>err &&
	test_grep "unrecognised format: a JSON error message" err &&
	test_expect_code 1 ckpt inspect --json fx/bad/empty.safetensors >out.json 2>err &&
	test "$(json_eval out.json "d[\"exit_status\"]")" = 1 &&
	test_grep "empty.safetensors: unrecognised format: an empty file" err
'

test_expect_success 'a truncated zip is named as such' '
	printf "PK\003\004rest of a cut download" >cut.pt &&
	test_expect_code 1 ckpt inspect cut.pt 2>err &&
	test_grep "unrecognised format: a truncated zip archive" err
'

test_expect_success 'several arguments: one JSON document, the worst status wins' '
	ckpt inspect --json fx/small.safetensors fx/dtypes/F32.safetensors >out.json &&
	test "$(json_eval out.json "len(d[\"checkpoints\"])")" = 2 &&
	test_expect_code 3 ckpt inspect fx/small.safetensors nosuch >out 2>err &&
	test_grep "^total: 3 tensors" out &&
	test_expect_code 1 ckpt inspect --json fx/bad/lfs.safetensors fx/small.safetensors >out.json 2>err &&
	test "$(json_eval out.json "[c[\"exit_status\"] for c in d[\"checkpoints\"]]")" = "[1, 0]" &&
	test_expect_code 3 ckpt inspect --json fx/bad/lfs.safetensors nosuch fx/small.safetensors >out.json 2>err &&
	test "$(json_eval out.json "[c[\"exit_status\"] for c in d[\"checkpoints\"]]")" = "[1, 3, 0]" &&
	test_grep "Git LFS pointer" err &&
	test_grep "nosuch: cannot open" err
'

test_expect_success 'inspect reads headers only (a 64 MiB tensor, under 4 KiB read)' '
	"$PYTHON" -c "
import struct, json
n = 64 << 20
h = json.dumps({\"big\": {\"dtype\": \"F32\", \"shape\": [n // 4], \"data_offsets\": [0, n]}}).encode()
with open(\"big.safetensors\", \"wb\") as f:
    f.write(struct.pack(\"<Q\", len(h)) + h)
    f.truncate(8 + len(h) + n)
" &&
	ckpt inspect big.safetensors >out &&
	test_grep "^big  *F32  *\[16777216\]  *16,777,216  *64.0 MiB$" out &&
	if command -v strace >/dev/null && test_have_prereq NOT_SANITIZED; then
		strace -f -y -e trace=read,pread64,mmap -o trace \
			ckpt inspect big.safetensors >/dev/null &&
		test_might_fail grep "big.safetensors>" trace >reads &&
		! grep "mmap" reads &&
		"$PYTHON" -c "
import re, sys
total = 0
for line in open(\"reads\"):
    m = re.search(r\", (\\d+)(, \\d+)?\\) += (\\d+)\", line)
    if m:
        total += int(m.group(3))
print(total)
sys.exit(0 if 0 < total < 4096 else 1)
"
	fi
'

test_done
