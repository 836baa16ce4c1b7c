#!/usr/bin/env python3
"""Every error a user can meet: the message, the exit code, and a target
that, when alive, runs on untouched (not stopped, not traced by us, its
data intact).

Each case prints PASS, FAIL or SKIP with the reason; a SKIP is never counted
as a pass.  Exit 0 only when no case failed and at least one passed.
"""

import argparse
import ctypes
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hi_live  # noqa: E402
from hi_live import FIGURES, Failure, Target  # noqa: E402

EXIT_PARTIAL, EXIT_FAILED, EXIT_USAGE = 1, 2, 64

results = {"pass": 0, "fail": 0, "skip": 0}


def run(argv, env=None, timeout=120, user=None):
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                "--clear-groups", "--"] + argv
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=timeout, env=env)
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def expect(rc, err, want_rc, patterns):
    if rc != want_rc:
        raise Failure("exit status %d, expected %d; stderr: %s"
                      % (rc, want_rc, err.strip()))
    for p in patterns:
        if not re.search(p, err):
            raise Failure("stderr lacks /%s/: %s" % (p, err.strip()))


def untouched(t, tracer=0):
    """The target runs on as before: no thread stopped, no tracer of ours,
    and its own data intact."""
    deadline = time.monotonic() + 5
    while True:
        states = hi_live.proc_state(t.pid)
        tp = hi_live.tracer_pid(t.pid)
        if not any(s in "tT" for s in states) and tp == tracer:
            break
        if time.monotonic() > deadline:
            raise Failure("target left with states %s, TracerPid %d"
                          % ("".join(states), tp))
        time.sleep(0.01)
    t.check()


