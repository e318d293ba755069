#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='gc beside running saves: a live save is never touched,
whatever the threshold; several savers (--move and --copy), gc
--older-than 0s, latest and verify side by side for a fixed number of
operations lose no source, no committed checkpoint, and fail no save'
. "$(dirname "$0")/lib.sh"

HOST=$(uname -n)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)

dead_pid() {
	sh -c "exit 0" & _p=$! && wait $_p && echo $_p
}

test_expect_success 'setup: a store with one checkpoint per run' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s w1@0 w2@0 w3@0 w4@0 &&
	{ sleep 300 & echo $! >live.pid; }
'

# The window of a save between creating its staging directory and
# writing the record in it: the directory is not yet named .tmp-*, and
# a .tmp-* without a record whose pid is alive is left alone.
test_expect_success 'no record yet, its pid alive: kept at --older-than 0s' '
	live=$(cat live.pid) &&
	mkdir s/runs/w1/.tmp-step-5.$live.abcdef &&
	echo data >s/runs/w1/.tmp-step-5.$live.abcdef/weights.bin &&
	mkdir s/runs/w1/.new-step-6.$live.abcdef &&
	ckpt -C s gc --older-than 0s >out &&
	test_grep "no staging record; pid $live (in its name) is alive" out &&
	test_grep "save being set up (pid $live is alive)" out &&
	test_path_is_file s/runs/w1/.tmp-step-5.$live.abcdef/weights.bin &&
	test_path_is_dir s/runs/w1/.new-step-6.$live.abcdef &&
	rm -r s/runs/w1/.tmp-step-5.$live.abcdef s/runs/w1/.new-step-6.$live.abcdef &&
	test_path_is_missing s/runs/w1/.tmp-step-5.$live.abcdef
'

test_expect_success 'an unreadable record is never guessed at: the directory stays' '
	d=s/runs/w1/.tmp-step-9.$(dead_pid).abcdef &&
	mkdir $d && echo data >$d/model.bin &&
	echo "{\"transfer\": \"move\", \"sources\": [" >$d/ckpt-staging.json &&
	ckpt -C s gc --older-than 0s >out &&
	test_grep "staging record unreadable: left alone" out &&
	test_path_is_file $d/model.bin &&
	ckpt -C s gc --restore >out &&
	test_path_is_file $d/model.bin &&
	rm -r $d && test_path_is_missing $d
'

test_expect_success 'an unfinished .new-* of a dead pid goes (it holds nothing of the user)' '
	d=s/runs/w1/.new-step-7.$(dead_pid).abcdef &&
	mkdir $d &&
	ckpt -C s gc --older-than 0s >out &&
	test_grep "unfinished staging directory" out &&
	test_path_is_missing $d
'

test_expect_success 'a live save of this host is kept; one of another pid namespace waits for the threshold' '
	live=$(cat live.pid) &&
	d=s/runs/w2/.tmp-step-8.$live.abcdef &&
	mkdir $d && echo data >$d/weights.bin &&
	printf "{\"schema\": 1, \"step\": 8, \"pid\": %s, \"host\": \"%s\", \"boot\": \"%s\", \"pidns\": \"%s\", \"started\": \"%s\", \"updated\": \"%s\", \"state\": \"active\", \"transfer\": \"move\", \"sources\": []}\n" \
		$live "$HOST" "$(cat /proc/sys/kernel/random/boot_id)" \
		"$(readlink /proc/self/ns/pid)" $NOW $NOW >$d/ckpt-staging.json &&
	ckpt -C s gc --older-than 0s >out &&
	test_grep "save in flight (pid $live is alive)" out &&
	test_path_is_file $d/weights.bin &&
	sed "s/\"pidns\": \"[^\"]*\"/\"pidns\": \"pid:[1]\"/; s/\"pid\": $live/\"pid\": $(dead_pid)/" \
		$d/ckpt-staging.json >rec && mv rec $d/ckpt-staging.json &&
	ckpt -C s gc --older-than 1h >out &&
	test_grep "save on another host, younger than 1h" out &&
	test_path_is_file $d/weights.bin &&
	ckpt -C s gc --restore >out &&
	test_grep "save on another host or pid namespace: not restored" out &&
	test_path_is_file $d/weights.bin &&
	rm -r $d && test_path_is_missing $d
'

# ls and gc read a staging record with one rule (lib/store/owner.c): a
# save that gc may not judge dead (another pid namespace, another
# machine after a reboot) is never labelled abandoned by ls.
staging_record() {
	printf "{\"schema\": 1, \"step\": 9, \"pid\": %s, \"host\": \"%s\", \"boot\": \"%s\", \"pidns\": \"%s\", \"machine\": \"%s\", \"started\": \"%s\", \"updated\": \"%s\", \"state\": \"active\", \"transfer\": \"copy\", \"sources\": []}\n" \
		"$1" "$HOST" "$2" "$3" "$4" $NOW $NOW
}

