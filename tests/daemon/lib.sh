# lib.sh: what the daemon tests share: a temporary directory, daemons started and stopped, checks that count failures
# Sourced by test_daemon.sh and test_daemon_migrate.sh; expects $pvmigrated and $pvmigrate.

fails=0
T=$(mktemp -d /tmp/pvmigrated-test.XXXXXX)
daemons=""

cleanup() {
	for p in $daemons; do
		kill "$p" 2>/dev/null
	done
	for p in $daemons; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
# A signal exits (meson's timeout sends TERM); the exit runs the cleanup once.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

ok() {
	echo "ok: $*"
}

# start_daemon NAME ARGS...: pvmigrated with its log in $T/NAME.log; waits for its socket
start_daemon() {
	name=$1
	shift
	"$pvmigrated" "$@" >"$T/$name.log" 2>&1 &
	daemons="$daemons $!"
	eval "pid_$name=$!"
	i=0
	while [ $i -lt 100 ]; do
		if grep -q "control socket" "$T/$name.log" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$(eval echo \$pid_$name)" 2>/dev/null; then
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "FAIL: pvmigrated $name did not start:"
	cat "$T/$name.log"
	exit 1
}

# alive NAME: the daemon is still running
alive() {
	kill -0 "$(eval echo \$pid_$1)" 2>/dev/null
}

# state SOCKET GUEST: the guest's state word, or "none"
state() {
	"$pvmigrate" --socket "$1" --json status "$2" 2>/dev/null |
		sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' | grep . || echo none
}

# wait_state SOCKET GUEST STATE SECONDS
wait_state() {
	i=0
	while [ $i -lt $(($4 * 10)) ]; do
		[ "$(state "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_console SOCKET GUEST TEXT SECONDS: the guest printed TEXT
wait_console() {
	i=0
	while [ $i -lt $(($4 * 10)) ]; do
		"$pvmigrate" --socket "$1" console "$2" 2>/dev/null | grep -q "$3" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

finish() {
	if [ "$fails" -ne 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "--- $f"
			tail -n 30 "$f"
		done
		echo "$fails failed"
		exit 1
	fi
	exit 0
}
