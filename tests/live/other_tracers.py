#!/usr/bin/env python3
"""heapinspect beside other tracers, and beside threads that cannot stop:
the target is never left stopped or traced, whatever ran beside it.

    other_tracers.py --heapinspect BIN --target HI_TARGET
                     --spawner HI_SPAWNER --case CASE

Cases:
  watch_strace    a watch while strace holds one thread of a 9-thread
                  target: failed samples are error lines naming strace and
                  count toward --count; the watch ends, nothing left held
  strace_messages a one-shot run and trim while strace holds a thread: the
                  message names strace, says nothing of root or containers;
                  a watch meanwhile gives up after 10 failed samples (4)
  two_watches     two watches of one target at once: both end, every sample
                  right or an error line naming the other heapinspect
  two_oneshots    two one-shot runs at once, 20 times: right figures, or
                  "held by another heapinspect"
  vfork           a thread that sleeps in vfork() for 2 s, longer than
                  --stop-timeout, one-shot and watch, the spawning thread
                  one of four or the only one: every snapshot is right
  nodump          a process its own user cannot trace (prctl
                  PR_SET_DUMPABLE 0, or dropped from root): the message
                  says so and gives the fix (needs root, to run as a user
                  created here; else skipped)
  python          a threaded Python HTTP service that starts programs all
                  the time (subprocess, and posix_spawn children held for
                  longer than --stop-timeout), under two watches at once
                  while it answers requests
  memcached       memcached (4 worker threads) under load, two watches at
                  once and strace on one of its threads: every request
                  answered, every key kept (skipped without memcached)

After each: the target alive, no thread of it (nor a child sharing its
memory) stopped or traced, its own mallinfo2() figures (or for the
services, their answers) as before, its data intact.  Exit 0 pass, 1 fail,
77 skip (said why).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import FIGURES, SCHEMA, Failure, Target  # noqa: E402

EVENT = "heapinspect/event/v1"
SKIP = 77


class Skip(Exception):
    """The case cannot run here; the message says why."""


def start(argv, user=None):
    """A target speaking hi_target's protocol, started from argv."""
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user[0], "--regid=%d" % user[1],
                "--clear-groups", "--"] + argv
    t = Target.__new__(Target)
    t.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, bufsize=0)
    t.buf = b""
    t.pid = t.proc.pid
    ready = t.wait_ready(60)
    t.pid = ready["pid"]
    return t, ready


def tasks(pid):
    return sorted(int(x) for x in os.listdir("/proc/%d/task" % pid))


def task_status(pid, tid):
    """(state letter, TracerPid) of a thread, None when it is gone."""
    try:
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state = re.search(r"^State:\s+(\S)", text, re.M).group(1)
    tracer = int(re.search(r"^TracerPid:\s+(\d+)", text, re.M).group(1))
    return state, tracer


def children(pid):
    """Processes whose parent is pid (the children of its vforks)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def held(pid):
    """What is stopped or traced among pid's threads and its children."""
    bad = []
    for p, tids in [(pid, tasks(pid))] + [(c, [c]) for c in children(pid)]:
        for tid in tids:
            st = task_status(p, tid)
            if st and (st[0] in "tT" or st[1]):
                bad.append("%d: state %s, TracerPid %d" % (tid, st[0],
                                                           st[1]))
    return bad


def settled(t, before, what):
    """The target runs on as before: nothing of it stopped or traced (a
    tracee may take a moment to leave its stop after a detach), its own
    figures and data unchanged."""
    for _ in range(250):
        bad = held(t.pid)
        if not bad:
            break
        time.sleep(0.02)
    else:
        raise Failure("%s: left stopped or traced: %s" % (what,
                                                          "; ".join(bad)))
    if t.proc.poll() is not None:
        raise Failure("%s: the target died, status %d"
                      % (what, t.proc.returncode))
    again = t.report()
    changed = [k for k in FIGURES if again[k] != before[k]]
    if changed:
        raise Failure("%s: the target's own figures changed: %s"
                      % (what, ", ".join("%s %d -> %d" % (k, before[k],
                                                          again[k])
                                         for k in changed)))
    t.check()
    return again


