#!/usr/bin/env python3
"""heapinspect watch stopped every way it can stop.

    watch_signals.py --heapinspect BIN --target BIN [--rounds N] [--seed S]

- SIGKILL at random moments, N times, appending to one file: every line
  that ends with a newline must parse as a snapshot; the next watch cuts
  an unfinished last line; the target must be left running, untraced.
- SIGINT and SIGTERM: exit status 0, only whole lines in the file.
- --count 3: exactly 3 lines.
- the target exits: exit status 3, and the last line records it
  (schema heapinspect/event/v1, event "exited").
- no such process: exit status 2, nothing sampled.
- usage errors: exit status 64.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from hi_live import SCHEMA, Failure, Target, proc_state, tracer_pid
from series_util import expect_rc, run

EVENT = "heapinspect/event/v1"


def lines_of(path):
    """(whole lines, unfinished tail) of a file."""
    with open(path, "rb") as f:
        data = f.read()
    whole, _, tail = data.rpartition(b"\n")
    return ([x for x in whole.split(b"\n") if x] if whole else []), tail


def check_lines(path, allow_tail):
    lines, tail = lines_of(path)
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise Failure("%s line %d does not parse: %s" % (path, i, e))
        if obj.get("schema") not in (SCHEMA, EVENT):
            raise Failure("%s line %d: schema %r" % (path, i,
                                                      obj.get("schema")))
    if tail and not allow_tail:
        raise Failure("%s ends with an unfinished line" % path)
    return lines, tail


def wait_for_line(path, timeout=30):
    """Wait until path holds a whole line: the watch is past its start."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and lines_of(path)[0]:
            return
        time.sleep(0.02)
    raise Failure("no line in %s within %d s" % (path, timeout))


def target_free(pid):
    for _ in range(100):
        if tracer_pid(pid) == 0 and "t" not in proc_state(pid) and \
                "T" not in proc_state(pid):
            return
        time.sleep(0.02)
    raise Failure("target left traced or stopped: tracer %d, states %s"
                  % (tracer_pid(pid), proc_state(pid)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    hi = args.heapinspect
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="hi-watch-")
    target = Target(args.target, "mixed")
    try:
        target.wait_ready()
        pid = str(target.pid)

        # SIGKILL at random moments, all appending to one file.
        killed = os.path.join(tmp, "killed.jsonl")
        tails = 0
        for r in range(args.rounds):
            p = subprocess.Popen([hi, "watch", "-p", pid, "--interval",
                                  "10ms", "-o", killed],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.05, 0.6))
            p.kill()
            p.wait()
            p.stderr.close()
            lines, tail = check_lines(killed, allow_tail=True)
            tails += bool(tail)
            target_free(target.pid)
        print("SIGKILL x%d: %d whole lines, all parse; %d kills left an "
              "unfinished line" % (args.rounds, len(lines), tails))
        argv = [hi, "watch", "-p", pid, "--interval", "10ms", "--count",
                "2", "-o", killed]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 0, err)
        before = len(lines)
        lines, _ = check_lines(killed, allow_tail=False)
        if len(lines) != before + 2:
            raise Failure("after a kill: %d lines, expected %d"
                          % (len(lines), before + 2))
        argv = [hi, "diff", killed]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 0, err)
        target.check()

        # SIGINT and SIGTERM: a clean stop.
        for sig in (signal.SIGINT, signal.SIGTERM):
            out = os.path.join(tmp, "sig%d.jsonl" % sig)
            p = subprocess.Popen([hi, "watch", "-p", pid, "--interval",
                                  "20ms", "-o", out],
                                 stdin=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            # Signalled once it runs its loop, not while it starts up.
            wait_for_line(out)
            time.sleep(0.2)
            p.send_signal(sig)
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failure("watch still runs 10 s after %s" % sig.name)
            err = p.stderr.read().decode()
            p.stderr.close()
            if rc != 0:
                raise Failure("watch after %s: exit %d: %s"
                              % (sig.name, rc, err))
            lines, _ = check_lines(out, allow_tail=False)
            if not lines:
                raise Failure("watch after %s: no line" % sig.name)
            target_free(target.pid)
            print("%s: exit 0, %d whole lines" % (sig.name, len(lines)))

        # --count.
        out = os.path.join(tmp, "count.jsonl")
        argv = [hi, "watch", "-p", pid, "--interval", "50ms", "--count",
                "3", "-o", out]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 0, err)
        lines, _ = check_lines(out, allow_tail=False)
        if len(lines) != 3:
            raise Failure("--count 3 wrote %d lines" % len(lines))

        # The target exits while watched.
        out = os.path.join(tmp, "exit.jsonl")
        p = subprocess.Popen([hi, "watch", "-p", pid, "--interval",
                              "50ms", "-o", out],
                             stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        wait_for_line(out)
        target.exit()
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise Failure("watch still runs 10 s after the target exited")
        err = p.stderr.read().decode()
        p.stderr.close()
        if rc != 3:
            raise Failure("watch when the target exited: exit %d, "
                          "expected 3: %s" % (rc, err))
        if "exited" not in err:
            raise Failure("watch did not say the target exited: %r" % err)
        lines, _ = check_lines(out, allow_tail=False)
        last = json.loads(lines[-1])
        if last.get("schema") != EVENT or last.get("event") != "exited":
            raise Failure("the last line does not record the exit: %r"
                          % last)
        print("target exited: exit 3, recorded after %d snapshots"
              % (len(lines) - 1))

        # No process to watch at all.
        with open("/proc/sys/kernel/pid_max") as f:
            gone = int(f.read()) - 1
        while os.path.exists("/proc/%d" % gone):
            gone -= 1
        out = os.path.join(tmp, "none.jsonl")
        argv = [hi, "watch", "-p", str(gone), "--interval", "50ms", "-o",
                out]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 2, err)
        if "no process with pid %d" % gone not in err:
            raise Failure("unclear message: %r" % err)

        for bad in (["--interval", "5x", "-o", out],
                    ["--interval", "1s", "--count", "2", "--duration", "1s",
                     "-o", out],
                    ["--interval", "1s"],
                    ["-o", out]):
            argv = [hi, "watch", "-p", "1"] + bad
            rc, _, err = run(argv)
            expect_rc(argv, rc, 64, err)
            if not err.startswith("heapinspect: "):
                raise Failure("usage message %r" % err)
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
