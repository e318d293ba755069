# SPDX-License-Identifier: MIT
#
# lib.sh - the benchmark library.  A benchmark script (bench/bench-NAME.sh)
# sources it and times ckpt against peer commands run in the same
# invocation, on the same input, alternately (ckpt, peer 1, peer 2, ...,
# then again), so that a change in machine load hits every command alike.
# Each command runs once untimed first (warm caches), then BENCH_REPS
# times; the table reports medians and ckpt's speed relative to each peer.
# Results are written into bench/README.md, between the markers of the
# benchmark, with the machine and the date.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_begin NAME 'Title of the section'
#   bench_note 'free text shown under the table'
#   BENCH_BYTES=$size bench_compare 'row label' 'ckpt cmd' 'peer cmd' ...
#   bench_end
#
# Commands are strings, run with eval (stdout discarded), and shown in the
# table as written, so write them with "$VARIABLES" for readability.
# After bench_compare, bench_median N gives the median of command N
# (0 = ckpt) in seconds, for derived figures.
#
# Environment: BENCH_REPS (default 5), BENCH_NO_README=1 (print only),
# BENCH_OUT (scratch directory, default bench/out).

set -u

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$BENCH_DIR/.." && pwd)
: "${BENCH_REPS:=5}"
: "${BENCH_OUT:=$BENCH_DIR/out}"
: "${CKPT_BUILD:=$SRC_DIR}"
CKPT_BUILD=$(cd "$CKPT_BUILD" && pwd)
PATH="$CKPT_BUILD:$CKPT_BUILD/bench:$CKPT_BUILD/tests/helper:$PATH"
export PATH LC_ALL=C
mkdir -p "$BENCH_OUT"

bench_die() {
	echo "bench: $*" >&2
	exit 3
}

# Nanoseconds since the epoch (GNU date).
bench_now() {
	date +%s%N
}

# One line describing the machine, for the README.
bench_machine() {
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null |
	    head -n 1)
	grep -qw sha_ni /proc/cpuinfo 2>/dev/null && cpu="$cpu (SHA-NI)"
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' \
	    /proc/meminfo 2>/dev/null)
	load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
	printf '%s, %s cores, %s RAM, %s %s; load average %s' \
	    "${cpu:-unknown CPU}" "$(nproc 2>/dev/null || echo '?')" \
	    "${mem:-? GiB}" "$(uname -s)" "$(uname -r)" "${load:-?}"
}

# Median of numbers on stdin.
bench_median_of() {
	sort -n | awk '{ v[NR] = $1 }
	    END { if (NR % 2) print v[(NR + 1) / 2];
		  else printf "%.9f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_begin() {
	BENCH_NAME=$1
	BENCH_TITLE=$2
	BENCH_SECTION="$BENCH_OUT/$BENCH_NAME.md"
	BENCH_MACHINE=$(bench_machine)
	BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
	BENCH_NOTES=
	BENCH_LOAD0=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null)
	BENCH_ROWS="$BENCH_OUT/$BENCH_NAME.rows"
	: >"$BENCH_ROWS"
	echo "== $BENCH_NAME: $BENCH_TITLE"
	echo "   $BENCH_MACHINE"
}

bench_note() {
	BENCH_NOTES="$BENCH_NOTES$*
"
}

# Shows a command the way the table does: in backquotes, pipes escaped.
bench_show() {
	printf '`%s`' "$1" | sed 's/|/\\|/g'
}

