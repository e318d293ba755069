#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='the store lock: always written before it exists, broken
only when its holder is known gone on this machine and pid namespace
(never on a clock), removed on SIGINT, taken on a full filesystem; no
temporary file follows a planted symlink'
. "$(dirname "$0")/lib.sh"

SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
export ASAN_OPTIONS
HOST=$(uname -n)
BOOT=$(cat /proc/sys/kernel/random/boot_id)
NS=$(readlink /proc/self/ns/pid)

# lock FILE PID [PIDNS]: a lock as ckpt writes it.
lock() {
	printf "pid %s\nhost %s\ntime %s\nboot %s\nstart 0\npidns %s\npurpose test\n" \
		"$2" "$HOST" "$(date +%s)" "$BOOT" "${3:-$NS}" >"$1"
}

dead_pid() {
	sh -c "exit 0" & _p=$! && wait $_p && echo $_p
}

test_expect_success 'setup' '
	test -f "$SHIM" &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s a@1 a@2 a@3 &&
	cp -R s s0
'

# A crash at any step of taking the lock never leaves a lock without
# content: the next command breaks it (its pid is gone) or finds none.
test_expect_success 'kill -9 at every step of taking the lock: never wedged' '
	for op in write fsync link; do
		for act in crash crash-after; do
			rm -rf s && cp -R s0 s &&
			test_expect_code 137 env LD_PRELOAD="$SHIM" \
				CKPT_FAULT_OP=$op CKPT_FAULT_ACTION=$act \
				CKPT_FAULT_PATH="*/.ckpt/lock*" \
				ckpt -C s gc --older-than 0s >out 2>&1 &&
			ckpt -C s gc --lock-timeout 2 >out 2>err ||
				{ echo "wedged after $op $act"; cat err; exit 1; }
			test_path_is_missing s/.ckpt/lock || exit 1
			# a temporary lock file is swept once its owner is
			# gone; one killed before it wrote a byte stays, empty
			test -z "$(find s/.ckpt -name "lock.*" -size +0)" ||
				{ echo "left: $(ls -l s/.ckpt)"; exit 1; }
			if test -s err; then
				test_grep "broke a stale store lock of pid" err || exit 1
			fi
		done
	done
'

test_expect_success 'a lock of another pid namespace is never broken' '
	rm -rf s && cp -R s0 s &&
	lock s/.ckpt/lock $(dead_pid) "pid:[1]" &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	test_grep "in pid namespace pid:\\[1\\]" err &&
	test_grep "remove the lock file by hand" err &&
	test_path_is_file s/.ckpt/lock &&
	lock s/.ckpt/lock $(dead_pid) &&
	ckpt -C s gc 2>err &&
	test_grep "broke a stale store lock of pid" err &&
	test_path_is_missing s/.ckpt/lock
'

test_expect_success 'an empty or garbled lock: never broken, the message says what to do' '
	rm -rf s && cp -R s0 s &&
	: >s/.ckpt/lock &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	test_grep "the store lock is empty or unreadable" err &&
	test_grep "remove it by hand" err &&
	! grep "pid 0" err &&
	echo "garbage" >s/.ckpt/lock &&
	test_expect_code 3 ckpt -C s prune --run a --keep-last 1 --lock-timeout 0 2>err &&
	test_grep "empty or unreadable" err &&
	rm s/.ckpt/lock && ckpt -C s gc
'

test_expect_success 'no clock decides: an old break lock of a live process stays' '
	rm -rf s && cp -R s0 s &&
	{ sleep 300 & live=$!; } &&
	test_when_finished "kill $live" &&
	lock s/.ckpt/lock.break $live &&
	touch -d "2000-01-01" s/.ckpt/lock.break &&
	lock s/.ckpt/lock $(dead_pid) &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 1 2>err &&
	test_path_is_file s/.ckpt/lock.break &&
	test_path_is_file s/.ckpt/lock &&
	lock s/.ckpt/lock.break $(dead_pid) &&
	ckpt -C s gc --lock-timeout 5 2>err &&
	test_path_is_missing s/.ckpt/lock &&
	test_path_is_missing s/.ckpt/lock.break
'

test_expect_success 'the age of a lock: seconds, or what is wrong with its time' '
	rm -rf s && cp -R s0 s &&
	{ sleep 300 & live=$!; } &&
	test_when_finished "kill $live" &&
	lock s/.ckpt/lock $live &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	grep -E "for .test. \([0-9]+ s ago\)" err &&
	sed "s/^time .*/time 99999999999/" s/.ckpt/lock >l &&
	mv l s/.ckpt/lock &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	test_grep "its recorded time, 99999999999, is in the future" err &&
	sed "s/^time .*/time -9223372036854775808/" s/.ckpt/lock >l &&
	mv l s/.ckpt/lock &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	test_grep "its recorded time, -9223372036854775808, is not believable" err &&
	test_path_is_file s/.ckpt/lock
'

