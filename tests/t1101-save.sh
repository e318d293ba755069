#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='save: transfers, manifest round trip, refusals, force,
load test, background, concurrency and the lock'
. "$(dirname "$0")/lib.sh"

mkst() {
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/mk-st.py" "$@"
}

mksrc() {
	rm -rf "$1" && mkdir -p "$1/sub" &&
	mkst "$1/model.bin" 200000 1 &&
	mkst "$1/sub/extra.bin" 5000 2 &&
	echo '{"a": 1}' >"$1/config.json"
}

field() {	# field FILE KEY: the first "KEY": VALUE of an indented JSON
	sed -n "s/^ *\"$2\": \\(.*\\)$/\\1/p" "$1" | head -1 | sed 's/,$//'
}

test_expect_success 'the first save creates the store; files are moved' '
	mksrc src &&
	ckpt -C st save --run r --step 10 --metric loss=0.5 src >out &&
	echo "$(cd st && pwd -P)/runs/r/step-10" >expect &&
	test_cmp expect out &&
	test_path_is_file st/.ckpt/store.json &&
	test_path_is_missing src &&
	test_path_is_file st/runs/r/step-10/model.bin &&
	test_path_is_file st/runs/r/step-10/sub/extra.bin &&
	test_path_is_file st/runs/r/step-10/ckpt-manifest.json &&
	test_path_is_missing st/runs/r/step-10/ckpt-staging.json &&
	! ls -a st/runs/r | grep -q "^.tmp"
'

test_expect_success 'manifest round trip: sizes and digests match the files' '
	m=st/runs/r/step-10/ckpt-manifest.json &&
	# one-range files have their whole digest for free
	for f in config.json ckpt-summary.json; do
		want=$(sha256sum "st/runs/r/step-10/$f" | cut -d" " -f1) &&
		grep -q "\"sha256\": \"sha256:$want\"" $m ||
			{ echo "no digest for $f"; exit 1; }
	done &&
	for f in model.bin sub/extra.bin config.json ckpt-summary.json; do
		grep -q "\"path\": \"$f\"" $m || exit 1
	done &&
	test "$(field $m schema)" = 2 &&
	test "$(field $m run)" = "\"r\"" &&
	test "$(field $m step)" = 10 &&
	test_grep "\"host\": \"$(hostname)\"" $m &&
	test_grep "\"created\": \"20[0-9-]*T[0-9:]*Z\"" $m &&
	test_grep "\"ckpt_version\": \"" $m &&
	test_grep "\"chunk_size\": 67108864" $m &&
	"$PYTHON" -c "
