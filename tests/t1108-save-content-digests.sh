#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='manifest schema 2: content digests as numpy computes them, in any format and layout; every recorded digest verified; schema-1 stores still read'
. "$(dirname "$0")/lib.sh"

# edit MANIFEST PYTHON: rewrites the manifest after running PYTHON on m.
edit() {
	"$PYTHON" -c "
import json, sys
p = sys.argv[1]
m = json.load(open(p))
def file(path):
    return [f for f in m[\"files\"] if f[\"path\"] == path][0]
def tensor(path, name):
    return [t for t in file(path)[\"tensors\"] if t[\"name\"] == name][0]
$2
open(p, \"w\").write(json.dumps(m, indent=1, sort_keys=True))
" "$1"
}

# digests RUN EXT: "STEM<TAB>NAME<TAB>HEX|none" of the manifest's tensors.
digests() {
	"$PYTHON" -c "
import json, sys
m = json.load(open(sys.argv[1]))
for f in m[\"files\"]:
    if not f[\"path\"].endswith(sys.argv[2]):
        continue
    for t in f[\"tensors\"]:
        d = t.get(\"content_sha256\", \"none\").replace(\"sha256:\", \"\")
        print(\"%s\t%s\t%s\" % (f[\"path\"][:-len(sys.argv[2])], t[\"name\"], d))
" "st/runs/$1/step-1/ckpt-manifest.json" "$2" | sort
}

test_expect_success TORCH 'setup: torch files, their safetensors export' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-content-ckpt.py" g &&
	sort g/expect >expect.all &&
	test "$(wc -l <expect.all)" -gt 30 &&
	ckpt init -q st &&
	ckpt -C st save -q --copy --run t --step 1 g/torch >/dev/null &&
	ckpt -C st save -q --copy --run s --step 1 g/st >/dev/null
'

test_expect_success TORCH 'content digests of torch files are numpy'"'"'s SHA-256 of the elements' '
	digests t .pt >got &&
	test_cmp expect.all got &&
	# views, strides, expand, a 0-dim element, big-endian: all there
	test_grep "^views	expand	[0-9a-f]\{64\}$" got &&
	test_grep "^views	el	[0-9a-f]\{64\}$" got &&
	test_grep "^bigendian	T	[0-9a-f]\{64\}$" got &&
	# quantized tensors have no content digest (ckpt-manifest(5))
	test_grep "^dtypes	qint8	none$" got
'

test_expect_success TORCH 'the same tensors saved as safetensors have the same digests' '
	digests s .safetensors >got &&
	# the export holds what safetensors can: no complex128, no qint8
	grep -v "	c128	\|	qint8	" expect.all >expect &&
	test_cmp expect got
'

test_expect_success TORCH 'tied weights share a range and a digest' '
	"$PYTHON" -c "
import json
m = json.load(open(\"st/runs/t/step-1/ckpt-manifest.json\"))
f = [f for f in m[\"files\"] if f[\"path\"] == \"tied.pt\"][0]
t = {t[\"name\"]: t for t in f[\"tensors\"]}
assert t[\"emb\"][\"offset\"] == t[\"lm_head\"][\"offset\"]
assert t[\"emb\"][\"content_sha256\"] == t[\"lm_head\"][\"content_sha256\"]
r = [r for r in f[\"ranges\"] if r[\"offset\"] == t[\"emb\"][\"offset\"]][0]
assert r[\"sha256\"] == t[\"emb\"][\"content_sha256\"]
assert r[\"size\"] == t[\"emb\"][\"size\"]
"
'

test_expect_success TORCH 'both checkpoints verify' '
	ckpt -C st verify -q st/runs/t/step-1 st/runs/s/step-1
'

test_expect_success TORCH 'an edited content digest of a view fails verify' '
	cp -r st/runs/t/step-1 view &&
	edit view/ckpt-manifest.json "tensor(\"views.pt\", \"T\")[\"content_sha256\"] = \"sha256:\" + \"0\" * 64" &&
	test_expect_code 1 ckpt verify --json view >out &&
	test_grep "tensor T: content SHA-256 differs from the manifest" out
'

test_expect_success TORCH 'an edited content digest of a tensor that is its range fails verify' '
	cp -r st/runs/s/step-1 direct &&
	edit direct/ckpt-manifest.json "tensor(\"views.safetensors\", \"base\")[\"content_sha256\"] = \"sha256:\" + \"1\" * 64" &&
	test_expect_code 1 ckpt verify --json direct >out &&
	test_grep "content-digest-mismatch" out &&
	test_grep "tensor base: the manifest.s content digest differs from its range" out
'

test_expect_success TORCH 'verify --fast: an edited digest misses the cache' '
	cp -r st/runs/t/step-1 fast &&
	ckpt verify -q fast &&
	ckpt verify -q --fast --json fast >out &&
	test_grep "\"bytes_cached\": [1-9]" out &&
	edit fast/ckpt-manifest.json "tensor(\"views.pt\", \"cols\")[\"content_sha256\"] = \"sha256:\" + \"5\" * 64" &&
	test_expect_code 1 ckpt verify --fast --json fast >out &&
	test_grep "tensor cols: content SHA-256 differs" out
'

test_expect_success TORCH 'a changed byte of a base names the base and its views' '
	cp -r st/runs/t/step-1 flip &&
	off=$("$PYTHON" -c "
import json
m = json.load(open(\"flip/ckpt-manifest.json\"))
f = [f for f in m[\"files\"] if f[\"path\"] == \"views.pt\"][0]
t = [t for t in f[\"tensors\"] if t[\"name\"] == \"base\"][0]
print(t[\"offset\"] + 4 * 9)
") &&
	ckpt-test-tool flip flip/views.pt "$off" &&
	test_expect_code 1 ckpt verify --json flip >out &&
	test_grep "tensor base changed" out &&
	test_grep "tensor T changed" out &&
	test_grep "tensor rows changed" out &&
	test_grep "tensor T: content SHA-256 differs" out
'

test_expect_success TORCH 'an edited whole-file digest fails verify (schema 2)' '
	ckpt -C st save -q --copy --file-sha256 --run w --step 1 g/torch >/dev/null &&
	test_grep "\"sha256\": \"sha256:$(sha256sum g/torch/views.pt | cut -d" " -f1)\"" \
	    st/runs/w/step-1/ckpt-manifest.json &&
	ckpt verify -q st/runs/w/step-1 &&
	cp -r st/runs/w/step-1 whole &&
	edit whole/ckpt-manifest.json "file(\"views.pt\")[\"sha256\"] = \"sha256:\" + \"2\" * 64" &&
	test_expect_code 1 ckpt verify whole >out 2>&1 &&
	test_grep "views.pt: FAILED" out &&
	test_grep "whole-file SHA-256 differs from the manifest, though every range matches" out
'

test_expect_success TORCH 'a file one range long records its whole digest for free' '
	test_grep "\"sha256\": \"sha256:$(sha256sum st/runs/t/step-1/ckpt-summary.json | cut -d" " -f1)\"" \
	    st/runs/t/step-1/ckpt-manifest.json
'

test_expect_success 'setup: a store whose checkpoint has a schema-1 manifest' '
	ckpt init -q old &&
	mkdir src1 &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" src1/model.safetensors 300000 3 &&
	ckpt -C old save -q --copy --run r --step 1 src1 >/dev/null &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-manifest.py" --run r \
	    --step 1 old/runs/r/step-1 65536 &&
	test_grep "\"schema\": 1" old/runs/r/step-1/ckpt-manifest.json &&
	sha256sum old/runs/r/step-1/ckpt-manifest.json >manifest1.sum
'

test_expect_success 'a schema-1 store lists and verifies' '
	ckpt -C old ls >out &&
	test_grep "^r  *1 " out &&
	ckpt -C old verify r@1 &&
	ckpt -C old latest --run r --verified >out &&
	test_grep "step-1" out
'

test_expect_success 'saving the next checkpoint leaves the schema-1 manifest as it is' '
	ckpt -C old save -q --copy --run r --step 2 src1 >/dev/null &&
	test_grep "\"schema\": 2" old/runs/r/step-2/ckpt-manifest.json &&
	ckpt -C old verify -q r@1 r@2 &&
	sha256sum -c --quiet manifest1.sum
'

test_expect_success 'an edited whole-file digest fails verify (schema 1)' '
	cp -r old/runs/r/step-1 old1 &&
	edit old1/ckpt-manifest.json "file(\"model.safetensors\")[\"sha256\"] = \"sha256:\" + \"3\" * 64" &&
	test_expect_code 1 ckpt verify old1 >out 2>&1 &&
	test_grep "model.safetensors: FAILED" out
'

test_expect_success 'an edited range digest fails verify and names the tensor' '
	cp -r old/runs/r/step-2 new2 &&
	edit new2/ckpt-manifest.json "
f = file(\"model.safetensors\")
t = [t for t in f[\"tensors\"] if t[\"name\"] == \"t1\"][0]
r = [r for r in f[\"ranges\"] if r[\"offset\"] == t[\"offset\"]][0]
r[\"sha256\"] = \"sha256:\" + \"4\" * 64" &&
	test_expect_code 1 ckpt verify new2 >out 2>&1 &&
	test_grep "tensor t1 changed" out
'

test_expect_success 'a schema-2 manifest whose ranges leave a gap is refused' '
	cp -r old/runs/r/step-2 gap &&
	edit gap/ckpt-manifest.json "
f = file(\"model.safetensors\")
del f[\"ranges\"][1]" &&
	test_expect_code 1 ckpt verify gap >out 2>&1 &&
	test_grep "ranges\[1\] starts at byte" out
'

test_expect_success 'ckpt sha256sum prints what sha256sum -c checks, on demand' '
	ckpt -C old sha256sum r@2 >sums &&
	test "$(wc -l <sums)" = 2 &&
	sha256sum -c --quiet sums &&
	ckpt sha256sum --relative old/runs/r/step-2 >rel &&
	(cd old/runs/r/step-2 && sha256sum -c --quiet ../../../../rel) &&
	sha256sum old/runs/r/step-2/model.safetensors >want &&
	ckpt sha256sum old/runs/r/step-2/model.safetensors >got &&
	test_cmp want got &&
	ckpt sha256sum --json old/runs/r/step-2 >out &&
	test_grep "\"sha256\": \"sha256:$(cut -d" " -f1 want)\"" out
'

test_expect_success 'ckpt sha256sum escapes names as sha256sum does' '
	mkdir odd && printf x >"odd/a\\b" &&
	sha256sum "odd/a\\b" >want &&
	ckpt sha256sum "odd/a\\b" >got &&
	test_cmp want got
'

test_expect_success 'ckpt sha256sum: a recorded digest that differs is exit 1' '
	test_expect_code 1 ckpt sha256sum old1 >out 2>err &&
	test_grep "model.safetensors: SHA-256 differs from the one its manifest records" err &&
	test_expect_code 2 ckpt sha256sum &&
	test_expect_code 3 ckpt sha256sum no-such-dir
'

test_done
