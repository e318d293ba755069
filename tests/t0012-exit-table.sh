#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='exit status of every command on every kind of input, against the table of ckpt(1)'
. "$(dirname "$0")/lib.sh"

# As root, "permission denied" needs another user: nobody, through setpriv.
as_denied() {
	if test "$(id -u)" = 0; then
		setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
	else
		"$@"
	fi
}

test_have_prereq MANDOC && test_set_prereq TABLE
if test "$(id -u)" != 0 || command -v setpriv >/dev/null 2>&1; then
	test_set_prereq DENY
fi

hold_lock() {
	rm -f locked
	ckpt-test-tool hold-lock "$1" 600 >locked &
	echo $! >holder.pid
	i=0
	while ! grep -q locked locked 2>/dev/null; do
		i=$((i + 1))
		test $i -lt 100 || return 1
		sleep 0.1
	done
}

# The table of EXIT STATUS as "class|command|code" lines.
man_table() {
	mandoc -T ascii -O width=200 "$SRC_DIRECTORY/man/ckpt.1" | col -bx |
		awk '/^EXIT STATUS$/ { on = 1; next }
		    on && /^[A-Z]/ { exit }
		    on && $1 == "input" { for (i = 2; i <= NF; i++) cmd[i - 1] = $i
			n = NF - 1; tab = 1; next }
		    tab && NF == 0 { tab = 0 }
		    tab { cls = $1; for (i = 2; i <= NF - n; i++) cls = cls " " $i
			for (i = 1; i <= n; i++) print cls "|" cmd[i] "|" $(NF - n + i) }'
}

test_expect_success 'setup: a store with a good, a broken, an unsafe and a changed run' '
	"$PYTHON" "$TEST_DIRECTORY/fixtures/gen-safetensors.py" fx >/dev/null &&
	cp fx/small.safetensors good.safetensors &&
	cp fx/small.safetensors broken.safetensors &&
	ckpt-test-tool truncate broken.safetensors 200 &&
	"$PYTHON" -c "
