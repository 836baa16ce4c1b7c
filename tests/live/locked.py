#!/usr/bin/env python3
"""A consistent moment: while a thread of the target holds main_arena's
lock (blocked inside glibc's malloc_stats(), see hi_target.c "locked"),
heapinspect must not print figures from lists that may be half updated: it
retries, then reports the arena as busy, mallinfo2 absent, exit status 1,
and leaves the target running.  Once the lock is released, the figures must
equal the target's own mallinfo2() again.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hi_live  # noqa: E402
from hi_live import Failure, Target  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--debuginfo-path")
    args = ap.parse_args()
    t = Target(args.target, "locked")
    try:
        ready = t.wait_ready()
        if ready["api"] != "none":
            raise Failure("locked target reported figures: %r" % ready)
        argv = hi_live.heapinspect_argv(args.heapinspect, t.pid,
                                        args.debuginfo_path,
                                        ["--attempts", "4"])
        res = subprocess.run(argv, capture_output=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        err = res.stderr.decode()
        if res.returncode != 1:
            raise Failure("exit status %d with the lock held, expected 1; "
                          "stderr: %s" % (res.returncode, err))
        snap = json.loads(res.stdout)
        main_arena = [a for a in snap["arenas"] if a["main"]]
        problems = []
        if snap["consistent"] is not False:
            problems.append("consistent is %r" % snap["consistent"])
        if snap["mallinfo2"] is not None:
            problems.append("mallinfo2 printed: %r" % snap["mallinfo2"])
        if len(main_arena) != 1 or main_arena[0]["state"] != "busy":
            problems.append("main arena not busy: %r" % main_arena)
        elif "free_bytes" in main_arena[0]:
            problems.append("busy arena has figures: %r" % main_arena[0])
        if snap["stop"]["attempts"] != 4:
            problems.append("attempts %r, expected 4"
                            % snap["stop"]["attempts"])
        if "was busy (locked by the target) in all 4 attempts" not in err:
            problems.append("stderr does not say so: %r" % err)
        if problems:
            raise Failure("; ".join(problems))
        print("held lock: exit 1, main arena busy, mallinfo2 null, "
              "4 attempts: OK")
        states = hi_live.proc_state(t.pid)
        if any(s in "tT" for s in states) or hi_live.tracer_pid(t.pid):
            raise Failure("target left stopped or traced: %s" % states)

        t.send("release")
        ready = t.wait_ready()
        snap, _, _ = hi_live.run_heapinspect(
            hi_live.heapinspect_argv(args.heapinspect, t.pid,
                                     args.debuginfo_path))
        for f in hi_live.FIGURES:
            want = ready[f]
            got = snap["mallinfo2"][f]
            if ready["api"] == "mallinfo":
                got &= 0xffffffff
            if got != want:
                raise Failure("after release: %s = %d, target says %d"
                              % (f, got, want))
        print("after release: all ten figures equal the target's: OK")
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS locked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
