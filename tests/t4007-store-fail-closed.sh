#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='the store fails closed: no symbolic link followed out of it, an I/O error is an error, failed checkpoints crowd out nothing, the best is kept'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

steps() {
	ls "$1/runs/$2" | sed -n "s/^step-//p" | sort -n | tr "\n" " "
	echo
}

# fault OP PATTERN NTH cmd...: cmd with the NTH matching call failing
# (EIO).  Under ASan the shim comes before the ASan runtime: allowed.
fault() {
	_op=$1 _pat=$2 _nth=$3
	shift 3
	env ASAN_OPTIONS="verify_asan_link_order=0:$ASAN_OPTIONS" \
	    LD_PRELOAD="$SHIM" CKPT_FAULT_OP="$_op" CKPT_FAULT_PATH="$_pat" \
	    CKPT_FAULT_NTH="$_nth" CKPT_FAULT_ACTION=fail "$@"
}

# Marks RUN@STEP of store S as failed by its load test.
mark_failed() {
	printf "{\"load_test\": {\"result\": \"failed\"}, \"schema\": 1}\n" \
	    >"$1/runs/$2/step-$3/ckpt-status.json"
}

test_expect_success 'setup' '
	mkstore s a@1:loss=0.5 a@2:loss=0.1 a@3:loss=0.4 a@4:loss=0.3 \
	    a@5:loss=0.2 &&
	mkstore outside x@1 x@2 x@3 &&
	cp -R s s0
'

# Defect 3: a run that is a symbolic link is foreign.
test_expect_success 'prune --all never deletes through a symlinked run' '
	rm -rf t && cp -R s0 t &&
	ln -s "$PWD/outside/runs/x" t/runs/x &&
	ckpt -C t prune --all --keep-last 1 >out 2>err &&
	echo "1 2 3 " >expect &&
	steps outside x >actual &&
	test_cmp expect actual &&
	test -L t/runs/x &&
	test_grep "runs/x: a symbolic link" err &&
	echo "5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'a symlinked run named on the command line is refused' '
	test_expect_code 3 ckpt -C t prune --run x --keep-last 1 2>err &&
	test_grep "symbolic link" err &&
	test_expect_code 3 ckpt -C t latest --run x 2>err &&
	test_grep "symbolic link" err &&
	test_expect_code 3 ckpt -C t ls --run x 2>err &&
	echo "1 2 3 " >expect &&
	steps outside x >actual &&
	test_cmp expect actual
'

test_expect_success 'ls reports a symlinked run as foreign' '
	ckpt -C t ls 2>err >out &&
	test_grep "runs/x: a symbolic link" err &&
	ckpt -C t ls --json >out.json &&
	"$PYTHON" -c "
