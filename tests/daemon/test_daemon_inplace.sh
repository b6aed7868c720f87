#!/bin/sh
# test_daemon_inplace.sh: in-place moves on one pvmigrated (RAM shared, not copied): native -> native three times, then native -> kvm -> native -> kvm -> kvm (runtime upgrade) -> native, each time the right checksum at the end; refusals, and a receiver that dies or fails before or after the commit, leave the guest running
#
# Usage: test_daemon_inplace.sh PVMIGRATED PVMIGRATE GUEST_ELF WORKLOAD_REF RUNTIME_ELF
set -u
pvmigrated=$1 pvmigrate=$2 guest=$3 ref=$4 runtime=$5
. "$(dirname "$0")/lib.sh"

[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }

S=$T/control
export PVGUEST_TEST_FAULT_FILE="$T/fault" # test-only fault hook of the receivers (below)
start_daemon d --socket "$S"
C() { "$pvmigrate" --socket "$S" "$@"; }

# field GUEST NAME: a member of the guest's status (--json)
field() {
	C --json status "$1" 2>/dev/null | sed -n "s/.*\"$2\":\"*\([^,\"]*\).*/\1/p"
}

# progress GUEST: the guest prints a tick it had not printed before SECONDS ago
progress() {
	before=$(C console "$1" 2>/dev/null | grep -c 'tick=')
	i=0
	while [ $i -lt $(($2 * 10)) ]; do
		[ "$(C console "$1" 2>/dev/null | grep -c 'tick=')" -gt "$before" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# move GUEST FROM TO [--runtime FILE]: one in-place move that must work
move() {
	g=$1 from=$2 to=$3
	shift 3
	pid=$(field "$g" pid)
	out=$(C --json "$@" --from "$from" --to "$to" "$g" 2>&1)
	rc=$?
	if [ $rc != 0 ]; then
		fail "$g: $from -> $to in place: rc $rc: $(echo "$out" | tail -n 1)"
		return 1
	fi
	echo "$out" | grep -q "\"result\":{\"downtime_us\":[0-9]*,\"total_us\":[0-9]*,\"bytes\":[0-9]*,.*\"dest_guest\":\"$g\",\"personality\":\"$to\"" ||
		fail "$g: $from -> $to: result: $(echo "$out" | tail -n 1)"
	echo "$out" | grep -q '"progress":{"phase":"precopy"' || fail "$g: $from -> $to: no progress"
	# the real stop after the OK: 0 on native (it runs at once), the
	# runtime's adopt (> 0) on kvm; missing is a failure either way
	resume=$(echo "$out" | sed -n 's/.*"result":.*"resume_ns":\([0-9]*\).*/\1/p')
	case "$to:$resume" in
	native:0) ;;
	kvm:[1-9]*) ok "$g: $from -> $to: the guest ran again $resume ns after the OK" ;;
	*) fail "$g: $from -> $to: resume_ns '$resume' (native: 0, kvm: > 0): $(echo "$out" | tail -n 1)" ;;
	esac
	echo "$out" | grep -q '"ram":"shared"' || fail "$g: $from -> $to: the RAM was not shared"
	[ "$(field "$g" personality)" = "$to" ] && [ "$(field "$g" state)" = running ] &&
		[ "$(field "$g" runner)" = pvguest ] ||
		fail "$g after $from -> $to: $(C --json status "$g")"
	[ "$(field "$g" pid)" != "$pid" ] || fail "$g: $from -> $to: still pid $pid"
	# the old runner ends its stale copy and goes (the daemon kills it after 5 s)
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$pid" 2>/dev/null && fail "$g: $from -> $to: the old runner $pid is still there"
	grep -q "old runner (pid $pid)" "$T/d.log" &&
		fail "$g: $from -> $to: $(grep "old runner (pid $pid)" "$T/d.log")"
	progress "$g" 20 || fail "$g: no progress on $to after the move"
	ok "$g: $from -> $to in place: $(echo "$out" | tail -n 1)"
}

# finished GUEST WANT: the guest ends by itself with the reference checksum
finished() {
	wait_state "$S" "$1" exited 120 || fail "$1 did not end within 120 s: $(C status "$1")"
	got=$(C console "$1" 2>/dev/null | grep '^workload:')
	[ "$got" = "$2" ] && ok "$1: checksum after the moves: $got" || fail "$1: got '$got', want '$2'"
	[ "$(field "$1" exit_status)" = 0 ] || fail "$1: exit status $(field "$1" exit_status)"
	C console "$1" 2>/dev/null | grep -q "guest: reference kernel up" &&
		ok "$1: the console kept its beginning" || fail "$1: the console lost its beginning"
}

# ---- native -> native, three times, while the workload runs ----
args="seed=3 steps=40000"
want=$("$ref" $args)
C boot --name nn --vcpus 2 --memory 128M "$guest" $args >/dev/null || fail "boot nn"
wait_console "$S" nn "tick=" 30 || fail "nn printed no progress"
for n in 1 2 3; do
	move nn native native || break
done
[ "$(C console nn 2>/dev/null | grep -c 'moved in place: native -> native')" = 3 ] ||
	fail "nn: the console does not mark three moves"

# ---- refusals and a receiver that fails: nothing is frozen, the guest runs on ----
err=$(C --from kvm --to native nn 2>&1)
[ $? = 2 ] && echo "$err" | grep -q "runs on native, not kvm" && ok "wrong --from: $err" ||
	fail "wrong --from: $err"
