#!/bin/sh
# kvm-smp.sh: boot guest.elf on pvhost with 1 and 2 vCPUs and check both give workload_ref's result
#
# usage: kvm-smp.sh PVHOST GUEST_ELF WORKLOAD_REF [PERSONALITY]
# PERSONALITY (default native) is what pvhost runs the image under: `kvm`
# boots it beneath the in-guest runtime (docs/RUNTIME.md), same checks.
# The workload is split into streams (workload.h) so that its result does
# not depend on how many CPUs run it.  Each case boots the one image with
# --vcpus 1 and --vcpus 2 and checks: exit status 0, the "smp:" line (2
# vCPUs must give "smp: 2 cpus": the AP start mailbox at port 0x510 is
# pvhost's), the "workload:" line against workload_ref, and the last
# progress pair (steps=N checksum=...) against workload_ref --progress N,
# and that pvhost completed every unswitched ring-3 syscall itself (the
# guest's "guest: N system calls (0 completed in the fault handler)").
# Steps stay small: every system call runs the guest kernel in emulated
# ring 0 on this host (docs/KVM-HOST.md).
set -u
pvhost=${1:?usage: kvm-smp.sh PVHOST GUEST_ELF WORKLOAD_REF}
elf=${2:?usage: kvm-smp.sh PVHOST GUEST_ELF WORKLOAD_REF}
ref=${3:?usage: kvm-smp.sh PVHOST GUEST_ELF WORKLOAD_REF}
pers=${4:-native}
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "kvm-smp: skipped: /dev/kvm is missing or not usable by this user"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

boot() { # boot NAME VCPUS ARGS...: one case
	name=$1
	vcpus=$2
	shift 2
	steps=$(printf '%s\n' "$@" | sed -n 's/^steps=//p')
	want=$("$ref" "$@" | grep '^workload: ') || {
		echo "kvm-smp: $name: workload_ref failed"
		fail=1
		return
	}
	want_last=$("$ref" "$@" --progress "$steps" | grep '^steps=')
	start=$(date +%s.%N)
	timeout 300 "$pvhost" run --personality "$pers" --vcpus "$vcpus" "$elf" -- "$@" \
		</dev/null >"$tmp/$name.out" 2>&1
	rc=$?
	end=$(date +%s.%N)
	out=$(tr -d '\r' <"$tmp/$name.out")
	got=$(printf '%s\n' "$out" | grep '^workload: ')
	got_last=$(printf '%s\n' "$out" | grep '^tick=' | tail -n 1 | sed 's/^tick=[0-9]* //')
	smp=$(printf '%s\n' "$out" | grep '^smp: [0-9]')
	calls=$(printf '%s\n' "$out" | grep '^guest: [0-9]* system calls')
	if [ "$vcpus" -eq 2 ]; then want_smp="smp: 2 cpus"; else want_smp="smp: 1 cpu"; fi
	if [ "$rc" -ne 0 ]; then
		echo "kvm-smp: $name: exit status $rc, want 0"
	elif [ "${smp#"$want_smp"}" = "$smp" ]; then
		echo "kvm-smp: $name: got \"$smp\", want \"$want_smp\""
	elif [ "$got" != "$want" ]; then
		echo "kvm-smp: $name: got \"$got\", want \"$want\""
	elif [ "$got_last" != "$want_last" ]; then
		echo "kvm-smp: $name: last progress \"$got_last\", want \"$want_last\""
	elif [ "${calls#*(0 completed in the fault handler)}" = "$calls" ]; then
		echo "kvm-smp: $name: the guest completed system calls itself: \"$calls\""
	else
		printf 'kvm-smp: %s (%s): ok in %.2f s (%s): %s\n' "$name" "$pers" \
			"$(awk "BEGIN { print $end - $start }")" "$smp" "$got"
		return
	fi
	fail=1
	echo "--- guest output ($name) ---"
	printf '%s\n' "$out" | tail -40
}

for v in 1 2; do
	boot small-$v $v seed=1 steps=1000
	boot odd-$v $v seed=0xfeedface steps=3001 mem=100004
done
# fill= (a written region on 2 MiB pages, folded into the result): its
# words must come back as written, and the steps must not change
boot fill-2 2 seed=7 steps=500 fill=64M
exit $fail
