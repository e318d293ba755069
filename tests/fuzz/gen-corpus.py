#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# gen-corpus.py - writes the seed corpora of the fuzz harnesses into
# tests/fuzz/corpus/<target>/: small, valid (or nearly valid) inputs of
# every format the parsers know, so that fuzzing starts deep inside them.
# Run it with Debian's python3 (python3-torch) when a format is added;
# the seeds are committed (each < 4 KiB), the script documents them.
#
#   /usr/bin/python3 tests/fuzz/gen-corpus.py [SET...]
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 4096, "%s/%s is %d bytes" % (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, align=8):
    """tensors: [(name, dtype, shape, bytes)]"""
    header, blob = {}, b""
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % align)
    return struct.pack("<Q", len(h)) + h + blob


def file_seeds():
    f32 = struct.pack("<6f", 1, -2, 3.5, float("nan"), float("inf"), 0)
    put("file", "st-basic.safetensors", safetensors(
        [("model.w", "F32", [2, 3], f32),
         ("model.b", "I64", [2], struct.pack("<2q", 7, -7))],
        {"format": "pt", "step": "100"}))
    put("file", "st-dtypes.safetensors", safetensors(
        [("bf16", "BF16", [2], b"\x80\x3f\x00\x40"),
         ("f16", "F16", [2], b"\x00\x3c\x00\xc0"),
         ("u8", "U8", [3], b"\x01\x02\x03"),
         ("bool", "BOOL", [2], b"\x00\x01"),
         ("f8", "F8_E4M3", [2], b"\x38\xb8"),
         ("f64", "F64", [1], struct.pack("<d", 2.5)),
         ("c64", "C64", [1], struct.pack("<2f", 1, 2)),
         ("f4", "F4", [4], b"\x12\x34"),
         ("scalar", "F32", [], struct.pack("<f", 1)),
         ("empty", "F32", [0, 3], b"")]))
    put("file", "st-empty.safetensors", safetensors([]))
    put("file", "st-metadata-only.safetensors", safetensors([], {"a": "b"}))
    put("file", "index.safetensors.index.json", json.dumps({
        "metadata": {"total_size": 32},
        "weight_map": {"model.w": "model-00001-of-00002.safetensors",
                       "model.b": "model-00002-of-00002.safetensors"}},
        indent=2))
    put("file", "config.json", '{"architectures": ["X"], "n": 1}\n')
    put("file", "lfs-pointer.bin",
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:" + "ab" * 32 + "\nsize 1234\n")
    put("file", "html.bin", "<!DOCTYPE html>\n<html><body>404</body></html>\n")
    put("file", "gguf.bin", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    put("file", "npy.bin", b"\x93NUMPY\x01\x00v\x00" +
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" +
        b" " * 58 + b"\n" + struct.pack("<2f", 1, 2))
    put("file", "empty.bin", b"")

    # Bare pickles, one safe, one with a global that must never run.
    put("file", "pickle-p2.pkl", pickle.dumps(
        {"epoch": 3, "lr": [0.1, 0.01], "name": "x", "t": (1, None, True)},
        protocol=2))
    put("file", "pickle-p5.pkl", pickle.dumps(
        {"a": b"bytes", "b": bytearray(b"ba"), "c": {1, 2}, "d": 2 ** 70},
        protocol=5))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    put("file", "pickle-unsafe.pkl", pickle.dumps({"x": Evil()}, protocol=2))

    try:
        import torch
    except ImportError:
        print("gen-corpus: no torch; torch seeds skipped", file=sys.stderr)
        return
    torch.manual_seed(0)

    def tsave(name, obj, **kw):
        b = io.BytesIO()
        torch.save(obj, b, **kw)
        put("file", name, b.getvalue())

    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    tsave("torch-zip.pt", {"w": w, "step": 3, "opt": {"lr": 0.1}})
    tsave("torch-views.pt", {"w": w, "t": w.t(), "row": w[1],
                             "h": torch.ones(2, dtype=torch.float16),
                             "i": torch.tensor([1, 2], dtype=torch.int64)})
    tsave("torch-legacy.pt", {"w": torch.ones(2)},
          _use_new_zipfile_serialization=False)
    tsave("torch-list.pt", [torch.zeros(1, dtype=torch.bfloat16),
                            torch.tensor(True), {"nested": (1, 2.5)}])
    # Debian's torch 1.13 cannot write DCP checkpoints; the fixture
    # generator of the DCP tests makes look-alikes with the 2.x layout.
    gen = os.path.join(HERE, "..", "fixtures", "gen-dcp.py")
    if not os.path.exists(gen):
        print("gen-corpus: no tests/fixtures/gen-dcp.py; DCP seeds skipped",
              file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, gen, d], check=True,
                       stdout=subprocess.DEVNULL)
        for sub in sorted(os.listdir(d)):
            p = os.path.join(d, sub)
            if not os.path.isdir(p):
                continue
            for n in sorted(os.listdir(p)):
                with open(os.path.join(p, n), "rb") as f:
                    data = f.read()
                # Every .metadata, and one shard: they are all alike.
                if len(data) < 4096 and (n == ".metadata" or
                                         (sub, n) == ("good", "__0_0.distcp")):
                    put("file", "dcp-%s-%s" % (sub, n.lstrip(".")), data)


def policy_seeds():
    put("policy", "full.yaml", """version: 1
trash: delete
gc:
  older_than: 2d
default:
  keep_last: 3
  keep_best: 2
  metric: val_loss
  mode: min
  keep_daily: 7
  keep_weekly: 8
  max_size: 2T
runs:
  "sweep-*":
    keep_last: 1
    keep_best: 1
    keep_daily: 0
    keep_weekly: 0
  llama-70b:
    keep_every: 10000
    metric: eval_accuracy
    mode: max
""")
    put("policy", "small.yaml", "default:\n  keep_last: 2\n")
    put("policy", "buckets.yaml", """default:
  keep_hourly: 24
  keep_daily: 7
  keep_weekly: 4
  keep_monthly: 12
  keep_yearly: 1
  keep_within: 1w2d
  missing: drop
prune_on_save: true
trash: keep
""")
    put("policy", "flow.yaml",
        "{default: {keep_last: 1, metric: &m loss}, runs: {a: {metric: *m}}}\n")
    put("policy", "empty.yaml", "# nothing\n")
    put("policy", "manifest.yaml", "manifest:\n  file_sha256: true\n")
    put("policy", "bad.yaml", "default:\n  keep_last: [1\n")


def manifest_seeds():
    data = b"weights" * 8
    import hashlib

    def dg(b):
        return "sha256:" + hashlib.sha256(b).hexdigest()
    m = {
        "schema": 1, "run": "llama", "step": 100, "epoch": 1,
        "created": "2026-01-01T00:00:00Z", "host": "h", "user": "u",
        "ckpt_version": "0.1.0", "scope": "full", "tags": ["t"],
        "metrics": {"loss": 0.5, "acc": None},
        "config": {"lr": 0.001, "layers": [1, 2]},
        "git": {"commit": "0" * 40, "branch": "main", "dirty": False},
        "validation": {"result": "ok"},
        "files": [
            {"path": "model.safetensors", "size": len(data),
             "format": "safetensors", "sha256": dg(data),
             "chunk_size": 64, "chunks": [
                 {"offset": 0, "size": 56, "sha256": dg(data)}],
             "tensors": [{"name": "w", "dtype": "F32", "shape": [2, 3],
                          "offset": 8, "size": 24, "sha256": dg(data)}]},
            {"path": "sub/optimizer.pt", "size": 0, "format": "torch-zip",
             "sha256": dg(b"")},
        ],
    }
    put("manifest", "full.json", json.dumps(m, indent=2, sort_keys=True))
    m2 = {"schema": 1, "run": "r", "step": 0, "files": []}
    put("manifest", "minimal.json", json.dumps(m2))
    put("manifest", "not-object.json", "[1, 2, 3]\n")
    # schema 2: ranges that partition each file, content digests, an
    # optional whole-file digest; one with a gap, one with an overlap
    m3 = dict(m)
    m3["schema"] = 2
    m3["files"] = [
        {"path": "model.safetensors", "size": len(data),
         "format": "safetensors", "chunk_size": 64, "ranges": [
             {"offset": 0, "size": 8, "sha256": dg(data[:8])},
             {"offset": 8, "size": 24, "sha256": dg(data[8:32])},
             {"offset": 32, "size": 24, "sha256": dg(data[32:])}],
         "tensors": [{"name": "w", "dtype": "F32", "shape": [2, 3],
                      "offset": 8, "size": 24,
                      "content_sha256": dg(data[8:32])},
                     {"name": "w.T", "dtype": "F32", "shape": [3, 2],
                      "offset": 8, "size": 24,
                      "content_sha256": dg(b"T")},
                     {"name": "q", "dtype": "QI8", "shape": [4],
                      "offset": 32, "size": 4}]},
        {"path": "sub/optimizer.pt", "size": 0, "format": "torch-zip",
         "sha256": dg(b""), "ranges": []},
        {"path": "whole.bin", "size": 3, "format": "unknown",
         "sha256": dg(b"abc"), "ranges": [
             {"offset": 0, "size": 3, "sha256": dg(b"abc")}]},
    ]
    put("manifest", "schema2.json", json.dumps(m3, indent=1, sort_keys=True))
    gap = json.loads(json.dumps(m3))
    del gap["files"][0]["ranges"][1]
    put("manifest", "schema2-gap.json", json.dumps(gap, sort_keys=True))
    over = json.loads(json.dumps(m3))
    over["files"][0]["ranges"][1]["offset"] = 4
    put("manifest", "schema2-overlap.json", json.dumps(over, sort_keys=True))


def config_seeds():
    put("config", "train.yaml", """model:
  name: llama
  layers: 32
  dropout: 0.1
optimizer: {name: adamw, betas: [0.9, 0.95], eps: 1.0e-8}
flags: [true, false, null, ~, yes, "quoted"]
anchors:
  base: &b {x: 1}
  derived: *b
multi: |
  line one
  line two
""")
    put("config", "train.json", '{"lr": 3e-4, "steps": [1, 2], "s": "x"}\n')
    put("config", "duration.txt", "2d12h\n")
    put("config", "size.txt", "1.5GiB\n")
    put("config", "tags.yaml", "!!map {? a : !!str b}\n--- second\n")


def bundle_seeds():
    # A real bundle made by the ckpt built in the tree (skipped without
    # it), gzipped to stay small, and hostile variants of it.
    ckpt = os.path.join(HERE, "..", "..", "ckpt")
    if not os.access(ckpt, os.X_OK):
        print("gen-corpus: no ./ckpt built; bundle seeds skipped")
        return
    import gzip
    import tarfile
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src")
        os.makedirs(src)
        with open(os.path.join(src, "w.bin"), "wb") as f:
            f.write(b"weights\n")
        st = os.path.join(d, "st")
        subprocess.run([ckpt, "-q", "-C", st, "save", "--run", "r",
                        "--step", "1", "--copy", src], check=True)
        tar = os.path.join(d, "b.tar")
        subprocess.run([ckpt, "-q", "-C", st, "export", "-o", tar, "r@1"],
                       check=True)
        raw = open(tar, "rb").read()
        put("bundle", "good.tar.gz", gzip.compress(raw, mtime=0))
        members = []
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                members.append((m, t.extractfile(m).read()))

        def variant(name, edit):
            ms = [(tarfile.TarInfo(m.name), data) for m, data in members]
            for ti, data in ms:
                ti.size, ti.mode = len(data), 0o644
            ms = edit(ms)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w",
                              format=tarfile.PAX_FORMAT) as t:
                for ti, data in ms:
                    t.addfile(ti, io.BytesIO(data) if data is not None
                              else None)
            put("bundle", name, gzip.compress(buf.getvalue(), mtime=0))

        def dotdot(ms):
            ti = tarfile.TarInfo("r@1/../../x")
            ti.size = 1
            return ms[:2] + [(ti, b"x")] + ms[2:]

        def link(ms):
            ti = tarfile.TarInfo(ms[-1][0].name)
            ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
            return ms[:-1] + [(ti, None)]

        def tamper(ms):
            ti, data = ms[-1]
            return ms[:-1] + [(ti, data[:-1] + b"X")]

        variant("dotdot.tar.gz", dotdot)
        variant("symlink.tar.gz", link)
        variant("tampered.tar.gz", tamper)
        variant("duplicate.tar.gz", lambda ms: ms[:2] + ms[1:])
        put("bundle", "truncated.tar", raw[:1500])


