#!/bin/sh
# check.sh: install what is missing, build, and run the whole test suite (unit, integration, fuzz)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
status=0
meson test -C build --print-errorlogs --num-processes 2 || status=1

# Fuzz targets: a second tree built by clang with libFuzzer and sanitizers.
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=enabled -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null
fi
ninja -C build-fuzz >/dev/null
meson test -C build-fuzz --suite fuzz --print-errorlogs --num-processes 2 || status=1

# One closing line over both trees, counted from meson's own logs.
python3 - build/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json <<'PY'
import json, sys
p = f = s = 0
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r == "SKIP": s += 1
        else: f += 1
print(f"check: {p} passed, {f} failed, {s} skipped")
PY
exit $status
