#!/bin/sh
# personality.sh: native (trap-and-emulate) against kvm (pre-virtualized) on the same guest in one run: VM exits, workload steps/s, DP83820 frames/s
#
# usage: personality.sh PVHOST GUEST_ELF WORKLOAD_REF NET_ECHO [STEPS] [FRAMES]
#
# Two workloads, each under both personalities, back to back:
#   cpu+syscall  seed=1 steps=STEPS: the reference workload (ring-3 compute,
#                one system call per step, the timer, the console).  Wall
#                time includes boot.  Exits are counted by pvhost (--stats)
#                by reason; "syscall-fix" exits are this host's defect
#                (docs/KVM-HOST.md: ring-3 syscall without the switch to
#                ring 0), the same under both, so the ratio leaves them out.
#   I/O          net_echo: FRAMES sequence-numbered frames through the
#                DP83820, 32 in flight, every one back once and intact;
#                exits per frame exclude the syscall fix's likewise.
# Each result line is checked (workload_ref's checksum, the echo's own
# check): a benchmark of a wrong run is worth nothing.
set -eu
pvhost=$1 elf=$2 ref=$3 echo=$4
steps=${5:-4000} frames=${6:-3000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
want=$("$ref" seed=1 steps="$steps" | grep '^workload: ')

for p in native kvm; do
	t0=$(date +%s.%N)
	"$pvhost" run --personality "$p" --stats "$elf" -- seed=1 steps="$steps" \
		>"$tmp/out" 2>"$tmp/err" </dev/null
	t1=$(date +%s.%N)
	got=$(grep '^workload: ' "$tmp/out")
	[ "$got" = "$want" ] || { echo "personality: $p: got '$got', want '$want'"; exit 1; }
	st=$(grep '^pvhost: stats: ' "$tmp/err")
	exits=$(echo "$st" | sed 's/.* exits=\([0-9]*\).*/\1/')
	other=$(echo "$st" | sed 's/.* other=\([0-9]*\).*/\1/')
	io=$(echo "$st" | sed 's/.* io=\([0-9]*\).*/\1/')
	awk -v p="$p" -v s="$steps" -v t0="$t0" -v t1="$t1" -v e="$exits" -v o="$other" -v io="$io" \
		'BEGIN { printf "cpu+syscall %-6s %6d steps in %6.2f s = %7.0f steps/s; exits %6d (%d syscall-fix), %d without them (%d port I/O)\n",
			p, s, t1 - t0, s / (t1 - t0), e, o, e - o, io }' | tee -a "$tmp/table"
done
for p in native kvm; do
	"$echo" --frames "$frames" --window 32 --personality "$p" "$pvhost" "$elf" >"$tmp/echo" 2>&1 ||
		{ cat "$tmp/echo"; exit 1; }
	line=$(grep '^guest echo' "$tmp/echo")
	echo "I/O         $line" | tee -a "$tmp/table"
done
awk '
/^cpu\+syscall native/ { for (i = 1; i <= NF; i++) if ($i == "without") n = $(i - 1) }
/^cpu\+syscall kvm/    { for (i = 1; i <= NF; i++) if ($i == "without") k = $(i - 1) }
/^I\/O .*\(native\)/   { for (i = 1; i <= NF; i++) if ($i == "exits/frame") ne = $(i - 1) }
/^I\/O .*\(kvm\)/      { for (i = 1; i <= NF; i++) if ($i == "exits/frame") ke = $(i - 1) }
END {
	if (k > 0) printf "ratio: cpu+syscall %.1fx fewer exits under kvm (syscall-fix exits left out)\n", n / k
	if (ke > 0) printf "ratio: I/O %.1fx fewer exits per frame under kvm (target >= 10x)\n", ne / ke
}' "$tmp/table"
