#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""numeric-oracle.py - data for the numeric kernel tests, and numpy's answer.

  numeric-oracle.py gen DIR
      writes DIR/DTYPE.safetensors for every dtype ckpt decodes, each with
      a tensor "edge" (every bit pattern of 8- and 16-bit types, or
      subnormals, +-0, +-Inf, NaN payloads, extremes) and a tensor "rand"
      (random data, 5*1024+3 elements: every block boundary), and
      DIR/expected.json with numpy's float64 statistics of each.
  numeric-oracle.py genbig DIR
      writes DIR/big.safetensors, tensors large enough to be cut into
      pieces for the threads (ckpt cuts 4 Mi elements, and pieces of
      512 Ki over the last 16 Mi elements of a job): "w" (F32, 13 Mi + 5
      elements, NaN and infinities at piece boundaries), "h" (BF16, 7 Mi
      + 3) and "z" (F32, 1025), and DIR/expected.json as gen does.
  numeric-oracle.py gendiff DIR
      writes DIR/a.safetensors and DIR/b.safetensors, one tensor per dtype
      (named after it): b is a with a known perturbation (some elements
      replaced by other bit patterns: NaN, Inf, subnormals included), and
      DIR/expected-diff.json with numpy's float64 comparison of each.
  numeric-oracle.py checkdiff DIR OUT.json ATOL RTOL EQUAL_NAN
      compares "ckpt diff --json" output with expected-diff.json.
  numeric-oracle.py check DIR OUT.json
      compares "ckpt inspect --json --stats" output with expected.json:
      counts exact, min/max exact, mean/std to 1e-12 relative.