import json, sys
m = json.load(open(\"$m\"))
paths = [f[\"path\"] for f in m[\"files\"]]
assert paths == sorted(paths), paths
assert m[\"metrics\"] == {\"loss\": 0.5}
assert m[\"validation\"][\"result\"] == \"ok\"
" &&
	ckpt -C st latest --run r --verified >out &&
	test_cmp expect out
'

test_expect_success 'ranges cover every byte once, with right digests' '
	mksrc src &&
	mkst src/big.bin 200000 5 1 &&
	{ printf "not a checkpoint\n" && head -c 300000 /dev/urandom; } >src/blob.bin &&
	ckpt -C st save --copy --chunk-size 64KiB --run r --step 11 src &&
	"$PYTHON" -c "
import json, hashlib
m = json.load(open(\"st/runs/r/step-11/ckpt-manifest.json\"))
def sha(b):
    return \"sha256:\" + hashlib.sha256(b).hexdigest()
for name, ntensors in ((\"model.bin\", 4), (\"big.bin\", 1),
                       (\"blob.bin\", 0)):
    f = [f for f in m[\"files\"] if f[\"path\"] == name][0]
    data = open(\"st/runs/r/step-11/\" + name, \"rb\").read()
    assert \"sha256\" not in f, f    # not asked for, not free
    assert len(f[\"tensors\"]) == ntensors, f[\"tensors\"]
    pos = 0
    for c in f[\"ranges\"]:
        assert c[\"offset\"] == pos, (name, c)
        assert c[\"sha256\"] == sha(data[pos:pos + c[\"size\"]])
        pos += c[\"size\"]
    assert pos == len(data), name
    spans = set((c[\"offset\"], c[\"size\"]) for c in f[\"ranges\"])
    for t in f[\"tensors\"]:
        b = data[t[\"offset\"]:t[\"offset\"] + t[\"size\"]]
        assert t[\"content_sha256\"] == sha(b), t
        # a tensor is a range of its own, whatever its size
        assert (t[\"offset\"], t[\"size\"]) in spans, t
    if name == \"big.bin\":
        assert f[\"tensors\"][0][\"size\"] > 65536
    if name == \"blob.bin\":
        assert [c[\"size\"] for c in f[\"ranges\"]] == [65536] * 4 + [37873]
" &&
	test_path_is_file src/model.bin
'

test_expect_success '--file-sha256 and manifest.file_sha256 record whole-file digests' '
	mksrc src &&
	ckpt -C st save --copy --file-sha256 --chunk-size 64KiB --run r \
	    --step 14 src &&
	test_path_is_missing st/ckpt.yaml &&
	test_when_finished "rm -f st/ckpt.yaml" &&
	printf "manifest:\n  file_sha256: true\n" >st/ckpt.yaml &&
	ckpt -C st save --copy --chunk-size 64KiB --run r --step 15 src &&
	for s in 14 15; do
		m=st/runs/r/step-$s/ckpt-manifest.json &&
		for f in model.bin sub/extra.bin config.json; do
			want=$(sha256sum "st/runs/r/step-$s/$f" | cut -d" " -f1) &&
			grep -q "\"sha256\": \"sha256:$want\"" $m ||
				{ echo "no digest for $f in $s"; exit 1; }
		done || exit 1
	done
'

test_expect_success '--link hard-links, --copy copies' '
	mksrc src &&
	ckpt -C st save --link --run r --step 12 src &&
	test "$(stat -c %i src/model.bin)" = \
	     "$(stat -c %i st/runs/r/step-12/model.bin)" &&
	ckpt -C st save --copy --run r --step 13 src &&
	test "$(stat -c %i src/model.bin)" != \
	     "$(stat -c %i st/runs/r/step-13/model.bin)"
'

test_expect_success 'single files are saved by their names' '
	mksrc src &&
	ckpt -C st save --copy --run files --step 1 src/model.bin \
		src/config.json &&
	ls st/runs/files/step-1 | sort >actual &&
	printf "ckpt-manifest.json\nckpt-summary.json\nconfig.json\nmodel.bin\n" >expect &&
	test_cmp expect actual
'

test_expect_success 'an existing step is refused (exit 2), --force replaces it' '
	mksrc src &&
	test_expect_code 2 ckpt -C st save --copy --run r --step 10 src 2>err &&
	test_grep "exists already" err &&
	test_grep "use --force" err &&
	mkst src/model.bin 1000 9 &&
	ckpt -C st save --copy --force --run r --step 10 src &&
	cmp src/model.bin st/runs/r/step-10/model.bin &&
	ls st/.ckpt/trash | grep -q "^r@10\." &&
	ckpt -C st latest --run r --verified >/dev/null
'

test_expect_success '--force over a checkpoint that does not verify: no second copy in the trash' '
	mksrc src &&
	ckpt -C st save --copy --run fr --step 3 src >/dev/null &&
	ckpt-test-tool flip st/runs/fr/step-3/model.bin 100 &&
	rm -rf st/.ckpt/trash/* &&
	mkst src/model.bin 1000 7 &&
	ckpt -C st save --copy --force --run fr --step 3 src >/dev/null 2>err &&
	test_grep "fr@3 does not verify: the new checkpoint replaces it and it is deleted" err &&
	cmp src/model.bin st/runs/fr/step-3/model.bin &&
	! ls st/.ckpt/trash | grep -q "^fr@3\." &&
	ckpt -C st verify fr@3 >/dev/null
'

test_expect_success '--force refuses to replace a pinned checkpoint' '
	mksrc src &&
	mkdir -p st/.ckpt/pins && echo "{}" >st/.ckpt/pins/r@10 &&
	cp st/runs/r/step-10/ckpt-manifest.json manifest.before &&
	test_expect_code 2 ckpt -C st save --copy --force --run r --step 10 \
		src 2>err &&
	test_grep "pinned" err &&
	rm st/.ckpt/pins/r@10 &&
	test_cmp manifest.before st/runs/r/step-10/ckpt-manifest.json &&
	# what is left of the refused save is a failed save, saying why
	ckpt -C st ls >ls.out &&
	test_grep "^r  *10  *failed: r@10 is pinned" ls.out
'

test_expect_success 'bad input is refused with exit 2 and changes nothing' '
	mksrc src &&
	ls -R st >before &&
	test_expect_code 2 ckpt -C st save --run "../x" --step 1 src 2>err &&
	test_grep "run name" err &&
	test_expect_code 2 ckpt -C st save --run "a@b" --step 1 src 2>err &&
	test_expect_code 2 ckpt -C st save --run ".hidden" --step 1 src 2>err &&
	test_expect_code 2 ckpt -C st save --run r --step -1 src 2>err &&
	test_expect_code 2 ckpt -C st save --run r --step x src 2>err &&
	test_expect_code 2 ckpt -C st save --run r src 2>err &&
	test_grep "step is required" err &&
	test_expect_code 2 ckpt -C st save --step 1 src 2>err &&
	test_expect_code 2 ckpt -C st save --run r --step 1 2>err &&
	test_expect_code 3 ckpt -C st save --run r --step 1 nosuch 2>err &&
	test_grep "nosuch: No such file" err &&
	test_expect_code 2 ckpt -C st save --run r --step 1 --copy --link src 2>err &&
	test_expect_code 2 ckpt -C st save --run r --step 1 --metric x src 2>err &&
	test_expect_code 2 ckpt -C st save --run r --step 1 --metric x=y src 2>err &&
	test_expect_code 2 ckpt -C st save --run r --step 1 --scope most src 2>err &&
	ln -s model.bin src/link.bin &&
	test_expect_code 2 ckpt -C st save --run r --step 1 src 2>err &&
	test_grep "symbolic link" err &&
	rm src/link.bin && echo x >src/ckpt-manifest.json &&
	test_expect_code 2 ckpt -C st save --run r --step 1 src 2>err &&
	test_grep "reserves" err &&
	ls -R st >after &&
	test_cmp before after &&
	test_path_is_file src/model.bin
'

test_expect_success 'a non-empty directory that is not a store is not taken' '
	mkdir busy && echo x >busy/x && mksrc src &&
	test_expect_code 2 ckpt -C busy save --run r --step 1 src 2>err &&
	test_grep "not a ckpt store" err &&
	test_path_is_missing busy/.ckpt
'

test_expect_success 'save --json' '
	mksrc src &&
	ckpt -C st save --json --copy --run j --step 3 src >out &&
	test_grep "\"schema\": 1" out &&
	test_grep "\"path\": \".*/runs/j/step-3\"" out &&
	test_grep "\"manifest\": \"sha256:[0-9a-f]\{64\}\"" out &&
	test "$(sha256sum st/runs/j/step-3/ckpt-manifest.json | cut -d" " -f1)" = \
	     "$(sed -n "s/.*\"manifest\": \"sha256:\([0-9a-f]*\)\".*/\1/p" out)"
'

test_expect_success 'a passing load test is recorded' '
	mksrc src &&
	ckpt -C st save --copy --run lt --step 1 \
		--load-test "test -f {}/model.bin && echo loaded \$CKPT_PATH" src &&
	test_grep "\"result\": \"ok\"" st/runs/lt/step-1/ckpt-status.json &&
	test_grep "loaded .*/runs/lt/step-1" st/runs/lt/step-1/ckpt-status.json
'

test_expect_success 'a failing load test marks the checkpoint failed, exit 1' '
	mksrc src &&
	test_expect_code 1 ckpt -C st save --copy --run lt --step 2 \
		--load-test "echo boom; exit 3" src 2>err &&
	test_grep "load test failed" err &&
	test_grep "\"exit_status\": 3" st/runs/lt/step-2/ckpt-status.json &&
	test_grep "boom" st/runs/lt/step-2/ckpt-status.json &&
	ckpt -C st ls --run lt >out &&
	test_grep "^lt *2 .*FAILED" out &&
	ckpt -C st latest --run lt >out &&
	test_grep "/runs/lt/step-1$" out
'

test_expect_success 'a load test that hangs is killed after its timeout' '
	mksrc src &&
	test_expect_code 1 ckpt -C st save --copy --run lt --step 3 \
		--load-test "sleep 30" --load-test-timeout 0.5 src 2>err &&
	test_grep "timed out" err &&
	test_grep "\"timed_out\": true" st/runs/lt/step-3/ckpt-status.json
'

test_expect_success '--background returns and the save completes' '
	mksrc src &&
	ckpt -C st save --background --run bg --step 1 src >out &&
	test_grep "/runs/bg/.tmp-step-1" out &&
	for i in $(seq 50); do
		test -f st/runs/bg/step-1/ckpt-manifest.json && break
		sleep 0.1
	done &&
	ckpt -C st latest --run bg --verified >out &&
	test_grep "/runs/bg/step-1$" out
'

lockfile() {	# a lock held by pid $1 on host $2
	printf "pid %s\nhost %s\ntime %s\nboot %s\nstart 0\npurpose test\n" \
		"$1" "$2" "$(date +%s)" \
		"$(cat /proc/sys/kernel/random/boot_id)" >st/.ckpt/lock
}

test_expect_success 'a held lock makes the commit wait, then fail (exit 3)' '
	mksrc src &&
	lockfile $$ "$(hostname)" &&
	test_expect_code 3 ckpt -C st save --copy --lock-timeout 0.3 \
		--run lk --step 1 src 2>err &&
	test_grep "store is locked by pid $$" err &&
	test_grep "failed: .*store is locked" err 2>/dev/null ||
	ckpt -C st ls >out && test_grep "failed" out
'

test_expect_success 'an in-progress save shows in ls, and commits when the lock goes' '
	mksrc src && rm -rf st/runs/lk &&
	lockfile $$ "$(hostname)" &&
	ckpt -C st save --background --lock-timeout 20 --run lk --step 2 \
		src >out &&
	for i in $(seq 50); do
		ckpt -C st ls --json >ls.json
		grep -q "\"phase\": \"committing\"" ls.json && break
		sleep 0.1
	done &&
	test_grep "\"state\": \"in-progress\"" ls.json &&
	test_grep "\"phase\": \"committing\"" ls.json &&
	rm st/.ckpt/lock &&
	for i in $(seq 50); do
		test -d st/runs/lk/step-2 && break
		sleep 0.1
	done &&
	ckpt -C st latest --run lk --verified
'

test_expect_success 'a stale lock (dead process on this host) is broken with a warning' '
	mksrc src || exit 1
	sh -c "exit 0" &
	dead=$! && wait $dead &&
	lockfile $dead "$(hostname)" &&
	ckpt -C st save --copy --run lk --step 3 src 2>err &&
	test_grep "broke a stale store lock of pid $dead" err &&
	test_path_is_missing st/.ckpt/lock
'

test_expect_success 'a lock from another host is never broken' '
	mksrc src &&
	lockfile 1 some-other-host &&
	test_expect_code 3 ckpt -C st save --copy --lock-timeout 0.2 \
		--run lk --step 4 src 2>err &&
	test_grep "some-other-host" err &&
	test_grep "remove the lock file by hand" err &&
	rm st/.ckpt/lock &&
	test_path_is_missing st/.ckpt/lock
'

test_expect_success 'two saves at once both commit' '
	mksrc s1 && mksrc s2 || exit 1
	ckpt -C st save --run two --step 1 s1 >o1 2>e1 &
	p1=$! &&
	ckpt -C st save --run two --step 2 s2 >o2 2>e2 &&
	wait $p1 &&
	ckpt -C st ls --run two --json >ls.json &&
	test "$(grep -c "\"path\": \".*/runs/two/step-" ls.json)" = 2 ||
		{ cat e1 e2 ls.json; exit 1; }
	test -z "$(grep "\"state\"" ls.json)" &&
	ckpt -C st latest --run two --verified
'

test_expect_success 'two saves of one step: one commits, the other is refused' '
	mksrc s1 && mksrc s2 &&
	mkst s2/model.bin 200000 99 || exit 1
	{ ckpt -C st save --copy --run same --step 1 s1 >o1 2>e1 &&
	  echo 0 >rc1 || echo $? >rc1; } &
	{ ckpt -C st save --copy --run same --step 1 s2 >o2 2>e2 &&
	  echo 0 >rc2 || echo $? >rc2; } &&
	wait &&
	sort rc1 rc2 | tr "\n" " " >rcs && echo >>rcs &&
	echo "0 2 " >expect &&
	test_cmp expect rcs &&
	ckpt -C st latest --run same --verified
'

test_done
