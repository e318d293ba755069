#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='pin and unpin: references, paths, idempotence, prune honours pins'
. "$(dirname "$0")/lib.sh"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

test_expect_success 'setup' '
	mkstore s a@10:loss=0.5 a@20:loss=0.2 a@30:loss=0.4 b@1
'

test_expect_success 'pin RUN@STEP with a note; ls shows it' '
	ckpt -C s pin a@10 --note "the paper" >out &&
	echo "pinned a@10" >expect &&
	test_cmp expect out &&
	test_path_is_file "s/.ckpt/pins/a@10" &&
	test_grep "the paper" "s/.ckpt/pins/a@10" &&
	ckpt -C s ls --json --run a >ls.json &&
	"$PYTHON" -c "
import json
doc = json.load(open(\"ls.json\"))
cps = doc.get(\"checkpoints\") or doc[\"runs\"][0][\"checkpoints\"]
pinned = {c[\"step\"]: c[\"pinned\"] for c in cps}
assert pinned == {10: True, 20: False, 30: False}, pinned
"
'

test_expect_success 'pinning again is fine and replaces the note' '
	ckpt -C s pin a@10 --note "camera ready" &&
	test_grep "camera ready" "s/.ckpt/pins/a@10" &&
	! grep -q "the paper" "s/.ckpt/pins/a@10"
'

test_expect_success 'a pinned checkpoint survives every prune' '
	ckpt -C s prune --run a --keep-last 1 >out &&
	test_path_is_dir s/runs/a/step-10 &&
	test_path_is_missing s/runs/a/step-20 &&
	test_grep "^a      10 .* keep     pinned" out
'

test_expect_success 'RUN@latest, RUN@best (metric from the flags or ckpt.yaml), a path' '
	rm -rf s && mkstore s a@10:loss=0.5 a@20:loss=0.2 a@30:loss=0.4 b@1 &&
	ckpt -C s pin a@latest >out &&
	test_grep "^pinned a@30$" out &&
	ckpt -C s pin a@best --metric loss >out &&
	test_grep "^pinned a@20$" out &&
	ckpt -C s pin a@best --metric loss --mode max >out &&
	test_grep "^pinned a@10$" out &&
	ckpt -C s unpin a@10 && ckpt -C s unpin a@20 &&
	printf "default:\n  keep_last: 1\n  metric: loss\n  mode: max\n" \
		>s/ckpt.yaml &&
	ckpt -C s pin a@best >out &&
	test_grep "^pinned a@10$" out &&
	ckpt -C s pin a@best --mode min >out &&
	test_grep "^pinned a@20$" out &&
	ckpt -C s unpin a@20 &&
	ckpt -C s pin --json s/runs/b/step-1 >out.json &&
	"$PYTHON" -c "
import json, os
d = json.load(open(\"out.json\"))
assert d[\"run\"] == \"b\" and d[\"step\"] == 1 and d[\"pinned\"] is True, d
assert d[\"path\"] == os.path.realpath(\"s/runs/b/step-1\"), d
assert d[\"schema\"] == 1
" &&
	ls s/.ckpt/pins | sort >actual &&
	printf "a@10\na@30\nb@1\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'unpin by reference and by path; --json' '
	ckpt -C s unpin --json a@30 >out.json &&
	test_grep "\"pinned\": false" out.json &&
	test_path_is_missing "s/.ckpt/pins/a@30" &&
	ckpt -C s unpin s/runs/b/step-1 >out &&
	test_grep "^unpinned b@1$" out &&
	test_path_is_missing "s/.ckpt/pins/b@1"
'

test_expect_success 'unpin of what is not pinned exits 2' '
	test_expect_code 2 ckpt -C s unpin a@20 >out 2>err &&
	test ! -s out &&
	test_grep "a@20 is not pinned" err
'

test_expect_success 'unpin RUN@STEP works when the checkpoint is gone' '
	ckpt -C s pin a@20 &&
	rm -r s/runs/a/step-20 &&
	ckpt -C s unpin a@20 &&
	test_path_is_missing "s/.ckpt/pins/a@20"
'

test_expect_success 'pin of what does not exist exits 3, of what is not in the store 2' '
	test_expect_code 3 ckpt -C s pin a@99 2>err &&
	test_expect_code 3 ckpt -C s pin nosuch@latest 2>err &&
	mkstore other c@1 &&
	test_expect_code 2 ckpt -C s pin other/runs/c/step-1 2>err &&
	test_grep "not a checkpoint of the store" err &&
	mkdir loose && echo x >loose/f &&
	test_expect_code 2 ckpt -C s pin loose 2>err &&
	test_path_is_missing "s/.ckpt/pins/c@1"
'

test_expect_success 'usage: exactly one checkpoint' '
	test_expect_code 2 ckpt -C s pin 2>err &&
	test_grep "which checkpoint" err &&
	test_expect_code 2 ckpt -C s pin a@10 a@30 2>err &&
	test_grep "one checkpoint at a time" err
'

test_done
