#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='help without installed pages, short usage errors, colour and terminals'
. "$(dirname "$0")/lib.sh"

# on_tty CMD...: runs CMD with stdout and stderr on a pseudo-terminal
# (script(1)), the screen in "tty.out".
on_tty() {
	script -qec "$*" /dev/null >tty.out 2>&1 </dev/null
}

command -v script >/dev/null 2>&1 && test_set_prereq SCRIPT

test_expect_success 'a usage error is the message and a one-line hint, for every command' '
	for c in $(ckpt --list-commands); do
		test_expect_code 2 ckpt $c --no-such-option 2>err || exit 1
		test $(wc -l <err) -le 3 || { cat err; exit 1; }
		test_grep "^ckpt: unknown option .--no-such-option.$" err || exit 1
		test_grep "^hint: .ckpt $c -h. lists the options$" err || exit 1
	done &&
	test_expect_code 2 ckpt save --run r 2>err &&
	test_grep "nothing to save" err &&
	test $(wc -l <err) -le 3 &&
	test_expect_code 2 ckpt --frobnicate 2>err &&
	test $(wc -l <err) = 2
'

test_expect_success 'ckpt help CMD and --help: the page beside the binary when man finds none' '
	MANPATH=/nonexistent ckpt help ls >out 2>err &&
	test_grep "ckpt ls" out &&
	test_grep "SYNOPSIS" out &&
	! test_grep "No manual entry" err &&
	MANPATH=/nonexistent ckpt ls --help >out &&
	test_grep "SYNOPSIS" out &&
	MANPATH=/nonexistent ckpt --help >out &&
	test_grep "EXIT STATUS" out
'

test_expect_success 'without man(1) or mandoc: the -h text, exit 0' '
	PATH="$CKPT_BUILD" MANPATH=/nonexistent ckpt help verify >out 2>err &&
	test_grep "^usage: ckpt verify" out &&
	PATH="$CKPT_BUILD" MANPATH=/nonexistent ckpt verify --help >out &&
	test_grep "^usage: ckpt verify" out &&
	PATH="$CKPT_BUILD" MANPATH=/nonexistent ckpt --help >out &&
	test_grep "^usage: ckpt" out
'

test_expect_success 'setup: a store' '
	ckpt init st >/dev/null &&
	mkdir ck && echo x >ck/a &&
	ckpt -C st save --copy --run r --step 1 -m loss=1 ck >/dev/null
'

test_expect_success SCRIPT 'a terminal gets a bold header; NO_COLOR set empty does not count' '
	unset NO_COLOR &&
	TERM=xterm on_tty ckpt -C st ls &&
	test_grep "$(printf "\033")\[1m" tty.out &&
	NO_COLOR= TERM=xterm on_tty ckpt -C st ls &&
	test_grep "$(printf "\033")\[1m" tty.out
'

test_expect_success SCRIPT 'NO_COLOR=1 and TERM=dumb: no escape sequence at all' '
	NO_COLOR=1 TERM=xterm on_tty ckpt -C st ls &&
	test_grep "^RUN" tty.out &&
	! grep "$(printf "\033")" tty.out &&
	unset NO_COLOR &&
	TERM=dumb on_tty ckpt -C st ls &&
	test_grep "^RUN" tty.out &&
	! grep "$(printf "\033")" tty.out &&
	TERM=dumb on_tty ckpt -C st latest --verified --run r &&
	! grep "$(printf "\033")" tty.out
'

test_expect_success 'not a terminal: no escape sequence' '
	unset NO_COLOR &&
	TERM=xterm ckpt -C st ls >out 2>&1 &&
	! grep "$(printf "\033")" out
'

test_expect_success '--lock-timeout: one grammar on every command that locks; -j: one range' '
	ckpt -C st gc --dry-run --lock-timeout 2m >/dev/null &&
	ckpt -C st gc --dry-run --lock-timeout 30s >/dev/null &&
	ckpt -C st gc --dry-run --lock-timeout 0.5 >/dev/null &&
	ckpt -C st gc --dry-run --lock-timeout 1e15 >/dev/null &&
	for big in 9223372036854776 1e300 inf nan; do
		test_expect_code 2 ckpt -C st gc --lock-timeout $big 2>err || exit 1
		test_grep "lock-timeout .$big.: a duration" err || exit 1
	done &&
	for c in gc prune pin unpin save sign; do
		test_expect_code 2 ckpt -C st $c --lock-timeout soon 2>err || exit 1
		test_grep "lock-timeout .soon.: a duration such as 30s or 2m" err || exit 1
		ckpt $c --completion-helper | grep -q "^--lock-timeout=$" || exit 1
	done &&
	for c in ls latest verify inspect init keygen; do
		! ckpt $c --completion-helper | grep -q "^--lock-timeout" || exit 1
	done &&
	for c in save verify latest inspect; do
		ckpt $c --completion-helper | grep -q "^--jobs=$" || exit 1
		test_expect_code 2 ckpt -C st $c -j 0 2>err || exit 1
		test_grep "from 1 to 1024" err || exit 1
		test_expect_code 2 ckpt -C st $c --jobs 1025 2>err || exit 1
	done &&
	ckpt -C st latest -j 2 --verified --run r >/dev/null &&
	ckpt -C st verify -j 1 r@1 >/dev/null 2>&1
