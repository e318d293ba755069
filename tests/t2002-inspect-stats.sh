#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='inspect --stats: exact statistics for every dtype, in parallel'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: fixtures' '
	"$PYTHON" "$TEST_DIRECTORY/fixtures/gen-safetensors.py" fx
'

# The generator lists, for each dtype, bit patterns and the values they
# stand for (written by hand from the format definitions) and computes the
# expected statistics from those values: an oracle independent of ckpt.
test_expect_success '--stats matches the expected values for every dtype' '
	ls fx/dtypes/*.safetensors >files &&
	test $(wc -l <files) -ge 22 &&
	ckpt inspect --json --stats $(cat files) >out.json &&
	"$PYTHON" - fx/dtypes/expected.json out.json <<-\EOF
	import json, math, sys
	exp = json.load(open(sys.argv[1]))
	got = json.load(open(sys.argv[2]))["checkpoints"]
	seen = set()
	bad = 0
	for c in got:
	    t = c["files"][0]["tensors"][0]
	    dt = t["dtype"]
	    seen.add(dt)
	    s, e = t["stats"], exp[dt]
	    for k in ("count", "finite", "nan", "pos_inf", "neg_inf", "zeros"):
	        if s[k] != e[k]:
	            print(dt, k, s[k], "!=", e[k]); bad += 1
	    for k in ("min", "max", "mean", "std"):
	        a, b = s[k], e[k]
	        if (a is None) != (b is None) or (a is not None and
	                not math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)):
	            print(dt, k, a, "!=", b); bad += 1
	missing = set(exp) - seen
	if missing:
	    print("missing", missing); bad += 1
	sys.exit(1 if bad else 0)
	EOF
'

test_expect_success 'human --stats columns' '
	ckpt inspect --stats fx/dtypes/F32.safetensors >out &&
	test_grep "^name  dtype  shape  parameters  bytes  min  *max  mean  *std  nan  +inf  -inf  zeros$" out &&
	test_grep "^t  *F32  *\[8\]  *8  *32 B  *-2  *3.25  *0.55  *1.74929  *1  *1  *1  *2$" out
'

test_expect_success '--stats on a tensor larger than one piece, any thread count' '
	"$PYTHON" - <<-\EOF &&
	import json, struct
	import numpy as np
	rng = np.random.default_rng(7)
	a = rng.standard_normal(40_000_000 // 4 * 1 + 123, dtype=np.float32) * 3 + 1e3
	a[17] = np.nan; a[5_000_000] = np.inf; a[-1] = -np.inf; a[100:110] = 0
	b = (rng.standard_normal(1000) * 10).astype(np.float16)
	b[3] = np.inf
	data = a.tobytes() + b.tobytes()
	h = json.dumps({"a": {"dtype": "F32", "shape": [a.size], "data_offsets": [0, a.nbytes]},
	                "b": {"dtype": "F16", "shape": [10, 100], "data_offsets": [a.nbytes, len(data)]}}).encode()
	open("big.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
	out = {}
	for n, x in (("a", a), ("b", b)):
	    f = x.astype(np.float64)
	    fin = f[np.isfinite(f)]
	    out[n] = dict(count=int(f.size), nan=int(np.isnan(f).sum()),
	                  pos_inf=int(np.isposinf(f).sum()), neg_inf=int(np.isneginf(f).sum()),
	                  zeros=int((f == 0).sum()), min=float(fin.min()), max=float(fin.max()),
	                  mean=float(fin.mean()), std=float(fin.std()))
	json.dump(out, open("big.expected", "w"))
	EOF
	for t in 1 2 3; do
		ckpt inspect --json --stats --jobs $t big.safetensors >out.$t.json || exit 1
	done &&
	cmp out.1.json out.2.json &&
	cmp out.1.json out.3.json &&
	"$PYTHON" - <<-\EOF
	import json, math, sys
	exp = json.load(open("big.expected"))
	got = {t["name"]: t["stats"] for t in json.load(open("out.2.json"))["files"][0]["tensors"]}
	bad = 0
	for n, e in exp.items():
	    for k, v in e.items():
	        g = got[n][k]
	        ok = g == v if isinstance(v, int) else math.isclose(g, v, rel_tol=1e-9)
	        if not ok:
	            print(n, k, g, v); bad += 1
	sys.exit(bad)
	EOF
'

# The calling thread is one of the workers: --jobs 2 starts one more.
test_expect_success '--stats uses more than one thread' '
	if command -v strace >/dev/null && test_have_prereq NOT_SANITIZED; then
		strace -f -e trace=clone,clone3 -o trace \
			ckpt inspect --stats --jobs 2 big.safetensors >/dev/null &&
		test $(grep -c "clone" trace) -ge 1
	fi
'

test_expect_success '--filter limits what --stats reads' '
	ckpt inspect --json --stats --filter b big.safetensors >out.json &&
	"$PYTHON" -c "import json; d=json.load(open(\"out.json\")); t=d[\"files\"][0][\"tensors\"]; assert [x[\"name\"] for x in t] == [\"b\"]; assert t[0][\"stats\"][\"pos_inf\"] == 1"
'

test_expect_success '--stats on data cut short exits 3' '
	"$PYTHON" -c "
import struct, json
h = json.dumps({\"t\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}).encode()
open(\"ok.safetensors\", \"wb\").write(struct.pack(\"<Q\", len(h)) + h + b\"\\0\" * 16)
" &&
	ckpt inspect --stats ok.safetensors >out &&
	test_grep "^t  *F32  *\[4\]  *4  *16 B  *0  *0  *0  *0  *0  *0  *0  *4$" out
'

test_expect_success '--stats with --no-tensors is refused, not ignored' '
	test_expect_code 2 ckpt inspect --stats --no-tensors big.safetensors >out 2>err &&
	test ! -s out &&
	test_grep "cannot go with --no-tensors" err
'

test_done
