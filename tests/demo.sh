#!/usr/bin/env bash
# See heapinspect work: install what the demo needs (as root: the compiler,
# CMake, elfutils and jansson to build it, python3 for CMake's test
# directory), build heapinspect and the sample program, start the program
# with a known heap (tests/targets/hi_target, scenario mixed, or the one
# given), print heapinspect's report, then the ten mallinfo2 figures side by
# side in bytes: what the program's own mallinfo2() says, what heapinspect
# read from outside.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -eq 0 ]]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends build-essential cmake \
		pkg-config libdw-dev libelf-dev libjansson-dev python3
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHI_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)" --target heapinspect hi_target

coproc TARGET { exec build/tests/targets/hi_target "${1:-mixed}"; }
trap 'echo exit >&"${TARGET[1]}" 2>/dev/null || true; wait' EXIT
read -r ready <&"${TARGET[0]}"
pid=$(sed -n 's/.* pid=\([0-9]*\) .*/\1/p' <<<"$ready")

echo
echo "\$ build/heapinspect -p $pid"
build/heapinspect -p "$pid"
echo
echo "\$ build/heapinspect -p $pid --bytes, beside the program's own report"
build/heapinspect -p "$pid" --bytes | awk -v ready="$ready" '
	BEGIN {
		n = split(ready, w, " ")
		for (i = 1; i <= n; i++) {
			split(w[i], kv, "=")
			own[kv[1]] = kv[2]
		}
		printf "%-10s %18s %18s\n", "mallinfo2", "the program says",
		       "heapinspect read"
	}
	/^mallinfo2$/ { on = 1; next }
	on && NF == 0 { exit }
	on {
		printf "%-10s %18s %18s  %s\n", $1, own[$1], $2,
		       own[$1] == $2 ? "same" : "DIFFERENT"
	}'
