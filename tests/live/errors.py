#!/usr/bin/env python3
"""Every error a user can meet: the message, the exit code, and a target
that, when alive, runs on untouched (not stopped, not traced by us, its
data intact).

    errors.py --heapinspect BIN --target BIN --static-target BIN
              --other-source hi_other.c [--case NAME ...]

Each case prints PASS, FAIL or SKIP with the reason; a SKIP is never counted
as a pass.  --case runs only the cases named (tests/CMakeLists.txt runs each
as a test of its own, live.errors.NAME, so that a skip shows as one); all of
them without it.  Exit 1 when a case failed; else 77 when a case was
skipped (the output says why); else 0.

Programs heapinspect does not read are built here from hi_other.c: a
32-bit x86 one with `gcc -m32` (Debian's gcc-multilib), a musl one and a
static musl one with `musl-gcc` (musl-tools); a compiler that is missing is
a skip that says so.
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
SKIP = 77

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
    ap.add_argument("--other-source",
                    default=os.path.join(os.path.dirname(os.path.abspath(
                        __file__)), "..", "targets", "hi_other.c"))
    ap.add_argument("--case", action="append", default=[],
                    help="run only this case (repeatable)")
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
            refused(t, "hi_target", r"does not use glibc's malloc: it uses "
                    r"jemalloc \(.*/libjemalloc\.so\.2 is mapped\); "
                    r"heapinspect reads glibc's allocator only")
        return with_target("small_frees", fn, extra_env={"LD_PRELOAD": lib})

    def static():
        if not args.static_target:
            raise Failure("no --static-target given")

        def fn(t):
            name = os.path.basename(args.static_target)[:15]
            refused(t, name, r"is a statically linked glibc program: "
                    r"heapinspect reads glibc's malloc through the "
                    r"libc.so.6 mapped in a process, and a static program "
                    r"has none")
        return with_target("small_frees", fn, argv0=args.static_target)

    builddir = tempfile.TemporaryDirectory(prefix="hi-errors-build-")

    def build_other(name, cc):
        """hi_other.c built with cc (a list); (path, None), or (None, why
        it cannot be built)."""
        exe = os.path.join(builddir.name, name)
        try:
            res = subprocess.run(cc + ["-O1", "-o", exe, args.other_source],
                                 capture_output=True, timeout=120,
                                 text=True)
        except FileNotFoundError:
            return None, "%s is not installed" % cc[0]
        if res.returncode != 0:
            return None, "%s cannot build a program: %s" % (
                " ".join(cc), res.stderr.strip().splitlines()[-1]
                if res.stderr.strip() else "exit %d" % res.returncode)
        return exe, None

    def refused(t, name, what):
        """Every way of reading t is refused with one line that names what
        it is (and nothing about debug information), exit 2; t runs on."""
        pid = str(t.pid)
        for argv in ([hi, "-p", pid], [hi, "info", "-p", pid],
                     [hi, "-p", pid, "--method", "call"],
                     [hi, "trim", "-p", pid], [hi, "-p", pid, "--json"]):
            rc, out, err = run(argv, env)
            expect(rc, err, EXIT_FAILED,
                   [r"^heapinspect: pid %d \(%s\) %s\n$"
                    % (t.pid, re.escape(name), what)])
            if out.strip():
                raise Failure("%s printed: %r" % (" ".join(argv), out[:200]))
            if "debug" in err:
                raise Failure("%s speaks of debug information: %s"
                              % (" ".join(argv), err.strip()))
        print("  %s" % err.strip())
        untouched(t)

    def other(name, cc, what):
        exe, why = build_other(name, cc)
        if exe is None:
            return "%s; install it (tests/setup-debian.sh does)" % why
        return with_target("", lambda t: refused(t, name[:15], what), argv0=exe)

    def i386():
        return other("hi_other32", ["gcc", "-m32"],
                     r"is a 32-bit x86 \(i386\) program: heapinspect reads "
                     r"x86_64 processes only")

    def musl():
        return other("hi_other_musl", ["musl-gcc"],
                     r"is a musl program \(its loader is "
                     r"/lib/ld-musl-x86_64\.so\.1\): heapinspect reads "
                     r"glibc's malloc only")

    def static_musl():
        return other("hi_other_musl_static", ["musl-gcc", "-static"],
                     r"is statically linked, and not with glibc \(musl or "
                     r"another libc\): heapinspect reads glibc's malloc "
                     r"only")

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

    cases = [
        ("usage", usage),
        ("no_such_pid", no_such_pid),
        ("kernel_thread", kernel_thread),
        ("zombie", zombie),
        ("permission", permission),
        ("other_tracer", other_tracer),
        ("jemalloc", jemalloc),
        ("static", static),
        ("static_musl", static_musl),
        ("i386", i386),
        ("musl", musl),
        ("no_debuginfo", no_debuginfo),
        ("call_outlives_timeout", call_outlives_timeout),
        ("exits_while_read", exits_while_read),
    ]
    names = [n for n, _ in cases]
    for c in args.case:
        if c not in names:
            ap.error("no case %r; cases: %s" % (c, " ".join(names)))
    for name, fn in cases:
        if not args.case or name in args.case:
            case(name, fn)
    builddir.cleanup()
    print("%d passed, %d failed, %d skipped"
          % (results["pass"], results["fail"], results["skip"]))
    if results["fail"]:
        return 1
    if results["skip"] or not results["pass"]:
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
