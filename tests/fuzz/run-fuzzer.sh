#!/bin/sh
# run-fuzzer.sh: run one libFuzzer target for a bounded time over its seed corpus, without writing to the source tree
set -eu
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$seeds"/* "$work"/ 2>/dev/null || true
# A crash must fail the test: libFuzzer exits 77 by default, which meson
# counts as a skip.
exec "$fuzzer" -max_total_time="$seconds" -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=1024 -print_final_stats=1 \
	-artifact_prefix="$work/" "$work"
