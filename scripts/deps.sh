#!/bin/sh
# deps.sh: install the Debian 12 packages pvmigrate needs, only those that are missing
set -eu
# busybox-static and linux-image-amd64: the opt-in real-driver check (tests/linux/);
# openssl: the daemon migration test makes its certificates with it
pkgs="meson ninja-build pkg-config gcc clang binutils libcapstone-dev python3
      libprotobuf-c-dev protobuf-c-compiler libevent-dev libssl-dev openssl liblzma-dev
      qemu-system-x86 busybox-static linux-image-amd64"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
