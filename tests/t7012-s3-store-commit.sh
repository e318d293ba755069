#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='an s3:// store under concurrency and crashes, against a
real RGW: of two savers of one RUN@STEP exactly one wins; a save killed
during its commit leaves nothing visible and gc cleans up; the store lock
is an object with a lease that is broken only on the service clock, and
renewed while its holder lives'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

keys() {
	s3 "$BUCKET" list "$1" | sed "s/ [0-9]*\$//"
}

STORE=s3://$BUCKET/cc
export CKPT_STORE=$STORE

test_expect_success 'setup' '
	ckpt init &&
	"$PYTHON" -c "import os; open(\"a.dat\", \"wb\").write(b\"not a checkpoint\\n\" + os.urandom(300000))" &&
	"$PYTHON" -c "import os; open(\"b.dat\", \"wb\").write(b\"not a checkpoint\\n\" + os.urandom(300000))" &&
	mkdir A B spool &&
	cp a.dat A/w.dat &&
	cp b.dat B/w.dat
'

test_expect_success 'two concurrent savers of one RUN@STEP: exactly one wins, whole' '
	for round in 1 2 3
	do
		TMPDIR=$PWD/spool ckpt save --run race --step $round A/w.dat \
			>outA 2>errA &
		pa=$!
		TMPDIR=$PWD/spool ckpt save --run race --step $round B/w.dat \
			>outB 2>errB &
		pb=$!
		{ wait $pa; echo $? >rcA; } &&
		{ wait $pb; echo $? >rcB; } &&
		echo "$(cat rcA) $(cat rcB)" >rcs &&
		{ grep -x "0 2" rcs || grep -x "2 0" rcs; } &&
		if test "$(cat rcA)" = 0
		then
			win=a.dat lose=errB
		else
			win=b.dat lose=errA
		fi &&
		test_grep "race@$round \(exists already\|was committed by someone else\)" $lose &&
		s3 "$BUCKET" get cc/runs/race/step-$round/w.dat >got &&
		cmp $win got &&
		s3 "$BUCKET" get cc/runs/race/step-$round/ckpt-manifest.json >m &&
		test_grep "$(sha256sum $win | cut -c1-64)" m ||
		return 1
	done &&
	ckpt ls >out &&
	test $(grep -c "^race  *[0-9]  *20[0-9][0-9]-" out) = 3 &&
	test -z "$(ls -A spool)"
'

test_expect_success 'the races leave no lock; a loser staging area is for gc' '
	! keys cc/.ckpt/ | grep "lock" &&
	ckpt gc --older-than 0 &&
	keys cc/runs/race/ >all &&
	! grep "/\.tmp-" all
'

test_expect_success 'a save killed during its commit leaves nothing visible' '
	rgw_proxy_start crash "stall:1:PUT /$BUCKET/cc/runs/k/step-5/ckpt-manifest.json" &&
	test_when_finished "rgw_proxy_stop crash" &&
	AWS_ENDPOINT_URL=$PROXY_URL ckpt save --run k --step 5 a.dat \
		>out 2>err &
	pid=$! &&
	wait_for crash.log "ckpt-manifest.json stall" &&
	kill -9 $pid &&
	{ wait $pid; echo $? >rc; } &&
	echo 137 >want &&
	test_cmp want rc &&
	keys cc/runs/k/ >left &&
	test_grep "^cc/runs/k/step-5/a.dat\$" left &&
	test_grep "/\.tmp-step-5\." left &&
	! grep "step-5/ckpt-manifest.json" left &&
	ckpt ls >out &&
	! grep "^k  *5 " out &&
	ckpt latest --run k >out &&
	test ! -s out
'

test_expect_success 'the dead saver lock is broken (its pid is gone on this host)' '
	keys cc/.ckpt/ >ckptdir &&
	test_grep "^cc/.ckpt/lock\$" ckptdir &&
	ckpt prune --lock-timeout 5 --run k --keep-last 1 >out 2>err &&
	test_grep "broke" err &&
	! keys cc/.ckpt/ | grep "lock"
