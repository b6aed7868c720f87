#!/bin/sh
# test_workload.sh: the reference guest under pvhost prints exactly workload_ref's line and powers off with 0
# pvhost itself completes the ring-3 syscalls this host does not switch to ring 0
# (backends/kvm/kvm_syscall_fix.c), so the guest's own workaround must never run:
# its end line must say "(0 completed in the fault handler)".
pvhost=$1 guest=$2 ref=$3
[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }
fail=0
# Short runs: each step is one syscall through emulated ring 0 (~0.35 ms here).
for args in "seed=1 steps=200" "seed=42 steps=1500 mem=64K" "seed=7 steps=1000 mem=2M"; do
	out=$("$pvhost" run --personality native "$guest" -- $args </dev/null)
	st=$?
	want=$("$ref" $args)
	got=$(printf '%s\n' "$out" | grep '^workload:')
	calls=$(printf '%s\n' "$out" | grep '^guest: [0-9]* system calls')
	if [ "$st" != 0 ] || [ "$got" != "$want" ]; then
		echo "FAIL: $args: status $st, got '$got', want '$want'"
		printf '%s\n' "$out" | tail -5
		fail=1
	elif [ "${calls#*(0 completed in the fault handler)}" = "$calls" ]; then
		echo "FAIL: $args: the guest completed system calls itself: '$calls'"
		printf '%s\n' "$out" | tail -5
		fail=1
	else
		echo "ok: $args: $got; $calls"
	fi
done
exit $fail