def case(name, fn):
    try:
        skipped = fn()
    except Failure as e:
        results["fail"] += 1
        print("FAIL %s: %s" % (name, e))
        return
    except Exception as e:  # noqa: BLE001 - any crash of the test is a fail
        results["fail"] += 1
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        return
    if skipped:
        results["skip"] += 1
        print("SKIP %s: %s" % (name, skipped))
    else:
        results["pass"] += 1
        print("PASS %s" % name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--static-target")
    args = ap.parse_args()
    hi = args.heapinspect
    env = dict(os.environ)
    env.pop("DEBUGINFOD_URLS", None)
    # A layout cache of our own: another run's must not change a case.
    cache = tempfile.TemporaryDirectory(prefix="hi-errors-")
    env["XDG_CACHE_HOME"] = cache.name

    def usage():
        rc, _, err = run([hi], env)
        expect(rc, err, EXIT_USAGE, [r"^heapinspect: which process\? give "
                                     r"its pid with -p PID"])
        rc, _, err = run([hi, "-p", "12ab"], env)
        expect(rc, err, EXIT_USAGE, [r"invalid pid '12ab'"])
        rc, _, err = run([hi, "-p", "1", "--frobnicate"], env)
        expect(rc, err, EXIT_USAGE, [r"try 'heapinspect --help'"])
        rc, _, err = run([hi, "-p", "1", "--method", "frob"], env)
        expect(rc, err, EXIT_USAGE, [r"invalid --method 'frob': expected "
                                     r"auto, read or call"])
        rc, _, err = run([hi, "info"], env)
        expect(rc, err, EXIT_USAGE, [r"which process\?"])

    def no_such_pid():
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        pid = pid_max - 1
        while os.path.exists("/proc/%d" % pid):
            pid -= 1
        rc, _, err = run([hi, "-p", str(pid)], env)
        expect(rc, err, EXIT_FAILED, [r"^heapinspect: no process with pid "
                                      r"%d\n$" % pid])

    def kernel_thread():
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            flags = int(stat[stat.rindex(")") + 2:].split()[6])
            if flags & 0x00200000:
                rc, _, err = run([hi, "-p", name], env)
                expect(rc, err, EXIT_FAILED,
                       [r"pid %s \(.*\) is a kernel thread" % name])
                return None
        return "no kernel thread is visible in this pid namespace"

    def zombie():
        p = subprocess.Popen(["true"])
        deadline = time.monotonic() + 10
        while True:
            with open("/proc/%d/stat" % p.pid) as f:
                stat = f.read()
            if stat[stat.rindex(")") + 2] == "Z":
                break
            if time.monotonic() > deadline:
                raise Failure("child did not become a zombie")
            time.sleep(0.01)
        try:
            rc, _, err = run([hi, "-p", str(p.pid)], env)
            expect(rc, err, EXIT_FAILED,
                   [r"pid %d \(true\) is a zombie" % p.pid])
        finally:
            p.wait()

    def with_target(scenario, fn, argv0=None, extra_env=None):
        tenv = dict(env)
        tenv.update(extra_env or {})
        t = Target(argv0 or args.target, scenario) if not extra_env else None
        if extra_env:
            t = Target.__new__(Target)
            t.proc = subprocess.Popen([argv0 or args.target, scenario],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=0,
                                      env=tenv)
            t.pid = t.proc.pid
            t.buf = b""
        try:
            t.wait_ready()
            res = fn(t)
            if t.proc.poll() is None:
                t.exit()
            return res
        finally:
            t.kill()

    def permission():
        if os.geteuid() != 0:
            return "needs root, to run heapinspect as another user"

        def fn(t):
            rc, _, err = run([hi, "-p", str(t.pid)], env, user=65534)
            expect(rc, err, EXIT_FAILED,
                   [r"cannot attach to pid %d: (operation not permitted|"
                    r"permission denied)" % t.pid,
                    r"belongs to another user"])
            untouched(t)
        return with_target("small_frees", fn)

    def other_tracer():
        def fn(t):
            # A tracer of our own: PTRACE_SEIZE from a child python.
            code = ("import ctypes,sys,time;l=ctypes.CDLL(None,"
                    "use_errno=True);r=l.ptrace(0x4206,%d,0,0);"
                    "print(r,flush=True);time.sleep(600)" % t.pid)
            tracer = subprocess.Popen([sys.executable, "-c", code],
                                      stdout=subprocess.PIPE)
            try:
                if tracer.stdout.readline().strip() != b"0":
                    raise Failure("the helper tracer could not seize")
                rc, _, err = run([hi, "-p", str(t.pid)], env)
                expect(rc, err, EXIT_FAILED,
                       [r"cannot attach to pid %d: it is already traced "
                        r"by pid %d \(python[0-9.]*\)" % (t.pid, tracer.pid)])
                untouched(t, tracer=tracer.pid)
            finally:
                tracer.kill()
                tracer.wait()
            untouched(t)
        return with_target("small_frees", fn)

    def jemalloc():
        lib = None
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
            if os.path.exists(d + "/libjemalloc.so.2"):
                lib = d + "/libjemalloc.so.2"
        if lib is None:
            raise Failure("libjemalloc.so.2 is not installed (package "
                          "libjemalloc2): this case must run")

        def fn(t):
            rc, _, err = run([hi, "-p", str(t.pid)], env)
            expect(rc, err, EXIT_FAILED,
                   [r"pid %d does not use glibc's malloc: it uses jemalloc "
                    r"\(.*libjemalloc.so.2 is mapped\)" % t.pid])
            untouched(t)
        return with_target("small_frees", fn, extra_env={"LD_PRELOAD": lib})

    def static():
        if not args.static_target:
            raise Failure("no --static-target given")

        def fn(t):
            rc, _, err = run([hi, "-p", str(t.pid)], env)
            expect(rc, err, EXIT_FAILED,
                   [r"pid %d is statically linked" % t.pid])
            untouched(t)
        return with_target("small_frees", fn, argv0=args.static_target)

    def no_debuginfo():
        # No debug information is no longer an error: the built-in
        # layouts take over, quietly, and say so in the report.
        def fn(t):
            # A cache of its own: earlier cases filled env's from DWARF.
            with tempfile.TemporaryDirectory(prefix="hi-errors-") as c:
                rc, out, err = run([hi, "-p", str(t.pid),
                                    "--debuginfo-path",
                                    "/nonexistent-debug-dir"],
                                   dict(env, XDG_CACHE_HOME=c))
            expect(rc, err, 0, [])
            if err.strip():
                raise Failure("stderr is not empty: %s" % err.strip())
            if "located by builtin" not in out:
                raise Failure("the report does not say 'located by "
                              "builtin': %s" % out[:300])
            untouched(t)
            # --method call needs no layout: the target's own mallinfo2().
            with tempfile.TemporaryDirectory(prefix="hi-errors-") as c:
                rc, out, err = run([hi, "-p", str(t.pid), "--json",
                                    "--method", "call", "--debuginfo-path",
                                    "/nonexistent-debug-dir"],
                                   dict(env, XDG_CACHE_HOME=c))
            if rc != 0:
                raise Failure("call without debug information: exit %d: %s"
                              % (rc, err))
            alloc = json.loads(out)["allocator"]
            if alloc.get("method") != "call":
                raise Failure("call without debug information: %r" % alloc)
            untouched(t)
        return with_target("small_frees", fn)

    def call_outlives_timeout():
        # mallinfo2() over a million chunks takes tens of ms; --timeout 1
        # leaves it 1 ms.  heapinspect must give up on the call, say which
        # way (undone, or left to return by itself, as the lock it holds
        # decides), and leave the target whole: untraced, running, its
        # heap as it was.
        def fn(t):
            before = t.report()
            rc, out, err = run([hi, "-p", str(t.pid), "--method", "call",
                                "--timeout", "1"], env)
            expect(rc, err, EXIT_FAILED,
                   [r"mallinfo2\(\) did not return within 1 ms"])
            if not re.search(r"so it was undone: thread \d+ is back where "
                             r"it was|it still runs in thread \d+, which "
                             r"returns to where it was by itself", err):
                raise Failure("neither undone nor left to run: %s"
                              % err.strip())
            if out.strip():
                raise Failure("figures printed after a failed call: %r"
                              % out[:200])
            untouched(t)
            after = t.report()
            moved = [k for k in FIGURES if after[k] != before[k]]
            if moved:
                raise Failure("the target's figures moved: %s" % moved)
        return with_target("million", fn)

    def exits_while_read():
        # The target is killed at a random moment while heapinspect runs:
        # heapinspect must end (no hang), and say so clearly when it lost.
        rng = random.Random(7)
        outcomes = {}
        for _ in range(15):
            t = Target(args.target, "million")
            try:
                t.wait_ready()
                p = subprocess.Popen([hi, "-p", str(t.pid), "--json"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
                time.sleep(rng.uniform(0, 0.3))
                os.kill(t.pid, signal.SIGKILL)
                try:
                    _, err = p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    raise Failure("heapinspect hung when its target died")
                err = err.decode("utf-8", "replace")
                if p.returncode == 0:
                    outcomes["finished first"] = \
                        outcomes.get("finished first", 0) + 1
                    continue
                expect(p.returncode, err, EXIT_FAILED,
                       [r"pid %d (exited while it was being read|"
                        r"is a zombie)|no process with pid %d"
                        % (t.pid, t.pid)])
                key = re.sub(r"\d+", "N", err.strip())[:60]
                outcomes[key] = outcomes.get(key, 0) + 1
            finally:
                t.kill()
        print("  outcomes: %s" % outcomes)

    case("usage errors", usage)
    case("no such pid", no_such_pid)
    case("kernel thread", kernel_thread)
    case("zombie", zombie)
    case("permission denied", permission)
    case("another tracer", other_tracer)
    case("jemalloc preloaded", jemalloc)
    case("statically linked", static)
    case("no debug information", no_debuginfo)
    case("a call that outlives --timeout", call_outlives_timeout)
    case("target exits while read", exits_while_read)
    print("%d passed, %d failed, %d skipped"
          % (results["pass"], results["fail"], results["skip"]))
    return 1 if results["fail"] or not results["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