test_expect_success 'SIGINT while the lock is held: the step ends, the lock goes' '
	rm -rf s && cp -R s0 s &&
	test_expect_code 130 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=fsync \
		CKPT_FAULT_ACTION=signal CKPT_FAULT_PATH="*/.ckpt/trash" \
		ckpt -C s prune --run a --keep-last 1 &&
	test_path_is_missing s/.ckpt/lock &&
	ckpt -C s ls --run a >out &&
	test $(grep -c "^a " out) = 1 &&
	mkdir s/runs/a/.tmp-step-9.$(dead_pid).x &&
	test_expect_code 143 env LD_PRELOAD="$SHIM" CKPT_FAULT_OP=rename \
		CKPT_FAULT_ACTION=signal CKPT_FAULT_SIGNAL=15 \
		CKPT_FAULT_PATH="*/.ckpt/trash/*" ckpt -C s gc --older-than 0s &&
	test_path_is_missing s/.ckpt/lock &&
	test_path_is_missing s/runs/a/.tmp-step-9.*
'

test_expect_success 'no room for the lock file (ENOSPC): gc, prune and pin still run' '
	rm -rf s && cp -R s0 s &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=write CKPT_FAULT_ACTION=fail \
		CKPT_FAULT_PATH="*/.ckpt/lock*" ckpt -C s gc >out &&
	test_path_is_missing s/.ckpt/lock &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=write CKPT_FAULT_ACTION=fail \
		CKPT_FAULT_PATH="*/.ckpt/lock*" \
		ckpt -C s prune --run a --keep-last 2 >out &&
	test_path_is_missing s/.ckpt/lock &&
	ckpt -C s ls --run a >out && test $(grep -c "^a " out) = 2 &&
	LD_PRELOAD="$SHIM" CKPT_FAULT_OP=write CKPT_FAULT_ACTION=fail \
		CKPT_FAULT_PATH="*/.ckpt/lock*" ckpt -C s pin a@3 &&
	test_path_is_missing s/.ckpt/lock
'

# The compact lock (a symlink, taken on a full filesystem) is read and
# judged as the full one is.
compact() {
	"$PYTHON" - "$1" "$HOST" "$BOOT" "$NS" <<-\EOF
	import sys, re
	pid, host, boot, ns = sys.argv[1:]
	h = 2166136261
	for c in host.encode():
	    h = ((h ^ c) * 16777619) & 0xffffffff
	n = re.search(r"\[(\d+)\]", ns).group(1)
	print("ckpt1.%s.0.%s.%s.-.%08x" % (pid, n, boot.replace("-", "")[:8], h))
	EOF
}

test_expect_success 'a symlink lock: held while its process lives, broken after' '
	rm -rf s && cp -R s0 s &&
	{ sleep 300 & live=$!; } &&
	test_when_finished "kill $live" &&
	ln -s "$(compact $live)" s/.ckpt/lock &&
	test_expect_code 3 ckpt -C s gc --lock-timeout 0 2>err &&
	test_grep "locked by pid $live on host $HOST" err &&
	rm s/.ckpt/lock && ln -s "$(compact $(dead_pid))" s/.ckpt/lock &&
	ckpt -C s gc 2>err &&
	test_grep "broke a stale store lock" err &&
	test_path_is_missing s/.ckpt/lock
'

# fill FILE: write zeros until the filesystem is full (dd then fails).
fill() {
	dd if=/dev/zero of="$1" bs=4k 2>/dev/null
	test -s "$1"
}

if mkdir -p full && mount -t tmpfs -o size=1m tmpfs full 2>/dev/null; then
	umount full && test_set_prereq TMPFS
fi

test_expect_success TMPFS 'a full filesystem: gc and prune free space' '
	mount -t tmpfs -o size=1m tmpfs full &&
	test_when_finished "umount full" &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" full/s a@1 a@2 a@3 &&
	d=full/s/runs/a/.tmp-step-9.$(dead_pid).x && mkdir -p $d &&
	fill $d/big &&
	test_must_fail sh -c "echo x >full/probe" 2>/dev/null &&
	ckpt -C full/s gc --older-than 0s >out &&
	test_grep "^removed 1 item" out &&
	test_path_is_missing full/s/.ckpt/lock &&
	fill full/filler &&
	ckpt -C full/s prune --run a --keep-last 1 >out &&
	test_path_is_missing full/s/.ckpt/lock &&
	ckpt -C full/s ls --run a >out && test $(grep -c "^a " out) = 1
'

test_expect_success 'no temporary file follows a symlink planted at its name' '
	rm -rf s && cp -R s0 s &&
	echo precious >victim &&
	sh -c "ln -s ../../../victim s/.ckpt/pins/a@1.tmp.\$\$ &&
		exec ckpt -C s pin a@1" &&
	echo precious >expect && test_cmp expect victim &&
	test_path_is_file s/.ckpt/pins/a@1 &&
	test_grep "\"step\": 1" s/.ckpt/pins/a@1 &&
	ls s/.ckpt/pins >pins && ! grep "a@1\\.tmp\\.[a-z0-9]\\{6\\}$" pins
'

test_done
