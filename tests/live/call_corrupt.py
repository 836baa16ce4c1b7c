#!/usr/bin/env python3
"""Injected calls into a corrupt heap: refused, or undone when they fail.

    call_corrupt.py --heapinspect BIN --target hi_callhost --case CASE
                    [--hooks heapinspect_hooks]

Each case starts `hi_callhost MODE` (tests/targets/hi_callhost.c), whose
ready line holds its own mallinfo2() figures from before it corrupted its
heap, runs heapinspect on it, then requires the target alive, sleeping in
its read of commands, untraced, with nothing on its stderr (glibc printed
nothing), and, once it put its heap back (`repair`), its own figures as
they were (`report`) and main_arena's lock free (`probe`: mallinfo2() with
an alarm).  The cases:

  uaf_call, uaf_trim    a use after free over a fastbin link: --method
                        call and trim must refuse (exit 5), the call's
                        report is the read's, arena marked corrupt
  overflow_call         an overflow over a fastbin chunk's header that
                        mallinfo2() does not read: --method call goes
                        ahead, its figures the target's own
  overflow_trim         ... which malloc_trim() would merge on: refused
  tcache_call, tcache_trim  a use after free over a tcache entry, which
                        neither function reads: both go ahead
  fault_printerr_call   (--hooks: the call forced into the uaf heap) glibc
                        reaches malloc_printerr: undone before its writev,
                        the message quoted, the arena lock released
  fault_segv_call       (--hooks, uaf_wild) a SIGSEGV raised by the kernel
                        with SI_KERNEL: undone, the lock released
  fault_trim            (--hooks, overflow) malloc_trim() fails after it
                        emptied fastbin 1: undone, the lock released, the
                        three chunks of that fastbin lost to the process
                        (its figures say exactly that)
  fault_nolayout        (--hooks, as without a layout) the fault is undone
                        but the lock cannot be found: heapinspect must say
                        it is still held, and the target's probe must find
                        it so

Exit status 0 on pass, 1 on failure, 77 when --hooks is needed and not
given.
"""

import argparse
import json
import sys

from callhost import CallHost, figures_of, run, same_figures
from hi_live import Failure

MODES = {
    "uaf_call": "uaf", "uaf_trim": "uaf", "overflow_call": "overflow",
    "overflow_trim": "overflow", "tcache_call": "uaf_tcache",
    "tcache_trim": "uaf_tcache", "fault_printerr_call": "uaf",
    "fault_segv_call": "uaf_wild", "fault_trim": "overflow",
    "fault_nolayout": "uaf",
}

READ_SYSCALL = ("0",)   # the target waits for its commands in read(2)


def need(cond, msg):
    if not cond:
        raise Failure(msg)


def after(t, when, want_lock="free"):
    """The target as it was; repaired, its lock as want_lock says."""
    t.check_untouched(when, READ_SYSCALL)
    need(t.ask("repair") == "ok", "%s: the target did not repair" % when)
    answer = t.ask("probe", 10)
    need(answer == want_lock, "%s: main_arena's lock is %r, expected %r"
         % (when, answer, want_lock))


def refused_snapshot(out, err, t, fn):
    need("%s() was not called" % fn in err,
         "no refusal on stderr: %r" % err)
    snap = json.loads(out)
    alloc = snap["allocator"]
    need(alloc["method"] == "read" and "call" not in alloc and
         alloc.get("call_refused"), "the report is not the read's: %r"
         % alloc)
    need(snap["consistent"] is False and snap["mallinfo2"] is None,
         "a corrupt heap reported consistent")
    need(any(a.get("state") == "corrupt" for a in snap["arenas"]),
         "no arena marked corrupt: %r" % snap["arenas"])


def called_snapshot(out, t):
    snap = json.loads(out)
    call = snap["allocator"].get("call") or {}
    need(snap["allocator"]["method"] == "call" and call.get("thread") ==
         t.pid, "no call was made: %r" % snap["allocator"])
    need(call.get("agrees_with_memory") is True,
         "the call's figures and the read's disagree: %r" % call)
    same_figures(t.ready, snap["mallinfo2"], "the call")


