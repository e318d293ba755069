#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='promote --weights-only on an s3:// store against a real
RGW: the verified staging copy is converted (read through ranged GETs) into
a spool of this host, uploaded into the staging prefix and committed as the
version, manifest last; the same bytes as a local promote, checked by
torch; a failing upload leaves the store and the spool as they were'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

FX=$FIXTURES_DIR/torch

s3() {
	ckpt-test-tool s3 "$@"
}

stcheck() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/st-check.py" "$@"
}

STORE=s3://$BUCKET/pw
export CKPT_STORE=$STORE

# store FILE: every object and unfinished upload under the store.
store() {
	s3 "$BUCKET" list pw/ >"$1" &&
	s3 "$BUCKET" uploads pw/ >>"$1"
}

test_expect_success TORCH 'setup: a Lightning checkpoint in an s3:// and a local store' '
	mkdir src spool &&
	cp "$FX/lightning.ckpt" src/ &&
	ckpt init &&
	ckpt save -q --run lit --step 1 --metric loss=0.5 --copy src &&
	ckpt -C loc save -q --run lit --step 1 --metric loss=0.5 --copy src &&
	ckpt keygen -o k --no-passphrase >/dev/null
'

test_expect_success TORCH 'the version is model.safetensors and its own manifest, as objects' '
	TMPDIR=$PWD/spool ckpt promote lit@1 --model m --weights-only \
	    --alias prod >out &&
	test_grep "^promoted lit@1 (sha256:[0-9a-f]*) to m v1: weights only, 9 tensors in model.safetensors" out &&
	s3 "$BUCKET" list pw/registry/m/v1/ | sed "s/ [0-9]*\$//" >files &&
	printf "%s\n" pw/registry/m/v1/ckpt-manifest.json \
	    pw/registry/m/v1/model.safetensors >expect &&
	test_cmp expect files &&
	! s3 "$BUCKET" list pw/registry/.staging/ | grep . &&
	test -z "$(ls -A spool)"
'

test_expect_success TORCH 'torch reads the weights back; the bytes are a local promote'"'"'s' '
	s3 "$BUCKET" get pw/registry/m/v1/model.safetensors >remote.safetensors &&
	stcheck "$FX/lightning.ckpt" remote.safetensors state_dict >res &&
	test_grep "^ok 9 tensors" res &&
	ckpt -C loc promote lit@1 --model m --weights-only >/dev/null &&
	cmp loc/registry/m/v1/model.safetensors remote.safetensors &&
	"$PYTHON" - <<-\EOF
	import json, struct, numpy as np, torch
	src = torch.load("'"$FX"'/lightning.ckpt", map_location="cpu")["state_dict"]
	raw = open("remote.safetensors", "rb").read()
	n = struct.unpack("<Q", raw[:8])[0]
	hdr = json.loads(raw[8:8 + n])
	body = raw[8 + n:]
	dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64,
	      "F16": np.float16, "I32": np.int32, "U8": np.uint8}
	names = [k for k in hdr if k != "__metadata__"]
	assert sorted(names) == sorted(src), (names, list(src))
	for k in names:
	    e = hdr[k]
	    a, b = e["data_offsets"]
	    t = torch.from_numpy(np.frombuffer(body[a:b], dtype=dt[e["dtype"]])
	        .reshape(e["shape"]).copy())
	    assert torch.equal(t, src[k]), k
	EOF
'

test_expect_success TORCH 'provenance in the version manifest and the history' '
	s3 "$BUCKET" get pw/registry/m/v1/ckpt-manifest.json >vman &&
	s3 "$BUCKET" get pw/runs/lit/step-1/ckpt-manifest.json >srcman &&
	ckpt --json log >log.json &&
	"$PYTHON" - <<-\EOF
	import json, hashlib
	man = json.load(open("vman"))
	sd = "sha256:" + hashlib.sha256(open("srcman", "rb").read()).hexdigest()
	assert man["scope"] == "weights-only", man
	assert man["source"]["manifest"] == sd, man["source"]
	(f,) = man["files"]
	st = open("remote.safetensors", "rb").read()
	assert f["sha256"] == "sha256:" + hashlib.sha256(st).hexdigest()
	rec = [r for r in json.load(open("log.json"))["records"]
	       if r["action"] == "promote"][0]
	vm = open("vman", "rb").read()
	assert rec["manifest"] == "sha256:" + hashlib.sha256(vm).hexdigest()
	assert rec["source_manifest"] == sd and rec["scope"] == "weights-only"
	EOF
'

test_expect_success TORCH 'verify MODEL@ALIAS, log --verify and verify --registry pass' '
	ckpt verify m@prod >out 2>err &&
	test_grep "model.safetensors: OK" out &&
	ckpt log --verify 2>err &&
	ckpt verify --registry 2>err
'

test_expect_success TORCH 'the same checkpoint again: no new version, nothing written' '
	store before &&
	ckpt promote lit@1 --model m --weights-only >out &&
	test_grep "m v1 holds this checkpoint'"'"'s weights already" out &&
	store after &&
	test_cmp before after
'

test_expect_success TORCH 'the upload of the weights refused every time: exit 3, store and spool unchanged' '
	store before &&
	rgw_proxy_start pw "500:all:/w/model.safetensors" &&
	test_when_finished "rgw_proxy_stop pw" &&
	AWS_ENDPOINT_URL=$PROXY_URL TMPDIR=$PWD/spool test_expect_code 3 \
	    ckpt promote lit@1 --model w --weights-only 2>err &&
	test_grep "/w/model.safetensors: PUT: HTTP 500" err &&
	store after &&
	test_cmp before after &&
	test -z "$(ls -A spool)" &&
	ckpt models >out &&
	! grep "^w " out
'

test_expect_success TORCH 'a promote killed during the upload: no version; the next one cleans up' '
	rgw_proxy_start pk "stall:1:/w/model.safetensors" &&
	test_when_finished "rgw_proxy_stop pk" &&
	AWS_ENDPOINT_URL=$PROXY_URL TMPDIR=$PWD/spool \
	    ckpt promote lit@1 --model k --weights-only >out 2>err &
	pid=$! &&
	wait_for pk.log "model.safetensors stall" &&
	kill -9 $pid &&
	{ wait $pid; echo $? >rc; } &&
	echo 137 >want &&
	test_cmp want rc &&
	test -n "$(ls -A spool)" &&
	s3 "$BUCKET" list pw/registry/.staging/ >staged &&
	test_grep "/v/lightning.ckpt" staged &&
	ckpt models >out &&
	! grep "^k " out &&
	TMPDIR=$PWD/spool ckpt promote lit@1 --model k --weights-only >out &&
	test_grep "to k v1: weights only" out &&
	test -z "$(ls -A spool)" &&
	! s3 "$BUCKET" list pw/registry/.staging/ | grep .
'

test_expect_success TORCH '--weights-only --sign-key on the remote store' '
	ckpt promote lit@1 --model w --weights-only --sign-key k.key >out &&
	test_grep "to w v1: weights only" out &&
	test_grep "signed by key" out &&
	ckpt log --verify --key k.pub 2>err &&
	test_grep "1 signed promotion" err &&
	s3 "$BUCKET" head pw/registry/w/v1.record.sig
'

test_done
