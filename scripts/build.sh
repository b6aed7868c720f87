#!/bin/sh
# build.sh: configure (once) and build the main tree in build/
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