def history_seeds():
    """The registry's history: hash-chained JSON lines (registry.c)."""
    import hashlib

    def chain(records):
        out, prev = [], None
        for i, r in enumerate(records, 1):
            r = dict(r, schema=1, seq=i, prev=prev, time="2026-12-03T09:00:00Z",
                     user="u", host="h")
            line = json.dumps(r, sort_keys=True, separators=(",", ":"))
            prev = "sha256:" + hashlib.sha256(line.encode()).hexdigest()
            out.append(line)
        return "".join(x + "\n" for x in out)

    d = "sha256:" + "ab" * 32
    promote = lambda v, step: {"action": "promote", "model": "m",
                               "version": v, "run": "r", "step": step,
                               "manifest": d, "path": "registry/m/v%d" % v,
                               "storage": "link", "size": 10, "nfiles": 1}
    alias = lambda act, a, f, t: {"action": act, "model": "m", "alias": a,
                                  "from": f, "to": t}
    good = chain([promote(1, 10), alias("alias", "prod", None, 1),
                  promote(2, 20), alias("alias", "prod", 1, 2),
                  dict(alias("rollback", "prod", 2, 1), note="bad eval"),
                  alias("alias", "dev", None, 2),
                  alias("alias-delete", "dev", 2, None)])
    put("history", "good.jsonl", good)
    lines = good.splitlines(True)
    put("history", "broken-chain.jsonl", "".join(lines[:2] + lines[3:]))
    put("history", "cut.jsonl", good[:-1])
    put("history", "bad-replay.jsonl",
        chain([promote(2, 1), alias("rollback", "prod", None, 1)]))
    put("history", "empty.jsonl", "")


