#!/usr/bin/env python3
"""heapinspect trim gives memory back and leaves the target working.

    trim.py --heapinspect BIN --target hi_target [--debuginfo-path DIR]

Starts `hi_target mixed` (thousands of free chunks spread over a large
heap), runs `heapinspect trim -p PID --json`, and requires: RSS dropped,
malloc_trim made system calls that release memory, the figures before equal
the target's own mallinfo2() before, the figures after equal the target's
own after (its `report`), and the target's data is intact (`check`, exit 0).
"""

import argparse
import json
import subprocess
import sys

from hi_live import FIGURES, Failure, Target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--debuginfo-path")
    args = ap.parse_args()
    t = Target(args.target, "mixed")
    try:
        before = t.wait_ready()
        argv = [args.heapinspect, "trim", "-p", str(t.pid), "--json"]
        if args.debuginfo_path:
            argv += ["--debuginfo-path", args.debuginfo_path]
        res = subprocess.run(argv, capture_output=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise Failure("trim: exit %d: %s" % (res.returncode,
                                                 res.stderr.decode()))
        out = json.loads(res.stdout)
        after = t.report()
        low32 = before["api"] == "mallinfo"
        mask = 0xffffffff if low32 else (1 << 64) - 1
        problems = []
        for key in FIGURES:
            if out["mallinfo2_before"][key] & mask != before[key]:
                problems.append("before: %s %d, target %d" % (
                    key, out["mallinfo2_before"][key], before[key]))
            if out["mallinfo2_after"][key] & mask != after[key]:
                problems.append("after: %s %d, target %d" % (
                    key, out["mallinfo2_after"][key], after[key]))
        rss = out["rss"]
        print("rss %d -> %d (returned %d), system calls %r"
              % (rss["before"], rss["after"], rss["returned"],
                 out["call"]["syscalls"]))
        if not rss["after"] < rss["before"]:
            problems.append("RSS did not drop")
        if out["released"] is not True or \
                not out["call"]["syscalls"].get("madvise"):
            problems.append("no madvise from malloc_trim: %r"
                            % out["call"]["syscalls"])
        if problems:
            raise Failure("; ".join(problems))
        print("figures before and after equal the target's own: OK")
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS trim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