'

test_expect_success 'gc removes the crashed save: staging area and copied objects' '
	ckpt gc --older-than 0 >out &&
	test_grep "crashed save" out &&
	keys cc/runs/k/ >left &&
	test ! -s left
'

test_expect_success 'the same RUN@STEP saves cleanly afterwards' '
	ckpt save --run k --step 5 b.dat &&
	keys cc/runs/k/ >got &&
	cat >want <<-EOF &&
	cc/runs/k/step-5/b.dat
	cc/runs/k/step-5/ckpt-manifest.json
	cc/runs/k/step-5/ckpt-summary.json
	EOF
	test_cmp want got
'

# A lock held by a process on another host, with a lease of 2 s.
other_host_lock() {
	printf "pid 4242\nhost elsewhere.example\ntime 1\nboot b\nstart 1\npidns pid:[1]\nmachine m\npurpose save\nlease %s\n" "$1" >lock &&
	s3 "$BUCKET" put cc/.ckpt/lock lock --if-absent
}

test_expect_success 'a lock of another host is not broken while its lease runs' '
	other_host_lock 600 &&
	test_when_finished "s3 \"$BUCKET\" delete cc/.ckpt/lock" &&
	test_expect_code 3 ckpt prune --lock-timeout 0 --run k --keep-last 1 2>err &&
	test_grep "locked by pid 4242 on host elsewhere.example" err &&
	test_grep "lease of 600 s" err &&
	s3 "$BUCKET" get cc/.ckpt/lock >still &&
	test_cmp lock still
'

test_expect_success 'once its lease ran out on the service clock, it is broken' '
	other_host_lock 2 &&
	sleep 4 &&
	ckpt prune --lock-timeout 0 --run k --keep-last 1 2>err &&
	test_grep "broke" err &&
	! keys cc/.ckpt/ | grep "lock"
'

# As ckpt on another host: a host name of its own (a user namespace).
if unshare --uts --map-root-user sh -c 'hostname elsewhere.test' 2>/dev/null
then
	test_set_prereq OTHERHOST
fi
on_other_host() {
	unshare --uts --map-root-user sh -c 'hostname elsewhere.test && "$@"' \
		sh "$@"
}

test_expect_success OTHERHOST 'a live holder renews its lease: never broken, not even from another host' '
	ckpt-test-tool hold-lock --lease 5 "$STORE" 12 >hold.out 2>hold.err &
	holder=$! &&
	wait_for hold.out locked &&
	S3_TOOL_MTIME=1 s3 "$BUCKET" head cc/.ckpt/lock >first &&
	sleep 8 &&
	test_expect_code 3 on_other_host ckpt prune --lock-timeout 0 --run k --keep-last 1 2>err &&
	test_grep "locked by pid $holder on host .* lease of 5 s" err &&
	S3_TOOL_MTIME=1 s3 "$BUCKET" head cc/.ckpt/lock >later &&
	! test_cmp first later &&
	wait $holder &&
	! keys cc/.ckpt/ | grep "lock"
'

test_expect_success OTHERHOST 'a dead holder: once its lease ran out, another host takes the lock over' '
	ckpt-test-tool hold-lock --lease 5 "$STORE" 60 >hold.out 2>hold.err &
	holder=$! &&
	wait_for hold.out locked &&
	kill -9 $holder &&
	{ wait $holder; echo $? >rc; } &&
	echo 137 >want &&
	test_cmp want rc &&
	test_expect_code 3 on_other_host ckpt prune --lock-timeout 0 --run k --keep-last 1 2>err &&
	test_grep "lease of 5 s" err &&
	sleep 7 &&
	on_other_host ckpt prune --lock-timeout 0 --run k --keep-last 1 2>err &&
	test_grep "broke a stale store lock of pid $holder" err &&
	! keys cc/.ckpt/ | grep "lock"
'

test_done
