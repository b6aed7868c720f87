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

echo "== 5. Not there yet"
echo "   The KVM host, the reference guest, the kvm/xen runtimes and live migration"
echo "   (pvmigrate/pvmigrated) are not built yet; this demo shows the site toolchain"
echo "   they stand on. 'trap' is a test personality with no runtime behind it."
