#!/bin/bash
# test_daemon_direct.sh: moves between two pvmigrated with `data_path direct` (guest process to guest process over mutual TLS): round trips of a 2-vCPU 256 MiB guest native <-> kvm with the right checksum, the result says direct; a bad preamble and one naming an unknown move are closed and B works on
#
# Usage: test_daemon_direct.sh PVMIGRATED PVMIGRATE GUEST_ELF WORKLOAD_REF
# bash, not sh: the preambles go out through bash's /dev/tcp.
set -u
pvmigrated=$1 pvmigrate=$2 guest=$3 ref=$4
. "$(dirname "$0")/lib.sh"

[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl to make the test certificates"; exit 77; }

certs=$(dirname "$0")/../../scripts/tls-certs.sh
"$certs" "$T" ca a b || { echo "FAIL: openssl could not make the certificates"; exit 1; }

base=$((20000 + ($$ + 7) % 20000))
peer_conf a $base
peer_conf b $((base + 1))
echo "data_path = direct" | tee -a "$T/a.conf" >>"$T/b.conf"
start_daemon a --config "$T/a.conf"
start_daemon b --config "$T/b.conf"
A=$T/a.sock B=$T/b.sock
PA=127.0.0.1:$base PB=127.0.0.1:$((base + 1))
BPORT=$((base + 1))

# ---- round trips A (native) -> B (kvm) -> A (native), 2 vCPUs, 256 MiB ----
rounds=${PVMIGRATE_ROUNDS:-2}
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
		if [ $rnd = 0 ] && [ "$2" = native ]; then
			# the first move in words: the result line names the path
			out=$("$pvmigrate" --socket "$1" --from "$2" --to "$3" --dest "$4" rt 2>&1) ||
				fail "round $((rnd + 1)) $2 -> $3: $out"
			echo "$out" | grep -q "^moved: .*, data path: direct$" &&
				ok "first move: $(echo "$out" | tail -n 1)" || fail "not direct: $out"
			d=$(echo "$out" | sed -n 's/.*downtime \([0-9.]*\) ms.*/\1/p' | tail -n 1)
			d=$(awk "BEGIN {printf \"%d\", $d * 1000}")
			# the receiver checked the source's certificate and the token
			grep -q "handed to rt's receiver" "$T/b.log" &&
				ok "B: $(grep "handed to rt's receiver" "$T/b.log" | tail -n 1)" ||
				fail "B did not hand the direct connection over"
			"$pvmigrate" --socket "$B" console rt 2>/dev/null |
				grep -q "certificate and the move's token checked" &&
				ok "B's receiver checked the token" || fail "B's receiver did not say so"
		else
			out=$("$pvmigrate" --socket "$1" --json --from "$2" --to "$3" --dest "$4" rt 2>&1) ||
				fail "round $((rnd + 1)) $2 -> $3: $out"
			echo "$out" | grep -q '"dest_guest":"rt"' || fail "round $((rnd + 1)): renamed: $out"
			echo "$out" | grep -q '"data_path":"direct"' || fail "round $((rnd + 1)): not direct: $out"
			echo "$out" | grep -q '"progress":{[^}]*"bytes":[1-9]' ||
				fail "round $((rnd + 1)): no progress figures: $out"
			d=$(echo "$out" | sed -n 's/.*"downtime_us":\([0-9]*\).*/\1/p' | tail -n 1)
		fi
		downs="$downs $d"
		wait_state "$5" rt running 10 || fail "round $((rnd + 1)): rt is $(state "$5" rt) there"
		wait_state "$1" rt none 10 || fail "round $((rnd + 1)): the source still has rt"
	done
	rnd=$((rnd + 1))
done
[ "$(state "$A" rt)" = running ] || fail "rt does not run on A after the round trips"
"$pvmigrate" --socket "$A" status rt | grep -q '^personality: *native' || fail "rt not native on A"
summary=$(echo $downs | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {printf "min %.1f ms, median %.1f ms, max %.1f ms", a[1]/1000, a[int((NR+1)/2)]/1000, a[NR]/1000}')
ok "$((2 * rounds)) direct moves A (native) <-> B (kvm) in $(( $(date +%s) - t0 )) s; downtime $summary"
n=$(grep -c "streaming on the direct data path" "$T/a.log" "$T/b.log" | awk -F: '{s += $2} END {print s}')
[ "$n" = $((2 * rounds)) ] && ok "$n moves took the direct path" || fail "$n direct moves, want $((2 * rounds))"

# ---- what B's peer port gets from anyone: closed, logged, B lives on ----
preamble() { # BYTES...: send them to B's peer port, wait until B closes
	exec 5<>"/dev/tcp/127.0.0.1/$BPORT" || return 1
	printf "$1" >&5
	# closed: EOF, or a reset (B did not read what followed a bad preamble)
	timeout 20 cat <&5 >/dev/null 2>&1
	rc=$?
	exec 5<&-
	[ $rc != 124 ]
}
preamble 'PVMDgarbage, not a preamble at all' && grep -q "bad preamble" "$T/b.log" &&
	ok "a bad preamble: $(grep 'bad preamble' "$T/b.log" | tail -n 1)" ||
	fail "B did not close a bad preamble"
preamble 'PVMD\001\000\000\000\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020' &&
	grep -q "for move 0102030405060708090a0b0c0d0e0f10, which waits for none here" "$T/b.log" &&
	ok "an unknown move: $(grep 'waits for none here' "$T/b.log" | tail -n 1)" ||
	fail "B did not close a preamble for an unknown move"
alive b && ok "B survived them" || fail "B died"
# (a wrong token cannot be forced from outside: only the daemons' TLS link
# carries it; the receiver's check is logged above)

# B still takes a move, and the guest finishes right on A
"$pvmigrate" --socket "$A" --from native --to kvm --dest "$PB" rt >/dev/null 2>&1 &&
	wait_state "$B" rt running 10 && ok "B still takes a direct move" || fail "B after the preambles"
wait_state "$A" rt none 10 || fail "A still has rt"
"$pvmigrate" --socket "$B" --from kvm --to native --dest "$PA" rt >/dev/null 2>&1 &&
	wait_state "$A" rt running 10 || fail "back to A"
wait_state "$A" rt exited 300 || fail "rt did not end on A"
got=$("$pvmigrate" --socket "$A" console rt 2>/dev/null | grep '^workload:')
[ "$got" = "$want" ] && ok "checksum after $((2 * rounds + 2)) direct moves: $got" ||
	fail "rt: '$got', want '$want'"

for d in a b; do
	alive $d || fail "daemon $d died"
done
finish
