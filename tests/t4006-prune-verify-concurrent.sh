#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='prune, verify --all, latest and gc beside running saves: no false alarm, no lost source, no wrong answer'
. "$(dirname "$0")/lib.sh"

# A fixed amount of work: SAVES saves per saver; the other loops run
# until the savers are done (each at most LOOPS rounds).
SAVES=12
LOOPS=300

test_expect_success 'setup: a store keeping 2 per run, one checkpoint each' '
	ckpt init s >/dev/null &&
	printf "default:\n  keep_last: 2\n" >s/ckpt.yaml &&
	echo w0 >w0.bin &&
	ckpt -C s -q save --run c --step 0 --copy w0.bin >/dev/null &&
	ckpt -C s -q save --run m --step 0 --copy w0.bin >/dev/null
'

# loop NAME CMD...: runs CMD until the savers are done, logging the exit
# status and output of each round into NAME.log.
loop() {
	_name=$1
	shift
	_i=0
	while ! test -f savers.done && test $_i -lt $LOOPS; do
		_rc=0
		"$@" >"$_name.out" 2>&1 || _rc=$?
		{
			echo "round $_i exit $_rc"
			cat "$_name.out"
		} >>"$_name.log"
		_i=$((_i + 1))
	done
	echo "$_i" >"$_name.rounds"
}

test_expect_success 'savers beside prune, verify --all, latest and gc' '
	{ (
		k=1
		while test $k -le $SAVES; do
			echo "copy $k" >c.bin &&
			ckpt -C s -q save --run c --step $k --copy c.bin \
			    >/dev/null ||
				echo "copy save $k failed" >>savers.err
			k=$((k + 1))
		done
	) & } &&
	copier=$! &&
	{ (
		k=1
		while test $k -le $SAVES; do
			mkdir -p src.$k &&
			echo "move $k" >src.$k/m.bin &&
			p=$(ckpt -C s -q save --run m --step $k --move \
			    src.$k/m.bin) ||
				echo "move save $k failed" >>savers.err
			# the source now lives in the checkpoint, nowhere else
			test -f src.$k/m.bin &&
				echo "move save $k left its source" >>savers.err
			k=$((k + 1))
		done
	) & } &&
	mover=$! &&
	{ loop prune ckpt -C s -q prune --all --lock-timeout 120 & } &&
	pruner=$! &&
	{ loop verify ckpt -C s -q verify --all & } &&
	verifier=$! &&
	{ loop latest sh -c "ckpt -C s latest --run c &&
	    ckpt -C s latest --run m" & } &&
	latest=$! &&
	{ loop gc ckpt -C s -q gc --lock-timeout 120 & } &&
	gc=$! &&
	wait $copier &&
	wait $mover &&
	touch savers.done &&
	wait $pruner $verifier $latest $gc &&
	test_path_is_missing savers.err
'

test_expect_success 'every loop ran and never failed' '
	for n in prune verify latest gc; do
		test "$(cat $n.rounds)" -ge 1 || return 1
		if grep "^round .* exit [^0]" $n.log; then
			cat $n.log
			return 1
		fi
	done
'

test_expect_success 'no verify false alarm; gc never met "Directory not empty"' '
	! grep -E "FAILED|MISSING|did NOT verify" verify.log &&
	! grep "not empty" gc.log prune.log
'

test_expect_success 'latest always named a committed checkpoint of its run' '
	grep "/runs/[cm]/step-" latest.log >paths &&
	test -s paths &&
	! grep -v "^round\|/runs/[cm]/step-[0-9]*$" latest.log
'

test_expect_success 'the end state: the 2 newest of each run, complete' '
	ckpt -C s -q prune --all &&
	ls s/runs/c | grep -v "^\." >actual &&
	printf "step-%s\nstep-%s\n" $((SAVES - 1)) $SAVES | sort >expect &&
	sort actual >actual.sorted &&
	test_cmp expect actual.sorted &&
	ls s/runs/m | grep -v "^\." | sort >actual &&
	test_cmp expect actual &&
	ckpt -C s -q verify --all
'

test_done