def same_figures(snap, ready, what):
    mi = snap.get("mallinfo2")
    if not mi:
        raise Failure("%s: no mallinfo2 in the snapshot" % what)
    wrong = ["%s %d (target %d)" % (k, mi[k], ready[k])
             for k in FIGURES if mi[k] != ready[k]]
    if wrong:
        raise Failure("%s: figures differ from the target's: %s"
                      % (what, ", ".join(wrong)))


def run(argv, env, timeout=120, user=None):
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user[0], "--regid=%d" % user[1],
                "--clear-groups", "--"] + argv
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise Failure("%s: no result within %d s" % (" ".join(argv),
                                                     timeout)) from None
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def lines_of(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    whole = data[:data.rfind(b"\n") + 1]
    return [json.loads(x) for x in whole.split(b"\n") if x]


def wait_watch(w, path, timeout=180):
    """Wait for a watch to end by itself; its status and its lines."""
    try:
        rc = w.wait(timeout)
    except subprocess.TimeoutExpired:
        w.kill()
        w.wait()
        lines = lines_of(path)
        raise Failure("the watch did not end within %d s (%d lines, %d "
                      "of them errors)" % (timeout, len(lines),
                                           sum(1 for x in lines
                                               if x.get("event") ==
                                               "error"))) from None
    err = w.stderr.read().decode("utf-8", "replace")
    return rc, lines_of(path), err


def kill_all(procs):
    """Kill what still runs of procs (a failed case must not hang)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def split(lines):
    snaps = [x for x in lines if x.get("schema") == SCHEMA]
    errors = [x for x in lines if x.get("schema") == EVENT and
              x.get("event") == "error"]
    return snaps, errors


def attach_strace(tid):
    """strace -p TID, once it has attached (it may find the thread held
    by heapinspect for a moment: then it is started again)."""
    for _ in range(200):
        s = subprocess.Popen(["strace", "-p", str(tid), "-o", os.devnull],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        line = s.stderr.readline().decode("utf-8", "replace")
        if "attached" in line:
            return s
        s.kill()
        s.wait()
        time.sleep(0.01)
    raise Failure("strace could not attach to thread %d" % tid)


def detach_strace(s):
    s.send_signal(signal.SIGINT)
    try:
        s.wait(30)
    except subprocess.TimeoutExpired:
        s.kill()
        s.wait()
        raise Failure("strace did not detach on SIGINT") from None


class Case:
    def __init__(self, args, tmp):
        self.hi = args.heapinspect
        self.target = args.target
        self.spawner = args.spawner
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env.pop("DEBUGINFOD_URLS", None)
        self.env["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
        self.procs = []

    def watch(self, pid, path, *extra):
        """Start a watch; every watch is killed when the case ends."""
        w = subprocess.Popen([self.hi, "watch", "-p", str(pid), "-o",
                              path] + list(extra),
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=self.env)
        self.procs.append(w)
        return w

    def oneshot(self, pid, *extra):
        rc, out, err = run([self.hi, "-p", str(pid), "--json"] +
                           list(extra), self.env)
        snap = json.loads(out) if rc in (0, 1) else None
        return rc, snap, err

    # ------------------------------------------------------------------

    def watch_strace(self):
        t, ready = start([self.target, "threads8"])
        try:
            victim = tasks(t.pid)[3]
            path = os.path.join(self.tmp, "strace.jsonl")
            w = self.watch(t.pid, path, "--interval", "100ms", "--count",
                           "40", "--stop-timeout", "300")
            for _ in range(3000):
                if lines_of(path) or w.poll() is not None:
                    break
                time.sleep(0.01)
            s = attach_strace(victim)
            try:
                # Until three samples have failed because of it.
                for _ in range(6000):
                    if len(split(lines_of(path))[1]) >= 3 or \
                            w.poll() is not None:
                        break
                    time.sleep(0.01)
            finally:
                detach_strace(s)
            rc, lines, err = wait_watch(w, path)
            snaps, errors = split(lines)
            print("watch beside strace: exit %d, %d samples, %d errors"
                  % (rc, len(snaps), len(errors)))
            if rc != 0:
                raise Failure("watch exit status %d: %s" % (rc, err))
            if len(lines) != 40:
                raise Failure("%d lines, expected 40 (failed samples "
                              "count)" % len(lines))
            if len(errors) < 3:
                raise Failure("only %d error lines" % len(errors))
            want = "thread %d is already traced by pid %d (strace)" % (
                victim, s.pid)
            for e in errors:
                if want not in e.get("message", ""):
                    raise Failure("error line %r lacks %r" % (e, want))
            for n, snap in enumerate(snaps):
                same_figures(snap, ready, "sample %d" % (n + 1))
            settled(t, ready, "after the watch")
            t.exit()
        finally:
            kill_all(self.procs)
            t.kill()

    def strace_messages(self):
        t, ready = start([self.target, "threads8"])
        try:
            victim = tasks(t.pid)[2]
            s = attach_strace(victim)
            try:
                for argv in ([self.hi, "-p", str(t.pid), "--stop-timeout",
                              "300"],
                             [self.hi, "trim", "-p", str(t.pid),
                              "--stop-timeout", "300"]):
                    rc, _, err = run(argv, self.env)
                    print("%s: exit %d\n  %s" % (" ".join(argv[1:2]), rc,
                                                 err.strip()))
                    if rc != 2:
                        raise Failure("%s: exit status %d, expected 2"
                                      % (" ".join(argv), rc))
                    want = ("cannot attach to pid %d: thread %d is "
                            "already traced by pid %d (strace)"
                            % (t.pid, victim, s.pid))
                    if want not in err:
                        raise Failure("%s: stderr lacks %r: %s"
                                      % (" ".join(argv), want, err))
                    for wrong in ("root", "container", "CAP_SYS_PTRACE"):
                        if wrong in err:
                            raise Failure("%s: stderr speaks of %s: %s"
                                          % (" ".join(argv), wrong, err))
                    if any(x[0] == "t" and x[1] != s.pid
                           for x in (task_status(t.pid, tid)
                                     for tid in tasks(t.pid)) if x):
                        raise Failure("a thread left stopped beside "
                                      "strace's")
                # A watch whose every sample fails gives up: exit 4
                # after 10 in a row, each an error line naming strace.
                path = os.path.join(self.tmp, "giveup.jsonl")
                w = self.watch(t.pid, path, "--interval", "20ms",
                               "--count", "1000", "--stop-timeout", "100")
                rc, lines, err = wait_watch(w, path)
                snaps, errors = split(lines)
                print("watch while strace holds a thread throughout: "
                      "exit %d, %d samples, %d errors" % (rc, len(snaps),
                                                          len(errors)))
                if rc != 4 or snaps or len(errors) != 10 or \
                        "10 samples in a row failed" not in err:
                    raise Failure("watch: exit status %d, %d samples, %d "
                                  "errors, expected 4, 0, 10: %s"
                                  % (rc, len(snaps), len(errors), err))
                for e in errors:
                    if "already traced by pid %d (strace)" % s.pid not in \
                            e.get("message", ""):
                        raise Failure("error line %r" % e)
            finally:
                detach_strace(s)
            settled(t, ready, "after strace")
            t.exit()
        finally:
            kill_all(self.procs)
            t.kill()

    def two_watches(self):
        t, ready = start([self.target, "threads8"])
        try:
            paths = [os.path.join(self.tmp, "w%d.jsonl" % i)
                     for i in (1, 2)]
            ws = [self.watch(t.pid, p, "--interval", "20ms", "--count", "50")
                  for p in paths]
            for w, p in zip(ws, paths):
                rc, lines, err = wait_watch(w, p)
                snaps, errors = split(lines)
                print("%s: exit %d, %d samples, %d errors"
                      % (os.path.basename(p), rc, len(snaps), len(errors)))
                if rc != 0 or len(lines) != 50:
                    raise Failure("%s: exit status %d, %d lines: %s"
                                  % (p, rc, len(lines), err))
                for e in errors:
                    if "held by another heapinspect" not in \
                            e.get("message", ""):
                        raise Failure("error line %r" % e)
                if len(errors) > 10:
                    raise Failure("%d of 50 samples failed" % len(errors))
                for n, snap in enumerate(snaps):
                    same_figures(snap, ready, "%s sample %d" % (p, n + 1))
            settled(t, ready, "after two watches")
            t.exit()
        finally:
            kill_all(self.procs)
            t.kill()

    def two_oneshots(self):
        t, ready = start([self.target, "threads8"])
        try:
            failed = 0
            for r in range(20):
                procs = [subprocess.Popen([self.hi, "-p", str(t.pid),
                                           "--json"],
                                          stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE,
                                          env=self.env) for _ in (1, 2)]
                for p in procs:
                    out, err = p.communicate(120)
                    err = err.decode("utf-8", "replace")
                    if p.returncode == 0:
                        same_figures(json.loads(out), ready,
                                     "round %d" % (r + 1))
                    elif p.returncode == 2 and \
                            "held by another heapinspect" in err:
                        failed += 1
                    else:
                        raise Failure("round %d: exit status %d: %s"
                                      % (r + 1, p.returncode, err))
            print("two one-shot runs at once, 20 times: %d of 40 refused"
                  % failed)
            if failed > 4:
                raise Failure("%d of 40 runs refused" % failed)
            settled(t, ready, "after 40 runs")
            t.exit()
        finally:
            kill_all(self.procs)
            t.kill()

    def vfork(self):
        for mode in (["--threads", "3"], ["--single"]):
            what = "vfork %s" % " ".join(mode)
            t, ready = start([self.spawner, "--hold", "2000"] + mode)
            try:
                rc, snap, err = self.oneshot(t.pid, "--stop-timeout", "500")
                if rc != 0:
                    raise Failure("%s: one-shot exit status %d: %s"
                                  % (what, rc, err))
                same_figures(snap, ready, what + " one-shot")
                print("%s: one-shot: %d held asleep in the kernel, %d "
                      "vfork children held, pause %d us"
                      % (what, snap["stop"]["in_kernel"],
                         snap["stop"]["vfork_children"], snap["pause_us"]))
                path = os.path.join(self.tmp, "vfork.jsonl")
                if os.path.exists(path):
                    os.unlink(path)
                w = self.watch(t.pid, path, "--interval", "100ms",
                               "--count", "60", "--stop-timeout", "500")
                # It goes on starting programs while watched: no sample
                # leaves the thread in vfork() held once its child runs.
                first, moved = t.report()["spawns"], False
                while w.poll() is None and not moved:
                    moved = t.report()["spawns"] >= first + 2
                    time.sleep(0.1)
                rc, lines, err = wait_watch(w, path)
                snaps, errors = split(lines)
                if not moved:
                    raise Failure("%s: started no program in the %d "
                                  "samples of the watch" % (what,
                                                            len(lines)))
                if rc != 0 or errors or len(snaps) != 60:
                    raise Failure("%s: watch exit status %d, %d samples, "
                                  "errors %s: %s" % (what, rc, len(snaps),
                                                     errors, err))
                for n, s in enumerate(snaps):
                    same_figures(s, ready, "%s sample %d" % (what, n + 1))
                asleep = sum(1 for s in snaps if s["stop"]["in_kernel"])
                print("%s: watch: 60 samples, %d with a thread held in "
                      "vfork()" % (what, asleep))
                if not asleep and not snap["stop"]["in_kernel"]:
                    raise Failure("%s: no snapshot caught a thread in "
                                  "vfork()" % what)
                # A call needs every thread stopped: a clear refusal.
                rc, _, err = run([self.hi, "-p", str(t.pid), "--method",
                                  "call", "--stop-timeout", "300"],
                                 self.env)
                print("%s: --method call: exit %d\n  %s"
                      % (what, rc, err.strip().replace("\n", "\n  ")))
                if rc == 2 and not re.search(
                        r"thread \d+ did not stop within 300 ms: it is in "
                        r"uninterruptible sleep \(state D\) in "
                        r"(vfork|clone|clone3)\(\)", err):
                    raise Failure("%s: --method call: %s" % (what, err))
                if rc not in (0, 2):
                    raise Failure("%s: --method call exit status %d: %s"
                                  % (what, rc, err))
                again = settled(t, ready, what)
                # It goes on starting programs: nothing holds its vfork.
                for _ in range(600):
                    if again["spawns"] > ready["spawns"]:
                        break
                    time.sleep(0.05)
                    again = t.report()
                else:
                    raise Failure("%s: no program was started" % what)
                t.exit()
            finally:
                kill_all(self.procs)
                t.kill()

    def nodump(self):
        if os.geteuid() != 0:
            raise Skip("needs root: to create a user and run a process "
                       "that its own user cannot trace")
        if not shutil.which("useradd") or not shutil.which("setpriv"):
            raise Skip("needs useradd and setpriv")
        name = "hi-nodump-test"
        created = False
        if subprocess.run(["id", name], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", name],
                           check=True)
            created = True
        try:
            uid = int(subprocess.check_output(["id", "-u", name]))
            gid = int(subprocess.check_output(["id", "-g", name]))
            user = (uid, gid)
            os.chmod(self.tmp, 0o755)
            os.makedirs(self.env["XDG_CACHE_HOME"], exist_ok=True)
            os.chmod(self.env["XDG_CACHE_HOME"], 0o777)
            # The control: a dumpable process of that user can be read.
            t, ready = start([self.spawner], user=user)
            try:
                rc, out, err = run([self.hi, "-p", str(t.pid), "--json"],
                                   self.env, user=user)
                if rc != 0:
                    raise Failure("the user cannot read its own dumpable "
                                  "process (exit %d): %s" % (rc, err))
                same_figures(json.loads(out), ready, "control")
                settled(t, ready, "control")
                t.exit()
            finally:
                kill_all(self.procs)
                t.kill()
            for argv, how in (([self.spawner, "--nodump"], user),
                              ([self.spawner, "--user",
                                "%d:%d" % user], None)):
                what = " ".join(argv[1:])
                t, ready = start(argv, user=how)
                try:
                    for cmd in ([self.hi, "-p", str(t.pid)],
                                [self.hi, "trim", "-p", str(t.pid)]):
                        rc, _, err = run(cmd, self.env, user=user)
                        print("%s, %s: exit %d\n  %s"
                              % (what, " ".join(cmd[1:2]), rc,
                                 err.strip().replace("\n", "\n  ")))
                        if rc != 2:
                            raise Failure("%s: exit status %d" % (what,
                                                                  rc))
                        for want in (r"cannot attach to pid %d: "
                                     r"(operation not permitted|"
                                     r"permission denied)" % t.pid,
                                     r"it is not dumpable",
                                     r"CAP_SYS_PTRACE"):
                            if not re.search(want, err):
                                raise Failure("%s: stderr lacks /%s/: %s"
                                              % (what, want, err))
                        for wrong in ("container", "another user",
                                      "traced by"):
                            if wrong in err:
                                raise Failure("%s: stderr speaks of %r: "
                                              "%s" % (what, wrong, err))
                    settled(t, ready, what)
                    t.exit()
                finally:
                    t.kill()
        finally:
            if created:
                subprocess.run(["userdel", name], capture_output=True)

    def memcached(self):
        binary = shutil.which("memcached")
        if not binary:
            raise Skip("memcached is not installed (tests/setup-debian.sh)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        argv = [binary, "-t", "4", "-p", str(port), "-U", "0", "-l",
                "127.0.0.1", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        mc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
        stop = threading.Event()
        served = [0, 0]

        def talk(c, cmd, end):
            c.sendall(cmd)
            answer = b""
            while not answer.endswith(end):
                data = c.recv(65536)
                if not data:
                    raise OSError("connection closed")
                answer += data
            return answer

        def value(i):
            return (b"%d-" % i) * (1 + i % 300)

        def connect():
            for _ in range(500):
                try:
                    return socket.create_connection(("127.0.0.1", port),
                                                    timeout=60)
                except ConnectionRefusedError:
                    time.sleep(0.01)
            raise Failure("memcached does not answer on port %d" % port)

        def load(n):
            try:
                with connect() as c:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        v = value(i)
                        ok = talk(c, b"set t%d-%d 0 0 %d\r\n%s\r\n"
                                  % (n, i % 500, len(v), v),
                                  b"\r\n") == b"STORED\r\n"
                        got = talk(c, b"get t%d-%d\r\n" % (n, i % 500),
                                   b"END\r\n")
                        ok = ok and v in got
                        served[0 if ok else 1] += 1
            except OSError:
                served[1] += 1

        try:
            with connect() as c:
                for i in range(2000):
                    v = value(i)
                    if talk(c, b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(v), v),
                            b"\r\n") != b"STORED\r\n":
                        raise Failure("memcached did not store k%d" % i)
            loaders = [threading.Thread(target=load, args=(n,))
                       for n in range(4)]
            for x in loaders:
                x.start()
            try:
                victim = tasks(mc.pid)[len(tasks(mc.pid)) // 2]
                paths = [os.path.join(self.tmp, "mc%d.jsonl" % i)
                         for i in (1, 2)]
                ws = [self.watch(mc.pid, p, "--interval", "100ms",
                                 "--count", "40", "--stop-timeout", "300")
                      for p in paths]
                for _ in range(3000):
                    if all(lines_of(p) for p in paths) or \
                            any(w.poll() is not None for w in ws):
                        break
                    time.sleep(0.01)
                s = attach_strace(victim)
                try:
                    for _ in range(6000):
                        if all(len(split(lines_of(p))[1]) >= 2
                               for p in paths) or \
                                any(w.poll() is not None for w in ws):
                            break
                        time.sleep(0.01)
                finally:
                    detach_strace(s)
                for w, p in zip(ws, paths):
                    rc, lines, err = wait_watch(w, p)
                    snaps, errors = split(lines)
                    print("memcached, %s: exit %d, %d samples, %d errors"
                          % (os.path.basename(p), rc, len(snaps),
                             len(errors)))
                    if rc != 0 or len(lines) != 40:
                        raise Failure("%s: exit status %d, %d lines: %s"
                                      % (p, rc, len(lines), err))
                    for e in errors:
                        msg = e.get("message", "")
                        if "already traced by pid %d (strace)" % s.pid \
                                not in msg and \
                                "held by another heapinspect" not in msg:
                            raise Failure("%s: error line %r" % (p, e))
                    if not errors:
                        raise Failure("%s: no sample failed beside "
                                      "strace" % p)
            finally:
                stop.set()
                for x in loaders:
                    x.join()
            print("memcached: %d requests answered, %d failed"
                  % tuple(served))
            if served[1] or not served[0]:
                raise Failure("requests failed: %d of %d"
                              % (served[1], sum(served)))
            for _ in range(250):
                bad = held(mc.pid)
                if not bad:
                    break
                time.sleep(0.02)
            else:
                raise Failure("memcached left stopped or traced: %s" % bad)
            with connect() as c:
                for i in range(2000):
                    if value(i) not in talk(c, b"get k%d\r\n" % i,
                                            b"END\r\n"):
                        raise Failure("memcached lost k%d" % i)
            if mc.poll() is not None:
                raise Failure("memcached died: %d" % mc.returncode)
        finally:
            kill_all(self.procs)
            mc.kill()
            mc.wait()

    def python(self):
        py = "/usr/bin/python3"
        if not os.access(py, os.X_OK):
            raise Skip("needs the distribution's %s" % py)
        fifo = os.path.join(self.tmp, "hold.fifo")
        os.mkfifo(fifo)
        svc = subprocess.Popen([py, "-c", PY_SERVICE, fifo, "1500"],
                               stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, bufsize=0)
        try:
            port = int(svc.stdout.readline().split()[1])
            pid = svc.pid
            stop = threading.Event()
            served = [0, 0]

            def client():
                while not stop.is_set():
                    try:
                        with socket.create_connection(("127.0.0.1", port),
                                                      timeout=60) as c:
                            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                            answer = b""
                            while True:
                                data = c.recv(4096)
                                if not data:
                                    break
                                answer += data
                            if answer.startswith(b"HTTP/1.0 200"):
                                served[0] += 1
                            else:
                                served[1] += 1
                    except OSError:
                        served[1] += 1
                    time.sleep(0.005)

            ct = threading.Thread(target=client)
            ct.start()
            try:
                svc.stdin.write(b"count\n")
                before = svc.stdout.readline().decode().split()
                paths = [os.path.join(self.tmp, "py%d.jsonl" % i)
                         for i in (1, 2)]
                ws = [self.watch(pid, p, "--interval", "50ms", "--count",
                                 "40", "--stop-timeout", "500")
                      for p in paths]
                for w, p in zip(ws, paths):
                    rc, lines, err = wait_watch(w, p)
                    snaps, errors = split(lines)
                    asleep = sum(1 for s in snaps if s["stop"]["in_kernel"])
                    print("python service, %s: exit %d, %d samples, %d "
                          "errors, %d with a thread held in the kernel"
                          % (os.path.basename(p), rc, len(snaps),
                             len(errors), asleep))
                    if rc != 0 or len(lines) != 40:
                        raise Failure("%s: exit status %d, %d lines: %s"
                                      % (p, rc, len(lines), err))
                    for e in errors:
                        if "held by another heapinspect" not in \
                                e.get("message", ""):
                            raise Failure("%s: error line %r" % (p, e))
                    if len(errors) > 8:
                        raise Failure("%s: %d of 40 samples failed"
                                      % (p, len(errors)))
                    for s in snaps:
                        if not s.get("consistent") and not any(
                                a.get("state") == "busy"
                                for a in s["arenas"]):
                            raise Failure("%s: an inconsistent sample "
                                          "with no busy arena" % p)
            finally:
                stop.set()
                ct.join()
            svc.stdin.write(b"count\n")
            after = svc.stdout.readline().decode().split()
            print("python service: started %s -> %s programs, %s -> %s "
                  "held children; %d requests answered, %d failed"
                  % (before[1], after[1], before[2], after[2], served[0],
                     served[1]))
            if int(after[1]) <= int(before[1]) or \
                    int(after[2]) <= int(before[2]):
                raise Failure("the service started no program meanwhile")
            if served[1] or not served[0]:
                raise Failure("requests failed: %d of %d"
                              % (served[1], sum(served)))
            for _ in range(250):
                bad = held(pid)
                if not bad:
                    break
                time.sleep(0.02)
            else:
                raise Failure("left stopped or traced: %s" % bad)
            if svc.poll() is not None:
                raise Failure("the service died: %d" % svc.returncode)
        finally:
            # Its children too: the one that waits for the FIFO would
            # keep our output open.
            kill_all(self.procs)
            kids = children(svc.pid)
            svc.kill()
            svc.wait()
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# A threaded HTTP service (the standard library's) that starts programs all
# the time: one thread with subprocess.run (vfork() in _posixsubprocess),
# one with glibc's posix_spawn (through ctypes, which lets go of the GIL)
# whose child opens a FIFO before it executes true, and so sleeps in the
# parent's memory, the parent in clone(CLONE_VFORK), until another thread
# opens the FIFO for writing, HOLD ms later.
PY_SERVICE = r"""
import ctypes, http.server, os, subprocess, sys, threading, time
fifo, hold = sys.argv[1], int(sys.argv[2]) / 1000.0
counts = [0, 0]
libc = ctypes.CDLL(None, use_errno=True)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass

def spawn():
    while True:
        subprocess.run(["/bin/true"])
        counts[0] += 1

def spawn_held():
    fa = ctypes.create_string_buffer(256)
    libc.posix_spawn_file_actions_init(fa)
    libc.posix_spawn_file_actions_addopen(fa, 0, fifo.encode(), os.O_RDONLY,
                                          0)
    argv = (ctypes.c_char_p * 2)(b"true", None)
    env = ctypes.c_void_p.in_dll(libc, "environ")
    pid = ctypes.c_int()
    while True:
        if libc.posix_spawn(ctypes.byref(pid), b"/bin/true", fa, None, argv,
                            env):
            sys.exit("posix_spawn failed")
        os.waitpid(pid.value, 0)
        counts[1] += 1

def release():
    while True:
        time.sleep(hold)
        with open(fifo, "w"):
            pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
for f in (spawn, spawn_held, release, srv.serve_forever):
    threading.Thread(target=f, daemon=True).start()
print("port", srv.server_address[1], flush=True)
for line in sys.stdin:
    print("count", counts[0], counts[1], flush=True)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--spawner", required=True)
    ap.add_argument("--case", required=True,
                    choices=["watch_strace", "strace_messages",
                             "two_watches", "two_oneshots", "vfork",
                             "nodump", "python", "memcached"])
    args = ap.parse_args()
    if args.case in ("watch_strace", "strace_messages", "memcached") and \
            not shutil.which("strace"):
        print("SKIP %s: strace is not installed (tests/setup-debian.sh)"
              % args.case)
        return SKIP
    tmp = tempfile.mkdtemp(prefix="hi-tracers-")
    case = Case(args, tmp)
    try:
        getattr(case, args.case)()
    except Skip as e:
        print("SKIP %s: %s" % (args.case, e))
        return SKIP
    except (Failure, OSError, subprocess.SubprocessError, ValueError,
            KeyError) as e:
        print("FAIL %s: %s" % (args.case, e))
        return 1
    finally:
        kill_all(case.procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
