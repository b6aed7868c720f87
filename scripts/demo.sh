#!/bin/sh
# demo.sh: install what is missing, build, and run the main job on the embedded default
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
b=build/repatch
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT

echo "== 1. Build a kernel-like corpus with the annotating assembler (pvcc)"
src=tests/repatch/corpus
for f in "$src"/*.c "$src"/*.S; do
	$b/pvcc -O2 -ffreestanding -fno-pic -fno-pie -mcmodel=kernel -mno-red-zone \
		-fno-stack-protector -I"$src" -c "$f" -o "$w/$(basename "$f").o"
done
gcc -nostdlib -static -no-pie -Wl,-Ttext-segment=0xffffffff81000000 -Wl,-e,0 \
	-o "$w/guest.elf" "$w"/*.o
echo "   built $w/guest.elf"

echo "== 2. The retained patch table (first sites, then the summary)"
$b/pvsites list "$w/guest.elf" >"$w/list.txt"
head -n 8 "$w/list.txt"
echo "   ..."
tail -n 3 "$w/list.txt"

echo "== 3. Audit with Capstone: every sensitive instruction is covered by a site"
$b/pvsites audit "$w/guest.elf" | tail -n 1

echo "== 4. Re-patch native -> trap -> native and compare"
$b/pvsites patch --from native --to trap "$w/guest.elf" -o "$w/trap.elf"
$b/pvsites list "$w/trap.elf" | sed -n 2p
$b/pvsites patch --from trap --to native "$w/trap.elf" -o "$w/back.elf"
if cmp -s "$w/guest.elf" "$w/back.elf"; then
	echo "   round trip is bit-for-bit identical"
else
	echo "   round trip DIFFERS" >&2
	exit 1
fi

echo "== 5. Boot the reference guest natively on this machine's KVM (2 vCPUs)"
args="seed=42 steps=2000 mem=1M"
g=build/tests/guest/guest.elf
build/backends/pvhost run --personality native --vcpus 2 "$g" -- $args >"$w/kvm.txt"
grep -E "^(smp|user|tick|workload|guest):" "$w/kvm.txt" | sed 's/^/   kvm | /'
kvm_line=$(grep '^workload:' "$w/kvm.txt")

echo "== 6. The same image, unchanged, on QEMU's emulated PC (multiboot, TCG)"
set +e
qemu-system-x86_64 -accel tcg -cpu qemu64 -m 256 -nographic -no-reboot -kernel "$g" \
	-append "$args" -device isa-debug-exit,iobase=0x501,iosize=2 >"$w/qemu.txt" 2>&1
set -e
grep '^workload:' "$w/qemu.txt" | sed 's/^/   qemu | /'
ref_line=$(build/tests/guest/workload_ref $args)
echo "   host reference: $ref_line"
if [ "$kvm_line" = "$ref_line" ] && grep -qx "$ref_line" "$w/qemu.txt"; then
	echo "   same checksum on KVM, on QEMU and from the host-side reference"
else
	echo "   checksums DIFFER" >&2
	exit 1
fi

echo "== 7. The same image pre-virtualized: personality kvm, the runtime beneath it"
build/backends/pvhost run --personality kvm --vcpus 2 --stats "$g" -- $args >"$w/pv.txt" 2>"$w/pv.err"
grep -E "^(smp|workload):" "$w/pv.txt" | sed 's/^/   kvm-pv | /'
grep -E "^pvhost: (runtime|stats):" "$w/pv.err" | sed 's/^/   kvm-pv | /'
if grep -qx "$ref_line" "$w/pv.txt"; then
	echo "   same checksum beneath the runtime, every site rewritten native -> kvm at boot"
else
	echo "   checksum under kvm DIFFERS" >&2
	exit 1
fi
build/backends/pvhost run --personality native --stats "$g" -- $args 2>&1 >/dev/null |
	grep '^pvhost: stats:' | sed 's/^/   native | /'
echo "   (exits: the trapped PIC/PIT/UART accesses of native are gone under kvm; 'other' is"
echo "    this host's ring-3 syscall defect, the same under both: docs/KVM-HOST.md)"

echo "== 8. Live migration between two daemons over mutual TLS (native -> native)"
scripts/tls-certs.sh "$w" ca a b
port=$((20000 + $$ % 20000))
for n in a b; do
	p=$port
	[ $n = b ] && p=$((port + 1))
	printf 'socket = %s\nlisten = 127.0.0.1:%s\ntls_cert = %s\ntls_key = %s\ntls_ca = %s\n' \
		"$w/$n.sock" "$p" "$w/$n.crt" "$w/$n.key" "$w/ca.crt" >"$w/$n.conf"
	# B sends straight from guest process to guest process (pvmigrate.conf(5))
	[ $n = b ] && echo 'data_path = direct' >>"$w/$n.conf"
	build/daemon/pvmigrated --config "$w/$n.conf" >"$w/$n.log" 2>&1 &
	echo $! >"$w/$n.pid"
done
trap 'kill $(cat "$w"/*.pid) 2>/dev/null; rm -rf "$w"' EXIT
for n in a b; do
	i=0
	while [ ! -S "$w/$n.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
done
pm="build/daemon/pvmigrate"
# checksum DAEMON GUEST WANT MOVES: wait for the guest's workload line, compare it.
checksum() {
	i=0
	while ! $pm --socket "$w/$1.sock" console "$2" 2>/dev/null | grep -q '^workload:' &&
		[ $i -lt 300 ]; do
		sleep 1
		i=$((i + 1))
	done
	line=$($pm --socket "$w/$1.sock" console "$2" 2>/dev/null | grep '^workload:')
	echo "   after $4: $line"
	echo "   host reference: $3"
	if [ "$line" = "$3" ]; then
		echo "   same checksum"
	else
		echo "   checksum after $4 DIFFERS" >&2
		exit 1
	fi
}
margs="seed=9 steps=20000"
mref=$(build/tests/guest/workload_ref $margs)
$pm --socket "$w/a.sock" boot --vcpus 2 --memory 128M "$g" $margs | sed 's/^/   /'
sleep 2
echo "   daemon A -> daemon B while the workload runs:"
$pm --socket "$w/a.sock" --from native --to native --dest "127.0.0.1:$((port + 1))" dom1 |
	sed 's/^/   /'
sleep 1
echo "   and back, B -> A, on B's direct data path (guest process to guest process, mutual TLS):"
$pm --socket "$w/b.sock" --from native --to native --dest "127.0.0.1:$port" dom1 | sed 's/^/   /'
checksum a dom1 "$mref" "A -> B -> A"

echo "== 9. Live moves between personalities, in place: install kvm beneath the running guest,"
echo "   upgrade its runtime to another build, remove it again"
pargs="seed=21 steps=60000"
pref=$(build/tests/guest/workload_ref $pargs)
$pm --socket "$w/a.sock" boot --vcpus 2 --memory 128M "$g" $pargs | sed 's/^/   /'
sleep 2
echo "   native -> kvm (the runtime installed beneath the running OS):"
$pm --socket "$w/a.sock" --from native --to kvm dom2 | sed 's/^/   /'
sleep 1
echo "   kvm -> kvm with another runtime build (an upgrade; its internal layout differs):"
$pm --socket "$w/a.sock" --from kvm --to kvm --runtime build/runtime/pvruntime-kvm-alt.elf dom2 |
	sed 's/^/   /'
sleep 1
echo "   kvm -> native (the runtime removed):"
$pm --socket "$w/a.sock" --from kvm --to native dom2 | sed 's/^/   /'
$pm --socket "$w/a.sock" status dom2 | sed 's/^/   /'
checksum a dom2 "$pref" "native -> kvm -> kvm (upgrade) -> native"

echo "== 10. Across daemons and personalities at once: A (native) -> B (kvm) -> A (native)"
xargs_="seed=33 steps=30000"
xref=$(build/tests/guest/workload_ref $xargs_)
$pm --socket "$w/a.sock" boot --vcpus 2 --memory 128M "$g" $xargs_ | sed 's/^/   /'
sleep 2
$pm --socket "$w/a.sock" --from native --to kvm --dest "127.0.0.1:$((port + 1))" dom3 |
	sed 's/^/   /'
$pm --socket "$w/b.sock" status dom3 | grep '^personality' | sed 's/^/   on B: /'
sleep 1
$pm --socket "$w/b.sock" --from kvm --to native --dest "127.0.0.1:$port" dom3 | sed 's/^/   /'
checksum a dom3 "$xref" "A (native) -> B (kvm) -> A (native)"

echo "== 11. Not there yet"
echo "   xen and l4 are not available on this host; the downtime targets (< 1 ms in place,"
echo "   < 5 ms across daemons: met on the direct data path) are not met yet for every move,"
echo "   and moves to kvm stop the guest for the runtime's adopt after the OK: docs/BENCHMARKS.md."