err=$(C --from native --to l4 nn 2>&1)
[ $? = 4 ] && ok "to l4: $err" || fail "to l4: $err"
err=$(C --from native --to native --runtime "$runtime" nn 2>&1)
[ $? = 2 ] && ok "--runtime to native: $err" || fail "--runtime to native: $err"
echo "not an ELF" >"$T/bad.elf"
err=$(C --from native --to kvm --runtime "$T/bad.elf" nn 2>&1)
[ $? = 1 ] && echo "$err" | grep -q "nothing was frozen" && ok "bad runtime: $err" ||
	fail "bad runtime: $err"
[ "$(field nn state)" = running ] && [ "$(field nn personality)" = native ] &&
	progress nn 20 && ok "nn runs on after the refusals" || fail "nn after the refusals: $(C status nn)"
finished nn "$want"

# ---- the receiver fails or dies during the commit of a shared-RAM move ----
# (pvguest's test hook, PVGUEST_TEST_FAULT_FILE: read by each receiver as it
# starts).  kill@ready: killed after READY, before GO: the RAM was never
# touched.  kill@repatched / fail@repatched: after GO, with the shared RAM's
# sites already rewritten to kvm: the source must put every site back to
# native and resume.  Each time the guest runs on, on native, and ends with
# the right checksum.
args="seed=2 steps=60000 fill=160M"
want=$("$ref" $args)
C boot --name big --vcpus 2 --memory 256M "$guest" $args >/dev/null || fail "boot big"
wait_console "$S" big "tick=" 60 || fail "big printed no progress"
for f in kill@ready kill@repatched fail@repatched; do
	echo "$f" >"$T/fault"
	err=$(C --from native --to kvm big 2>&1)
	rc=$?
	rm -f "$T/fault"
	[ $rc = 1 ] && echo "$err" | grep -q "failed: .*was resumed, still on native" &&
		ok "receiver $f: $err" || fail "receiver $f: rc $rc: $err"
	[ "$(field big state)" = running ] && [ "$(field big personality)" = native ] &&
		progress big 20 && ok "big runs on, on native, after $f" ||
		fail "big after $f: $(C status big)"
done
n=$(C console big 2>/dev/null | grep -c "sites held the target's bytes: put back")
[ "$n" = 2 ] && ok "big: the sites were put back after both faults past the commit" ||
	fail "big: $n site restores reported, want 2: $(C console big | grep pvguest | tail -5)"
move big native kvm
finished big "$want"

# ---- a receiver that goes silent after GO (stop@repatched): the source
# waits for it without a timeout of its own; the daemon ends it after
# migrate_timeout_ms, and the source puts its sites back and resumes ----
printf 'socket = %s\nmigrate_timeout_ms = 3000\n' "$T/control2" >"$T/d2.conf"
start_daemon d2 --config "$T/d2.conf"
C2() { "$pvmigrate" --socket "$T/control2" "$@"; }
args="seed=6 steps=30000"
want=$("$ref" $args)
C2 boot --name st --vcpus 2 --memory 128M "$guest" $args >/dev/null || fail "boot st"
wait_console "$T/control2" st "tick=" 30 || fail "st printed no progress"
echo stop@repatched >"$T/fault"
err=$(C2 --from native --to kvm st 2>&1)
rc=$?
rm -f "$T/fault"
[ $rc = 1 ] && echo "$err" | grep -q "was resumed, still on native" &&
	grep -q "st: in place native -> kvm: the receiver has not finished within 3000 ms" "$T/d2.log" &&
	ok "silent receiver after GO: ended by the daemon: $err" || fail "silent receiver: rc $rc: $err"
wait_state "$T/control2" st exited 120 || fail "st did not end: $(C2 status st)"
got=$(C2 console st 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "st: checksum after the silent receiver: $got" ||
	fail "st: got '$got', want '$want'"

# ---- a guest booted on kvm (runtime booted, not adopted) runs in pvguest and moves ----
args="seed=1 steps=20000"
want=$("$ref" $args)
out=$(C boot --personality kvm --name kb --vcpus 2 --memory 128M "$guest" $args) &&
	ok "kvm boot: $out" || fail "kvm boot: $out"
C list | grep -q '^kb .* running .* kvm ' && [ "$(field kb runner)" = pvguest ] &&
	ok "list and status: kb on kvm under pvguest" || fail "kb: $(C --json status kb)"
wait_console "$S" kb "tick=" 30 || fail "kb printed no progress"
out=$(C --from kvm --to native kb 2>&1)
[ $? = 0 ] && echo "$out" | grep -q "^moved in place: kb now runs on native: downtime [0-9.]* ms, total [0-9.]* ms, RAM shared (0 pages sent" &&
	ok "kb: $out" || fail "kb: kvm -> native: $out"
finished kb "$want"

# ---- between personalities: native -> kvm -> native -> kvm -> kvm (upgrade) -> native ----
cp "$runtime" "$T/pvruntime-kvm-next.elf" # a "new build" of the runtime
args="seed=5 steps=90000"
want=$("$ref" $args)
C boot --name px --vcpus 2 --memory 128M "$guest" $args >/dev/null || fail "boot px"
wait_console "$S" px "tick=" 30 || fail "px printed no progress"
move px native kvm &&
	move px kvm native &&
	move px native kvm &&
	move px kvm kvm --runtime "$T/pvruntime-kvm-next.elf" &&
	move px kvm native
finished px "$want"

alive d || fail "the daemon died"
finish