test_expect_success 'ls labels a staging area as gc judges its owner' '
	boot=$(cat /proc/sys/kernel/random/boot_id) &&
	ns=$(readlink /proc/self/ns/pid) &&
	mid=$(cat /etc/machine-id 2>/dev/null || echo m) &&
	dead=$(dead_pid) &&
	d=s/runs/w3/.tmp-step-9.$dead.abcdef &&
	mkdir $d && echo data >$d/weights.bin &&
	staging_record $dead "$boot" "pid:[1]" "$mid" >$d/ckpt-staging.json &&
	ckpt -C s ls >out &&
	test_grep "in-progress .*/runs/w3/.tmp-step-9" out &&
	ckpt -C s gc --older-than 1h >out &&
	test_grep "save on another host, younger than 1h" out &&
	staging_record $dead "other-boot" "$ns" "other-machine" >$d/ckpt-staging.json &&
	ckpt -C s ls >out &&
	test_grep "in-progress .*/runs/w3/.tmp-step-9" out &&
	staging_record $dead "other-boot" "$ns" "$mid" >$d/ckpt-staging.json &&
	ckpt -C s ls >out &&
	test_grep "abandoned .*/runs/w3/.tmp-step-9" out &&
	staging_record $dead "$boot" "$ns" "$mid" >$d/ckpt-staging.json &&
	ckpt -C s ls >out &&
	test_grep "abandoned .*/runs/w3/.tmp-step-9" out &&
	ckpt -C s gc --older-than 1h >out &&
	test_grep "crashed save, younger than 1h" out &&
	staging_record $(cat live.pid) "$boot" "$ns" "$mid" >$d/ckpt-staging.json &&
	ckpt -C s ls >out &&
	test_grep "in-progress .*/runs/w3/.tmp-step-9" out &&
	rm -r $d && test_path_is_missing $d
'

# The bounded stress: 4 savers x 6 saves (w1, w3: --move; w2, w4:
# --copy), while gc --older-than 0s, latest and verify --all loop until
# the savers are done.
saver() {
	w=$1 mode=$2
	k=1
	while test $k -le 6; do
		src=src-$w-$k
		mkdir -p $src &&
		"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" $src/model.bin 20000 $k &&
		echo "{\"w\": \"$w\", \"k\": $k}" >$src/state.json &&
		ckpt-test-tool sha256 $src/model.bin | cut -d" " -f1 >$src.sum &&
		if ckpt -C s -q save $mode --run $w --step $k $src >/dev/null 2>$src.err
		then echo "$w $k ok" >>saves.log
		else echo "$w $k FAILED $(cat $src.err)" >>saves.log
		fi
		k=$((k + 1))
	done
}

test_expect_success 'savers, gc --older-than 0s, latest, verify: nothing lost, no save failed' '
	: >saves.log && : >gc.log && : >latest.log && : >verify.log &&
	{ saver w1 --move & p1=$!; } && { saver w2 --copy & p2=$!; } &&
	{ saver w3 --move & p3=$!; } && { saver w4 --copy & p4=$!; } &&
	ngc=0 &&
	while kill -0 $p1 $p2 $p3 $p4 2>/dev/null ||
		test $(wc -l <saves.log) -lt 24; do
		ckpt -C s gc --older-than 0s >gc.out 2>&1 ||
			{ echo "gc exit $?"; cat gc.out; } >>gc.log
		ckpt -C s latest --run w1 >/dev/null 2>>latest.log ||
			echo "latest failed" >>latest.log
		ckpt -C s -q verify --all >verify.out 2>&1 ||
			{ echo "verify exit $?"; cat verify.out; } >>verify.log
		ngc=$((ngc + 1))
		test $ngc -lt 500 || break
	done &&
	wait &&
	echo "gc/latest/verify rounds: $ngc" &&
	test $(grep -c " ok$" saves.log) = 24 &&
	! grep FAILED saves.log &&
	test_cmp /dev/null gc.log &&
	test_cmp /dev/null latest.log &&
	test_cmp /dev/null verify.log &&
	for w in w1 w2 w3 w4; do
		for k in 1 2 3 4 5 6; do
			c=s/runs/$w/step-$k &&
			test -f $c/ckpt-manifest.json &&
			ckpt-test-tool sha256 $c/model.bin | cut -d" " -f1 >sum &&
			test_cmp src-$w-$k.sum sum || { echo "$w@$k lost"; exit 1; }
			case $w in
			w1|w3) test_path_is_missing src-$w-$k/model.bin ;;
			*) test_path_is_file src-$w-$k/model.bin ;;
			esac || exit 1
		done
	done &&
	ckpt -C s verify --all >/dev/null &&
	ckpt -C s gc --older-than 0s >out &&
	test -z "$(ls -a s/runs/*/ | grep "^\.tmp-\|^\.new-")"
'

test_expect_success 'cleanup' '
	kill $(cat live.pid)
'

test_done
