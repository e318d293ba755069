#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='verify --numerics of a committed checkpoint: counted on the hashing read'
. "$(dirname "$0")/lib.sh"

# NaN, +Inf and -Inf at the edges and inside F32, F16, BF16 and F64
# tensors of odd lengths (so that the hashing engine's steps cut
# elements), an F8 tensor the fused path does not take, and finite ones;
# expect.txt holds numpy's counts in the file's order.
test_expect_success 'fixtures: safetensors files with non-finite values' '
	"$PYTHON" - <<-\PY &&
	import json, struct
	import numpy as np
	rng = np.random.default_rng(7)
	def bf16(a):
	    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
	def spoil(a, k):
	    a = a.copy()
	    pos = [0, len(a) - 1] + list(rng.integers(0, len(a), k))
	    for i, p in enumerate(pos):
	        a[p] = [np.nan, np.inf, -np.inf][i % 3]
	    return a
	def write(path, tensors, expect):
	    header, data = {}, b""
	    for name, dt, raw, n in tensors:
	        header[name] = {"dtype": dt, "shape": [n],
	                        "data_offsets": [len(data), len(data) + len(raw)]}
	        data += raw
	    h = json.dumps(header, separators=(",", ":")).encode()
	    h += b" " * (-len(h) % 8)
	    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
	    for name, dt, raw, n, a in expect:
	        nan = int(np.isnan(a).sum())
	        pinf = int(np.isposinf(a).sum())
	        ninf = int(np.isneginf(a).sum())
	        if nan or pinf or ninf:
	            print(name, dt, nan, pinf, ninf, len(a), file=out)
	out = open("expect.txt", "w")
	specs = []
	for name, dt, n in [("a32", "F32", 300001), ("b16", "F16", 99999),
	                    ("c64", "F64", 150003), ("dbf", "BF16", 77777),
	                    ("e32", "F32", 5), ("finite", "F32", 1001),
	                    ("g64", "F64", 3), ("h16", "F16", 262145)]:
	    a = rng.standard_normal(n)
	    if name != "finite":
	        a = spoil(a, 40)
	    if dt == "BF16":
	        raw = bf16(a).tobytes()
	        a = a.astype(np.float32)
	    else:
	        a = a.astype({"F32": np.float32, "F16": np.float16,
	                      "F64": np.float64}[dt])
	        raw = a.tobytes()
	    specs.append((name, dt, raw, n, a))
	write("w.safetensors", [s[:4] for s in specs], specs)
	f8 = np.full(1001, 0x38, np.uint8)
	f8[[0, 500, 1000]] = 0x7f
	m = spoil(rng.standard_normal(4099), 5).astype(np.float32)
	write("x.safetensors", [("f8", "F8_E4M3", f8.tobytes(), 1001),
	                        ("m32", "F32", m.tobytes(), 4099)],
	      [("m32", "F32", None, 4099, m)])
	out.close()
	PY
	printf "f8 F8_E4M3 3 0 0 1001\n" >f8.txt &&
	head -n 8 expect.txt >w.txt &&
	cat f8.txt >>expect.txt &&
	mkdir ck && cp w.safetensors x.safetensors ck/ &&
	ckpt init st >/dev/null &&
	ckpt -C st save --copy --run r --step 1 ck >/dev/null
'

# The findings as "subject dtype nan +inf -inf values", in report order.
findings() {
	"$PYTHON" -c '
import json, re, sys
for c in json.load(sys.stdin)["checkpoints"]:
    for x in c["findings"]:
        if x["id"] == "tensor-nonfinite":
            m = re.search(r"\((\w+)\) has (\d+) NaN, (\d+) \+Inf, (\d+) -Inf of (\d+) values$", x["message"])
            print(x["subject"], *m.groups())
        else:
            print(x["id"])
'
}

test_expect_success 'the counts are numpy'"'"'s on every thread count' '
	"$PYTHON" -c "
import sys
l = open(\"expect.txt\").read().splitlines()
w = [x for x in l if not x.startswith((\"m32\", \"f8\"))]
open(\"want\", \"w\").write(\"\\n\".join(w + [x for x in l if x.startswith(\"f8\")] + [x for x in l if x.startswith(\"m32\")]) + \"\\n\")
" &&
	for j in 1 2 3; do
		test_expect_code 1 ckpt -C st verify --json --no-cache --numerics -j $j r@1 >out.json &&
		findings <out.json >got &&
		test_cmp want got || exit 1
	done
'

test_expect_success 'the same findings as the scan of the files alone' '
	for f in w x; do
		test_expect_code 1 ckpt verify --json --numerics ck/$f.safetensors >out.json &&
		findings <out.json || exit 1
	done | grep -v "^no-manifest$" >scan &&
	test_cmp scan got
'

test_expect_success '--fast with the cache vouching: the scan finds them' '
	test_expect_code 1 ckpt -C st verify --fast --json --numerics r@1 >out.json &&
	test_expect_code 1 ckpt -C st verify --fast --json --numerics r@1 >out.json &&
	test_grep "\"bytes_hashed\": 0," out.json &&
	findings <out.json >got &&
	test_cmp want got
'

test_expect_success 'a tensor changed after the commit: changed and counted' '
	d=$(ckpt -C st verify --json r@1 | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)[\"checkpoints\"][0][\"path\"])") &&
	chmod u+w "$d/w.safetensors" &&
	"$PYTHON" -c "
import json, struct, numpy as np
p = \"$d/w.safetensors\"
b = bytearray(open(p, \"rb\").read())
n = struct.unpack(\"<Q\", b[:8])[0]
h = json.loads(b[8:8 + n])
o = 8 + n + h[\"finite\"][\"data_offsets\"][0]
b[o + 4:o + 8] = np.float32(np.inf).tobytes()
open(p, \"wb\").write(b)
" &&
	test_expect_code 1 ckpt -C st verify --json --no-cache --numerics r@1 >out.json &&
	findings <out.json >got &&
	test_grep "^tensor-changed$" got &&
	test_grep "^finite F32 0 1 0 1001$" got
'

test_done
