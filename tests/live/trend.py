#!/usr/bin/env python3
"""heapinspect watch, then trend, on a target whose heap changes in a known
way (tests/targets/hi_target.c: leak, fragment, steady, mmap_grow).

    trend.py --heapinspect BIN --target BIN --scenario S --expect VERDICT
             [--samples N] [--interval 150ms]

Starts `hi_target S`, watches it for N samples (by count, not by time:
on a loaded machine a sample may take longer than the interval), runs
`trend --json` and
requires the verdict VERDICT and trend's exit status (0 for steady, 1 for
anything else).  For leak, the slope of live bytes must be within 10% of
the rate the target itself reports: the blocks it allocated between two
reports around the watch, each of glibc's chunk size for its block size
(request2size), over the time between the reports.  For fragment, the
target's own mallinfo2() must show uordblks flat and fordblks growing.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from hi_live import Failure, Target
from series_util import expect_rc, request2size, run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--expect", required=True,
                    choices=("steady", "leak", "fragmentation",
                             "outside-heap"))
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--interval", default="150ms")
    ap.add_argument("--rate", type=int,
                    help="leak: bytes per second (hi_target leak RATE)")
    args = ap.parse_args()
    hi = args.heapinspect
    target = Target(args.target, args.scenario,
                    args=[str(args.rate)] if args.rate else [])
    tmp = tempfile.mkdtemp(prefix="hi-trend-")
    series = os.path.join(tmp, "series.jsonl")
    try:
        before = target.wait_ready()
        t_before = time.monotonic()
        argv = [hi, "watch", "-p", str(target.pid), "--interval",
                args.interval, "--count", str(args.samples), "-o", series]
        rc, _, err = run(argv, timeout=args.samples * 2 + 60)
        expect_rc(argv, rc, 0, err)
        after = target.report()
        t_after = time.monotonic()
        with open(series) as f:
            lines = f.read().splitlines()
        print("watch: %d lines in %.1f s" % (
            len(lines), (after["t_us"] - before["t_us"]) / 1e6
            if "t_us" in after else 0))
        if len(lines) != args.samples:
            raise Failure("watch wrote %d lines, not %d" % (len(lines),
                                                            args.samples))

        argv = [hi, "trend", "--json", series]
        rc, out, err = run(argv)
        expect_rc(argv, rc, 0 if args.expect == "steady" else 1, err)
        verdict = json.loads(out)
        print("trend: verdict %s, slopes %s" % (verdict["verdict"],
                                               verdict["slopes"]))
        for f in verdict["findings"]:
            print("  %s: %s" % (f["kind"], f["message"]))
        if verdict["verdict"] != args.expect:
            raise Failure("trend says %r, expected %r"
                          % (verdict["verdict"], args.expect))
        if set(verdict["slopes"]) != {
                "live_bytes_per_hour", "free_bytes_per_hour",
                "mmap_bytes_per_hour", "outside_heap_bytes_per_hour"}:
            raise Failure("slopes has keys %s" % sorted(verdict["slopes"]))
        kinds = [f["kind"] for f in verdict["findings"]]
        if args.expect != "leak" and "leak" in kinds:
            # Only where the target's own figures grew: fragment keeps a
            # 24-byte head of every block it shrinks, a real leak of 32
            # bytes a step, which trend may find when it reaches 1% of
            # the heap.  The rate found must be the target's own.
            found = [f for f in verdict["findings"] if f["kind"] == "leak"]
            grew = (after["uordblks"] + after["hblkhd"]) - \
                (before["uordblks"] + before["hblkhd"])
            own = grew / (t_after - t_before) * 3600
            rate = found[0]["bytes_per_hour"]
            print("a leak found in %s: %d B/h; the target's own live bytes "
                  "grew %d B in %.1f s: %.0f B/h"
                  % (args.scenario, rate, grew, t_after - t_before, own))
            if grew <= 0 or abs(rate - own) > 0.5 * own:
                raise Failure("a leak was found in %s, but the target's "
                              "own live bytes grew %d B" % (args.scenario,
                                                            grew))

        if args.scenario == "leak":
            dt = (after["t_us"] - before["t_us"]) / 1e6
            blocks = after["blocks"] - before["blocks"]
            truth = blocks * request2size(after["block_size"]) / dt * 3600
            got = verdict["slopes"]["live_bytes_per_hour"]
            print("leak: target %d blocks of %d bytes in %.3f s: %.0f B/h;"
                  " trend %d B/h (%.2f%%)" % (blocks, after["block_size"],
                                              dt, truth, got,
                                              100 * (got - truth) / truth))
            if abs(got - truth) > 0.10 * truth:
                raise Failure("leak slope %d B/h is not within 10%% of "
                              "%.0f B/h" % (got, truth))
        if args.scenario == "fragment":
            du = after["uordblks"] - before["uordblks"]
            df = after["fordblks"] - before["fordblks"]
            print("fragment: the target's own mallinfo2: uordblks %+d, "
                  "fordblks %+d" % (du, df))
            if not (df > 1 << 20 and abs(du) * 20 < df):
                raise Failure("the target did not fragment as designed")
        target.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        target.kill()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
