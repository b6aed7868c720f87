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