'

# Progress bars need more than a second of work: the fault shim makes
# every read (or every deletion) of the test's files slow instead of the
# files big.  slow OP PATTERN cmd...: cmd with each matching call 250 ms
# late.
SHIM="$CKPT_BUILD/tests/helper/libckpt-fault.so"
slow() {
	_op=$1 _pat=$2
	shift 2
	echo "env ASAN_OPTIONS=verify_asan_link_order=0:$ASAN_OPTIONS" \
	    "LD_PRELOAD=$SHIM CKPT_FAULT_OP=$_op CKPT_FAULT_PATH='$_pat'" \
	    "CKPT_FAULT_NTH=all CKPT_FAULT_ACTION=delay" \
	    "CKPT_FAULT_DELAY_MS=250 $*"
}

test_expect_success 'setup: float tensors; a trash of several entries' '
	"$PYTHON" - <<-\EOF &&
	import json, struct
	hdr, off = {}, 0
	for i in range(6):
	    hdr["w%d" % i] = {"dtype": "F32", "shape": [4096],
	                      "data_offsets": [off, off + 16384]}
	    off += 16384
	h = json.dumps(hdr).encode()
	h += b" " * (-len(h) % 8)
	with open("f32.safetensors", "wb") as f:
	    f.write(struct.pack("<Q", len(h)) + h)
	    f.write(struct.pack("<%df" % (off // 4), *[0.5] * (off // 4)))
	EOF
	ckpt init gs >/dev/null &&
	for i in 1 2 3 4 5 6; do
		mkdir -p gs/.ckpt/trash/r@step-$i.1.2.3 &&
		echo junk >gs/.ckpt/trash/r@step-$i.1.2.3/weights.bin || exit 1
	done &&
	cp -R gs gs0
'

test_expect_success SCRIPT 'inspect --stats: a progress bar on a terminal' '
	unset NO_COLOR &&
	TERM=xterm on_tty $(slow read "*/f32.safetensors" \
	    ckpt inspect --stats -j 1 f32.safetensors) &&
	test_grep "statistics: *[0-9]*% (" tty.out &&
	test_grep "^w5 " tty.out
'

test_expect_success SCRIPT 'verify --numerics: a progress bar on a terminal' '
	TERM=xterm on_tty $(slow read "*/f32.safetensors" \
	    ckpt verify --numerics -j 1 f32.safetensors) &&
	test_grep "f32.safetensors: *[0-9]*% (" tty.out &&
	test_grep "OK" tty.out
'

test_expect_success SCRIPT 'gc of a trash: a progress bar on a terminal' '
	TERM=xterm on_tty $(slow unlink "*/trash/*" \
	    ckpt -C gs gc --older-than 0s) &&
	test_grep "deleting: *[0-9]*% (" tty.out &&
	test -z "$(ls gs/.ckpt/trash)"
'

test_expect_success SCRIPT 'no progress bar with --quiet, TERM=dumb, or stderr not a terminal' '
	TERM=xterm on_tty $(slow read "*/f32.safetensors" \
	    ckpt -q inspect --stats -j 1 f32.safetensors) &&
	! test_grep "statistics:" tty.out &&
	TERM=dumb on_tty $(slow read "*/f32.safetensors" \
	    ckpt verify --numerics -j 1 f32.safetensors) &&
	! grep "$(printf "\033")" tty.out &&
	! test_grep "% (" tty.out &&
	rm -rf gs && cp -R gs0 gs &&
	TERM=xterm on_tty "$(slow unlink "*/trash/*" \
	    ckpt -C gs gc --older-than 0s) 2>gc.err" &&
	test_cmp /dev/null gc.err &&
	test -z "$(ls gs/.ckpt/trash)"
'

test_expect_success 'a usage error deep inside a command: the same -h hint' '
	test_expect_code 2 ckpt -C st gc --older-than soon 2>err &&
	test_grep "^ckpt: --older-than: " err &&
	test_grep "^hint: .ckpt gc -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st ls --where "loss~1" 2>err &&
	test_grep "^hint: .ckpt ls -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st latest --run "a/b" 2>err &&
	test_grep "^hint: .ckpt latest -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st save --run r --step x ck 2>err &&
	test_grep "^hint: .ckpt save -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st prune --keep-last x 2>err &&
	test_grep "^hint: .ckpt prune -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st prune --run a/b --keep-last 1 2>err &&
	test_grep "^hint: .ckpt prune -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st promote --model a/b r@1 2>err &&
	test_grep "^hint: .ckpt promote -h. lists the options$" err &&
	test_expect_code 2 ckpt -C st inspect --depth x ck 2>err &&
	test_grep "^ckpt: bad value .x. for .--depth.$" err &&
	test_expect_code 2 ckpt -C 2>err &&
	test_grep "^hint: .ckpt -h. lists the options$" err
'

test_done
