#!/usr/bin/env python3
"""Injected calls into a single thread that waits: it must host them.

    call_hosts.py --heapinspect BIN --target hi_callhost --mode MODE
                  [--debuginfo-path DIR]

MODE is a wait of tests/targets/hi_callhost.c: sleep (sleep(3), after a
plain snapshot: heapinspect's own stop leaves it in restart_syscall),
pselect, ppoll, epoll_pwait, sigsuspend (waits with a temporary signal
mask: the kernel keeps the thread's own in saved_sigmask), rawsleep (a
sleep left in restart_syscall whose code does not tell the system call: it
cannot host a call, and heapinspect must say so).  The target is
the process's only thread, so it must host every call.  This runs, after
a plain snapshot:

  1. `heapinspect -p PID --method call`: it must succeed, in that thread,
     with the target's own figures and the read's of the same stop;
  2. the same, heapinspect killed (SIGKILL) at each step of the call
     (HEAPINSPECT_TEST_DIE): the thread then comes back by itself through
     the call's signal frame;
  3. `heapinspect trim -p PID`: it must succeed, its figures before the
     target's own.

After each run the target must be alive, sleeping, untraced, nothing on
its stderr, and back in its wait: the same system call (or, for sleep,
clock_nanosleep or its restart_syscall), with the wait's temporary mask
as its mask.  At the end SIGUSR1 ends the wait, and the target checks
that nothing else ended it (no short sleep, no EINTR without SIGUSR1
except from epoll_pwait, which any stop ends: signal(7)) and that its
mask is its own again, and reports its figures: those trim left.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import signal
import sys

from callhost import CallHost, figures_of, run, same_figures
from hi_live import Failure

DIE_STEPS = ("started", "return", "returned", "exit", "finished")

# x86_64 system call numbers, as /proc/PID/syscall shows them.
WAITS = {
    "sleep": ("230", "219"),      # clock_nanosleep, restart_syscall
    "pselect": ("270",),
    "ppoll": ("271",),
    "epoll_pwait": ("281",),
    "sigsuspend": ("130",),
    "rawsleep": ("35", "219"),    # nanosleep, restart_syscall
}

# SIGUSR2 alone: the mask the target waits with (SIGUSR1 unblocked).
WAIT_MASK = 1 << (signal.SIGUSR2 - 1)


def need(cond, msg):
    if not cond:
        raise Failure(msg)


def run_mode(args, t):
    pid = str(t.pid)
    dbg = ["--debuginfo-path", args.debuginfo_path] \
        if args.debuginfo_path else []
    back = dict(syscall=WAITS[args.mode], sigblk=WAIT_MASK)

    t.check_untouched("before", **back)
    rc, _, err = run([args.heapinspect, "-p", pid, "--json"] + dbg)
    need(rc == 0, "the plain snapshot: exit %d: %s" % (rc, err))
    t.check_untouched("after a plain snapshot", **back)

    if args.mode == "rawsleep":
        return refused(args, t, dbg, back)
    argv = [args.heapinspect, "-p", pid, "--json", "--method", "call",
            "--timeout", "20000"] + dbg
    rc, out, err = run(argv)
    need(rc == 0, "--method call: exit %d: %s" % (rc, err))
    snap = json.loads(out)
    call = snap["allocator"].get("call") or {}
    need(snap["allocator"]["method"] == "call" and
         call.get("thread") == t.pid,
         "no call in thread %d: %r" % (t.pid, snap["allocator"]))
    need(call.get("agrees_with_memory") is True,
         "the call's figures and the read's disagree: %r" % call)
    same_figures(t.ready, snap["mallinfo2"], "the call")
    print("called in thread %d (%s) after %d stop(s)"
          % (t.pid, call.get("thread_was"), call.get("attempts")))
    t.check_untouched("after the call", **back)

    for step in DIE_STEPS:
        rc, _, err = run(argv, {"HEAPINSPECT_TEST_DIE": step})
        need(rc == -signal.SIGKILL, "killed at %s: exit %d: %s"
             % (step, rc, err))
        t.check_untouched("heapinspect killed at %s" % step, **back)
    print("heapinspect killed at each step of a call: the target is back "
          "in its wait each time")

    rc, out, err = run([args.heapinspect, "trim", "-p", pid, "--json"] +
                       dbg)
    need(rc == 0, "trim: exit %d: %s" % (rc, err))
    res = json.loads(out)
    need(res["call"]["thread"] == t.pid, "trim not in thread %d" % t.pid)
    same_figures(t.ready, res["mallinfo2_before"], "before the trim")
    t.check_untouched("after trim", **back)
    print("trimmed in thread %d" % t.pid)

    os.kill(t.pid, signal.SIGUSR1)
    done = t.line(30)
    need(done.startswith("done ok"), "the target says %r" % done)
    same_figures(res["mallinfo2_after"], figures_of(done),
                 "the target's own, after trim")
    need(t.proc.wait(30) == 0, "target exit status %d" % t.proc.returncode)
    print("the wait ended only for SIGUSR1, with its own mask back, and "
          "the figures are trim's")


def refused(args, t, dbg, back):
    """rawsleep: in restart_syscall after the plain snapshot, with code
    that does not tell its system call: no host, said in words, after
    --timeout; nothing called, by --method call or trim."""
    pid = str(t.pid)
    for argv in ([args.heapinspect, "-p", pid, "--method", "call"],
                 [args.heapinspect, "trim", "-p", pid]):
        rc, out, err = run(argv + ["--timeout", "1000"] + dbg)
        print("%s: exit %d\n%s" % (argv[1], rc, err.strip()))
        need(rc == 2 and not out, "exit %d, stdout %r" % (rc, out))
        for words in ("no thread could host the call within 1000 ms",
                      "sleeps in restart_syscall", "nothing was called",
                      "this process can only be read",
                      "--method read"):
            need(words in err, "%r not said" % words)
        t.check_untouched("after the refusal", **back)
    os.kill(t.pid, signal.SIGUSR1)
    done = t.line(30)
    need(done.startswith("done ok"), "the target says %r" % done)
    same_figures(t.ready, figures_of(done), "the target's own")
    need(t.proc.wait(30) == 0, "target exit status %d" % t.proc.returncode)
    print("nothing was called: the target's figures are its own")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--mode", required=True, choices=sorted(WAITS))
    ap.add_argument("--debuginfo-path")
    args = ap.parse_args()
    t = CallHost(args.target, args.mode)
    try:
        run_mode(args, t)
    except Failure as e:
        print("FAIL %s: %s" % (args.mode, e))
        return 1
    finally:
        t.kill()
    print("PASS %s" % args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
