# SPDX-License-Identifier: MIT
#
# lib-rgw.sh - for tests that need a real S3 server: sourced after lib.sh,
# it starts a Ceph RADOS Gateway on loopback (scripts/rgw) for the whole
# script, exports its AWS_* environment and stops it when the script ends.
# Without the Ceph packages it installs them (scripts/rgw install); only
# when that is impossible does the script skip, saying why.
#
#   rgw_proxy_start NAME RULE...   a fault-injecting proxy in front of the
#                                  gateway (tests/helper/s3-fault-proxy.py);
#                                  sets PROXY_URL, logs to NAME.log
#   rgw_proxy_stop NAME            stops it by its recorded pid
#   wait_for FILE PATTERN [SECONDS]  until FILE has a line matching
#                                  PATTERN (default 20 s; fails if it never
#                                  does), e.g. a proxy log's request line

RGW_SCRIPT="$SRC_DIRECTORY/scripts/rgw"

_rgw_stop() {
	for _p in "$TRASH_DIRECTORY"/*.proxy.pid; do
		test -f "$_p" && kill "$(cat "$_p")" 2>/dev/null
	done
	if test -n "${RGW_DIR:-}" && test -f "$RGW_DIR/ceph.conf"; then
		"$RGW_SCRIPT" stop "$RGW_DIR" >&2
	fi
}

if ! _why=$("$RGW_SCRIPT" install 2>&1); then
	say "1..0 # SKIP Ceph RGW packages missing and not installable:" \
	    "$(printf '%s' "$_why" | tail -n 1)"
	exit 0
fi
# A short path: Ceph's admin sockets must fit in sun_path.
RGW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-rgw.XXXXXX") || exit 1
trap _rgw_stop EXIT
trap 'exit 1' INT TERM HUP
if ! "$RGW_SCRIPT" start "$RGW_DIR" >"$TRASH_DIRECTORY/rgw.env" \
    2>"$TRASH_DIRECTORY/rgw.err"; then
	say "Bail out! scripts/rgw start failed: $(tail -n 3 \
	    "$TRASH_DIRECTORY/rgw.err")"
	exit 1
fi
. "$TRASH_DIRECTORY/rgw.env"
BUCKET=$CKPT_RGW_BUCKET
RGW_PORT=${AWS_ENDPOINT_URL##*:}

rgw_proxy_start() {
	_name=$1
	shift
	rm -f "$TRASH_DIRECTORY/$_name.port"
	"$PYTHON" "$SRC_DIRECTORY/tests/helper/s3-fault-proxy.py" "$RGW_PORT" \
	    "$TRASH_DIRECTORY/$_name.port" "$TRASH_DIRECTORY/$_name.log" "$@" \
	    2>>"$TRASH_DIRECTORY/$_name.err" &
	echo $! >"$TRASH_DIRECTORY/$_name.proxy.pid"
	_n=0
	while ! test -s "$TRASH_DIRECTORY/$_name.port"; do
		_n=$((_n + 1))
		test $_n -lt 100 || { echo "proxy $_name did not start" >&2;
			return 1; }
		sleep 0.1
	done
	PROXY_URL="http://127.0.0.1:$(cat "$TRASH_DIRECTORY/$_name.port")"
}

rgw_proxy_stop() {
	_p="$TRASH_DIRECTORY/$1.proxy.pid"
	if test -f "$_p"; then
		kill "$(cat "$_p")" 2>/dev/null
		rm -f "$_p"
	fi
	return 0
}

wait_for() {
	_n=0
	while ! grep -q "$2" "$1" 2>/dev/null
	do
		_n=$((_n + 1))
		test $_n -lt $((${3:-20} * 10)) || return 1
		sleep 0.1
	done
}
