#!/usr/bin/env bash
# See heapinspect work: install, build, start a sample process with a known
# heap (tests/targets/hi_target, scenario mixed), and print heapinspect's
# report of it beside the process's own mallinfo2() figures.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -eq 0 ]]; then
	bash tests/setup-debian.sh
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"

coproc TARGET { exec build/tests/targets/hi_target "${1:-mixed}"; }
trap 'echo exit >&"${TARGET[1]}" 2>/dev/null || true; wait' EXIT
read -r ready <&"${TARGET[0]}"
pid=$(sed -n 's/.* pid=\([0-9]*\) .*/\1/p' <<<"$ready")
echo
echo "the sample process (pid $pid) says of itself:"
tr ' ' '\n' <<<"$ready" | grep -E '^(arena|ordblks|smblks|hblks|hblkhd|usmblks|fsmblks|uordblks|fordblks|keepcost)=' | paste -sd' '
echo
echo "\$ build/heapinspect -p $pid"
build/heapinspect -p "$pid"
