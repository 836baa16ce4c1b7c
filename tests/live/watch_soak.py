#!/usr/bin/env python3
"""The soak with watch: a target of 16 threads that allocate, free, check
their data, sleep and poll (hi_target.c "busy16"), watched with
`--interval 10ms` for a minute.  The target must never die, see EINTR, a
short sleep or changed data (its own `check`), and every sample in the
file must parse and, where it has figures, add up: the arenas' system
memory to `arena`, in use plus free to `arena`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import Failure, Target  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--duration", default="60s")
    args = ap.parse_args()
    # nice 10, as soak.busy16: 16 spinning threads would starve heapinspect.
    t = Target(args.target, "busy16", 10)
    try:
        t.wait_ready()
        with tempfile.TemporaryDirectory(prefix="hi-watch-") as d:
            out = os.path.join(d, "soak.jsonl")
            res = subprocess.run(
                [args.heapinspect, "watch", "-p", str(t.pid),
                 "--interval", "10ms", "--duration", args.duration,
                 "--stop-timeout", "10000", "-o", out],
                capture_output=True, timeout=600,
                stdin=subprocess.DEVNULL)
            if res.returncode != 0:
                raise Failure("watch exit %d: %s" % (res.returncode,
                                                     res.stderr.decode()))
            samples = consistent = 0
            with open(out) as f:
                for n, line in enumerate(f, 1):
                    snap = json.loads(line)
                    if snap.get("schema") != "heapinspect/snapshot/v1":
                        raise Failure("line %d: schema %r"
                                      % (n, snap.get("schema")))
                    samples += 1
                    mi = snap.get("mallinfo2")
                    if mi is None:
                        continue
                    consistent += 1
                    sysmem = sum(a["system_mem"] for a in snap["arenas"])
                    if sysmem != mi["arena"] or \
                            mi["uordblks"] + mi["fordblks"] != mi["arena"]:
                        raise Failure("line %d does not add up: %r"
                                      % (n, mi))
            if samples == 0:
                raise Failure("watch wrote no sample")
            print("%d samples in %s, %d with figures, all adding up"
                  % (samples, args.duration, consistent))
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS watch_soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
