#!/bin/sh
# real-driver.sh: Debian's stock kernel boots on pvhost, its ns83820 driver binds our DP83820 model and pings the host through a TAP in a netns
#
# usage: real-driver.sh PVHOST [KERNEL]
#
# Opt-in (meson suite 'slow'): guest ring 0 is emulated on the kvm-pvm host
# (docs/KVM-HOST.md, "Linux on this host"), so one run takes minutes.
# Environment: REAL_DRIVER_TIMEOUT (s, default 1500), REAL_DRIVER_LOG (keep
# the console log there), REAL_DRIVER_PINGS (default 3).
set -u
pvhost=${1:?usage: real-driver.sh PVHOST [KERNEL]}
here=$(cd "$(dirname "$0")" && pwd)
kernel=${2:-}
if [ -z "$kernel" ]; then
	# The newest Debian kernel whose modules are installed too.
	for k in $(ls -v /boot/vmlinuz-* 2>/dev/null); do
		[ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && kernel=$k
	done
fi
[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a network namespace and a TAP device"; exit 77; }
[ -n "$kernel" ] && [ -f "$kernel" ] ||
	{ echo "FAIL: no /boot/vmlinuz-* with modules (scripts/deps.sh installs linux-image-amd64)"; exit 1; }
kver=${kernel#/boot/vmlinuz-}
timeout_s=${REAL_DRIVER_TIMEOUT:-1500}
pings=${REAL_DRIVER_PINGS:-3}
host_ip=10.0.2.1 guest_ip=10.0.2.15
ns=pvmrd$$
tap=pvtap0
tmp=$(mktemp -d)
log=${REAL_DRIVER_LOG:-$tmp/console.log}
cleanup() {
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$here/mkinitramfs.sh" "$tmp/rd.cpio" "$kver" "$guest_ip" "$host_ip" "$pings" || exit 1
# A persistent TAP (no packet-info header) that pvhost attaches to by name;
# its address is set before the guest exists, so nothing races the boot.
ip netns add "$ns" &&
	ip -n "$ns" link set lo up &&
	ip netns exec "$ns" ip tuntap add dev "$tap" mode tap &&
	ip -n "$ns" addr add "$host_ip/24" dev "$tap" &&
	ip -n "$ns" link set "$tap" up || { echo "FAIL: cannot set up netns $ns with $tap"; exit 1; }

# Why each option (docs/KVM-HOST.md, "Linux on this host"): ring-0
# instructions cost ~1 us each, and the emulator refuses some of them.
#   nokaslr              the loader puts vmlinux at its link address
#   noxsave              xrstor at CPL 0 is an emulation failure; fxsave works
#   clearcpuid=141,151,308  no CX16, POPCNT, SMAP: cmpxchg16b (SLUB), popcnt and
#                        clac/stac are emulation failures (popcnt: not seen, assumed)
#     ,129,137,147,148,153,156,293,317  no PCLMULQDQ, SSSE3, SSE4.1/4.2, AES,
#                        AVX, AVX2, SHA: kernel_fpu_begin's ldmxcsr at CPL 0 is an
#                        emulation failure (seen: BLAKE2s/SSSE3 at boot), so keep
#                        the kernel's SIMD crypto and CRC code on its generic paths
#   nofsgsbase           rd/wrgsbase in the entry code: assumed to fail likewise
#   nosmp noapic nolapic acpi=off pci=conf1   our PC: PIC, PIT, conf#1 PCI
#   lpj= tsc=reliable no_timer_check cryptomgr.notests init_on_alloc=0
#                        skip calibration loops, self-tests and page zeroing
#   nosoftlockup         the watchdog fires during ftrace's record check (slow, not stuck)
#   rodata=off           skips the W+X page-table walk (CONFIG_DEBUG_WX), which
#                        ran for more than 10 minutes of emulated ring 0 here
cmdline="console=ttyS0 earlyprintk=serial,ttyS0,115200 nokaslr noxsave clearcpuid=141,151,308,129,137,147,148,153,156,293,317 nofsgsbase"
cmdline="$cmdline nosmp noapic nolapic acpi=off pci=conf1 mitigations=off"
cmdline="$cmdline lpj=4890856 tsc=reliable no_timer_check cryptomgr.notests init_on_alloc=0 nosoftlockup rodata=off"
cmdline="$cmdline panic=-1 ${REAL_DRIVER_CMDLINE:-}"

echo "real-driver: $kernel, initramfs $(wc -c <"$tmp/rd.cpio") bytes, timeout ${timeout_s}s"
start=$(date +%s)
timeout "$timeout_s" ip netns exec "$ns" "$pvhost" run --personality native --memory 128M --stats \
	--net "tap:$tap" --initrd "$tmp/rd.cpio" "$kernel" -- $cmdline >"$log" 2>&1
st=$?
end=$(date +%s)
echo "real-driver: pvhost exit status $st after $((end - start)) s"

fail=0
expect() {
	if grep -q -- "$1" "$log"; then
		echo "ok: $2"
	else
		echo "FAIL: $2 (no '$1' on the console)"
		fail=1
	fi
}
expect "real-driver: init up" "the kernel reached /init"
expect "ns83820: bound" "ns83820 bound our DP83820"
expect "real-driver: interface .* driver ns83820" "the interface belongs to ns83820"
expect "real-driver: link carrier=1" "the link came up"
expect "real-driver: $pings of $pings pings answered" "$pings pings answered by the host"
expect "real-driver: verdict PASS" "the guest's verdict"
[ "$st" = 0 ] || { echo "FAIL: pvhost exit status $st, want 0"; fail=1; }
if [ $fail != 0 ]; then
	echo "--- last 60 console lines ($log)"
	tail -n 60 "$log"
fi
exit $fail
