# SPDX-License-Identifier: MIT
#
# lib.sh - the shell test library, after git's t/test-lib.sh.  A test
# script sources it, declares test_description, runs test_expect_success
# blocks and ends with test_done.  Output is TAP.  Each script runs in its
# own trash directory, removed when every test passed.
#
# Environment: CKPT_BUILD (the build directory holding ckpt; default the
# source tree), TEST_OUTPUT_DIR (where trash directories go), TEST_VERBOSE.

set -u

TEST_DIRECTORY=$(cd "$(dirname "$0")" && pwd)
SRC_DIRECTORY=$(cd "$TEST_DIRECTORY/.." && pwd)
: "${CKPT_BUILD:=$SRC_DIRECTORY}"
CKPT_BUILD=$(cd "$CKPT_BUILD" && pwd)
: "${TEST_OUTPUT_DIR:=$TEST_DIRECTORY/out}"
: "${FIXTURES_DIR:=$TEST_DIRECTORY/fixtures-gen}"
PYTHON=${PYTHON:-/usr/bin/python3}	# Debian's, which has python3-torch
export PYTHON FIXTURES_DIR SRC_DIRECTORY CKPT_BUILD

PATH="$CKPT_BUILD:$CKPT_BUILD/tests/helper:$PATH"
export PATH

# A sanitizer report must never pass for an ordinary exit status: make it
# abort (status 134), which test_must_fail refuses.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# A predictable environment: no store, caches, keys or cloud credentials
# of the caller's (HOME is the trash directory below; lib-rgw.sh exports
# the test server's AWS_* settings), no colour, UTC.
unset CKPT_STORE XDG_CACHE_HOME XDG_CONFIG_HOME XDG_DATA_HOME
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
    AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION AWS_CONFIG_FILE \
    AWS_SHARED_CREDENTIALS_FILE
export NO_COLOR=1 TZ=UTC LC_ALL=C

test_name=$(basename "$0" .sh)
TRASH_DIRECTORY="$TEST_OUTPUT_DIR/trash.$test_name.$(basename "$CKPT_BUILD")"
rm -rf "$TRASH_DIRECTORY"
mkdir -p "$TRASH_DIRECTORY" || exit 1
cd "$TRASH_DIRECTORY" || exit 1
HOME="$TRASH_DIRECTORY"
export HOME

test_count=0
test_failures=0
test_skipped=0
_cleanup_file="$TRASH_DIRECTORY/.cleanup"

say() {
	printf '%s\n' "$*"
}

# test_expect_success [PREREQ] 'description' 'body'
test_expect_success() {
	_prereq=
	if test $# = 3; then
		_prereq=$1
		shift
	fi
	test_count=$((test_count + 1))
	if test -n "$_prereq" && ! test_have_prereq "$_prereq"; then
		test_skipped=$((test_skipped + 1))
		say "ok $test_count # SKIP $1 (missing $_prereq)"
		return 0
	fi
	: >"$_cleanup_file"
	(
		set -e
		cd "$TRASH_DIRECTORY"
		eval "$2"
	) >"$TRASH_DIRECTORY/.out" 2>&1
	_status=$?
	if test -s "$_cleanup_file"; then
		(cd "$TRASH_DIRECTORY" && . "$_cleanup_file") >/dev/null 2>&1
	fi
	if test "$_status" = 0; then
		say "ok $test_count - $1"
		if test -n "${TEST_VERBOSE:-}"; then
			sed 's/^/# /' "$TRASH_DIRECTORY/.out"
		fi
	else
		test_failures=$((test_failures + 1))
		say "not ok $test_count - $1"
		printf '%s\n' "$2" | sed 's/^/#	/'
		say "# output:"
		sed 's/^/# /' "$TRASH_DIRECTORY/.out"
	fi
}

# A known breakage: reported as TODO, never counted as a failure.
test_expect_failure() {
	test_count=$((test_count + 1))
	if (set -e; cd "$TRASH_DIRECTORY"; eval "$2") >/dev/null 2>&1; then
		say "ok $test_count - $1 # TODO known breakage vanished"
	else
		say "not ok $test_count - $1 # TODO known breakage"
	fi
}

# Runs commands after the current test, whatever its outcome.
test_when_finished() {
	printf '%s\n' "$*" >>"$_cleanup_file"
}

# test_expect_code N cmd...: cmd must exit with exactly N.
test_expect_code() {
	_want=$1
	shift
	# "|| _got=$?": the body runs under set -e, which must not end the
	# test here when this is the last command of the body.
	_got=0
	"$@" || _got=$?
	if test "$_got" = "$_want"; then
		return 0
	fi
	echo "test_expect_code: command exited $_got, wanted $_want: $*" >&2
	return 1
}

# cmd must fail in an orderly way: non-zero, but not killed by a signal
# or a sanitizer (status > 128).
test_must_fail() {
	_got=0
	"$@" || _got=$?
	if test "$_got" = 0; then
		echo "test_must_fail: command succeeded: $*" >&2
		return 1
	elif test "$_got" -gt 128; then
		echo "test_must_fail: command died with status $_got: $*" >&2
		return 1
	fi
	return 0
}

# cmd may fail or not, but in an orderly way: never killed by a signal
# or a sanitizer (status > 128).  The replacement for "cmd || :", which
# hides a crash.
test_might_fail() {
	_got=0
	"$@" || _got=$?
	if test "$_got" -gt 128; then
		echo "test_might_fail: command died with status $_got: $*" >&2
		return 1
	fi
	return 0
}

test_cmp() {
	diff -u "$1" "$2"
}

test_path_is_file() {
	test -f "$1" || { echo "not a file: $1" >&2; return 1; }
}

test_path_is_dir() {
	test -d "$1" || { echo "not a directory: $1" >&2; return 1; }
}

test_path_is_missing() {
	test ! -e "$1" || { echo "exists: $1" >&2; return 1; }
}

# test_grep PATTERN FILE, showing FILE when the pattern is absent.
test_grep() {
	if grep -q -e "$1" "$2"; then
		return 0
	fi
	echo "pattern '$1' not found in $2:" >&2
	cat "$2" >&2
	return 1
}

# test_set_prereq NAME: a prerequisite the script found to hold.
_prereqs_set=" "
test_set_prereq() {
	_prereqs_set="$_prereqs_set$1 "
}

# test_have_prereq A[,B...]: every one of them holds.
test_have_prereq() {
	case "$1" in
	*,*)
		_rest=$1
		while test -n "$_rest"; do
			test_have_prereq "${_rest%%,*}" || return 1
			case "$_rest" in
			*,*) _rest=${_rest#*,} ;;
			*) _rest= ;;
			esac
		done
		return 0
		;;
	esac
	case "$_prereqs_set" in
	*" $1 "*) return 0 ;;
	esac
	case "$1" in
	TORCH)
		test -f "$FIXTURES_DIR/.torch-ok" ||
			"$PYTHON" -c 'import torch' >/dev/null 2>&1
		;;
	MANDOC)
		command -v mandoc >/dev/null 2>&1
		;;
	SANITIZED)
		test -f "$CKPT_BUILD/CKPT-CFLAGS" &&
			grep -q fsanitize "$CKPT_BUILD/CKPT-CFLAGS"
		;;
	NOT_SANITIZED)
		! test_have_prereq SANITIZED
		;;
	*)
		return 1
		;;
	esac
}

test_done() {
	say "1..$test_count"
	if test "$test_failures" = 0; then
		cd "$TEST_OUTPUT_DIR" && rm -rf "$TRASH_DIRECTORY"
		exit 0
	fi
	say "# failed $test_failures of $test_count"
	exit 1
}
