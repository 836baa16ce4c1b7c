#!/usr/bin/env bash
# The test command of the README and of CI: install (as root), build with
# warnings as errors, make the glibc 2.31, 2.41, 2.43 and 2.44 sysroots (the
# host has 2.36), run every test;
# then build again with AddressSanitizer and UndefinedBehaviorSanitizer and
# run every test once more; then build the libFuzzer targets with clang and
# run each briefly (HI_FUZZ_SECONDS, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -eq 0 ]]; then
	bash tests/setup-debian.sh
fi
jobs=$(nproc)
# The layout cache of the runs under test: the build's own, not the user's.
export XDG_CACHE_HOME="$PWD/build/cache"

for suite in bullseye trixie sid experimental; do
	bash tests/glibc/make-sysroot.sh "$suite" "$PWD/build/sysroots/$suite"
done

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHI_WERROR=ON \
	-DHI_TEST_HOOKS=ON -DHI_REQUIRE_SYSROOTS=ON \
	-DHI_SYSROOTS="$PWD/build/sysroots"
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" -LE soak)
# The soak alone: its 16 busy threads would slow every other test.
(cd build && cmake . -DHI_SOAK_SNAPSHOTS="${HI_SOAK_SNAPSHOTS:-2000}" &&
	ctest --output-on-failure -L soak)

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHI_WERROR=ON \
	-DHI_SANITIZE=ON -DHI_TEST_HOOKS=ON -DHI_REQUIRE_SYSROOTS=ON \
	-DHI_SYSROOTS="$PWD/build/sysroots"
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -j"$jobs" -LE soak)

# libFuzzer: clang only, in a build of its own; only the fuzz targets.
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHI_WERROR=ON -DHI_FUZZ=ON \
	-DHI_FUZZ_SECONDS="${HI_FUZZ_SECONDS:-30}" \
	-DHI_SYSROOTS="$PWD/build/sysroots"
cmake --build build-fuzz -j"$jobs" --target hi_fuzz_all
(cd build-fuzz && ctest --output-on-failure -L fuzz)
