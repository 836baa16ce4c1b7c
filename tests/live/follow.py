#!/usr/bin/env python3
"""heapinspect watch following a service across restarts, systemd-less.

    follow.py --heapinspect BIN --target BIN

The service is a stand-in: hi_target processes started and stopped here,
named by a pid file, by a process name, and by a unit through a stand-in
`systemctl` on PATH that answers `systemctl show` from a file.

- --pidfile: the process exits (an "exited" event line); its pid goes to
  an unrelated process (made so through /proc/sys/kernel/ns_last_pid, as
  CRIU restores pids) while the pid file still names it: the watch must
  not take it; a new pid file names a new process: a "resolved" event
  line, and the samples after it are of the new pid.
- -p: the pid taken over by another process between two samples: the
  watch must end as for an exit (status 3), not sample the newcomer.
- --name: followed the same way; two processes of the name are refused.
- --unit: followed through the stand-in systemctl; a unit that is not
  loaded, and no systemctl at all, are clear errors.
- a failed watch leaves no output file behind.
- appending (-o an existing file): a followed watch records how it found
  the process (a "resolved" line with its source and start time, before
  its first sample); another watch of the same pid file continues the
  series when the file's process still runs and is the one named (no
  restart), and after a restart while no watch ran (the exit and the
  restart recorded; trend judges the new process, saying so; diff and
  plot read it); it refuses (exit 2, the file unchanged) a file whose
  process still runs but is not the one named, a file that follows
  something else (--name against a pid file), and a file of watch -p.

The pid takeovers need root (ns_last_pid); without it they are skipped and
the output says so.  Exit status 0 on pass, 1 on failure, 77 when this
cannot run at all.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from hi_live import Failure, Target
from series_util import expect_rc, run

EVENT = "heapinspect/event/v1"


def records(path):
    """The whole lines of a JSON Lines file, parsed."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    whole = data.rpartition(b"\n")[0]
    return [json.loads(x) for x in whole.split(b"\n") if x]


def wait_until(what, cond, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise Failure("no %s within %d s" % (what, timeout))


def wait_event(path, event, after=0):
    return wait_until("%s event in %s" % (event, path), lambda: next(
        (i for i, r in enumerate(records(path)) if i >= after and
         r.get("schema") == EVENT and r.get("event") == event), None)
        is not None and records(path))


def samples(recs):
    return [r for r in recs if r.get("schema") != EVENT]


def spawn_at(path, scenario, pid, tries=200):
    """A target whose pid is pid: ns_last_pid set to pid - 1 before each
    try (other processes of the machine may take it first)."""
    for _ in range(tries):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(pid - 1))
        except OSError:
            return None
        t = Target(path, scenario)
        if t.pid == pid:
            return t
        t.kill()
    raise Failure("could not start a process with pid %d in %d tries"
                  % (pid, tries))


def can_take_pids():
    return os.geteuid() == 0 and os.access("/proc/sys/kernel/ns_last_pid",
                                           os.W_OK)


