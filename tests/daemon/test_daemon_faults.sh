#!/bin/sh
# test_daemon_faults.sh: a live move between two pvmigrated with a fault (link cut, target killed, daemon killed, record corrupted) at every protocol step: before the commit's GO the source runs on and the target holds nothing, after it exactly the target runs the guest; never two copies, never none; then a real move and the right checksum
#
# Usage: test_daemon_faults.sh PVMIGRATED PVMIGRATE PVGUEST GUEST_ELF WORKLOAD_REF
#
# The faults come from pvmigrated's test-only hook (daemon/fault_inject.h),
# read by each daemon from the file named by PVMIGRATED_TEST_FAULT_FILE
# when a migration starts: the target daemon B is restarted for each
# target-side fault; the source daemon A holds the guest all along, except
# after a fault that struck past the commit: then B has it, and it moves
# back to A without a fault before the matrix goes on.
set -u
pvmigrated=$1 pvmigrate=$2 pvguest=$3 guest=$4 ref=$5
. "$(dirname "$0")/lib.sh"

[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl to make the test certificates"; exit 77; }
command -v pgrep >/dev/null || { echo "SKIP: no pgrep"; exit 77; }

certs=$(dirname "$0")/../../scripts/tls-certs.sh
"$certs" "$T" ca a b || { echo "FAIL: openssl could not make the certificates"; exit 1; }

t0=$(date +%s)
base=$((20000 + $$ % 20000))
A=$T/a.sock B=$T/b.sock
PA=127.0.0.1:$base PB=127.0.0.1:$((base + 1))
# B's receivers run under their own name, so that pgrep finds exactly them
ln -s "$(realpath "$pvguest")" "$T/b-pvguest"
peer_conf a $base
peer_conf b $((base + 1))
echo "pvguest = $T/b-pvguest" >>"$T/b.conf"

# the hook refuses what it cannot read, before anything starts
out=$(PVMIGRATED_TEST_FAULT=melt@offer "$pvmigrated" --config "$T/b.conf" --check-config 2>&1)
[ $? = 2 ] && echo "$out" | grep -q "PVMIGRATED_TEST_FAULT=melt@offer: ACTION is" &&
	ok "a bad fault spec stops the daemon: $out" || fail "bad fault spec: $out"

: >"$T/a.fault"
export PVMIGRATED_TEST_FAULT_FILE="$T/a.fault"
start_daemon a --config "$T/a.conf"
unset PVMIGRATED_TEST_FAULT_FILE

nb=0 bname="" bfault=""
# start_b [SPEC]: a fresh target daemon, with the fault SPEC if given (in
# its fault file, emptied once the attempt is over: the move back is clean)
start_b() {
	if [ -n "$bname" ] && alive "$bname"; then
		kill "$(eval echo \$pid_$bname)"
		wait "$(eval echo \$pid_$bname)" 2>/dev/null
	fi
	nb=$((nb + 1))
	bname=b$nb
	bfault=${1:-}
	echo "${1:-}" >"$T/b.fault"
	export PVMIGRATED_TEST_FAULT_FILE="$T/b.fault"
	start_daemon "$bname" --config "$T/b.conf"
	unset PVMIGRATED_TEST_FAULT_FILE
}

# last_tick [SOCKET]: dom1's last progress line (on A unless told)
last_tick() {
	"$pvmigrate" --socket "${1:-$A}" console dom1 2>/dev/null | grep '^tick=' | tail -n 1
}

# progressing LAST [SOCKET]: dom1 makes progress (on A unless told): a
# progress line other than LAST
progressing() {
	i=0
	while [ $i -lt 40 ]; do
		[ "$(last_tick "${2:-$A}")" != "$1" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# gone SOCKET: that daemon has no dom1 (a runner that handed it on is forgotten once it ends)
gone() {
	i=0
	while [ $i -lt 50 ]; do
		[ "$(state "$1" dom1)" = none ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

b_guests() {
	"$pvmigrate" --socket "$B" list 2>&1 | tail -n +2 | tr -s ' \n' ' '
}

b_procs() {
	pgrep -f "$T/b-pvguest" | tr '\n' ' '
}

# B (or what is left of it) holds no guest and no receiver
b_empty() {
	i=0
	while [ $i -lt 50 ]; do
		if [ -z "$(b_procs)" ] && { ! alive "$bname" ||
			[ -z "$(b_guests)" ]; }; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ---- the guest ----
# 64 MiB keeps each attempt short.  The workload must outlast the matrix
# (about a second per combination) but not by much: a short run first
# measures how many steps this host does per second, and the guest is
# given about LIFE seconds of them.
life=110
if [ -z "${FAULT_GUEST_STEPS:-}" ]; then
	"$pvmigrate" --socket "$A" boot --name cal --vcpus 2 --memory 64M "$guest" seed=5 steps=20000 \
		>/dev/null || fail "boot the calibration guest"
	tc=$(date +%s.%N)
	wait_state "$A" cal exited 60 || fail "the calibration guest did not end"
	FAULT_GUEST_STEPS=$(awk "BEGIN { s = int(20000 * $life / ($(date +%s.%N) - $tc));
		print (s < 50000 ? 50000 : s > 5000000 ? 5000000 : s) }")
	"$pvmigrate" --socket "$A" destroy cal >/dev/null
fi
args="seed=5 steps=$FAULT_GUEST_STEPS"
echo "guest: $args (about $life s here)"
"$pvmigrate" --socket "$A" boot --vcpus 2 --memory 64M "$guest" $args >/dev/null || fail "boot on A"
wait_console "$A" dom1 "tick=" 30 || { fail "no progress on A"; finish; }

pass=0 moved=0
# expect SIDE SPEC: what the fault must end in.  stays: it struck before
# the target took GO (or the target refused or died before running the
# guest): the source runs on, B holds nothing.  moves: past the commit
# (the target took GO and runs the guest), only the OK was lost: B runs
# it, A destroyed its paused copy on asking B.  down: B died after GO;
# A asks it again every second while it is down, B comes back knowing
# nothing of the move (its receiver died with it): the source resumes.
expect() {
	case "$2" in
	cut@reply | corrupt@reply) echo moves ;;
	kill-daemon@go | kill-daemon@reply) echo down ;;
	*) echo stays ;;
	esac
}

# attempt SIDE SPEC: one migration with the fault SPEC on SIDE (source|target)
attempt() {
	side=$1 spec=$2
	want=$(expect "$side" "$spec")
	if [ "$(state "$A" dom1)" != running ]; then
		fail "dom1 on A is $(state "$A" dom1) before $spec on the $side: the workload ended" \
			"before the matrix (raise FAULT_GUEST_STEPS)"
		finish
	fi
	ta=$(date +%s.%N)
	if [ "$side" = target ]; then
		start_b "$spec"
	else
		# a target without a fault of its own
		{ alive "$bname" && [ -z "$bfault" ]; } || start_b
		echo "$spec" >"$T/a.fault"
	fi
	before=$(last_tick)
	what="$spec on the $side"
	bad=0
	if [ "$want" = down ]; then
		"$pvmigrate" --socket "$A" --from native --to native --dest "$PB" dom1 >"$T/out" 2>&1 &
		mp=$!
		i=0
		while alive "$bname" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
		alive "$bname" && fail "$what: B did not die"
		# A holds the guest paused and keeps asking the dead B
		sleep 2
		st=$("$pvmigrate" --socket "$A" status dom1 2>&1)
		echo "$st" | grep -q "paused: outcome of the move to $PB unknown, asking" ||
			{ fail "$what: while B is down, A's status does not say it asks: $st"; bad=1; }
		[ -z "$(b_procs)" ] || { fail "$what: B's receiver outlived B: $(b_procs)"; bad=1; }
		tb=$(date +%s.%N)
		start_b # the same port and certificates, nothing of the move
		wait $mp
		rc=$?
		out=$(cat "$T/out")
		echo "A resolved $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $tb }") s after B came back"
	else
		out=$("$pvmigrate" --socket "$A" --from native --to native --dest "$PB" dom1 2>&1)
		rc=$?
	fi
	: >"$T/a.fault"
	: >"$T/b.fault"
	[ "$side" = source ] || grep -q "armed for this migration (target): $spec" "$T/$bname.log" ||
		grep -q "armed for this migration (target): $spec" "$T/b$((nb - 1)).log" 2>/dev/null ||
		{ fail "$what: B never armed the fault"; bad=1; }
	# a corrupted message must be refused by its reader, and say so
	case $spec in
	corrupt@offer) want_msg="refused: peer request" ;;
	corrupt@accept) want_msg="peer response" ;;
	corrupt@header) want_msg="refused: .*STREAM_HEADER: bad magic" ;;
	corrupt@pages) want_msg="refused: .*PAGE_BATCH: reserved word" ;;
	corrupt@machine) want_msg="refused: .*MACHINE_STATE: reserved flags" ;;
	corrupt@stats) want_msg="refused: .*STATISTICS: reserved flags" ;;
	corrupt@end) want_msg="refused: .*END: reserved flags" ;;
	corrupt@ready) want_msg="garbled reply from the target" ;;
	corrupt@go) want_msg="refused: .*garbled reply from the source" ;;
	corrupt@reply) want_msg="garbled reply" ;;
	*) want_msg= ;;
	esac
	[ -z "$want_msg" ] || echo "$out" | grep -q "$want_msg" ||
		{ fail "$what: the reader's refusal ('$want_msg') is not in: $out"; bad=1; }
	alive a || { fail "$what: daemon A died"; finish; }
	if [ "$want" = moves ]; then
		# exactly one copy: B runs dom1 and progresses, A's is destroyed
		[ $rc = 0 ] || { fail "$what: past the commit, yet pvmigrate says rc $rc: $out"; bad=1; }
		echo "$out" | grep -q "note: the target's confirmation was lost .*confirmed it runs" ||
			{ fail "$what: pvmigrate does not say the OK was lost and B confirmed: $out"; bad=1; }
		wait_state "$B" dom1 running 10 || { fail "$what: B's dom1 is $(state "$B" dom1)"; bad=1; }
		bt=$(last_tick "$B")
		progressing "$bt" "$B" || { fail "$what: B's dom1 makes no progress"; bad=1; }
		gone "$A" || { fail "$what: A still has dom1 ($(state "$A" dom1)): two copies"; bad=1; }
		[ -z "$(pgrep -f "$T/b-pvguest" | sed -n 2p)" ] ||
			{ fail "$what: B runs more than one guest process: $(b_procs)"; bad=1; }
		if [ $bad = 0 ]; then
			pass=$((pass + 1))
			moved=$((moved + 1))
			ok "$what ($(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $ta }") s): moved, one copy on B: $(echo "$out" | tail -n 1)"
		fi
		# back to A, without a fault, for the rest of the matrix
		back=$("$pvmigrate" --socket "$B" --from native --to native --dest "$PA" dom1 2>&1) ||
			{ fail "$what: moving dom1 back B -> A: $back"; finish; }
		wait_state "$A" dom1 running 10 || { fail "back on A: dom1 is $(state "$A" dom1)"; finish; }
		b_empty || fail "after moving back: B holds '$(b_guests)', processes '$(b_procs)'"
		return
	fi
	if [ $rc = 0 ]; then
		fail "$what: the move succeeded: $out"
		finish # the guest left A: nothing after this would mean anything
	fi
	echo "$out" | grep -qiE "frozen|fail|refus|cut|closed|garbage|garbled|reply|answer" ||
		{ fail "$what: rc $rc, the message names no failure: $out"; bad=1; }
	if [ "$want" = down ]; then
		echo "$out" | grep -q "says the guest does not run there.*resumed and runs on here" ||
			{ fail "$what: pvmigrate does not say B denied it and A resumed: $out"; bad=1; }
	fi
	st=$(state "$A" dom1)
	[ "$st" = running ] || { fail "$what: A's dom1 is $st"; bad=1; }
	progressing "$before" || { fail "$what: A's dom1 makes no progress (last: $(last_tick))"; bad=1; }
	case $spec in
	kill-daemon@*)
		[ "$want" = down ] || ! alive "$bname" || { fail "$what: B is still alive"; bad=1; } ;;
	*)
		alive "$bname" || { fail "$what: daemon B died"; bad=1; } ;;
	esac
	# never two copies: B has none, and no process left that could run one
	b_empty || { fail "$what: B holds '$(b_guests)', processes '$(b_procs)': two copies"; bad=1; }
	if [ $bad = 0 ]; then
		pass=$((pass + 1))
		ok "$what ($(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $ta }") s): rc $rc: $(echo "$out" | tail -n 1)"
	fi
}

