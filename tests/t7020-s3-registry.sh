#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='the model registry on an s3:// store against a real RGW:
promote copies a checkpoint inside the service, verifies the copy and
commits the version with its manifest put if absent, last; aliases, log,
models and verify --registry; concurrent promotions (--sign: t7033,
--weights-only: t7034)'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

s3() {
	ckpt-test-tool s3 "$@"
}

keys() {
	s3 "$BUCKET" list "$1" | sed "s/ [0-9]*\$//"
}

STORE=s3://$BUCKET/reg
export CKPT_STORE=$STORE

# save STEP LOSS: commit src/ (a safetensors file) as r@STEP.
save() {
	rm -rf src && mkdir src &&
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" \
		src/model.safetensors 20000 "$1" &&
	ckpt save -q --run r --step "$1" --metric loss="$2" --copy src
}

test_expect_success 'setup: an s3:// store with r@1..r@5' '
	ckpt init &&
	save 1 0.9 && save 2 0.5 && save 3 0.3 && save 4 0.2 && save 5 0.1
'

test_expect_success 'promote makes v1 with an alias: objects, copied inside the service' '
	ckpt promote r@1 --model m --alias prod --note "eval 1" >out &&
	test_grep "^promoted r@1 (sha256:[0-9a-f]*) to m v1: 2 files, .*copies" out &&
	test_grep "^  prod: -> v1$" out &&
	keys reg/registry/ >got &&
	cat >want <<-\EOF &&
	reg/registry/.history.jsonl
	reg/registry/m/aliases.json
	reg/registry/m/v1.json
	reg/registry/m/v1/ckpt-manifest.json
	reg/registry/m/v1/ckpt-summary.json
	reg/registry/m/v1/model.safetensors
	EOF
	test_cmp want got &&
	s3 "$BUCKET" get reg/registry/m/v1/model.safetensors >v1.st &&
	s3 "$BUCKET" get reg/runs/r/step-1/model.safetensors >r1.st &&
	cmp v1.st r1.st &&
	s3 "$BUCKET" get reg/registry/m/v1/ckpt-manifest.json >v1.man &&
	s3 "$BUCKET" get reg/runs/r/step-1/ckpt-manifest.json >r1.man &&
	cmp v1.man r1.man &&
	s3 "$BUCKET" get reg/registry/m/v1.json >v1.json &&
	test_grep "\"path\": \"registry/m/v1\"" v1.json &&
	test_grep "\"storage\": \"copy\"" v1.json
'

test_expect_success 'inspect MODEL@vN reads the version on the service' '
	ckpt inspect m@v1 >out &&
	test_grep "model.safetensors" out
'

test_expect_success 'log, log --verify, verify --registry and verify MODEL@ALIAS' '
	ckpt log >out &&
	test_grep "^1 .* m  *promote v1  *r@1 sha256:" out &&
	test_grep "^2 .* m  *prod -> v1" out &&
	ckpt log --verify >out 2>err &&
	test_grep "registry verified: 2 records, chain intact" err &&
	ckpt verify --registry 2>err &&
	test_grep "1 version matches its manifest" err &&
	ckpt verify m@prod >out 2>err &&
	test_grep "registry/m/v1/model.safetensors: OK" out
'

test_expect_success 'the same manifest again: no new version, nothing written' '
	s3 "$BUCKET" list reg/registry/ >before &&
	ckpt promote r@1 --model m >out &&
	test_grep "m v1 holds this checkpoint already" out &&
	s3 "$BUCKET" list reg/registry/ >after &&
	test_cmp before after
'

test_expect_success 'alias set, move and rollback: aliases.json follows the history' '
	ckpt promote r@2 --model m >out &&
	test_grep "to m v2" out &&
	ckpt alias m prod v2 >out &&
	test_grep "m@prod: v1 -> v2" out &&
	s3 "$BUCKET" get reg/registry/m/aliases.json >aliases.json &&
	"$PYTHON" - <<-\EOF &&
	import json
	a = json.load(open("aliases.json"))["aliases"]
	assert a["prod"]["version"] == 2 and a["prod"]["previous"] == [1], a
	EOF
	ckpt alias m staging v1 &&
	ckpt promote --rollback m --alias prod >out &&
	test_grep "v2 -> v1" out &&
	ckpt log --alias prod >out &&
	test_grep "prod -> v1" out &&
	test_grep "prod v1 -> v2" out &&
	ckpt verify --registry
'

test_expect_success 'models and ls --models list the versions with their aliases' '
	ckpt models >out &&
	test_grep "^m  *v1  *prod, staging  *r@1 .* copy " out &&
	test_grep "^m  *v2  *r@2 .* copy " out &&
	ckpt ls --models >out2 &&
	test_cmp out out2 &&
	ckpt --json models >m.json &&
	"$PYTHON" - <<-\EOF
	import json
	(m,) = json.load(open("m.json"))["models"]
	assert [v["version"] for v in m["versions"]] == [1, 2], m
	assert m["versions"][0]["path"].startswith("s3://"), m
	EOF
'

