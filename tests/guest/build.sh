#!/bin/sh
# build.sh: build guest.elf by hand (meson.build does the same): build.sh [OUTDIR], CC=gcc or pvcc
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/out}
cc=${CC:-gcc}
mkdir -p "$out"

# Keep in step with guest_cflags in meson.build.
cflags="-std=c11 -O2 -g -ffreestanding -fno-pic -fno-pie -mcmodel=small -mno-red-zone
 -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables
 -fno-tree-loop-distribute-patterns -fcf-protection=none -Wall -Wextra
 -I$root/repatch/include ${EXTRA_CFLAGS:-}"
ldflags="-nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,--no-warn-rwx-segments
 -Wl,-T,$here/guest.ld"

objs=
for src in boot.S entry.S console.c cpu.c irq.c mm.c pci.c dp83820.c smp.c kernel.c selftest.c \
	selftest_sys.c selftest_io.c user.c; do
	obj=$out/${src%.*}.o
	# shellcheck disable=SC2086
	$cc $cflags -c "$here/$src" -o "$obj"
	objs="$objs $obj"
done
# shellcheck disable=SC2086
$cc $cflags $ldflags -o "$out/guest.elf" $objs
cc -std=c11 -O2 -Wall -Wextra -o "$out/workload_ref" "$here/workload_ref.c"
echo "build.sh: $out/guest.elf"
