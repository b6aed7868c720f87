#!/bin/sh
# mkinitramfs.sh: build the real-driver check's initramfs (busybox-static, Debian's ns83820.ko, an /init that pings the host)
#
# usage: mkinitramfs.sh OUT.cpio KVER GUEST_IP HOST_IP [PINGS]
#
# The archive is an uncompressed newc cpio on purpose: the guest kernel's
# ring 0 runs through KVM's instruction emulator on the kvm-pvm host (see
# docs/KVM-HOST.md), where unpacking a compressed archive would cost
# minutes; copying an uncompressed one costs seconds.
set -eu
out=$1 kver=$2 guest_ip=$3 host_ip=$4 pings=${5:-3}
bb=/bin/busybox
mods=/lib/modules/$kver
ko=$mods/kernel/drivers/net/ethernet/natsemi/ns83820.ko
[ -x "$bb" ] || { echo "mkinitramfs: $bb missing (Debian busybox-static)" >&2; exit 1; }
[ -f "$ko" ] || { echo "mkinitramfs: $ko missing (Debian linux-image-$kver)" >&2; exit 1; }
# ns83820 depends on nothing today; take modules.dep's word for it anyway.
deps=$(sed -n "s|^kernel/drivers/net/ethernet/natsemi/ns83820.ko:||p" "$mods/modules.dep")

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/mod"
cp "$bb" "$root/bin/busybox"
for d in $deps; do cp "$mods/$d" "$root/mod/"; done
cp "$ko" "$root/mod/"
# Dependencies first (modules.dep lists them in load order, last first).
order=""
for d in $deps; do order="$(basename "$d") $order"; done
order="$order ns83820.ko"

# /init: every line it prints that the host test looks for starts with
# "real-driver:"; the verdict goes out both as a line and as the byte
# written to pvhost's exit port 0x501 through /dev/port (0 = pass), so
# pvhost's exit status is the verdict and no ACPI power-off is needed.
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
verdict() {
	echo "real-driver: verdict \$1"
	# Offset 0x501 = 1281 in /dev/port is an outb to that port.
	if [ "\$1" = PASS ]; then printf '\\000'; else printf '\\001'; fi |
		dd of=/dev/port bs=1 seek=1281 count=1 2>/dev/null
	poweroff -f
}
echo "real-driver: init up \$(cut -d' ' -f1 /proc/uptime) s"
for m in $order; do
	insmod /mod/\$m || { echo "real-driver: insmod \$m failed"; verdict FAIL; }
done
# The banner is printed at module load; this line only when probe() took a
# device: "eth0: ns83820 v0.23: DP83820 v1.3: <mac> io=0x... irq=11 f=..."
if dmesg | grep -q 'ns83820 v[0-9.]*: DP83820'; then
	echo "ns83820: bound"
fi
dmesg | grep -i ns83820
ifc=\$(ls /sys/class/net | grep -v '^lo\$' | head -n 1)
[ -n "\$ifc" ] || { echo "real-driver: no network interface"; verdict FAIL; }
echo "real-driver: interface \$ifc driver \$(basename \$(readlink /sys/class/net/\$ifc/device/driver))"
ip link set lo up
ip addr add $guest_ip/24 dev \$ifc
ip link set \$ifc up
i=0
while [ "\$(cat /sys/class/net/\$ifc/carrier 2>/dev/null)" != 1 ] && [ \$i -lt 30 ]; do
	sleep 1; i=\$((i + 1))
done
echo "real-driver: link carrier=\$(cat /sys/class/net/\$ifc/carrier 2>/dev/null) operstate=\$(cat /sys/class/net/\$ifc/operstate)"
echo "real-driver: ping $host_ip"
ping -c $pings -W 30 $host_ip >/tmp.ping 2>&1
cat /tmp.ping
n=\$(sed -n 's/.* \\([0-9]*\\) packets received.*/\\1/p' /tmp.ping)
echo "real-driver: \${n:-0} of $pings pings answered"
[ "\${n:-0}" = $pings ] && verdict PASS
ip -s link show \$ifc
verdict FAIL
INIT
chmod 755 "$root/init"
(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) >"$out"