import os, pickle
class P:
    def __reduce__(self):
        return (os.system, (\"true\",))
open(\"unsafe.pkl\", \"wb\").write(pickle.dumps(P(), protocol=2))
" &&
	mkdir g b u && cp good.safetensors g/model.safetensors &&
	cp broken.safetensors b/model.safetensors && cp unsafe.pkl u/model.pkl &&
	ckpt init st >/dev/null &&
	ckpt -C st save --copy --run r --step 1 g >/dev/null &&
	ckpt -C st save --copy --run d --step 1 g >/dev/null &&
	ckpt-test-tool flip st/runs/d/step-1/model.safetensors 100 &&
	test_expect_code 1 ckpt -C st save --copy --run b --step 1 b >/dev/null 2>&1 &&
	test_expect_code 1 ckpt -C st save --copy --run u --step 1 u >/dev/null 2>&1 &&
	cp -R st st0 &&
	cp good.safetensors denied.safetensors && chmod 000 denied.safetensors &&
	cp -R st denied-st && chmod 000 denied-st
'

# run_cell CLASS COMMAND: runs that command on that kind of input.
n=0
run_cell() {
	n=$((n + 1))
	case "$2:$1" in
	inspect:good) ckpt inspect good.safetensors ;;
	inspect:broken) ckpt inspect broken.safetensors ;;
	inspect:unsafe) ckpt inspect unsafe.pkl ;;
	inspect:missing\ path) ckpt inspect nosuch.safetensors ;;
	inspect:missing\ reference) ckpt -C st inspect r@999 ;;
	inspect:permission\ denied) as_denied ckpt inspect denied.safetensors ;;
	verify:good) ckpt -C st verify r@1 ;;
	verify:broken) ckpt -C st verify b@1 ;;
	verify:unsafe) ckpt -C st verify u@1 ;;
	verify:different) ckpt -C st verify d@1 ;;
	verify:missing\ path) ckpt verify nosuch.safetensors ;;
	verify:missing\ reference) ckpt -C st verify nosuch@latest ;;
	verify:permission\ denied) as_denied ckpt verify denied.safetensors ;;
	latest:good) ckpt -C st latest --verified --run r ;;
	latest:broken) ckpt -C st latest --verified --run b ;;
	latest:unsafe) ckpt -C st latest --verified --run u ;;
	latest:different) ckpt -C st latest --verified --run d ;;
	latest:missing\ reference) ckpt -C st latest --verified --run nosuch ;;
	latest:permission\ denied) as_denied ckpt -C denied-st latest --run r ;;
	save:good) ckpt -C st save --copy --run n$n --step 1 g ;;
	save:broken) ckpt -C st save --copy --run n$n --step 1 b ;;
	save:unsafe) ckpt -C st save --copy --run n$n --step 1 u ;;
	save:missing\ path) ckpt -C st save --copy --run n$n --step 1 nosuch ;;
	save:missing\ reference) ckpt -C st save --copy --run n$n --step 1 --resumed-from r@999 g ;;
	save:permission\ denied) as_denied ckpt -C denied-st save --copy --run n$n --step 1 g ;;
	save:lock\ held) ckpt -C st save --lock-timeout 0 --copy --run n$n --step 1 g ;;
	ls:good) ckpt -C st ls ;;
	ls:missing\ reference) ckpt -C st ls --run nosuch ;;
	ls:permission\ denied) as_denied ckpt -C denied-st ls ;;
	prune:good) ckpt -C st prune --run r --keep-last 1 ;;
	prune:missing\ reference) ckpt -C st prune --run nosuch --keep-last 1 ;;
	prune:permission\ denied) as_denied ckpt -C denied-st prune --run r --keep-last 1 ;;
	prune:lock\ held) ckpt -C st prune --lock-timeout 0s --run r --keep-last 1 ;;
	pin:good) ckpt -C st pin r@1 ;;
	pin:missing\ path) ckpt -C st pin nosuch-dir ;;
	pin:missing\ reference) ckpt -C st pin r@999 ;;
	pin:permission\ denied) as_denied ckpt -C denied-st pin r@1 ;;
	pin:lock\ held) ckpt -C st pin --lock-timeout 0 r@1 ;;
	gc:good) ckpt -C st gc ;;
	gc:permission\ denied) as_denied ckpt -C denied-st gc ;;
	gc:lock\ held) ckpt -C st gc --lock-timeout 0 ;;
	*) echo "no scenario for $2 on $1" >&2; return 99 ;;
	esac
}

test_expect_success TABLE 'ckpt(1) has the table, with the eight kinds of input' '
	man_table >table &&
	cut -d"|" -f1 table | uniq >classes &&
	printf "%s\n" good broken unsafe different "missing path" \
		"missing reference" "permission denied" "lock held" >expect &&
	test_cmp expect classes &&
	test $(wc -l <table) = 64
'

test_expect_success TABLE,DENY 'every cell of the table holds' '
	: >results &&
	while IFS="|" read -r class cmd want; do
		test "$want" = "-" && continue
		rm -rf st && cp -R st0 st || exit 1
		if test "$class" = "lock held"; then
			hold_lock st || exit 1
		fi
		got=0
		run_cell "$class" "$cmd" >out 2>err || got=$?
		if test "$class" = "lock held"; then
			# the next cell starts from a fresh copy of the store
			kill "$(cat holder.pid)" || exit 1
		fi
		echo "$cmd on $class: $got (table: $want)" >>results
		if test "$got" != "$want"; then
			cat err >&2
			echo "FAIL: $cmd on $class: exit $got, the table says $want" >&2
			fail=1
		fi
	done <table &&
	cat results &&
	test -z "${fail:-}"
'

test_expect_success 'the scenarios can fail: a wrong table entry is caught' '
	got=0 &&
	run_cell "missing path" inspect >out 2>err || got=$? &&
	test "$got" = 3 &&
	test "$got" != 1
'

test_done