def dcp_diff_seeds():
    """fuzz-dcp-diff: u16 LE length of .metadata, .metadata, u16 LE length
    of __0_0.distcp, __0_0.distcp, then __1_0.distcp (the rest); and a
    sparse torch file for fuzz-diff."""
    try:
        import importlib.util
        import torch
    except ImportError:
        print("gen-corpus: no torch; DCP diff seeds skipped", file=sys.stderr)
        return
    spec = importlib.util.spec_from_file_location(
        "gen_dcp", os.path.join(HERE, "..", "fixtures", "gen-dcp.py"))
    g = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(g)
    torch.manual_seed(0)
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)

    def seed(name, chunks, fix=None, values=None):
        files, storage, cm = {0: io.BytesIO(), 1: io.BytesIO()}, {}, []
        for rank, offsets, sizes, t in chunks:
            f = files[rank]
            start = f.tell()
            torch.save(t, f)
            storage[g.MetadataIndex("w", torch.Size(offsets))] = \
                g._StorageInfo("__%d_0.distcp" % rank, start,
                               f.tell() - start)
            cm.append(g.ChunkStorageMetadata(torch.Size(offsets),
                                             torch.Size(sizes)))
        sdm = {"w": g.TensorStorageMetadata(g.TensorProperties(torch.float32),
                                            torch.Size((2, 3)), cm)}
        for fqn, v in (values or {}).items():   # bytes items, on rank 0
            start = files[0].tell()
            torch.save(v, files[0])
            storage[g.MetadataIndex(fqn, None)] = g._StorageInfo(
                "__0_0.distcp", start, files[0].tell() - start)
            sdm[fqn] = g.BytesStorageMetadata()
        if fix:
            fix(storage)
        md = pickle.dumps(g.Metadata(sdm, storage_data=storage), protocol=4)
        s0, s1 = files[0].getvalue(), files[1].getvalue()
        put("dcp-diff", name, struct.pack("<H", len(md)) + md +
            struct.pack("<H", len(s0)) + s0 + s1)

    rows = [(0, (0, 0), (1, 3), w[0:1].clone()),
            (1, (1, 0), (1, 3), w[1:2].clone())]
    seed("rows", rows)
    seed("cols", [(0, (0, 0), (2, 2), w[:, 0:2].clone()),
                  (1, (0, 2), (2, 1), w[:, 2:3].t().contiguous().t())])
    seed("overlap", [rows[0], (1, (0, 0), (1, 3), w[1:2].clone())])

    def past_end(storage):
        for k, v in storage.items():
            if v.relative_path == "__1_0.distcp":
                v.offset = 4000

    seed("past-end", rows, past_end)
    seed("bytes", rows, values={"opt": {"lr": 0.1, "betas": (0.9, 0.99),
                                        "n": None, "on": True}})

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    seed("bytes-evil", rows, values={"hook": [Evil()]})

    def cut(storage):
        for k, v in storage.items():
            if k.fqn == "opt":
                v.length -= 30

    seed("bytes-cut", rows, cut, values={"opt": {"lr": 0.1}})
    # chunk archives that do not hold what the metadata says (dcpcheck.c,
    # dcptensor.c: ckpt_dcp_chunk_holds): another dtype, fewer elements
    seed("chunk-half", [(0, (0, 0), (1, 3), w[0:1].half()), rows[1]])
    seed("chunk-short", [(0, (0, 0), (1, 3), w[0:1, 0:2].clone()), rows[1]])

    def into_bytes(storage):
        storage[g.MetadataIndex("w", torch.Size((0, 0)))] = \
            storage[g.MetadataIndex("opt", None)]

    seed("chunk-object", rows, into_bytes, values={"opt": {"lr": 0.1}})
    b = io.BytesIO()
    i = torch.tensor([[0, 1], [2, 0]])
    torch.save({"coo": torch.sparse_coo_tensor(i, torch.ones(2), (2, 3)),
                "meta": torch.empty(2, device="meta")}, b)
    put("diff", "torch-sparse.pt", b.getvalue())


SEEDS = {"file": file_seeds, "policy": policy_seeds,
         "manifest": manifest_seeds, "config": config_seeds,
         "bundle": bundle_seeds, "history": history_seeds,
         "dcp-diff": dcp_diff_seeds}
# gen-corpus.py [NAME...]: only those seed sets
for name in sys.argv[1:] or SEEDS:
    SEEDS[name]()
