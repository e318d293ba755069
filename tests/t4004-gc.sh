#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='gc: the trash, staging directories of crashed saves, thresholds, live saves'
. "$(dirname "$0")/lib.sh"

mkstore() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" "$@"
}

HOST=$(uname -n)
OLD=2020-01-01T00:00:00Z
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# mkstaging DIR PID HOST UPDATED [STATE]: a staging dir as ckpt save
# leaves it, with its ckpt-staging.json.
mkstaging() {
	mkdir -p "$1" &&
	echo data >"$1/weights.bin" &&
	printf '{"schema": 1, "step": 7, "pid": %s, "host": "%s", "started": "%s", "updated": "%s", "state": "%s", "phase": "hashing"}\n' \
		"$2" "$3" "$4" "$4" "${5:-running}" >"$1/ckpt-staging.json"
}

test_expect_success 'setup: a store with leftovers of every kind' '
	mkstore s a@1 a@2 &&
	{ sleep 300 & echo $! >live.pid; } &&
	dead=$(cat /proc/sys/kernel/pid_max) &&
	mkstaging s/runs/a/.tmp-step-3.live.x $(cat live.pid) "$HOST" $OLD &&
	mkstaging s/runs/a/.tmp-step-4.dead.x $dead "$HOST" $OLD &&
	mkstaging s/runs/a/.tmp-step-5.young.x $dead "$HOST" $NOW &&
	mkstaging s/runs/a/.tmp-step-6.failed.x $(cat live.pid) "$HOST" $OLD failed &&
	mkstaging s/runs/a/.tmp-step-7.remote-old.x 1 elsewhere.example $OLD &&
	mkstaging s/runs/a/.tmp-step-8.remote-new.x 1 elsewhere.example $NOW &&
	mkdir -p s/runs/a/.tmp-step-9.nostatus.x &&
	touch -d "2020-01-01 00:00:00" s/runs/a/.tmp-step-9.nostatus.x &&
	mkdir -p s/runs/a/step-10 && echo x >s/runs/a/step-10/f &&
	mkdir -p s/.ckpt/trash/a@step-0.1.2.3 &&
	echo junk >s/.ckpt/trash/a@step-0.1.2.3/weights.bin &&
	cp -pR s s0
'

test_expect_success 'gc --dry-run: the plan, and nothing changes' '
	(cd s && find . | sort) >before &&
	ckpt -C s gc --dry-run >out &&
	(cd s && find . | sort) >after &&
	test_cmp before after &&
	test_grep "^trash .*/s/.ckpt/trash/a@step-0.1.2.3 .* remove  in the trash$" out &&
	test_grep "^staging .*/.tmp-step-3.live.x .* keep    save in flight (pid $(cat live.pid) is alive)$" out &&
	test_grep "^staging .*/.tmp-step-4.dead.x .* remove  crashed save$" out &&
	test_grep "^staging .*/.tmp-step-5.young.x .* keep    crashed save, younger than 1d$" out &&
	test_grep "^staging .*/.tmp-step-6.failed.x .* remove  failed save$" out &&
	test_grep "^staging .*/.tmp-step-7.remote-old.x .* remove  save on host elsewhere.example, no sign of life for 1d$" out &&
	test_grep "^staging .*/.tmp-step-8.remote-new.x .* keep    save on another host, younger than 1d$" out &&
	test_grep "^staging .*/.tmp-step-9.nostatus.x .* remove  crashed save$" out &&
	test_grep "^staging .*/step-10 .* keep    not a staging directory" out &&
	test_grep "^would remove 5 items (" out
'

test_expect_success 'gc removes exactly those' '
	ckpt -C s gc >out &&
	test_grep "^removed 5 items (" out &&
	ls -a s/runs/a | grep -v "^\.\.*$" | sort >actual &&
	cat >expect <<-\EOF &&
	.tmp-step-3.live.x
	.tmp-step-5.young.x
	.tmp-step-8.remote-new.x
	step-1
	step-10
	step-2
	EOF
	test_cmp expect actual &&
	test -z "$(ls s/.ckpt/trash)" &&
	test_path_is_missing s/.ckpt/lock &&
	ckpt -C s ls --run a >ls.out &&
	test $(grep -c "^a  *[0-9][0-9]*  *2026" ls.out) = 2
'

test_expect_success 'a live save is kept however small the threshold' '
	sleep 300 &
	pid=$! &&
	mkstaging s/runs/a/.tmp-step-11.live2.x $pid "$HOST" $OLD &&
	ckpt -C s gc --older-than 0s >out &&
	test_path_is_dir s/runs/a/.tmp-step-11.live2.x &&
	test_path_is_dir s/runs/a/.tmp-step-3.live.x &&
	test_path_is_missing s/runs/a/.tmp-step-5.young.x &&
	test_path_is_missing s/runs/a/.tmp-step-8.remote-new.x &&
	kill $pid && test_expect_code 143 wait $pid &&
	ckpt -C s gc --older-than 0s >out &&
	test_path_is_missing s/runs/a/.tmp-step-11.live2.x
'

test_expect_success 'the threshold from --older-than and from ckpt.yaml' '
	rm -rf s && cp -pR s0 s &&
	ckpt -C s gc --dry-run --older-than 100000d >out &&
	test_grep "^would remove 1 item (" out &&
	printf "gc:\n  older_than: 100000d\n" >s/ckpt.yaml &&
	ckpt -C s gc --dry-run >out &&
	test_grep "^would remove 1 item (" out &&
	test_grep "failed save, younger than 14285w5d" out &&
	ckpt -C s gc --dry-run --older-than 1h >out &&
	test_grep "^would remove 5 items (" out
'

test_expect_success '--json' '
	ckpt -C s gc --json --older-than 1d >out.json &&
	"$PYTHON" -c "
import json
d = json.load(open(\"out.json\"))
assert d[\"schema\"] == 1 and d[\"dry_run\"] is False, d
assert d[\"older_than\"] == 86400
rm = sorted(i[\"path\"].split(\"/\")[-1] for i in d[\"items\"] if i[\"action\"] == \"remove\")
assert len(rm) == 5, rm
assert all(i[\"removed\"] for i in d[\"items\"] if i[\"action\"] == \"remove\")
st = [i for i in d[\"items\"] if i[\"kind\"] == \"staging\" and i[\"run\"] == \"a\"]
assert any(i.get(\"step\") == 7 for i in st)
assert d[\"freed_bytes\"] > 0
"
'

test_expect_success 'usage errors' '
	test_expect_code 2 ckpt -C s gc --older-than soon 2>err &&
	test_grep "bad duration" err &&
	test_expect_code 2 ckpt -C s gc extra 2>err
'

test_expect_success 'cleanup' '
	kill $(cat live.pid)
'

test_done
