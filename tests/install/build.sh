#!/usr/bin/env bash
# Build heapinspect the way it is shipped: prefix /usr, no tests, no
# benchmark, no test hooks; install it into a staging directory with
# DESTDIR (OUT/stage), and make the Debian package with CPack (OUT/deb).
# The install tests (label install) use what this leaves.
#
#   build.sh SOURCE_DIR OUT_DIR C_COMPILER
set -euo pipefail
src=$1 out=$2 cc=$3
rm -rf "$out"
mkdir -p "$out"
cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_C_COMPILER="$cc" \
	-DBUILD_TESTING=OFF -DHI_BENCH=OFF -DHI_TEST_HOOKS=OFF -DHI_WERROR=ON \
	>"$out/configure.log"
cmake --build "$out/build" -j2 >"$out/build.log"
DESTDIR="$out/stage" cmake --install "$out/build" --strip >"$out/install.log"
(cd "$out/build" && cpack -G DEB -B "$out/deb" >"$out/cpack.log")
ls "$out/deb"/*.deb
