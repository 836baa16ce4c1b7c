#!/usr/bin/env python3
"""SIGKILL heapinspect in the middle of a snapshot; the target must not
notice.

    kill_midway.py --heapinspect BIN --target BIN [--rounds 20]
                   [--max-delay-ms 5] [--seed N] [--signal KILL|INT|TERM|STOP]
                   [--extra-arg ARG ...]

Starts `hi_target million`, then, --rounds times: starts
`heapinspect -p PID --json`, sleeps a random 0..max-delay ms, sends it the
signal and requires that the target is left running (every thread in
state R or S, not stopped) and untraced (TracerPid 0) within a short while.
At the end the target must report the same figures as at the start,
answer `check` with ok and exit with status 0.

With --signal STOP heapinspect is stopped instead, for a random 0..200 ms,
then continued (SIGCONT).  While a tracer is stopped, the threads it holds
stay stopped too: nothing can release them but the tracer or its death,
and that is counted ("target held").  After SIGCONT heapinspect must
finish on its own with exit 0 and exactly the target's figures.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import random
import signal
import subprocess
import sys
import time

from hi_live import FIGURES, Failure, Target, heapinspect_argv, proc_state, \
    tracer_pid

SETTLE_S = 2.0		# how long the kernel gets to detach a dead tracer


def wait_released(pid):
    """Wait until pid runs untraced; Failure with what was seen if not."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        states = proc_state(pid)
        tracer = tracer_pid(pid)
        if tracer == 0 and states and all(s in "RS" for s in states):
            return
        if time.monotonic() > deadline:
            raise Failure("target after %.1f s: thread states %s, "
                          "TracerPid %d" % (SETTLE_S, "".join(states),
                                            tracer))
        time.sleep(0.005)


def check_stopped_run(status, out, ready, i):
    """heapinspect, stopped and continued, finished with exact figures."""
    if status != 0:
        raise Failure("round %d: heapinspect exited %d after SIGCONT"
                      % (i + 1, status))
    mi = json.loads(out)["mallinfo2"]
    wrong = [k for k in FIGURES if mi[k] != ready[k]]
    if wrong:
        raise Failure("round %d: figures %s differ from the target's"
                      % (i + 1, wrong))


def run(args):
    rng = random.Random(args.seed)
    target = Target(args.target, "million")
    try:
        ready = target.wait_ready(120)
        pid = target.pid
        print("target million: pid %d api %s" % (pid, ready["api"]))
        argv = heapinspect_argv(args.heapinspect, pid, None, args.extra_arg)
        killed = finished = held = 0
        for i in range(args.rounds):
            delay = rng.uniform(0, args.max_delay_ms) / 1000.0
            hold = rng.uniform(0, 0.2)
            stop = args.sig == signal.SIGSTOP
            hi = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE if stop
                                  else subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            try:
                time.sleep(delay)
                if hi.poll() is None:
                    hi.send_signal(args.sig)
                    killed += 1
                    if stop:
                        time.sleep(hold)
                        if any(s == "t" for s in proc_state(pid)):
                            held += 1
                        hi.send_signal(signal.SIGCONT)
                        out, _ = hi.communicate(timeout=60)
                        check_stopped_run(hi.returncode, out, ready, i)
                else:
                    finished += 1
                    if stop:
                        out, _ = hi.communicate(timeout=60)
                        check_stopped_run(hi.returncode, out, ready, i)
                # SIGINT and SIGTERM must make heapinspect let go and end.
                try:
                    hi.wait(30)
                except subprocess.TimeoutExpired:
                    raise Failure("round %d: heapinspect still runs 30 s "
                                  "after signal %d" % (i + 1, args.sig)) \
                        from None
            finally:
                if hi.poll() is None:
                    hi.kill()
                status = hi.wait()
            print("round %2d: delay %5.2f ms, heapinspect %s"
                  % (i + 1, delay * 1000,
                     "killed" if status == -args.sig
                     else "exited %d" % status))
            if stop and status != 0:
                raise Failure("round %d: heapinspect exited %d"
                              % (i + 1, status))
            if target.proc.poll() is not None:
                raise Failure("round %d: target died, status %d"
                              % (i + 1, target.proc.returncode))
            try:
                wait_released(pid)
            except Failure as e:
                raise Failure("round %d: %s" % (i + 1, e)) from None
        print("heapinspect %s %d times, finished first %d times"
              % ("stopped" if args.sig == signal.SIGSTOP else "killed",
                 killed, finished))
        if args.sig == signal.SIGSTOP:
            print("the target was held while heapinspect was stopped %d "
                  "times" % held)

        failed = []
        again = target.report()
        if ready["api"] != "none":
            changed = [k for k in FIGURES if again[k] != ready[k]]
            if changed:
                failed.append("target figures changed: %s"
                              % ", ".join("%s %d -> %d"
                                          % (k, ready[k], again[k])
                                          for k in changed))
        target.check()
        target.exit(30)
        return failed
    finally:
        target.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--max-delay-ms", type=float, default=5.0)
    ap.add_argument("--signal", default="KILL",
                    help="KILL, INT, TERM or STOP: what heapinspect is sent")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the random delays (default: random)")
    ap.add_argument("--extra-arg", action="append", default=[],
                    help="passed to heapinspect; may be repeated")
    args = ap.parse_args()
    args.sig = int(getattr(signal, "SIG" + args.signal))
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    print("seed %d" % args.seed)

    try:
        failed = run(args)
    except Failure as e:
        failed = [str(e)]
    except OSError as e:
        failed = ["%s" % e]
    if failed:
        print("FAIL kill_midway:")
        for f in failed:
            print("  %s" % f)
        return 1
    print("PASS kill_midway")
    return 0


if __name__ == "__main__":
    sys.exit(main())