test_expect_success 'prune keeps what the registry promoted' '
	ckpt prune --run r --keep-last 1 >out &&
	ckpt ls >out &&
	test_grep "^r  *1 " out &&
	test_grep "^r  *2 " out &&
	! grep "^r  *3 " out
'

test_expect_success 'concurrent promotions of one checkpoint make one version' '
	pids= &&
	for i in 1 2 3 4
	do
		ckpt promote r@5 --model c --alias prod >race.$i 2>&1 &
		pids="$pids $!"
	done &&
	for p in $pids
	do
		wait $p || { echo "a promote failed"; return 1; }
	done &&
	cat race.* >all &&
	test "$(grep -c "^promoted r@5" all)" = 1 &&
	test "$(grep -c "holds this checkpoint already" all)" = 3 &&
	ckpt --json log --model c >log.json &&
	test "$(grep -c "\"action\": \"promote\"" log.json)" = 1 &&
	keys reg/registry/c/ >got &&
	! grep "/v2" got &&
	keys reg/registry/.staging/ >left &&
	test ! -s left &&
	ckpt verify --registry
'

test_expect_success 'concurrent promotions of different checkpoints: distinct versions' '
	save 6 0.05 && save 7 0.04 && save 8 0.03 &&
	pids= &&
	for st in 6 7 8
	do
		ckpt promote r@$st --model d --alias prod >d.$st 2>&1 &
		pids="$pids $!"
	done &&
	for p in $pids
	do
		wait $p || { echo "a promote failed"; return 1; }
	done &&
	ckpt --json models d >d.json &&
	"$PYTHON" - <<-\EOF &&
	import json
	(m,) = json.load(open("d.json"))["models"]
	vs = m["versions"]
	assert [v["version"] for v in vs] == [1, 2, 3], vs
	assert sorted(v["step"] for v in vs) == [6, 7, 8], vs
	assert len(m["aliases"]["prod"]["previous"]) == 2, m
	EOF
	ckpt log --verify >/dev/null
'

test_expect_success 'a version left without its history record goes to the trash' '
	printf "half\n" >half &&
	s3 "$BUCKET" put reg/registry/m/v9/model.safetensors half &&
	s3 "$BUCKET" put reg/registry/m/v9/ckpt-manifest.json half &&
	ckpt verify --registry >out 2>&1 &&
	test_grep "completed 1 change left by an interrupted registry command" out &&
	keys reg/registry/m/ >got &&
	! grep "/v9" got &&
	keys reg/.ckpt/trash/ >trash &&
	test_grep "registry-m-v9" trash
'

# check_round MODEL RC: after "promote r@2 --model MODEL --alias prod"
# ended with RC (killed or not) on MODEL holding v1 (prod -> v1): log
# --verify completes or undoes what was left; then either nothing
# happened or all of it did; RC 0 means all of it; no staging is left;
# a retry converges on 4 records.
check_round() {
	ckpt log --verify >/dev/null 2>verify.err ||
		{ echo "log --verify failed"; cat verify.err; return 1; }
	ckpt --json log --model $1 >log.json &&
	case $(grep -c "\"seq\":" log.json) in
	2)
		test "$2" != 0 || { echo "exit 0 without a commit"; return 1; }
		test_expect_code 3 ckpt verify $1@v2 >/dev/null 2>&1 &&
		keys reg/registry/$1/ >got &&
		! grep "/v2" got
		;;
	4)
		ckpt verify $1@prod >v.out 2>&1 &&
		test_grep "registry/$1/v2/" v.out
		;;
	*)
		echo "unexpected records"; cat log.json; return 1
		;;
	esac &&
	keys reg/registry/.staging/ >left &&
	test ! -s left &&
	ckpt promote r@2 --model $1 --alias prod >retry.out 2>&1 &&
	ckpt --json log --model $1 >log.json &&
	test "$(grep -c "\"seq\":" log.json)" = 4
}

# Killed after 0.5 s .. 3 s: a promote here takes about 1-4 s (staging
# copies, verify, lock, commit), so the rounds land in different steps.
test_expect_success 'a promote killed at any moment: all or nothing, a retry converges' '
	for round in 1 2 3 4 5 6
	do
		ckpt promote r@1 --model k$round --alias prod >/dev/null ||
		return 1
		ckpt promote r@2 --model k$round --alias prod >kill.out 2>&1 &
		pid=$! &&
		sleep $((round / 2)).$((round % 2 * 5)) &&
		{ kill -9 $pid 2>/dev/null; wait $pid; echo $? >rc; } &&
		check_round k$round "$(cat rc)" || return 1
	done
'

test_expect_success 'promote --weights-only works here too (more in t7034)' '
	ckpt promote --weights-only r@2 --model w >out &&
	test_grep "to w v1: weights only" out &&
	ckpt verify w@v1 >out &&
	test_grep "registry/w/v1/model.safetensors: OK" out
'

test_expect_success 'a local directory is not a checkpoint of the s3:// store' '
	test_expect_code 2 ckpt promote src --model m 2>err &&
	test_grep "not a checkpoint of the store" err
'

test_done
