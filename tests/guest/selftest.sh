#!/bin/sh
# selftest.sh: the guest's selftest=1 under pvhost (NIC attached) and QEMU TCG: every check ok or skipped, the same lines everywhere but where the platform differs
#
# usage: selftest.sh PVHOST GUEST_ELF NET_SINK WORKLOAD_REF
#
# pvhost runs `selftest=1 steps=200 irqlog=1` with the DP83820 attached to a
# frame socket whose peer is net_sink (it swallows frames and sends none, so
# the NIC's registers stay as the driver left them), once per personality
# in $SELFTEST_PERSONALITIES (default "native").  Each run must exit 0, print
# only `ok` and `skipped` self-test lines, check the NIC (mmio line ok) and
# still compute workload_ref's result after the self-test.  QEMU runs
# `selftest=1 irqlog=1` (self-test only; isa-debug-exit status 1 = success).
#
# Comparisons:
# - QEMU against the first personality: every selftest: line identical, in
#   order, except the summary line and the kinds in $platform_kinds, which
#   must only be present on both sides (each ok or skipped there):
#     cpuid                 the vendor string is the host CPU's under KVM,
#                           the CPU model's (qemu64) under TCG
#     rdtscp xsetbv invpcid run or skipped as CPUID says, and CPUID is the
#                           host's (as KVM filters it) under pvhost, qemu64's
#                           under QEMU
#     mmio-read/mmio-write  QEMU's PC has no DP83820: skipped there
# - every further personality against the first: all selftest: lines
#   identical, summary included (same host, same devices: a site rewritten
#   for a personality must have the original instruction's effect).
# irqlog: lines depend on timing; they are only shown.
set -u
pvhost=${1:?usage: selftest.sh PVHOST GUEST_ELF NET_SINK WORKLOAD_REF}
elf=${2:?usage: selftest.sh PVHOST GUEST_ELF NET_SINK WORKLOAD_REF}
sink=${3:?usage: selftest.sh PVHOST GUEST_ELF NET_SINK WORKLOAD_REF}
ref=${4:?usage: selftest.sh PVHOST GUEST_ELF NET_SINK WORKLOAD_REF}
personalities=${SELFTEST_PERSONALITIES:-native}
platform_kinds="cpuid rdtscp xsetbv invpcid mmio-read/mmio-write"
steps=200

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "selftest: skipped: /dev/kvm is missing or not usable by this user"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

show() { # show NAME: the end of a run's output, after a failure
	echo "--- guest output ($1) ---"
	tail -60 "$tmp/$1.out"
}

# check_lines NAME: every selftest: line of NAME's output is ok, skipped or the summary with 0 failed
check_lines() {
	grep '^selftest: ' "$tmp/$1.out" >"$tmp/$1.lines"
	bad=$(grep -v -e ' ok$' -e ' skipped (.*)$' \
		-e '^selftest: [0-9]* ok, 0 failed, [0-9]* skipped$' "$tmp/$1.lines")
	if ! grep -q '^selftest: [0-9]* ok, 0 failed, [0-9]* skipped$' "$tmp/$1.lines"; then
		echo "selftest: $1: no summary line with 0 failed"
		return 1
	elif [ -n "$bad" ]; then
		echo "selftest: $1: lines neither ok nor skipped:"
		printf '%s\n' "$bad"
		return 1
	fi
	return 0
}