class Watch:
    def __init__(self, argv, env=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)

    def stop(self, sig=signal.SIGINT, timeout=30):
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("%s: still runs %d s after %s"
                          % (" ".join(self.argv), timeout, sig))
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.stderr.close()
        return rc, err

    def wait_for(self, what, cond, timeout=60):
        """wait_until, failing at once with its stderr if it ends."""
        def check():
            if self.proc.poll() is not None:
                rc, err = self.stop(sig=None)
                raise Failure("%s: ended (exit %d) before %s: %s"
                              % (" ".join(self.argv), rc, what, err))
            return cond()
        return wait_until(what, check, timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check_followed(out, old_pid, new_pid, what):
    """exited (old), resolved (new), and after it samples of new only."""
    recs = records(out)
    kinds = [(r.get("event") or "sample", r.get("pid")) for r in recs]
    try:
        ex = kinds.index(("exited", old_pid))
        rs = kinds.index(("resolved", new_pid))
    except ValueError:
        raise Failure("%s: expected an exited event of %d and a resolved "
                      "event of %d: %r" % (what, old_pid, new_pid, kinds))
    if not ex < rs:
        raise Failure("%s: resolved before exited: %r" % (what, kinds))
    if any(k == "sample" for k, _ in kinds[ex + 1:rs]):
        raise Failure("%s: a sample between the exit and the next process: "
                      "%r" % (what, kinds[ex:rs + 1]))
    before = samples(recs[:ex])
    after = samples(recs[rs:])
    if not before or any(s["pid"] != old_pid for s in before):
        raise Failure("%s: samples before the exit: %r"
                      % (what, [s["pid"] for s in before]))
    if not after or any(s["pid"] != new_pid for s in after):
        raise Failure("%s: samples after the restart: %r"
                      % (what, [s["pid"] for s in after]))
    print("%s: %d samples of pid %d, exited, resolved to pid %d, %d "
          "samples of it" % (what, len(before), old_pid, new_pid,
                             len(after)))


def follow(hi, procs, opt, what, out, first, restart, between=None,
           stopping=None, env=None):
    """watch OPT WHAT through a restart: first() starts the service and
    returns its process; stopping() runs before it exits; between(old pid)
    once the exit is recorded; restart() starts the next.  The watch must
    record both and sample the next; return (old pid, next process,
    stderr)."""
    a = first()
    w = Watch([hi, "watch", opt, what, "--interval", "100ms", "-o", out],
              env=env)
    procs.append(w)
    w.wait_for("a sample", lambda: samples(records(out)))
    old = a.pid
    if stopping:
        stopping()
    a.exit()
    wait_event(out, "exited")
    if between:
        between(old)
    b = restart()
    w.wait_for("a sample of the new process", lambda: any(
        s["pid"] == b.pid for s in samples(records(out))))
    rc, err = w.stop()
    if rc != 0:
        raise Failure("%s watch: exit %d after SIGINT: %s" % (opt, rc, err))
    check_followed(out, old, b.pid, opt)
    return old, b, err


def stat_start(pid):
    """starttime of pid, field 22 of /proc/PID/stat (proc(5))."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[19])


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def appending(hi, tmp, target, target_bin, pidfile, named):
    """watch -o FILE with --pidfile and --name into existing files."""
    out = os.path.join(tmp, "append.jsonl")
    src = "pid file %s" % os.path.join(os.path.realpath(tmp), "svc.pid")

    def watch(opt, what, path=out, count=3):
        return run([hi, "watch", opt, what, "--interval", "100ms",
                    "--count", str(count), "-o", path])

    def refused(opt, what, path, words):
        before = read_bytes(path)
        rc, _, err = watch(opt, what, path)
        if rc != 2 or any(w not in err for w in words):
            raise Failure("watch %s %s -o %s: exit %d, expected 2 and %r: "
                          "%s" % (opt, what, path, rc, words, err.strip()))
        if read_bytes(path) != before:
            raise Failure("a refused watch changed %s" % path)
        print("  refused: %s" % err.strip())

    a = named(target())
    rc, _, err = watch("--pidfile", pidfile)
    expect_rc(["watch --pidfile"], rc, 0, err)
    first = records(out)[0]
    want = {"schema": EVENT, "event": "resolved", "pid": a.pid,
            "source": src, "start_ticks": stat_start(a.pid)}
    if {k: first.get(k) for k in want} != want:
        raise Failure("the first line of a followed watch: %r, expected "
                      "%r" % (first, want))
    print("a followed watch's first line: resolved, %s, start_ticks %d"
          % (src, want["start_ticks"]))

    # The same process, the pid file named another way: one process.
    rc, _, err = watch("--pidfile", os.path.join(tmp, ".", "svc.pid"),
                       count=2)
    expect_rc(["watch --pidfile (again)"], rc, 0, err)
    rc, out_json, err = run([hi, "trend", "--json", out])
    v = json.loads(out_json) if rc in (0, 1) else {}
    if v.get("segments") != 1 or v.get("samples") != 5:
        raise Failure("appended, the same process: trend exit %d, %r "
                      "segments, %r samples: %s" % (rc, v.get("segments"),
                                                    v.get("samples"), err))
    print("appended while the process runs: one process, 5 samples")

    print("the pid file names another process while the file's runs:")
    c = named(target())
    refused("--pidfile", pidfile, out, ["still runs", "pid %d" % a.pid,
                                        "pid %d" % c.pid])
    c.exit()

    # The file's process exits, the service restarts with no watch.
    before = len(records(out))
    old = a.pid
    a.exit()
    b = named(target())
    rc, _, err = watch("--pidfile", pidfile)
    expect_rc(["watch --pidfile (after a restart)"], rc, 0, err)
    new = records(out)[before:]
    kinds = [(r.get("event") or "sample", r.get("pid")) for r in new]
    if kinds != [("exited", old), ("resolved", b.pid)] + \
            [("sample", b.pid)] * 3 or \
            new[0].get("start_ticks") != want["start_ticks"] or \
            new[1].get("source") != src or \
            new[1].get("start_ticks") != stat_start(b.pid):
        raise Failure("appended after a restart: %r" % new[:2])
    rc, out_json, err = run([hi, "trend", "--json", out])
    v = json.loads(out_json) if rc in (0, 1) else {}
    lo = v.get("left_out") or [{}]
    if (v.get("segments"), v.get("segment"), v.get("pid"),
            v.get("samples"), lo[0].get("pid")) != (2, 2, b.pid, 3, old):
        raise Failure("trend of the series after a restart: exit %d %r: "
                      "%s" % (rc, out_json[:600], err))
    rc, out_json, err = run([hi, "diff", "--json", out])
    d = json.loads(out_json) if rc == 0 else {}
    if rc != 0 or d["a"]["pid"] != b.pid or d["b"]["pid"] != b.pid:
        raise Failure("diff of the series after a restart: exit %d %s"
                      % (rc, err))
    rc, _, err = run([hi, "plot", out, "-o", out + ".svg"])
    expect_rc(["plot"], rc, 0, err)
    print("appended after a restart: exited %d, resolved %d, 3 samples; "
          "trend judges pid %d (process 2 of 2), diff and plot read it"
          % (old, b.pid, b.pid))

    # Something else into that file: --name, once its process is gone.
    name = ("hiapp%d" % (os.getpid() % 10**9))[:15]
    exe = os.path.join(tmp, name)
    shutil.copy(target_bin, exe)
    b.exit()
    d = target(exe)
    print("a watch of a name into a series of a pid file:")
    refused("--name", name, out, ["a series of %s, not of name '%s'"
                                  % (src, name)])
    # A file of watch -p whose process is gone.
    pfile = os.path.join(tmp, "by-pid.jsonl")
    rc, _, err = watch("-p", str(d.pid), pfile, count=2)
    expect_rc(["watch -p"], rc, 0, err)
    d.exit()
    named(target())
    print("a watch of a pid file into a series of watch -p:")
    refused("--pidfile", pidfile, pfile, ["records no unit, pid file or "
                                          "name"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    hi = args.heapinspect
    if not os.path.exists("/proc/self/stat"):
        print("SKIP: no /proc")
        return 77
    tmp = tempfile.mkdtemp(prefix="hi-follow-")
    os.chmod(tmp, 0o755)
    procs = []

    def target(path=args.target, scenario="steady", pid=None):
        t = spawn_at(path, scenario, pid) if pid else Target(path, scenario)
        if t is None:
            return None
        procs.append(t)
        t.wait_ready()
        return t

    try:
        takeover = can_take_pids()
        if not takeover:
            print("note: not root (or no ns_last_pid): the pid takeovers "
                  "are not tested")

        # --pidfile, with the pid taken over while the file is stale.
        pidfile = os.path.join(tmp, "svc.pid")

        def named(t):
            with open(pidfile + ".new", "w") as f:
                f.write("%d\n" % t.pid)
            os.rename(pidfile + ".new", pidfile)
            return t

        def taken_over(old):
            if not takeover:
                return
            u = target(pid=old)
            # The watch asks the file at every interval: it must say that
            # the file is stale (once), and take nothing.
            # Ten intervals or more (a slow machine makes it more).
            time.sleep(1.0)
            if u.proc.poll() is not None:
                raise Failure("the unrelated process died")
            recs = records(out)
            if samples(recs[[r.get("event") for r in recs].index(
                    "exited"):]):
                raise Failure("--pidfile: sampled pid %d, taken over by "
                              "another process, from a stale pid file"
                              % old)
            print("--pidfile: pid %d taken over by another process while "
                  "the file was stale: not sampled" % old)

        out = os.path.join(tmp, "pidfile.jsonl")
        old, b, err = follow(hi, procs, "--pidfile", pidfile, out,
                             lambda: named(target()),
                             lambda: named(target()), taken_over)
        if takeover and "still names pid %d, which exited" % old not in err:
            raise Failure("--pidfile: stale file not reported: %r" % err)
        b.exit()

        # Appending to an existing file.
        appending(hi, tmp, target, args.target, pidfile, named)

        # -p: the pid taken over between two samples.
        if takeover:
            a = target()
            out = os.path.join(tmp, "pid.jsonl")
            w = Watch([hi, "watch", "-p", str(a.pid), "--interval", "4s",
                       "--count", "3", "-o", out])
            procs.append(w)
            w.wait_for("a sample", lambda: samples(records(out)))
            old = a.pid
            a.exit()
            u = target(pid=old)
            rc, err = w.stop(sig=None, timeout=60)
            recs = records(out)
            if rc != 3 or len(samples(recs)) != 1 or \
                    recs[-1].get("event") != "exited":
                raise Failure("-p %d taken over by another process: exit "
                              "%d, %d samples, last line %r (expected exit "
                              "3, 1 sample, an exited event): %s"
                              % (old, rc, len(samples(recs)), recs[-1],
                                 err))
            print("-p: pid %d taken over by another process: exit 3 after "
                  "1 sample, the newcomer not sampled" % old)
            u.exit()

        # --name: a copy of the target with a name of its own.
        name = ("hifol%d" % (os.getpid() % 10**9))[:15]
        exe = os.path.join(tmp, name)
        shutil.copy(args.target, exe)
        out = os.path.join(tmp, "name.jsonl")
        old, b, err = follow(hi, procs, "--name", name, out,
                             lambda: target(exe), lambda: target(exe))
        c = target(exe)
        out = os.path.join(tmp, "two.jsonl")
        argv = [hi, "watch", "--name", name, "--interval", "1s", "-o", out]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 2, err)
        for want in ("2 processes are named '%s'" % name, str(b.pid),
                     str(c.pid)):
            if want not in err:
                raise Failure("--name with two processes: %r lacks %r"
                              % (err, want))
        if os.path.exists(out):
            raise Failure("a refused watch left %s behind" % out)
        print("--name: two processes of the name refused: %s"
              % err.strip())
        b.exit()
        c.exit()

        # --unit, through a stand-in systemctl.
        if os.path.exists("/run/systemd/system"):
            print("note: systemd runs here: the stand-in systemctl's "
                  "processes are not in the unit's control group, so "
                  "--unit is not tested with it")
        else:
            bindir = os.path.join(tmp, "bin")
            os.mkdir(bindir)
            state = os.path.join(tmp, "unit.state")
            with open(os.path.join(bindir, "systemctl"), "w") as f:
                f.write("#!/bin/sh\n# systemctl show, answered from a "
                        "file\nexec /bin/cat %s\n" % state)
            os.chmod(os.path.join(bindir, "systemctl"), 0o755)

            def unit(pid, load="loaded"):
                with open(state + ".new", "w") as f:
                    f.write("Id=hi-svc.service\nLoadState=%s\n"
                            "ActiveState=%s\nMainPID=%d\n"
                            % (load, "active" if pid else "inactive", pid))
                os.rename(state + ".new", state)

            env = dict(os.environ, PATH=bindir)
            def started():
                t = target()
                unit(t.pid)
                return t

            out = os.path.join(tmp, "unit.jsonl")
            old, b, err = follow(hi, procs, "--unit", "hi-svc", out, started,
                                 started, stopping=lambda: unit(0), env=env)
            if "has no main process" not in err:
                raise Failure("--unit: the wait not explained: %r" % err)
            b.exit()
            unit(0, load="not-found")
            out = os.path.join(tmp, "nounit.jsonl")
            argv = [hi, "watch", "--unit", "hi-svc", "--interval", "1s",
                    "-o", out]
            res = subprocess.run(argv, env=env, capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=60)
            err = res.stderr.decode()
            if res.returncode != 2 or \
                    "unit hi-svc.service is not-found" not in err:
                raise Failure("--unit of a unit not loaded: exit %d: %r"
                              % (res.returncode, err))
            res = subprocess.run(argv, env=dict(os.environ, PATH=tmp),
                                 capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=60)
            err = res.stderr.decode()
            if res.returncode != 2 or "--unit needs systemd" not in err:
                raise Failure("--unit without systemctl: exit %d: %r"
                              % (res.returncode, err))
            if os.path.exists(out):
                raise Failure("a failed watch left %s behind" % out)
            print("--unit: followed; not loaded and no systemctl: exit 2 "
                  "with the reason")

        # No process at all: exit 2 and no file.
        out = os.path.join(tmp, "none.jsonl")
        argv = [hi, "watch", "--pidfile", os.path.join(tmp, "nope.pid"),
                "--interval", "1s", "-o", out]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 2, err)
        if "no process to watch" not in err or os.path.exists(out):
            raise Failure("--pidfile without the file: %r, file left: %s"
                          % (err, os.path.exists(out)))
        with open("/proc/sys/kernel/pid_max") as f:
            gone = int(f.read()) - 1
        while os.path.exists("/proc/%d" % gone):
            gone -= 1
        argv = [hi, "watch", "-p", str(gone), "--interval", "1s", "-o", out]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 2, err)
        if os.path.exists(out):
            raise Failure("watch -p of no process left %s behind" % out)
        kept = os.path.join(tmp, "kept.jsonl")
        open(kept, "w").close()
        argv[-1] = kept
        rc, _, err = run(argv)
        expect_rc(argv, rc, 2, err)
        if not os.path.exists(kept):
            raise Failure("a failed watch removed a file it did not make")
        print("failed watches: exit 2, no file left behind, an existing "
              "file kept")
        for bad in (["-p", "1", "--unit", "x"], ["--unit", "x", "--name",
                                                 "y"], ["--name", ""]):
            argv = [hi, "watch"] + bad + ["--interval", "1s", "-o", out]
            rc, _, err = run(argv)
            expect_rc(argv, rc, 64, err)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