def run_case(args, t):
    hi, pid, case = args.heapinspect, str(t.pid), args.case
    snap_argv = [hi, "-p", pid, "--json", "--method", "call",
                 "--timeout", "20000"]
    trim_argv = [hi, "trim", "-p", pid, "--json"]
    if case in ("uaf_call", "overflow_trim", "uaf_trim"):
        argv = snap_argv if case == "uaf_call" else trim_argv
        rc, out, err = run(argv)
        need(rc == 5, "exit %d, not 5 (refused): %s" % (rc, err))
        if case == "uaf_call":
            refused_snapshot(out, err, t, "mallinfo2")
        else:
            need("malloc_trim() was not called" in err and not out,
                 "no refusal: stdout %r stderr %r" % (out, err))
        print("refused: %s" % err.strip().splitlines()[-1])
        after(t, "after the refusal")
        same_figures(t.ready, figures_of(t.ask("report")), "the target")
    elif case in ("overflow_call", "tcache_call"):
        rc, out, err = run(snap_argv)
        need(rc == 0, "exit %d: %s" % (rc, err))
        called_snapshot(out, t)
        print("called: the figures are the target's own")
        after(t, "after the call")
        same_figures(t.ready, figures_of(t.ask("report")), "the target")
    elif case == "tcache_trim":
        rc, out, err = run(trim_argv)
        need(rc == 0, "exit %d: %s" % (rc, err))
        res = json.loads(out)
        same_figures(t.ready, res["mallinfo2_before"], "before the trim")
        after(t, "after the trim")
        same_figures(res["mallinfo2_after"], figures_of(t.ask("report")),
                     "after the trim, the target")
        print("trimmed: the figures before and after are the target's")
    else:
        hooks = {"HEAPINSPECT_TEST_UNCHECKED":
                 "nolayout" if case == "fault_nolayout" else "call"}
        argv = [args.hooks] + (trim_argv if case == "fault_trim"
                               else snap_argv)[1:]
        rc, out, err = run(argv, hooks)
        print("heapinspect: exit %d\n%s" % (rc, err.strip()))
        need(rc == 2, "exit %d, not 2" % rc)
        if case == "fault_printerr_call":
            need('about to print "int_mallinfo(): unaligned fastbin chunk '
                 'detected"' in err, "glibc's message is not quoted")
        elif case == "fault_segv_call":
            need("SIGSEGV raised by the kernel" in err,
                 "the SI_KERNEL fault is not named")
        elif case == "fault_trim":
            need('about to print "corrupted size vs. prev_size in '
                 'fastbins"' in err, "glibc's message is not quoted")
        if case == "fault_nolayout":
            need("that lock is still held" in err,
                 "the lock left held is not said")
            after(t, "after the undone call", "blocked")
            print("the target's own probe finds the lock held, as said")
            return
        need("was released" in err, "no lock released: %r" % err)
        after(t, "after the undone call")
        got = figures_of(t.ask("report"))
        want = dict(t.ready)
        if case == "fault_trim":
            # malloc_consolidate took the whole of fastbin 1 (three
            # 48-byte chunks) before it failed on its head: those are
            # in no list any more, counted in use (glibc's arithmetic).
            lost = 3 * 48
            want.update(smblks=0, fsmblks=0,
                        uordblks=want["uordblks"] + lost,
                        fordblks=want["fordblks"] - lost)
        same_figures(want, got, "the target")
    print("target alive, untraced, quiet on stderr, its figures as "
          "expected")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--case", required=True, choices=sorted(MODES))
    ap.add_argument("--hooks")
    args = ap.parse_args()
    if args.case.startswith("fault") and not args.hooks:
        print("SKIP: %s needs --hooks (heapinspect_hooks, the test build)"
              % args.case)
        return 77
    t = CallHost(args.target, MODES[args.case])
    try:
        run_case(args, t)
        if args.case != "fault_nolayout":  # (its "blocked" ended it)
            t.proc.stdin.write(b"exit\n")
            t.proc.stdin.close()
        if t.proc.wait(30) != 0:
            raise Failure("target exit status %d" % t.proc.returncode)
    except Failure as e:
        print("FAIL %s: %s" % (args.case, e))
        return 1
    finally:
        t.kill()
    print("PASS %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