# ---- pvhost, one personality.  The lead adds `kvm` to SELFTEST_PERSONALITIES
# ---- (or its default above) once the kvm runtime boots this image.
run_pvhost() { # run_pvhost PERSONALITY RUN: output in $tmp/RUN.*
	p=$1
	r=$2
	start=$(date +%s.%N)
	timeout 240 "$sink" "$tmp/wire-$r" "$pvhost" run --personality "$p" --net "socket:$tmp/wire-$r" \
		"$elf" -- selftest=1 steps=$steps irqlog=1 </dev/null >"$tmp/$r.raw" 2>&1
	rc=$?
	end=$(date +%s.%N)
	tr -d '\r' <"$tmp/$r.raw" >"$tmp/$r.out"
	want=$("$ref" steps=$steps)
	got=$(grep '^workload: ' "$tmp/$r.out")
	if [ "$rc" -ne 0 ]; then
		echo "selftest: pvhost $p: exit status $rc, want 0"
	elif ! check_lines "$r"; then
		:
	elif ! grep -q '^selftest: mmio-read/mmio-write .* ok$' "$tmp/$r.lines"; then
		echo "selftest: pvhost $p: the NIC was not checked (no mmio-read/mmio-write ok line)"
	elif [ "$got" != "$want" ]; then
		echo "selftest: pvhost $p: after the self-test got \"$got\", want \"$want\""
	else
		printf 'selftest: pvhost %s: ok in %.2f s: %s; %s\n' "$p" \
			"$(awk "BEGIN { print $end - $start }")" "$(tail -n 1 "$tmp/$r.lines")" \
			"$(grep '^irqlog: [0-9]' "$tmp/$r.out")"
		return 0
	fi
	show "$r"
	return 1
}

run_qemu() {
	start=$(date +%s.%N)
	timeout 120 "$qemu" -accel tcg -cpu qemu64 -m 256 -nographic -no-reboot \
		-kernel "$elf" -append "selftest=1 irqlog=1" \
		-device isa-debug-exit,iobase=0x501,iosize=2 </dev/null >"$tmp/qemu.raw" 2>&1
	rc=$?
	end=$(date +%s.%N)
	tr -d '\r' <"$tmp/qemu.raw" >"$tmp/qemu.out"
	if [ "$rc" -ne 1 ]; then
		echo "selftest: qemu: exit status $rc, want 1 (the guest wrote 0 to the debug-exit port)"
	elif check_lines qemu; then
		printf 'selftest: qemu: ok in %.2f s: %s; %s\n' "$(awk "BEGIN { print $end - $start }")" \
			"$(tail -n 1 "$tmp/qemu.lines")" "$(grep '^irqlog: [0-9]' "$tmp/qemu.out")"
		return 0
	fi
	show qemu
	return 1
}

# platform_filter FILE: the lines without the summary, platform kinds reduced to their kind
platform_filter() {
	awk -v kinds="$platform_kinds" '
		BEGIN { n = split(kinds, k, " "); for (i = 1; i <= n; i++) pk[k[i]] = 1 }
		/^selftest: [0-9]+ ok, [0-9]+ failed, [0-9]+ skipped$/ { next }
		($2 in pk) { print "selftest: " $2 " (platform-dependent)"; next }
		{ print }' "$1"
}

ref_p=
n=0
for p in $personalities; do
	n=$((n + 1))
	run_pvhost "$p" "pvhost-$n-$p" || { fail=1; continue; }
	if [ -z "$ref_p" ]; then
		ref_p=$p
		ref_run=pvhost-$n-$p
	elif ! cmp -s "$tmp/$ref_run.lines" "$tmp/pvhost-$n-$p.lines"; then
		echo "selftest: pvhost $p and $ref_p print different selftest lines (- $ref_p, + $p):"
		diff -u "$tmp/$ref_run.lines" "$tmp/pvhost-$n-$p.lines" | sed -n '3,$p'
		fail=1
	else
		echo "selftest: pvhost $p prints exactly $ref_p's selftest lines"
	fi
done

qemu=$(command -v qemu-system-x86_64) || {
	echo "selftest: the QEMU half cannot run: qemu-system-x86_64 is not installed"
	[ "$fail" -eq 0 ] && exit 77
	exit 1
}
if run_qemu && [ -n "$ref_p" ]; then
	platform_filter "$tmp/$ref_run.lines" >"$tmp/ref.cmp"
	platform_filter "$tmp/qemu.lines" >"$tmp/qemu.cmp"
	if cmp -s "$tmp/ref.cmp" "$tmp/qemu.cmp"; then
		echo "selftest: qemu prints pvhost $ref_p's selftest lines (platform kinds: $platform_kinds)"
	else
		echo "selftest: qemu and pvhost $ref_p differ beyond the platform kinds (- $ref_p, + qemu):"
		diff -u "$tmp/ref.cmp" "$tmp/qemu.cmp" | sed -n '3,$p'
		fail=1
	fi
else
	fail=1
fi
exit $fail
