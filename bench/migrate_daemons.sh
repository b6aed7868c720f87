#!/bin/sh
# migrate_daemons.sh: a 256 MiB, 2-vCPU guest moved live between two pvmigrated on this machine over mutual TLS: downtime, total time, bytes, next to the loopback TCP ceiling
#
# usage: migrate_daemons.sh PVMIGRATED PVMIGRATE GUEST_ELF WORKLOAD_REF TCP_LOOPBACK [WARM_S]
#
# The guest runs `mem=16M` (a 16 MiB buffer written at random by the
# workload) for WARM_S seconds (default 8) before the move, so the stream
# carries real pages, not only the zero pages it skips.  Then A -> B, and
# the result line of `pvmigrate --json` gives downtime, total time and
# bytes; rate = bytes / total time, against the loopback TCP ceiling
# measured in the same run (tcp_loopback: one connection, no TLS).  The
# guest's final checksum must equal workload_ref's, or the figures are void.
set -eu
pvmigrated=$1 pvmigrate=$2 guest=$3 ref=$4 tcpl=$5 warm=${6:-8}
w=$(mktemp -d)
trap 'kill $(cat "$w"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$w"' EXIT
"$tcpl" 2048 | tee "$w/ceiling"
"$(dirname "$0")/../scripts/tls-certs.sh" "$w" ca a b
port=$((21000 + $$ % 20000))
for n in a b; do
	p=$port
	[ $n = b ] && p=$((port + 1))
	printf 'socket = %s\nlisten = 127.0.0.1:%s\ntls_cert = %s\ntls_key = %s\ntls_ca = %s\n' \
		"$w/$n.sock" "$p" "$w/$n.crt" "$w/$n.key" "$w/ca.crt" >"$w/$n.conf"
	"$pvmigrated" --config "$w/$n.conf" >"$w/$n.log" 2>&1 &
	echo $! >"$w/$n.pid"
done
for n in a b; do
	i=0
	while [ ! -S "$w/$n.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
done
args="seed=11 steps=60000 mem=16M"
want=$("$ref" $args)
"$pvmigrate" --socket "$w/a.sock" boot --vcpus 2 --memory 256M "$guest" $args >/dev/null
sleep "$warm"
res=$("$pvmigrate" --socket "$w/a.sock" --json --from native --to native \
	--dest "127.0.0.1:$((port + 1))" dom1 | grep '"result"')
i=0
while ! "$pvmigrate" --socket "$w/b.sock" console dom1 2>/dev/null | grep -q '^workload:' &&
	[ $i -lt 600 ]; do
	sleep 1
	i=$((i + 1))
done
got=$("$pvmigrate" --socket "$w/b.sock" console dom1 2>/dev/null | grep '^workload:' || true)
[ "$got" = "$want" ] || { echo "migrate_daemons: got '$got', want '$want'"; exit 1; }
ceiling=$(sed 's/.*= \([0-9]*\) MiB\/s.*/\1/' "$w/ceiling")
echo "$res" | sed 's/.*"downtime_us":\([0-9]*\).*"total_us":\([0-9]*\).*"bytes":\([0-9]*\).*/\1 \2 \3/' |
	awk -v c="$ceiling" '{ mib = $3 / 1048576; rate = mib / ($2 / 1e6);
	printf "cross-daemon (TLS, 256 MiB guest, 2 vCPUs, 16 MiB being written): downtime %.2f ms, total %.1f ms, %.1f MiB sent = %.0f MiB/s = %.0f%% of the loopback ceiling (%d MiB/s); checksum after the move right\n",
	$1 / 1000, $2 / 1000, mib, rate, 100 * rate / c, c }'