The decoders here are written from the format definitions, independently
of ckpt: numpy for F16/F32/F64 and the integers, bit operations for BF16,
and a minifloat formula for the F8/F6/F4 variants.
"""
import json, math, struct, sys
import numpy as np

rng = np.random.default_rng(20261203)
N = 5 * 1024 + 3


def minifloat(v, ebits, mbits, bias, style):
    sign = (v >> (ebits + mbits)) & 1
    e = (v >> mbits) & ((1 << ebits) - 1)
    m = v & ((1 << mbits) - 1)
    emax, mmax = (1 << ebits) - 1, (1 << mbits) - 1
    if style == "fnuz" and v == 1 << (ebits + mbits):
        return math.nan
    if style == "ieee" and e == emax:
        return math.nan if m else (-math.inf if sign else math.inf)
    if style == "fn" and e == emax and m == mmax:
        return math.nan
    if e == 0:
        x = m * 2.0 ** (1 - bias - mbits)
    else:
        x = ((1 << mbits) | m) * 2.0 ** (e - bias - mbits)
    return -x if sign else x


F8 = {
    "F8_E5M2": lambda v: minifloat(v, 5, 2, 15, "ieee"),
    "F8_E4M3": lambda v: minifloat(v, 4, 3, 7, "fn"),
    "F8_E4M3FNUZ": lambda v: minifloat(v, 4, 3, 8, "fnuz"),
    "F8_E5M2FNUZ": lambda v: minifloat(v, 5, 2, 16, "fnuz"),
    "F8_E8M0": lambda v: math.nan if v == 0xFF else 2.0 ** (v - 127),
}
INTS = {"I8": "<i1", "U8": "<u1", "I16": "<i2", "U16": "<u2", "I32": "<i4",
        "U32": "<u4", "I64": "<i8", "U64": "<u8"}


def tensors(dt):
    """(raw bytes, float64 values) of "edge" and "rand" for dtype dt."""
    if dt in F8:
        table = np.array([F8[dt](v) for v in range(256)])
        edge = np.arange(256, dtype=np.uint8)
        rand = rng.integers(0, 256, N, dtype=np.uint8)
        return [(x.tobytes(), table[x]) for x in (edge, rand)]
    if dt == "BOOL":
        edge = np.array([0, 1, 1, 0], dtype=np.uint8)
        rand = rng.integers(0, 2, N, dtype=np.uint8)
        return [(x.tobytes(), x.astype(np.float64)) for x in (edge, rand)]
    if dt in INTS:
        t = np.dtype(INTS[dt])
        info = np.iinfo(t)
        edge = np.array([info.min, info.max, 0, 1, -1 if info.min else 2],
                        dtype=t)
        # small values so that float64 sums are exact for 64-bit types
        rand = rng.integers(max(info.min, -2**40), min(info.max, 2**40),
                            N, dtype=t, endpoint=True)
        return [(x.tobytes(), x.astype(np.float64)) for x in (edge, rand)]
    if dt in ("F16", "BF16"):
        edge = np.arange(65536, dtype=np.uint16)
        rand = rng.integers(0, 65536, N, dtype=np.uint16)
        if dt == "F16":
            dec = lambda x: x.view("<f2").astype(np.float64)
        else:
            dec = lambda x: (x.astype(np.uint32) << 16).view("<f4").astype(np.float64)
        return [(x.astype("<u2").tobytes(), dec(x)) for x in (edge, rand)]
    if dt == "F32":
        edge = np.array([0x00000001, 0x807fffff, 0, 0x80000000, 0x7f800000,
                         0xff800000, 0x7fc00000, 0x7f800001, 0xffbfffff,
                         0x7f7fffff, 0xff7fffff, 0x00800000, 0x3f800000],
                        dtype=np.uint32)
        rand = rng.integers(0, 2**32, N, dtype=np.uint32)
        return [(x.astype("<u4").tobytes(), x.view("<f4").astype(np.float64))
                for x in (edge, rand)]
    if dt == "F64":
        edge = np.array([5e-324, -2.2250738585072009e-308, 0.0, -0.0, np.inf,
                         -np.inf, np.nan, 1e300, -1e300, 1.0], dtype="<f8")
        e = edge.view(np.uint64).copy()
        e[6] = 0x7ff0000000000bad          # a signalling NaN payload
        edge = e.view("<f8")
        rand = rng.standard_normal(N) * 1e3 + 7
        rand[::97] = 0.0
        return [(x.tobytes(), x) for x in (edge, rand)]
    if dt in ("C64", "C128"):
        base = "<f4" if dt == "C64" else "<f8"
        edge = np.array([0, -0.0, np.inf, -np.inf, np.nan, 1.5, -2, 3e-41
                         if dt == "C64" else 5e-324], dtype=base)
        rand = (rng.standard_normal(2 * N) * 10).astype(base)
        return [(x.tobytes(), x.astype(np.float64)) for x in (edge, rand)]
    raise SystemExit("no generator for " + dt)


# C128 and C32 are torch-only: safetensors cannot hold them.
DTYPES = list(F8) + list(INTS) + ["BOOL", "F16", "BF16", "F32", "F64", "C64"]


def stats(v):
    fin = v[np.isfinite(v)]
    s = dict(count=int(v.size), nan=int(np.isnan(v).sum()),
             pos_inf=int(np.isposinf(v).sum()),
             neg_inf=int(np.isneginf(v).sum()), zeros=int((v == 0).sum()),
             finite=int(fin.size))
    if fin.size:
        with np.errstate(over="ignore", invalid="ignore"):
            s.update(min=float(fin.min()), max=float(fin.max()),
                     mean=float(fin.mean()), std=float(fin.std()),
                     scale=float(np.abs(fin).mean()))
    return s


def gen(d):
    exp = {}
    for dt in DTYPES:
        parts, hdr, off = [], {}, 0
        exp[dt] = {}
        for name, (raw, vals) in zip(("edge", "rand"), tensors(dt)):
            comp = 2 if dt.startswith("C") else 1
            hdr[name] = {"dtype": dt, "shape": [vals.size // comp],
                         "data_offsets": [off, off + len(raw)]}
            parts.append(raw)
            off += len(raw)
            exp[dt][name] = stats(vals)
        h = json.dumps(hdr).encode()
        h += b" " * (-len(h) % 8)
        with open("%s/%s.safetensors" % (d, dt), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + b"".join(parts))
    json.dump(exp, open(d + "/expected.json", "w"), indent=1)


def genbig(d):
    mi = 1 << 20
    w = (rng.standard_normal(13 * mi + 5) * 3 + 1).astype("<f4")
    # at the edges of big and small pieces, and inside the small ones
    for i, v in ((4 * mi - 1, np.nan), (4 * mi, np.inf), (8 * mi, -np.inf),
                 (12 * mi + 512 * 1024, np.nan), (13 * mi + 4, 0.0)):
        w[i] = v
    hb = rng.integers(0, 65536, 7 * mi + 3, dtype=np.uint16)
    h = (hb.astype(np.uint32) << 16).view("<f4").astype(np.float64)
    z = (rng.standard_normal(1025) * 1e-3).astype("<f4")
    write_st(d + "/big.safetensors",
             [("w", "F32", w.tobytes(), w.size),
              ("h", "BF16", hb.astype("<u2").tobytes(), hb.size),
              ("z", "F32", z.tobytes(), z.size)])
    exp = {"F32": {"w": stats(w.astype(np.float64)),
                   "z": stats(z.astype(np.float64))},
           "BF16": {"h": stats(h)}}
    json.dump(exp, open(d + "/expected.json", "w"), indent=1)


def check(d, out):
    exp = json.load(open(d + "/expected.json"))
    doc = json.load(open(out))
    got = doc["checkpoints"] if "checkpoints" in doc else [doc]
    bad, seen = 0, set()
    for c in got:
        for t in c["files"][0]["tensors"]:
            dt, s = t["dtype"], t["stats"]
            e = exp[dt][t["name"]]
            seen.add(dt)
            for k in ("count", "finite", "nan", "pos_inf", "neg_inf", "zeros"):
                if s[k] != e[k]:
                    print(dt, t["name"], k, s[k], "!=", e[k]); bad += 1
            for k in ("min", "max", "mean", "std"):
                a, b = s.get(k), e.get(k)
                if b is not None and math.isinf(b):
                    ok = a is None      # JSON has no Inf: inspect says null
                elif a is None or b is None:
                    ok = a == b
                elif k in ("min", "max"):
                    ok = a == b
                else:
                    tol = 1e-12 * (abs(b) + (e["scale"] if k == "mean" else 0))
                    ok = abs(a - b) <= tol
                if not ok:
                    print(dt, t["name"], k, a, "!=", b); bad += 1
    if set(exp) - seen:
        print("missing", sorted(set(exp) - seen)); bad += 1
    sys.exit(1 if bad else 0)


def write_st(path, tensors):
    hdr, parts, off = {}, [], 0
    for name, dt, raw, nvals in tensors:
        comp = 2 if dt.startswith("C") else 1
        hdr[name] = {"dtype": dt, "shape": [nvals // comp],
                     "data_offsets": [off, off + len(raw)]}
        parts.append(raw)
        off += len(raw)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(parts))


def compare(a, b, atol, rtol, equal_nan):
    with np.errstate(all="ignore"):
        fin = np.isfinite(a) & np.isfinite(b)
        d = a[fin] - b[fin]
        close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
        na, nb = np.isnan(a), np.isnan(b)
        sa2, sb2 = float((a[fin] ** 2).sum()), float((b[fin] ** 2).sum())
        return dict(count=int(a.size), finite=int(fin.sum()),
                    unequal=int((~((a == b) | (na & nb))).sum()),
                    beyond=int((~close).sum()), nan_a=int(na.sum()),
                    nan_b=int(nb.sum()), nan_both=int((na & nb).sum()),
                    max_abs=float(np.abs(d).max()) if d.size else 0.0,
                    mean_abs=float(np.abs(d).mean()) if d.size else None,
                    rel_l2=float(np.sqrt((d ** 2).sum()) / np.sqrt(sa2)) if sa2 else None,
                    cosine=float((a[fin] * b[fin]).sum() / (np.sqrt(sa2) * np.sqrt(sb2)))
                    if sa2 and sb2 else None)


def gendiff(d):
    ta, tb, vals = [], [], {}
    for dt in DTYPES:
        raw, va = tensors(dt)[1]
        other = tensors(dt)[1][0]          # a second random draw
        nel = va.size // (2 if dt.startswith("C") else 1)
        ra = np.frombuffer(raw, dtype=np.uint8).reshape(nel, -1)
        rb = ra.copy()
        rb[::3] = np.frombuffer(other, dtype=np.uint8).reshape(nel, -1)[::3]
        vb = tensors_decode(dt, rb.tobytes())
        ta.append((dt, dt, raw, va.size))
        tb.append((dt, dt, rb.tobytes(), va.size))
        vals[dt + "_a"], vals[dt + "_b"] = va, vb
    write_st(d + "/a.safetensors", ta)
    write_st(d + "/b.safetensors", tb)
    np.savez(d + "/values.npz", **vals)


def tensors_decode(dt, raw):
    """float64 values of raw bytes of dtype dt (the decoders above)."""
    b = np.frombuffer(raw, dtype=np.uint8)
    if dt in F8:
        return np.array([F8[dt](v) for v in range(256)])[b]
    if dt == "BOOL":
        return b.astype(np.float64)
    if dt in INTS:
        return np.frombuffer(raw, dtype=INTS[dt]).astype(np.float64)
    if dt == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float64)
    if dt == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view("<f4").astype(np.float64)
    if dt in ("F32", "C64"):
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if dt == "F64":
        return np.frombuffer(raw, dtype="<f8").copy()
    raise SystemExit("no decoder for " + dt)


def checkdiff(d, out, atol, rtol, equal_nan):
    v = np.load(d + "/values.npz")
    got = {c["name"]: c for c in json.load(open(out))["changed"]}
    bad = 0
    for dt in DTYPES:
        e = compare(v[dt + "_a"], v[dt + "_b"], atol, rtol, equal_nan)
        g = got.get(dt)
        if g is None:
            if e["unequal"]:
                print(dt, "not reported as changed"); bad += 1
            continue
        for k in ("count", "unequal", "nan_a", "nan_b", "nan_both"):
            if g[k] != e[k]:
                print(dt, k, g[k], "!=", e[k]); bad += 1
        if g["beyond_tolerance"] != e["beyond"]:
            print(dt, "beyond", g["beyond_tolerance"], "!=", e["beyond"]); bad += 1
        for k in ("max_abs", "mean_abs", "rel_l2", "cosine"):
            a, b = g[k], e[k]
            if b is not None and not math.isfinite(b):
                ok = a is None
            elif a is None or b is None:
                ok = a == b
            else:
                ok = abs(a - b) <= 1e-12 * abs(b) or a == b
            if not ok:
                print(dt, k, a, "!=", b); bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    np.seterr(invalid="ignore")     # signalling NaNs quieten when cast
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif sys.argv[1] == "genbig":
        genbig(sys.argv[2])
    elif sys.argv[1] == "gendiff":
        gendiff(sys.argv[2])
    elif sys.argv[1] == "checkdiff":
        checkdiff(sys.argv[2], sys.argv[3], float(sys.argv[4]),
                  float(sys.argv[5]), sys.argv[6] == "1")
    else:
        check(sys.argv[2], sys.argv[3])
