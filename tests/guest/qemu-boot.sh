#!/bin/sh
# qemu-boot.sh: boot guest.elf on QEMU's PC (TCG, multiboot loader) and check its workload line against workload_ref
#
# usage: qemu-boot.sh GUEST_ELF WORKLOAD_REF
# Each case boots the one image with a command line, compares the guest's
# "workload:" line with what workload_ref prints for the same words, and
# checks the exit status: isa-debug-exit turns the guest's 0 into 1.
set -u
elf=${1:?usage: qemu-boot.sh GUEST_ELF WORKLOAD_REF}
ref=${2:?usage: qemu-boot.sh GUEST_ELF WORKLOAD_REF}
qemu=$(command -v qemu-system-x86_64) || {
	echo "qemu-boot: skipped: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
	exit 77
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

boot() { # boot NAME ARGS...: one case
	name=$1
	shift
	want=$("$ref" "$@") || { echo "qemu-boot: $name: workload_ref failed"; fail=1; return; }
	start=$(date +%s.%N)
	timeout 120 "$qemu" -accel tcg -cpu qemu64 -m 256 -nographic -no-reboot \
		-kernel "$elf" -append "$*" \
		-device isa-debug-exit,iobase=0x501,iosize=2 </dev/null >"$tmp/$name.out" 2>&1
	rc=$?
	end=$(date +%s.%N)
	got=$(tr -d '\r' <"$tmp/$name.out" | grep '^workload: ')
	if [ "$rc" -ne 1 ]; then
		echo "qemu-boot: $name: exit status $rc, want 1 (the guest wrote 0 to the debug-exit port)"
		fail=1
	elif [ "$got" != "$want" ]; then
		echo "qemu-boot: $name: got \"$got\", want \"$want\""
		fail=1
	else
		printf 'qemu-boot: %s: ok in %.2f s: %s\n' "$name" "$(awk "BEGIN { print $end - $start }")" "$got"
		return
	fi
	echo "--- guest output ($name) ---"
	tr -d '\r' <"$tmp/$name.out" | tail -40
}

boot small seed=1 steps=1000
boot medium seed=12345 steps=300000 mem=4M
boot odd-size seed=0xfeedface steps=50000 mem=100004
exit $fail