import json, sys
d = json.load(open(\"out.json\"))
f = d[\"foreign\"]
assert len(f) == 1 and f[0][\"path\"].endswith(\"/runs/x\"), f
assert all(c[\"run\"] != \"x\" for c in d[\"checkpoints\"])
"
'

test_expect_success 'a symlinked checkpoint is neither listed nor removed' '
	rm -rf t && cp -R s0 t &&
	ln -s "$PWD/outside/runs/x/step-3" t/runs/a/step-9 &&
	ckpt -C t prune --run a --keep-last 1 2>err &&
	test_grep "step-9: a symbolic link" err &&
	test -L t/runs/a/step-9 &&
	echo "1 2 3 " >expect &&
	steps outside x >actual &&
	test_cmp expect actual &&
	ckpt -C t latest --run a >actual &&
	echo "$(cd t && pwd -P)/runs/a/step-5" >expect &&
	test_cmp expect actual
'

test_expect_success 'a trash that is a symbolic link stops prune' '
	rm -rf t elsewhere && cp -R s0 t && mkdir elsewhere &&
	rm -rf t/.ckpt/trash && ln -s "$PWD/elsewhere" t/.ckpt/trash &&
	test_expect_code 3 ckpt -C t prune --run a --keep-last 1 2>err &&
	test_grep "symbolic link" err &&
	echo "1 2 3 4 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual &&
	test_must_fail ls elsewhere/* 2>/dev/null
'

# Defect 4: every listing fails closed.
test_expect_success 'an unreadable pins directory stops prune (exit 3)' '
	rm -rf t && cp -R s0 t &&
	ckpt -C t pin a@1 &&
	test_expect_code 3 fault opendir "*/.ckpt/pins" 1 \
	    ckpt -C t prune --run a --keep-last 1 2>err &&
	test_grep "pins" err &&
	echo "1 2 3 4 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'a listing of the pins cut short stops prune' '
	test_expect_code 3 fault readdir "*/.ckpt/pins" 1 \
	    ckpt -C t prune --run a --keep-last 1 2>err &&
	echo "1 2 3 4 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'prune re-checks the pin of what it removes' '
	test_expect_code 1 fault stat "*/.ckpt/pins/a@2" 1 \
	    ckpt -C t prune --run a --keep-last 1 2>err &&
	test_grep "a@2: not removed: cannot check pins" err &&
	echo "1 2 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'an unreadable run directory is an error for latest' '
	test_expect_code 3 fault opendir "*/runs/a" 1 \
	    ckpt -C s latest --run a 2>err &&
	test_grep "cannot" err &&
	test_expect_code 3 fault opendir "*/runs/a" 1 ckpt -C s ls 2>err
'

test_expect_success 'a run listing cut short is an error, never a partial view' '
	rm -rf "$HOME/.cache/ckpt" &&
	test_expect_code 3 fault readdir "*/runs/a" 3 \
	    ckpt -C s latest --run a 2>err &&
	test_expect_code 3 fault readdir "*/runs/a" 3 \
	    ckpt -C s prune --run a --keep-last 1 2>err &&
	test_expect_code 3 fault readdir "*/runs/a" 3 \
	    ckpt -C s prune --run a --keep-last 1 --dry-run 2>err &&
	test_expect_code 3 fault readdir "*/runs" 1 ckpt -C s ls 2>err &&
	test_expect_code 3 fault readdir "*/runs" 1 \
	    ckpt -C s prune --all --keep-last 1 2>err &&
	echo "1 2 3 4 5 " >expect &&
	steps s a >actual &&
	test_cmp expect actual
'

test_expect_success 'an unreadable checkpoint is an error, not "no checkpoint"' '
	test_expect_code 3 fault open "*/runs/a/step-5/*" all \
	    ckpt -C s latest --run a 2>err &&
	test_grep "step-5" err &&
	test_expect_code 3 fault stat "*/runs/a/step-5/ckpt-manifest.json" 1 \
	    ckpt -C s latest --run a 2>err &&
	test_expect_code 3 fault open "*/runs/a/step-4/ckpt-status.json" 1 \
	    ckpt -C s prune --run a --keep-last 1 2>err &&
	echo "1 2 3 4 5 " >expect &&
	steps s a >actual &&
	test_cmp expect actual
'

# save asks the backend whether the checkpoint exists: an error is not
# "absent", so a save never goes on (nor would --force replace) blind.
test_expect_success 'save stops when it cannot tell whether the checkpoint exists' '
	rm -rf t && cp -R s0 t && mkdir src9 && echo w >src9/w.bin &&
	test_expect_code 3 fault stat "*/runs/a/step-9" 1 \
	    ckpt -C t save --move --run a --step 9 src9 2>err &&
	test_grep "step-9" err &&
	test_path_is_file src9/w.bin &&
	test_path_is_missing t/runs/a/step-9 &&
	ckpt -C t save --move --run a --step 9 src9 &&
	test_path_is_file t/runs/a/step-9/w.bin
'

test_expect_success 'an unreadable registry entry stops prune' '
	rm -rf t && cp -R s0 t && mkdir -p t/registry/m &&
	echo "{\"schema\": 1, \"run\": \"a\", \"step\": 1}" \
	    >t/registry/m/v1.json &&
	test_expect_code 3 fault open "*/registry/m/v1.json" 1 \
	    ckpt -C t prune --run a --keep-last 1 2>err &&
	test_grep "registry/m/v1.json" err &&
	test_expect_code 3 fault opendir "*/registry" 1 \
	    ckpt -C t prune --run a --keep-last 1 2>err &&
	echo "1 2 3 4 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual &&
	ckpt -C t prune --run a --keep-last 1 &&
	echo "1 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'an unparseable registry entry protects, never unprotects' '
	rm -rf t && cp -R s0 t && mkdir -p t/registry/m &&
	echo "{not json" >t/registry/m/v2.json &&
	ckpt -C t prune --run a --keep-last 1 >out 2>err &&
	test_grep "unreadable registry/m/v2.json" err &&
	echo "1 2 3 4 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual &&
	echo "{\"run\": \"a\", \"step\": \"two\"}" >t/registry/m/v2.json &&
	mkstore t b@1 b@2 &&
	ckpt -C t prune --all --keep-last 1 &&
	steps t a >actual &&
	test_cmp expect actual &&
	echo "2 " >expect &&
	steps t b >actual &&
	test_cmp expect actual
'

# Defect 5: a failed checkpoint crowds out nothing.
test_expect_success 'a failed newest checkpoint fills neither newest nor last' '
	rm -rf t && cp -R s0 t &&
	mark_failed t a 5 &&
	ckpt -C t latest --run a >latest &&
	test_grep "/step-4$" latest &&
	ckpt -C t prune --run a --keep-last 1 >out.raw &&
	sed "s/ *\$//" out.raw >out &&
	test_grep "^a       4 .* keep  *newest, last$" out &&
	echo "4 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'a failed checkpoint takes no keep_best rank' '
	rm -rf t && cp -R s0 t &&
	mark_failed t a 2 &&
	ckpt -C t prune --run a --keep-best 1 --metric loss >out.raw &&
	sed "s/ *\$//" out.raw >out &&
	test_grep "^a       5 .* keep  *newest, best loss=0.2 (1/1)$" out &&
	echo "5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

# Defect 6: the best by the policy's metric is always kept.
test_expect_success 'the best by the metric is kept without keep_best' '
	rm -rf t && cp -R s0 t &&
	ckpt -C t prune --run a --keep-last 1 --metric loss >out.raw &&
	sed "s/ *\$//" out.raw >out &&
	test_grep "^a       2 .* keep  *best$" out &&
	echo "2 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_expect_success 'the best by the metric of ckpt.yaml is kept too' '
	rm -rf t && cp -R s0 t &&
	cat >t/ckpt.yaml <<-\EOF &&
	default:
	  keep_last: 1
	  metric: loss
	  mode: max
	EOF
	ckpt -C t prune --run a >out.raw &&
	sed "s/ *\$//" out.raw >out &&
	test_grep "^a       1 .* keep  *best$" out &&
	echo "1 5 " >expect &&
	steps t a >actual &&
	test_cmp expect actual
'

test_done
