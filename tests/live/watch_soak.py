#!/usr/bin/env python3
"""The soak with watch: a target of 16 threads that allocate, free, check
their data, sleep and poll (hi_target.c "busy16"), watched with
`--interval 10ms` for a minute.  The target must never die, see EINTR, a
short sleep or changed data (its own `check`), and every sample in the
file must parse.

Every few seconds the test pauses the target (its workers park outside
malloc and it reports its own mallinfo2()) for a second: every sample
whose timestamp falls inside such a pause must equal the target's
figures exactly, and each pause must hold at least one.  Of the samples
of the running target, at least --min-consistent percent must be
consistent, and at most --max-errors samples may fail (error events).
"""

import argparse
import calendar
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import FIGURES, Failure, Target  # noqa: E402


def seconds(ts):
    """An RFC 3339 UTC timestamp of the snapshot, as time.time() gives."""
    base, frac = ts[:-1].split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
        int(frac) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--duration", type=int, default=60,
                    help="seconds")
    ap.add_argument("--pause-every", type=float, default=5.0)
    ap.add_argument("--min-consistent", type=int, default=90)
    ap.add_argument("--max-errors", type=int, default=0)
    args = ap.parse_args()
    # nice 10, as soak.busy16: 16 spinning threads would starve heapinspect.
    t = Target(args.target, "busy16", 10)
    watch = None
    try:
        t.wait_ready()
        with tempfile.TemporaryDirectory(prefix="hi-watch-") as d:
            out = os.path.join(d, "soak.jsonl")
            watch = subprocess.Popen(
                [args.heapinspect, "watch", "-p", str(t.pid),
                 "--interval", "10ms", "--duration",
                 "%ds" % args.duration, "--stop-timeout", "10000", "-o",
                 out], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
            # Moments the target controls: (from, to, its figures).
            pauses = []
            end = time.monotonic() + args.duration - args.pause_every
            while time.monotonic() < end and watch.poll() is None:
                time.sleep(args.pause_every - 1)
                t.send("pause")
                truth = t.wait_ready(60)
                t0 = time.time()
                time.sleep(1)
                t1 = time.time()
                t.send("resume")
                if t.readline(60) != "resumed":
                    raise Failure("target: resume not answered")
                pauses.append((t0, t1, truth))
            try:
                _, err = watch.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                raise Failure("watch did not end") from None
            if watch.returncode != 0:
                raise Failure("watch exit %d: %s" % (watch.returncode,
                                                     err.decode()))
            samples = consistent = errors = running = 0
            held = [0] * len(pauses)
            with open(out) as f:
                for n, line in enumerate(f, 1):
                    snap = json.loads(line)
                    if snap.get("schema") == "heapinspect/event/v1":
                        errors += 1
                        continue
                    if snap.get("schema") != "heapinspect/snapshot/v1":
                        raise Failure("line %d: schema %r"
                                      % (n, snap.get("schema")))
                    samples += 1
                    ts = seconds(snap["timestamp"])
                    mi = snap.get("mallinfo2")
                    inside = [k for k, (a, b, _) in enumerate(pauses)
                              if a < ts < b]
                    if not inside:
                        running += 1
                        consistent += mi is not None
                        continue
                    truth = pauses[inside[0]][2]
                    held[inside[0]] += 1
                    if mi is None:
                        raise Failure("line %d, taken while the target "
                                      "was paused, is not consistent" % n)
                    bad = [k for k in FIGURES if mi[k] != truth[k]]
                    if bad:
                        raise Failure("line %d, taken while the target "
                                      "was paused: %s differ from its "
                                      "own figures (%s)" % (n, bad, " ".join(
                                          "%s %d != %d" % (k, mi[k],
                                                           truth[k])
                                          for k in bad)))
            print("%d samples in %d s: %d during %d pauses, each equal to "
                  "the target's own figures (%s a pause); of the %d "
                  "while it ran, %d consistent; %d failed"
                  % (samples, args.duration, sum(held), len(pauses),
                     "/".join(map(str, held)), running, consistent,
                     errors))
            if not pauses or 0 in held:
                raise Failure("a pause without a sample in it: %s" % held)
            if consistent * 100 < args.min_consistent * running:
                raise Failure("only %d of %d samples of the running target "
                              "were consistent, fewer than %d%%"
                              % (consistent, running, args.min_consistent))
            if errors > args.max_errors:
                raise Failure("%d samples failed, more than %d"
                              % (errors, args.max_errors))
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        if watch and watch.poll() is None:
            watch.kill()
            watch.wait()
        t.kill()
    print("PASS watch_soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
