#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='latest: the resume idiom of ckpt-latest(1), run as a job script'
. "$(dirname "$0")/lib.sh"

# job.sh: the idiom exactly as ckpt-latest(1) prints it, with the store
# here and "python train.py" a stub that logs how it was started and saves
# the steps after the one it resumed from (--force: a step that exists
# already was damaged, since the job resumed from before it).
test_expect_success 'setup: the job script from the manual page' '
	cat >job.sh <<-\EOF &&
	python() {
		echo "train $*" >>train.log
		shift
		from=0
		if test "${1:-}" = --resume; then
			from=$(sed -n "s/.*\"step\": *\([0-9]*\).*/\1/p" "$2/ckpt-manifest.json" | head -1)
		fi
		for s in $((from + 1)) $((from + 2)); do
			mkdir -p job-out && echo "weights $s" >job-out/w.bin &&
			ckpt save --force --copy --run llama --step $s job-out >/dev/null || return 3
		done
	}
	EOF
	sed -n "/^\.Sh RESUMING A JOB/,/^\.Ed/p" "$SRC_DIRECTORY/man/ckpt-latest.1" |
		sed -e "1,2d" -e "\$d" -e "s|/shared/exp/store|$PWD/st|" >>job.sh &&
	test_grep "ckpt latest --run llama --verified" job.sh &&
	test_path_is_missing st
'

test_expect_success 'first launch: no store yet, the job starts fresh' '
	sh job.sh 2>err &&
	echo "train train.py" >expect &&
	test_cmp expect train.log &&
	test_grep "no checkpoint yet" err &&
	ckpt -C st ls --run llama >out &&
	test_grep "^llama *2 " out
'

test_expect_success 'second launch: resumes from the newest' '
	rm train.log &&
	sh job.sh &&
	echo "train train.py --resume $(cd st && pwd -P)/runs/llama/step-2" >expect &&
	test_cmp expect train.log
'

test_expect_success 'a corrupt newest checkpoint: resumes from the one before, replaces it' '
	rm train.log &&
	ckpt-test-tool flip st/runs/llama/step-4/w.bin 2 &&
	sh job.sh 2>err &&
	echo "train train.py --resume $(cd st && pwd -P)/runs/llama/step-3" >expect &&
	test_cmp expect train.log &&
	test_grep "llama@4 does not verify" err &&
	ckpt -C st verify llama@4 >/dev/null 2>&1
'

test_expect_success 'every checkpoint corrupt: the job stops, starts nothing' '
	rm train.log &&
	for d in st/runs/llama/step-*; do
		ckpt-test-tool flip $d/w.bin 1 || exit 1
	done &&
	ckpt -C st ls --run llama >before &&
	test_expect_code 1 sh job.sh 2>err &&
	test_path_is_missing train.log &&
	test_grep "none is usable (none verifies)" err &&
	test_grep "checkpoints exist but none verifies" err &&
	ckpt -C st ls --run llama >after &&
	test_cmp before after
'

test_expect_success 'latest --json says which case it is' '
	test_expect_code 1 ckpt -C st --json latest --verified --fast -j 2 --run llama >out.json 2>/dev/null &&
	test_grep "\"path\": null" out.json &&
	test_grep "\"checkpoints\": 5" out.json &&
	ckpt -C st --json latest --run nosuch >out.json 2>/dev/null &&
	test_grep "\"checkpoints\": 0" out.json &&
	ckpt -C nothing-here --json latest --run llama >out.json 2>err &&
	test_grep "\"path\": null" out.json &&
	test_grep "store does not exist yet" err &&
	test_path_is_missing nothing-here
'

test_done
