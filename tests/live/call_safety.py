#!/usr/bin/env python3
"""Many injected calls into a busy target that notices any harm.

    call_safety.py --heapinspect BIN --target hi_callsafety [--calls 1000]
                   [--lock-every 25] [--kill-rounds 0] [--seed N]

The target (tests/targets/hi_callsafety.c) has 4 threads allocating and
checking their data, one blocked in read(), one in nanosleep() checking for
EINTR and short sleeps, one spinning with values in its zmm registers
checked on every round.  This runs `heapinspect -p PID --method call`
--calls times, the calling thread chosen in turn by heapinspect itself, then
forced (HEAPINSPECT_CALL_TID) to be the spinner, the reader, the sleeper.
Every call must succeed, say it ran in that thread, and agree with the
read of the same stop; each forced thread must have run its share.  Every --lock-every
calls the target holds main_arena's lock in a thread stopped inside malloc
(malloc_stats() on a full pipe): heapinspect must then refuse, exit 2,
"nothing was called".  With --kill-rounds N, N more runs are killed with
SIGKILL: at each step of the call in turn (HEAPINSPECT_TEST_DIE), and at a
random moment; the target must run on untraced.  Throughout, the target must
stay alive and report no harm; at the end it must exit 0.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import time

from hi_live import Failure, proc_state, tracer_pid

DIE_STEPS = ("started", "return", "returned", "exit", "finished")


class Target:
    def __init__(self, path):
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)
        self.pid = self.proc.pid
        self.buf = b""

    def line(self, timeout=60):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("target: no answer within %g s" % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise Failure("target: output closed, status %r"
                                  % self.proc.poll())
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def ask(self, cmd, timeout=60):
        try:
            self.proc.stdin.write(cmd.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Failure("target gone before %r, status %r"
                          % (cmd, self.proc.poll())) from None
        return self.line(timeout)

    def check(self, when):
        answer = self.ask("check")
        if not answer.startswith("ok "):
            raise Failure("%s: target says %r" % (when, answer))
        return dict(kv.split("=") for kv in answer.split()[1:])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def released(pid, within=3.0):
    deadline = time.monotonic() + within
    while True:
        states = proc_state(pid)
        if tracer_pid(pid) == 0 and all(s in "RS" for s in states):
            return
        if time.monotonic() > deadline:
            raise Failure("target left stopped or traced: states %s, "
                          "TracerPid %d" % ("".join(states), tracer_pid(pid)))
        time.sleep(0.005)


def run_call(args, pid, env_extra=None, timeout_ms=20000):
    env = dict(os.environ)
    env.pop("HEAPINSPECT_CALL_TID", None)
    env.pop("HEAPINSPECT_TEST_DIE", None)
    env.update(env_extra or {})
    argv = [args.heapinspect, "-p", str(pid), "--json", "--method", "call",
            "--timeout", str(timeout_ms)]
    res = subprocess.run(argv, env=env, capture_output=True,
                         stdin=subprocess.DEVNULL, timeout=120)
    return res.returncode, res.stdout, res.stderr.decode("utf-8", "replace")


def run(args):
    rng = random.Random(args.seed)
    t = Target(args.target)
    try:
        ready = dict(kv.split("=") for kv in t.line(60).split()[1:])
        pid = int(ready["pid"])
        hosts = [None, ready["spinner"], ready["reader"], ready["sleeper"]]
        print("target pid %d, registers checked: %s" % (pid, ready["regs"]))
        if ready["regs"] != "zmm":
            print("NOTE: this CPU has no AVX-512: the spinner checks ymm "
                  "registers instead; the AVX-512 part is not tested here")
        calls = refused = unsafe = 0
        by_host = {}
        i = 0
        while calls < args.calls:
            i += 1
            if args.lock_every and i % args.lock_every == 0:
                if t.ask("lock") != "locked":
                    raise Failure("target did not take the lock")
                rc, out, err = run_call(args, pid, timeout_ms=300)
                if rc != 2 or "nothing was called" not in err:
                    raise Failure("call %d with main_arena's lock held: "
                                  "exit %d, stderr %r" % (i, rc, err))
                refused += 1
                released(pid)
                if t.ask("unlock") != "unlocked":
                    raise Failure("target did not let go of the lock")
                t.check("after a refusal with the lock held")
                continue
            host = hosts[i % len(hosts)]
            env = {"HEAPINSPECT_CALL_TID": host} if host else {}
            rc, out, err = run_call(args, pid, env)
            if rc == 2 and "no safe moment" in err:
                unsafe += 1   # the allocators were always busy: retry
                if unsafe > args.calls:
                    raise Failure("never a safe moment: %s" % err)
                continue
            if rc != 0:
                raise Failure("call %d: exit %d: %s" % (i, rc, err))
            snap = json.loads(out)
            call = snap["allocator"].get("call")
            if snap["allocator"]["method"] != "call" or not call:
                raise Failure("call %d: not a call: %r"
                              % (i, snap["allocator"]))
            if host and str(call["thread"]) != host:
                raise Failure("call %d: ran in thread %r, not %s"
                              % (i, call["thread"], host))
            if call.get("agrees_with_memory") is not True:
                raise Failure("call %d: the call's figures and memory's: "
                              "agrees_with_memory %r"
                              % (i, call.get("agrees_with_memory")))
            by_host[call["thread"]] = by_host.get(call["thread"], 0) + 1
            calls += 1
            if calls % args.check_every == 0:
                st = t.check("after %d calls" % calls)
                print("%d calls: target ok, spinner rounds %s, sleeps %s, "
                      "allocations %s" % (calls, st["rounds"],
                                          st["sleeps"], st["ops"]))
        print("%d calls made (%s), %d refused with the lock held, %d "
              "retried for want of a safe moment"
              % (calls, ", ".join("thread %s: %d" % kv
                                  for kv in sorted(by_host.items())),
                 refused, unsafe))
        # Each forced host ran calls: every call counted above ran in
        # the thread it was forced to (checked per call), and a forced
        # thread that could not host failed the test.  (The turns of the
        # lock rounds and retries make the shares a little uneven.)
        share = args.calls // (2 * len(hosts))
        for h in hosts[1:]:
            if by_host.get(int(h), 0) < share:
                raise Failure("thread %s ran %d calls, fewer than %d"
                              % (h, by_host.get(int(h), 0), share))

        for k in range(args.kill_rounds):
            if k < 2 * len(DIE_STEPS) * len(hosts):
                step = DIE_STEPS[k % len(DIE_STEPS)]
                host = hosts[(k // len(DIE_STEPS)) % len(hosts)]
                env = {"HEAPINSPECT_TEST_DIE": step}
                if host:
                    env["HEAPINSPECT_CALL_TID"] = host
                rc, _, err = run_call(args, pid, env)
                if rc not in (-signal.SIGKILL, 2):
                    raise Failure("kill at %s: exit %d %s" % (step, rc, err))
            else:
                hi = subprocess.Popen(
                    [args.heapinspect, "-p", str(pid), "--method", "call",
                     "--json"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                time.sleep(rng.uniform(0, args.max_delay_ms) / 1000.0)
                hi.kill()
                hi.wait()
            if t.proc.poll() is not None:
                raise Failure("kill round %d: target died, status %d"
                              % (k + 1, t.proc.returncode))
            released(pid)
            if (k + 1) % 25 == 0:
                t.check("after %d kills" % (k + 1))
        if args.kill_rounds:
            print("heapinspect killed %d times during calls: target runs"
                  % args.kill_rounds)

        st = t.check("at the end")
        print("target ok: spinner rounds %s, sleeps %s, allocations %s"
              % (st["rounds"], st["sleeps"], st["ops"]))
        t.proc.stdin.write(b"exit\n")
        t.proc.stdin.close()
        status = t.proc.wait(60)
        if status != 0:
            raise Failure("target exit status %d: %s"
                          % (status, t.proc.stdout.read().decode()))
    finally:
        t.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--lock-every", type=int, default=25)
    ap.add_argument("--kill-rounds", type=int, default=0)
    ap.add_argument("--max-delay-ms", type=float, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-every", type=int, default=100)
    args = ap.parse_args()
    try:
        run(args)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS call_safety")
    return 0


if __name__ == "__main__":
    sys.exit(main())