# (the three variables narrow the matrix by hand, when hunting one case)
steps=${FAULT_STEP_LIST:-offer accept header pages machine stats end ready go reply}
total=0
for action in ${FAULT_TARGET_ACTIONS-cut corrupt kill-target kill-daemon}; do
	for step in $steps; do
		attempt target "$action@$step"
		total=$((total + 1))
	done
done
for action in ${FAULT_SOURCE_ACTIONS-cut corrupt}; do
	for step in $steps; do
		attempt source "$action@$step"
		total=$((total + 1))
	done
done
echo "fault matrix: $pass of $total combinations held ($moved past the commit: moved, one copy)," \
	"$(($(date +%s) - t0)) s so far"
[ $pass = $total ] || fail "$((total - pass)) combinations did not hold"

# ---- the real move, and the workload intact ----
start_b
want=$("$ref" $args)
out=$("$pvmigrate" --socket "$A" --from native --to native --dest "$PB" dom1 2>&1)
[ $? = 0 ] && ok "A -> B without a fault: $out" || fail "A -> B: $out"
wait_state "$B" dom1 exited 240 || fail "dom1 did not end on B: $(state "$B" dom1)"
got=$("$pvmigrate" --socket "$B" console dom1 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "checksum after $total failed moves and one real one: $got" ||
	fail "got '$got', want '$want'"
alive a || fail "daemon A died"
echo "total $(($(date +%s) - t0)) s"
[ -z "${FAULT_SHOW_LOGS:-}" ] || tail -n +1 "$T"/*.log
finish
