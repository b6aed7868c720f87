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

# peer_conf NAME PORT|- [CA]: $T/NAME.conf for a daemon with mutual TLS:
# its socket, a listener on 127.0.0.1:PORT (- for none), the certificates
# scripts/tls-certs.sh made in $T for NAME, and CA's (default ca) as the
# one it trusts; callers append what else they need
peer_conf() {
	{
		echo "socket = $T/$1.sock"
		[ "$2" = - ] || echo "listen = 127.0.0.1:$2"
		echo "tls_cert = $T/$1.crt"
		echo "tls_key = $T/$1.key"
		echo "tls_ca = $T/${3:-ca}.crt"
	} >"$T/$1.conf"
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

# ---- a guest whose NIC talks to frame_peer (its --status in $T/peer.status) ----

# wait_listening LOG SECONDS: frame_peer, its output in LOG, listens
wait_listening() {
	i=0
	while [ $i -lt $(($2 * 10)) ]; do
		grep -q listening "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# echoes: frames back so far
echoes() {
	sed -n 's/.*back \([0-9]*\).*/\1/p' "$T/peer.status" 2>/dev/null | grep . || echo 0
}

# wait_echoes N SECONDS: at least N frames back
wait_echoes() {
	i=0
	while [ "$(echoes)" -lt "$1" ] && [ $i -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$(echoes)" -ge "$1" ]
}

# ticks SOCKET GUEST: how many progress lines the guest printed
ticks() {
	"$pvmigrate" --socket "$1" console "$2" 2>/dev/null | grep -c 'tick='
}

# progressing SOCKET GUEST SECONDS: a new tick line and new echoes within
# SECONDS; else says what it saw
progressing() {
	t0=$(ticks "$1" "$2") e0=$(echoes) i=0
	while [ $i -lt $(($3 * 10)) ]; do
		[ "$(ticks "$1" "$2")" -gt "$t0" ] && [ "$(echoes)" -gt "$e0" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "no progress in $3 s: ticks $t0 -> $(ticks "$1" "$2"), echoes $e0 -> $(echoes)"
	return 1
}

# stop_peer PID NOTE: stop frame_peer (PID, its output in $T/peer.log):
# every frame back exactly once, intact; ok names its line matching NOTE
stop_peer() {
	touch "$T/peer.stop"
	wait "$1"
	prc=$?
	summary=$(grep '^sent ' "$T/peer.log")
	echo "$summary" | grep -Eq '^sent ([0-9]+) back \1 bad 0 dup 0$' && [ $prc = 0 ] &&
		ok "frames: $summary ($(grep "$2" "$T/peer.log"))" ||
		fail "frames: rc $prc: $(cat "$T/peer.log")"
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
