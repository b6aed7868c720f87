#!/bin/sh
# test_daemon_repeat.sh: one guest with its NIC streaming frames moves in place native -> kvm -> native ROUNDS times in a row on one pvmigrated; after each move it runs and progresses, at the end no frame was lost, duplicated or damaged and the workload's checksum is the reference one
#
# Usage: test_daemon_repeat.sh PVMIGRATED PVMIGRATE GUEST_ELF WORKLOAD_REF RUNTIME_ELF FRAME_PEER
# PVMIGRATE_REPEAT_ROUNDS (default 20): round trips, two moves each.
set -u
pvmigrated=$1 pvmigrate=$2 guest=$3 ref=$4 runtime=$5 frame_peer=$6
. "$(dirname "$0")/lib.sh"

[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }

rounds=${PVMIGRATE_REPEAT_ROUNDS:-20}
moves=$((rounds * 2))
tries_max=3 # a move the target refuses (the source resumes, nothing lost) is tried again
# The workload must outlive the moves: a vCPU whose stream is done halts
# with interrupts off, which a move cannot carry yet.  The boot vCPU takes
# the NIC's interrupts (the echo runs in its kernel), so its stream is the
# slow one; the peer's --rate keeps that within about 2x of the other.
args="seed=11 steps=${PVMIGRATE_REPEAT_STEPS:-400000}"
want=$("$ref" $args)

S=$T/control
# the receivers of kvm moves load this runtime (pvguest: $PVMIGRATE_RUNTIME)
export PVMIGRATE_RUNTIME="$runtime"
start_daemon d --socket "$S"
C() { "$pvmigrate" --socket "$S" "$@"; }

field() {
	C --json status "$1" 2>/dev/null | sed -n "s/.*\"$2\":\"*\([^,\"]*\).*/\1/p"
}

# workload_at GUEST: "steps=K" of the guest's last progress line
workload_at() {
	C console "$1" 2>/dev/null | grep 'tick=' | tail -n 1 | sed -n 's/.*\(steps=[0-9]*\).*/\1/p'
}

: >"$T/downtimes"
retried=0
done_moves=0

# move N FROM TO: one in-place move of rp that must work (refusals retried)
move() {
	n=$1 from=$2 to=$3 try=1
	pid=$(field rp pid)
	while :; do
		out=$(C --from "$from" --to "$to" rp 2>&1)
		rc=$?
		[ $rc = 0 ] && break
		# refused with the guest resumed where it was: nothing lost, try again
		if echo "$out" | grep -q "was resumed, still on $from" && [ $try -lt $tries_max ] &&
			[ "$(field rp personality)" = "$from" ] && [ "$(field rp state)" = running ]; then
			echo "note: move $n/$moves $from -> $to, try $try refused, the guest was resumed: $out"
			retried=$((retried + 1))
			try=$((try + 1))
			continue
		fi
		fail "move $n/$moves $from -> $to: rc $rc: $out"
		echo "$out" | grep -q "halted with interrupts off" &&
			echo "(a workload stream ended before the moves did: raise PVMIGRATE_REPEAT_STEPS)"
		return 1
	done
	down=$(echo "$out" | sed -n 's/.*downtime \([0-9.]*\) ms.*/\1/p')
	total=$(echo "$out" | sed -n 's/.*total \([0-9.]*\) ms.*/\1/p')
	[ -n "$down" ] || { fail "move $n: no downtime in '$out'"; return 1; }
	echo "$down" >>"$T/downtimes"
	[ "$(field rp personality)" = "$to" ] && [ "$(field rp state)" = running ] &&
		[ "$(field rp pid)" != "$pid" ] ||
		{ fail "move $n: after $from -> $to: $(C --json status rp)"; return 1; }
	why=$(progressing "$S" rp 30) || { fail "move $n: on $to: $why"; return 1; }
	done_moves=$((done_moves + 1))
	echo "move $n/$moves $from -> $to: downtime $down ms, total $total ms, try $try," \
		"at $(($(date +%s) - t_start)) s: echoes $(echoes), workload $(workload_at rp)"
}

# ---- the peer, the guest, and frames flowing ----
"$frame_peer" --window 8 --rate ${PVMIGRATE_REPEAT_RATE:-100} --status "$T/peer.status" --stop-file "$T/peer.stop" --drain 30 \
	"$T/nic.sock" >"$T/peer.log" 2>&1 &
peer=$!
wait_listening "$T/peer.log" 5 || fail "frame_peer did not listen: $(cat "$T/peer.log")"
out=$(C boot --name rp --vcpus 2 --memory 256M --net "socket:$T/nic.sock" "$guest" $args) &&
	ok "boot: $out" || { fail "boot: $out"; kill $peer; finish; }
[ "$(field rp state)" = running ] || fail "rp: $(C status rp)"
wait_console "$S" rp "dp83820: up" 60 || fail "rp: its NIC driver did not come up"
wait_echoes 100 30 && ok "frames flow: $(cat "$T/peer.status")" ||
	fail "no echoes from the guest: $(cat "$T/peer.status" 2>/dev/null)"

# ---- ROUNDS x (native -> kvm -> native), in place ----
t_start=$(date +%s)
r=1
while [ $r -le $rounds ] && [ $fails = 0 ]; do
	move $((2 * r - 1)) native kvm && move $((2 * r)) kvm native
	r=$((r + 1))
done
t_moves=$(($(date +%s) - t_start))
[ $done_moves = $moves ] && ok "$moves in-place moves ($rounds x native -> kvm -> native) in" \
	"$t_moves s, $retried refused tries retried" ||
	fail "only $done_moves of $moves moves done"
grep -q "opened its own" "$T/peer.log" && fail "a runner connected to the NIC socket itself"

# ---- stop the peer: every frame back exactly once, intact ----
stop_peer $peer 'longest silence'

# ---- the guest ends by itself with the reference checksum ----
wait_state "$S" rp exited 240 || fail "rp did not end within 240 s: $(C status rp)"
got=$(C console rp 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "rp: checksum after $done_moves moves: $got" ||
	fail "rp: got '$got', want '$want'"
[ "$(field rp exit_status)" = 0 ] || fail "rp: exit status $(field rp exit_status)"
[ "$(C console rp 2>/dev/null | grep -c 'moved in place:')" = "$done_moves" ] ||
	fail "rp: the console does not mark $done_moves moves"

# ---- downtimes ----
# stats: "N moves, min A ms, median B ms, max C ms" of the numbers on stdin
stats() {
	sort -n | awk '{ d[NR] = $1 } END { if (NR) printf "%d moves, min %.3f ms, median %.3f ms, max %.3f ms\n",
		NR, d[1], NR % 2 ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2, d[NR] }'
}
echo "downtime, all: $(stats <"$T/downtimes")"
echo "downtime, native -> kvm: $(awk 'NR % 2 == 1' "$T/downtimes" | stats)"
echo "downtime, kvm -> native: $(awk 'NR % 2 == 0' "$T/downtimes" | stats)"
echo "frames echoed: $(echoes) (through $done_moves moves)"
C destroy rp >/dev/null 2>&1
alive d || fail "the daemon died"
finish