# bench_compare LABEL CKPT_CMD PEER_CMD...  (BENCH_BYTES=N adds MB/s;
# BENCH_SETTLE=CMD runs CMD, untimed, before every timed run: "sync" makes
# each command start with no writeback left over from the one before it)
bench_compare() {
	label=$1
	shift
	test $# -ge 2 || bench_die "bench_compare needs ckpt and a peer command"
	bytes=${BENCH_BYTES:-}
	n=0
	for c in "$@"; do
		: >"$BENCH_OUT/.times.$n"
		# Warm-up: page cache, and a failing command stops us here.
		if ! eval "$c" >/dev/null 2>"$BENCH_OUT/.err"; then
			cat "$BENCH_OUT/.err" >&2
			bench_die "command failed: $c"
		fi
		n=$((n + 1))
	done
	r=0
	while test "$r" -lt "$BENCH_REPS"; do
		i=0
		for c in "$@"; do
			if test -n "${BENCH_SETTLE:-}"; then
				eval "$BENCH_SETTLE" ||
				    bench_die "settle command failed: $BENCH_SETTLE"
			fi
			t0=$(bench_now)
			eval "$c" >/dev/null 2>"$BENCH_OUT/.err" ||
				bench_die "command failed: $c"
			t1=$(bench_now)
			echo "$t0 $t1" | awk '{ printf "%.6f\n", ($2 - $1) / 1e9 }' \
			    >>"$BENCH_OUT/.times.$i"
			i=$((i + 1))
		done
		r=$((r + 1))
	done
	i=0
	BENCH_MEDIANS=
	for c in "$@"; do
		m=$(bench_median_of <"$BENCH_OUT/.times.$i")
		BENCH_MEDIANS="$BENCH_MEDIANS $m"
		i=$((i + 1))
	done
	ck=$(bench_median 0)
	i=0
	for c in "$@"; do
		m=$(bench_median "$i")
		if test -n "$bytes"; then
			tput=$(awk -v b="$bytes" -v t="$m" \
			    'BEGIN { printf "%.0f MB/s", (t > 0 ? b / t / 1e6 : 0) }')
		else
			tput=-
		fi
		if test "$i" = 0; then
			role="ckpt"
			ratio="1.00"
		else
			role="peer"
			ratio=$(awk -v p="$m" -v c="$ck" \
			    'BEGIN { printf "%.2f", (c > 0 ? p / c : 0) }')
		fi
		printf '| %s | %s %s | %.3f s | %s | %s |\n' "$label" "$role" \
		    "$(bench_show "$c")" "$m" "$tput" "$ratio" >>"$BENCH_ROWS"
		printf '   %-18s %-6s %8.3f s %12s  x%s  %s\n' "$label" "$role" \
		    "$m" "$tput" "$ratio" "$c"
		i=$((i + 1))
	done
	rm -f "$BENCH_OUT"/.times.* "$BENCH_OUT/.err"
}

# bench_median N: median seconds of command N of the last bench_compare.
bench_median() {
	echo "$BENCH_MEDIANS" | awk -v i="$1" '{ print $(i + 1) }'
}

# The machine is shared: a run that started or ended with a 1-minute load
# average above half the cores says its figures are provisional.
bench_provisional() {
	l1=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null)
	awk -v a="${BENCH_LOAD0:-0}" -v b="${l1:-0}" -v n="$(nproc)" 'BEGIN {
	    m = a > b ? a : b
	    if (m > n / 2)
		printf "**Provisional**: the load average was %s at the start " \
		    "and %s at the end on %d cores, so other processes took " \
		    "part of the CPUs; rerun on a quiet machine.\n", a, b, n }'
}

# Writes the section and puts it into bench/README.md between
# "<!-- bench:NAME -->" and "<!-- /bench:NAME -->", replacing an older
# result or appending under "## Results".
bench_end() {
	{
		echo "<!-- bench:$BENCH_NAME -->"
		echo "### $BENCH_NAME: $BENCH_TITLE"
		echo
		echo "Measured $BENCH_DATE on $BENCH_MACHINE."
		bench_provisional
		echo "Median of $BENCH_REPS alternating runs after one warm-up" \
		    "run each; \"ckpt/peer\" is ckpt's speed relative to the" \
		    "peer (above 1: ckpt is faster)."
		echo
		echo "| case | command | median | throughput | ckpt/peer |"
		echo "|---|---|--:|--:|--:|"
		cat "$BENCH_ROWS"
		if test -n "$BENCH_NOTES"; then
			echo
			printf '%s' "$BENCH_NOTES"
		fi
		echo "<!-- /bench:$BENCH_NAME -->"
	} >"$BENCH_SECTION"
	rm -f "$BENCH_ROWS"
	test -n "${BENCH_NO_README:-}" && return 0
	readme="$BENCH_DIR/README.md"
	awk -v name="$BENCH_NAME" -v sect="$BENCH_SECTION" '
	    function emit() { while ((getline l < sect) > 0) print l; done = 1 }
	    $0 == "<!-- bench:" name " -->" { skip = 1; emit(); next }
	    skip && $0 == "<!-- /bench:" name " -->" { skip = 0; next }
	    skip { next }
	    { print }
	    END { if (!done) { print ""; emit() } }' "$readme" >"$readme.new" &&
		mv "$readme.new" "$readme"
	echo "   results written to bench/README.md"
}
