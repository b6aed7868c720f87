#!/bin/sh
# bench.sh: build and run every benchmark; each prints its own same-run baseline
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
echo "== site rewrite, 100 000 sites (larger than the caches)"
build/bench/bench_rewrite 100000
echo "== site rewrite, 8 000 sites (a Linux kernel's pv + alternatives count)"
build/bench/bench_rewrite 8000
echo "== trapped I/O on the KVM host: one PIO exit (pioloop guest), host baseline"
build/bench/bench_exits build/tests/kvm/pioloop.elf
echo "== DP83820 echo, frames/s: host socketpair (baseline), then the reference guest through trapped MMIO"
build/tests/platform/net_echo --frames 100000 --window 8 --loopback
build/tests/platform/net_echo --frames 20000 --window 8 build/backends/pvhost build/tests/guest/guest.elf
echo "== personalities: native (trap-and-emulate) against kvm (pre-virtualized), same guest, same run"
bench/personality.sh build/backends/pvhost build/tests/guest/guest.elf build/tests/guest/workload_ref \
	build/tests/platform/net_echo 4000 3000
echo "== live migration: loopback TCP/TLS ceilings, a 256 MiB guest with 200 MiB written moved between two daemons, in-place switches"
bench/migrate.sh build/daemon/pvmigrated build/daemon/pvmigrate build/tests/guest/guest.elf \
	build/tests/guest/workload_ref build/bench/tcp_loopback 200
