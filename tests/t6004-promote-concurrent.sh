#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='promote: concurrent promotions and alias moves from
several processes serialise under the store lock; none is lost, none
is doubled'
. "$(dirname "$0")/lib.sh"

N=6

test_expect_success 'setup: r@1..r@6' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s r@1 r@2 r@3 \
		r@4 r@5 r@6
'

test_expect_success "$N processes promote different checkpoints at once" '
	i=1 && pids= &&
	while test $i -le $N; do
		ckpt -C s promote r@$i --model m --alias prod \
			>out.$i 2>err.$i &
		pids="$pids $!"
		i=$((i + 1))
	done &&
	for p in $pids; do wait $p || { echo "a promote failed"; exit 1; }; done &&
	ckpt -C s --json models >m.json &&
	"$PYTHON" - <<-EOF &&
	import json
	(m,) = json.load(open("m.json"))["models"]
	vs = m["versions"]
	assert [v["version"] for v in vs] == list(range(1, $N + 1)), vs
	assert sorted(v["step"] for v in vs) == list(range(1, $N + 1)), vs
	assert len({v["manifest"] for v in vs}) == $N
	assert m["aliases"]["prod"]["version"] in range(1, $N + 1)
	assert len(m["aliases"]["prod"]["previous"]) == $N - 1, m["aliases"]
	EOF
	ckpt -C s --json log >log.json &&
	test "$(grep -c "\"seq\":" log.json)" = $((2 * N)) &&
	ckpt -C s log --verify >/dev/null
'

test_expect_success 'concurrent retries of one promotion make one version' '
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-store.py" s r@7 &&
	i=1 && pids= &&
	while test $i -le $N; do
		ckpt -C s promote r@7 --model other --alias prod \
			>retry.$i 2>&1 &
		pids="$pids $!"
		i=$((i + 1))
	done &&
	for p in $pids; do wait $p || { echo "a promote failed"; exit 1; }; done &&
	cat retry.* >all &&
	test "$(grep -c "^promoted r@7" all)" = 1 &&
	test "$(grep -c "holds this checkpoint already" all)" = $((N - 1)) &&
	ckpt -C s --json log --model other >log.json &&
	test "$(grep -c "\"seq\":" log.json)" = 2 &&
	ckpt -C s log --verify >/dev/null
'

test_expect_success 'alias moves race with promotions; every one is recorded' '
	before=$(ckpt -C s --json log | grep -c "\"seq\":") &&
	i=1 && pids= &&
	while test $i -le $N; do
		ckpt -C s alias m "a$i" v$i >alias.$i 2>&1 &
		pids="$pids $!"
		i=$((i + 1))
	done &&
	for p in $pids; do wait $p || { echo "an alias failed"; exit 1; }; done &&
	after=$(ckpt -C s --json log | grep -c "\"seq\":") &&
	test $after = $((before + N)) &&
	ckpt -C s log --verify >/dev/null
'

test_done
