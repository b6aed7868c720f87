#!/bin/sh
# test_daemon_migrate.sh: live migration between two pvmigrated on this machine over mutual TLS: there as kvm and back as native with the right checksum, then round trips of a 256 MiB guest (1, or PVMIGRATE_ROUNDS); an uncertified peer moves nothing
#
# Usage: test_daemon_migrate.sh PVMIGRATED PVMIGRATE GUEST_ELF WORKLOAD_REF
set -u
pvmigrated=$1 pvmigrate=$2 guest=$3 ref=$4
. "$(dirname "$0")/lib.sh"

[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl to make the test certificates"; exit 77; }

# A CA for the cluster, a certificate per daemon; a rogue CA and a
# daemon whose certificate it signed (well-formed, but not ours).
certs=$(dirname "$0")/../../scripts/tls-certs.sh
"$certs" "$T" ca a b && "$certs" "$T" rogue-ca r ||
	{ echo "FAIL: openssl could not make the certificates"; exit 1; }

base=$((20000 + $$ % 20000))
peer_conf a $base ca
peer_conf b $((base + 1)) ca
peer_conf r - ca # trusts our CA, but its own certificate is the rogue CA's
start_daemon a --config "$T/a.conf"
start_daemon b --config "$T/b.conf"
start_daemon r --config "$T/r.conf"
A=$T/a.sock B=$T/b.sock R=$T/r.sock
PA=127.0.0.1:$base PB=127.0.0.1:$((base + 1))

# ---- there (native -> kvm: B installs its runtime beneath the guest) and
# back (kvm -> native) while the workload runs ----
args="seed=3 steps=20000"
want=$("$ref" $args)
"$pvmigrate" --socket "$A" boot --vcpus 2 --memory 128M "$guest" $args >/dev/null || fail "boot on A"
wait_console "$A" dom1 "tick=" 30 || fail "no progress on A"
out=$("$pvmigrate" --socket "$A" --from native --to kvm --dest "$PB" dom1 2>&1)
[ $? = 0 ] && ok "A -> B, native -> kvm: $out" || fail "A -> B: $out"
wait_state "$B" dom1 running 10 && ok "B runs dom1" || fail "B: dom1 is $(state "$B" dom1)"
"$pvmigrate" --socket "$B" status dom1 | grep -q '^personality: *kvm' &&
	ok "B runs it on kvm" || fail "B: $("$pvmigrate" --socket "$B" status dom1)"
# A's copy is discarded once its runner has ended it
wait_state "$A" dom1 none 10 && ok "A forgot dom1" || fail "A still has dom1: $(state "$A" dom1)"
sleep 0.5
out=$("$pvmigrate" --socket "$B" --json --from kvm --to native --dest "$PA" dom1 2>&1)
echo "$out" | grep -q '"result":{"downtime_us":[0-9]*,.*"dest_guest":"dom1"' &&
	echo "$out" | grep -q '"progress"' && ok "B -> A (--json): $(echo "$out" | tail -n 1)" ||
	fail "B -> A: $out"
wait_state "$A" dom1 exited 120 || fail "dom1 did not end on A within 120 s"
got=$("$pvmigrate" --socket "$A" console dom1 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "checksum after A -> B (kvm) -> A (native): $got" ||
	fail "got '$got', want '$want'"
"$pvmigrate" --socket "$A" --json status dom1 | grep -q '"exit_status":0' || fail "exit status"
"$pvmigrate" --socket "$A" console dom1 2>/dev/null | grep -q "guest: reference kernel up" &&
	ok "the console history came along" || fail "the console lost its beginning"
[ "$(grep -c 'reference kernel up' "$T/b.log")" = 0 ] || fail "B booted the guest itself"

# ---- round trips A (native) -> B (kvm) -> A (native), 2 vCPUs, 256 MiB
# (PVMIGRATE_ROUNDS, default 1) ----
# 1 in CI: daemon-net-migrate runs the issue's 20 round trips (the same
# moves, with frames echoed through the NIC).  A kvm state save that timed
# out at the freeze (1 move in ~20 here) was the runtime waiting for a CPU
# spinning on a lock with interrupts off; runtime-kvm-freeze guards it.
rounds=${PVMIGRATE_ROUNDS:-1}
args="seed=12 steps=${PVMIGRATE_ROUND_STEPS:-150000}"
want=$("$ref" $args)
"$pvmigrate" --socket "$A" boot --name rt --vcpus 2 --memory 256M "$guest" $args >/dev/null ||
	fail "boot rt on A"
wait_console "$A" rt "tick=" 30 || fail "rt printed no progress"
downs=""
t0=$(date +%s)
rnd=0 # not i: lib.sh's waits use it
while [ $rnd -lt "$rounds" ]; do
	for leg in "$A native kvm $PB $B" "$B kvm native $PA $A"; do
		set -- $leg
		out=$("$pvmigrate" --socket "$1" --json --from "$2" --to "$3" --dest "$4" rt 2>&1) ||
			fail "round $((rnd + 1)) $2 -> $3: $out"
		echo "$out" | grep -q '"dest_guest":"rt"' || fail "round $((rnd + 1)): renamed: $out"
		d=$(echo "$out" | sed -n 's/.*"downtime_us":\([0-9]*\).*/\1/p' | tail -n 1)
		downs="$downs $d"
		wait_state "$5" rt running 10 || fail "round $((rnd + 1)): rt is $(state "$5" rt) there"
		# the source forgets its copy once the runner ended it; only then
		# is the name free there for the way back
		wait_state "$1" rt none 10 || fail "round $((rnd + 1)): the source still has rt"
	done
	rnd=$((rnd + 1))
done
[ "$(state "$A" rt)" = running ] || fail "rt does not run on A after the round trips"
"$pvmigrate" --socket "$A" status rt | grep -q '^personality: *native' || fail "rt not native on A"
summary=$(echo $downs | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {printf "min %.1f ms, median %.1f ms, max %.1f ms", a[1]/1000, a[int((NR+1)/2)]/1000, a[NR]/1000}')
ok "$((2 * rounds)) moves A (native) <-> B (kvm) in $(( $(date +%s) - t0 )) s; downtime $summary"
wait_state "$A" rt exited 300 || fail "rt did not end on A"
got=$("$pvmigrate" --socket "$A" console rt 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "checksum after $((2 * rounds)) moves: $got" || fail "rt: '$got', want '$want'"

# ---- an uncertified peer: refused in the handshake, nothing moves ----
args="seed=6 steps=6000"
want=$("$ref" $args)
"$pvmigrate" --socket "$R" boot --memory 64M "$guest" $args >/dev/null || fail "boot on R"
wait_console "$R" dom1 "tick=" 30 || fail "no progress on R"
nb=$("$pvmigrate" --socket "$B" list | wc -l)
out=$("$pvmigrate" --socket "$R" --from native --to native --dest "$PB" dom1 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "nothing was frozen" && ok "rogue -> B refused: $out" ||
	fail "rogue -> B: rc $rc: $out"
grep -q "TLS handshake failed, nothing read: .*certificate verify failed" "$T/b.log" &&
	ok "B: $(grep 'TLS handshake failed' "$T/b.log" | tail -n 1)" || fail "B did not log the refusal"
[ "$("$pvmigrate" --socket "$B" list | wc -l)" = "$nb" ] && ok "B holds nothing new" ||
	fail "B has a new guest"
[ "$(state "$R" dom1)" = running ] && ok "R's guest runs on" || fail "R: dom1 is $(state "$R" dom1)"
wait_state "$R" dom1 exited 60 || fail "R's guest did not end"
got=$("$pvmigrate" --socket "$R" console dom1 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "R's guest finished right: $got" || fail "R: '$got', want '$want'"

# a TLS client with no certificate at all: the handshake fails, B lives on
echo | timeout 10 openssl s_client -connect "$PB" -CAfile "$T/ca.crt" >/dev/null 2>&1
sleep 0.2
grep -q "peer did not return a certificate" "$T/b.log" && ok "certificate-less client refused" ||
	fail "B did not refuse a client without certificate"

# a hypervisor the target lacks: refused before anything is frozen
"$pvmigrate" --socket "$A" boot --name keep --memory 64M "$guest" seed=1 steps=100000000 >/dev/null
wait_console "$A" keep "tick=" 30 || fail "keep printed no progress"
out=$("$pvmigrate" --socket "$A" --from native --to l4 --dest "$PB" keep 2>&1)
[ $? = 4 ] && [ "$(state "$A" keep)" = running ] && ok "to l4: $out" || fail "to l4: $out"
"$pvmigrate" --socket "$A" destroy keep >/dev/null || fail "destroy keep"

for d in a b r; do
	alive $d || fail "daemon $d died"
done
finish
