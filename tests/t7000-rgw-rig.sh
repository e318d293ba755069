#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='scripts/rgw: a Ceph RADOS Gateway on loopback in one
directory, started and stopped by recorded pid'
. "$(dirname "$0")/lib.sh"

RGW="$SRC_DIRECTORY/scripts/rgw"
if ! _why=$("$RGW" install 2>&1); then
	say "1..0 # SKIP Ceph RGW packages missing and not installable:" \
	    "$(printf '%s' "$_why" | tail -n 1)"
	exit 0
fi
# Short paths: Ceph's admin sockets must fit in sun_path.
D=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-rgw.XXXXXX") || exit 1
D2=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-rgw.XXXXXX") || exit 1
trap '"$RGW" stop "$D" 2>/dev/null; "$RGW" stop "$D2" 2>/dev/null;
	rm -rf "$D" "$D2"' EXIT

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 "$RGW" &&
	test_expect_code 2 "$RGW" start &&
	test_expect_code 2 "$RGW" frobnicate x
'

test_expect_success 'start prints the environment; the gateway answers' '
	"$RGW" start "$D" >env &&
	test_grep "^AWS_ENDPOINT_URL=http://127.0.0.1:[0-9]*; export" env &&
	test_grep "^AWS_ACCESS_KEY_ID=" env &&
	test_grep "^CKPT_RGW_BUCKET=ckpt-test; export" env &&
	"$RGW" env "$D" >env2 &&
	test_cmp env env2 &&
	. ./env &&
	printf abc >f &&
	ckpt-test-tool s3 "$CKPT_RGW_BUCKET" put k f &&
	ckpt-test-tool s3 "$CKPT_RGW_BUCKET" get k >got &&
	test_cmp f got
'

test_expect_success 'every daemon listens on 127.0.0.1 only; pids are recorded' '
	ss -Hltnp >all &&
	for n in mon osd rgw; do
		test -s "$D/pids/$n" || { echo "no pid for $n"; exit 1; }
		pid=$(cat "$D/pids/$n") &&
		kill -0 "$pid" &&
		grep "pid=$pid," all >>listen || { echo "$n not listening"; exit 1; }
	done &&
	! grep -v "127\.0\.0\.1:" listen
'

test_expect_success 'the state stays in the directory (logs, mon and osd data)' '
	test -d "$D/mon-a" && test -d "$D/osd-0" && test -f "$D/mon.a.log" &&
	test -f "$D/client.rgw.a.log" &&
	! grep -l /var/log/ceph "$D/ceph.conf"
'

test_expect_success 'a second cluster runs beside the first on other ports' '
	"$RGW" start "$D2" >env-b &&
	! test_cmp env env-b >/dev/null &&
	test_expect_code 4 sh -c ". ./env-b && ckpt-test-tool s3 ckpt-test head k" \
		2>err &&
	test_grep "HTTP 404" err &&
	"$RGW" stop "$D2" &&
	test_path_is_missing "$D2"
'

test_expect_success 'start refuses a directory that is not empty' '
	mkdir busy && : >busy/x &&
	test_expect_code 3 "$RGW" start busy 2>err &&
	test_grep "is not empty" err
'

test_expect_success 'stop refuses a directory that is not a cluster' '
	mkdir other &&
	test_expect_code 3 "$RGW" stop other 2>err &&
	test_grep "not a cluster made by scripts/rgw" err &&
	test_path_is_dir other
'

test_expect_success 'stop ends the daemons by their pids and removes the state' '
	pids=$(cat "$D"/pids/*) &&
	"$RGW" stop "$D" &&
	for pid in $pids; do
		if test -r /proc/$pid/cmdline &&
		    tr "\0" " " </proc/$pid/cmdline | grep -q "$D/ceph.conf"; then
			echo "pid $pid still runs"; exit 1
		fi
	done &&
	test_path_is_missing "$D"
'

test_done
