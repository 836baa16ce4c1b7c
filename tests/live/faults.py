#!/usr/bin/env python3
"""Faults of the target while heapinspect reads it: it ends up as it would
have been without heapinspect, and heapinspect says what happened.

    faults.py --heapinspect BIN --target BIN [--rounds N] [--seed N]

Cases (each prints PASS or FAIL; a SKIP is never a pass):
  exec:      the target executes a new program (hi_target's `exec S`: the
             same pid, stdin and stdout) at a random moment while
             heapinspect runs (every other round in its first 10 ms,
             while it reads /proc and libc's modules), single-threaded
             (small_frees -> mixed) and with 9 threads (threads8 ->
             small_frees).  heapinspect must
             give a snapshot of either program (exactly its figures, or,
             caught while the new one builds its heap, figures that add
             up), or, caught inside malloc in every attempt while the new
             one builds its heap, exit 1 with the arena busy, or exit 2
             saying the process executed a new program;
             never a corrupt heap read with the old program's addresses.
             The new program must run on untraced, its data intact.
  stopped:   a target stopped by job control (SIGSTOP) before heapinspect
             attaches: exact figures, and the target is still stopped
             (state T, untraced) afterwards, five times in a row, single-
             and multi-threaded; after SIGCONT it runs on, data intact.
Exit 0 when every case passed.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hi_live  # noqa: E402
from hi_live import FIGURES, Failure, Target  # noqa: E402
from compare import check_relations  # noqa: E402

results = {"pass": 0, "fail": 0}


def case(name, fn):
    try:
        fn()
    except Failure as e:
        results["fail"] += 1
        print("FAIL %s: %s" % (name, e))
        return
    except Exception as e:  # noqa: BLE001 - a crash of the test fails it
        results["fail"] += 1
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        return
    results["pass"] += 1
    print("PASS %s" % name)


def released(pid, allowed="RS", timeout=5):
    """Every thread of pid in a state of `allowed`, TracerPid 0."""
    deadline = time.monotonic() + timeout
    while True:
        states = hi_live.proc_state(pid)
        tracer = hi_live.tracer_pid(pid)
        if tracer == 0 and states and all(s in allowed for s in states):
            return
        if time.monotonic() > deadline:
            raise Failure("target left with states %s, TracerPid %d"
                          % ("".join(states), tracer))
        time.sleep(0.01)


def same(mi, ready):
    return all(mi[k] == ready[k] for k in FIGURES)


def exec_rounds(args, first, second, rounds, rng):
    outcomes = {}
    for i in range(rounds):
        t = Target(args.target, first)
        try:
            before = t.wait_ready()
            p = subprocess.Popen([args.heapinspect, "-p", str(t.pid),
                                  "--json"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            # Every other round within heapinspect's first 10 ms, while
            # it reads /proc and libc's modules before any stop.
            top = args.max_delay_ms if i % 2 else min(10, args.max_delay_ms)
            time.sleep(rng.uniform(0, top) / 1000.0)
            t.send("exec " + second)
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failure("round %d: heapinspect hung" % (i + 1)) \
                    from None
            err = err.decode("utf-8", "replace").strip()
            after = t.wait_ready()
            if p.returncode == 0:
                snap = json.loads(out)
                mi = snap["mallinfo2"]
                if mi is None:
                    raise Failure("round %d: exit 0 without figures"
                                  % (i + 1))
                if same(mi, before):
                    key = "snapshot of the old program"
                elif same(mi, after):
                    key = "snapshot of the new program"
                else:
                    problems = []
                    check_relations(mi, snap["arenas"], problems)
                    if problems:
                        raise Failure("round %d: figures of neither "
                                      "program, and they do not add up: "
                                      "%s" % (i + 1, problems))
                    key = "snapshot of the new program building its heap"
            elif p.returncode == 2 and \
                    "executed a new program while it was being read" in err:
                key = "exit 2: executed a new program"
            elif p.returncode == 1 and "was busy (locked by the target) " \
                    "in all" in err and "corrupt" not in err:
                # Caught again and again inside malloc while the new
                # program builds its heap: busy, no figures, as promised.
                key = "exit 1: the new program busy in malloc"
            else:
                raise Failure("round %d: exit %d: %s"
                              % (i + 1, p.returncode, err))
            outcomes[key] = outcomes.get(key, 0) + 1
            released(t.pid)
            t.check()
            t.exit()
        finally:
            t.kill()
    print("  %s -> %s: %s" % (first, second, outcomes))


def stopped_rounds(args, scenario):
    t = Target(args.target, scenario)
    try:
        ready = t.wait_ready()
        os.kill(t.pid, signal.SIGSTOP)
        released(t.pid, "T")
        for i in range(5):
            snap, _, err = hi_live.run_heapinspect(
                hi_live.heapinspect_argv(args.heapinspect, t.pid))
            if not same(snap["mallinfo2"], ready):
                raise Failure("run %d: figures differ from the target's"
                              % (i + 1))
            # Still stopped by job control, nobody tracing it.
            released(t.pid, "T", timeout=1)
        os.kill(t.pid, signal.SIGCONT)
        released(t.pid)
        again = t.report()
        if not same(again, ready):
            raise Failure("the target's figures changed")
        t.check()
        t.exit()
    finally:
        t.kill()
    print("  %s: stopped before, stopped after, 5 times" % scenario)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--max-delay-ms", type=float, default=400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    case("exec, one thread",
         lambda: exec_rounds(args, "small_frees", "mixed", args.rounds, rng))
    case("exec, nine threads",
         lambda: exec_rounds(args, "threads8", "small_frees", args.rounds,
                             rng))
    case("stopped before, one thread",
         lambda: stopped_rounds(args, "small_frees"))
    case("stopped before, nine threads",
         lambda: stopped_rounds(args, "threads8"))
    print("%d passed, %d failed" % (results["pass"], results["fail"]))
    return 1 if results["fail"] or not results["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
