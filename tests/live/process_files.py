#!/usr/bin/env python3
"""A file of snapshots holds one process, and -p names a process.

    process_files.py --heapinspect BIN --target BIN

- `watch -o FILE` on target A, then again on A: appended.  Then on
  target B into the same file: refused (exit 2, the message says the file
  holds another process's snapshots), the file unchanged byte for byte.
- The same file with A's start time changed on every line (what a file of
  an earlier process that had A's pid holds), and a file with no start
  times whose executable differs: watch on A refuses both, unchanged.
- A JSON document of `snapshot -o`: watch refuses to append to it.
- A series of a followed service (watch --pidfile, on A): watch -p A
  appends to it (the same process, one segment); watch -p B is refused
  as for any file of another process: -p never continues a service's
  series with another process.
- `-p TID` with the id of a thread that is not the main one (from
  /proc/PID/task): the snapshot is of the process (its pid in the JSON,
  the target's own figures), with a note on stderr naming both; the same
  for `watch -p TID`.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import FIGURES, Failure, Target, heapinspect_env  # noqa: E402


def run(argv, env):
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=300, env=env, text=True)
    return res.returncode, res.stdout, res.stderr


def watch(hi, pid, path, env, count=2):
    return run([hi, "watch", "-p", str(pid), "--interval", "100ms",
                "--count", str(count), "-o", path], env)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def refused(hi, pid, path, env, patterns):
    before = read(path)
    rc, _, err = watch(hi, pid, path, env)
    if rc != 2:
        raise Failure("watch -p %d -o %s: exit %d, expected 2: %s"
                      % (pid, path, rc, err.strip()))
    for p in patterns:
        if not re.search(p, err):
            raise Failure("watch's message lacks /%s/: %s" % (p, err.strip()))
    if read(path) != before:
        raise Failure("%s was changed by a refused watch" % path)
    print("  refused: %s" % err.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    hi = args.heapinspect
    tmp = tempfile.TemporaryDirectory(prefix="hi-procfiles-")
    env = heapinspect_env(os.path.join(tmp.name, "cache"))
    a = Target(args.target, "small_frees")
    b = Target(args.target, "threads8")
    try:
        a.wait_ready()
        ready_b = b.wait_ready()
        path = os.path.join(tmp.name, "a.jsonl")
        for n in (2, 4):
            rc, _, err = watch(hi, a.pid, path, env)
            lines = read(path).decode().splitlines()
            if rc != 0 or len(lines) != n:
                raise Failure("watch of A: exit %d, %d lines, expected %d: "
                              "%s" % (rc, len(lines), n, err))
        snaps = [json.loads(x) for x in lines]
        if {s["pid"] for s in snaps} != {a.pid} or \
                len({s.get("start_ticks") for s in snaps}) != 1 or \
                not isinstance(snaps[0].get("start_ticks"), int):
            raise Failure("A's lines: pids %s, start_ticks %s"
                          % ({s["pid"] for s in snaps},
                             {s.get("start_ticks") for s in snaps}))
        with open("/proc/%d/stat" % a.pid) as f:
            stat = f.read()
        start = int(stat[stat.rindex(")") + 2:].split()[19])
        if snaps[0]["start_ticks"] != start:
            raise Failure("start_ticks %r, /proc/%d/stat says %d"
                          % (snaps[0]["start_ticks"], a.pid, start))
        print("watch of A twice: 4 lines, start_ticks %d as /proc says"
              % start)

        print("watch of B into A's file:")
        refused(hi, b.pid, path, env,
                [r"cannot append to '%s': it holds snapshots of another "
                 r"process \(line 4\): this is pid %d \(hi_target\), not "
                 r"pid %d" % (re.escape(path), b.pid, a.pid)])

        print("A's file with another start time (a reused pid):")
        reused = os.path.join(tmp.name, "reused.jsonl")
        with open(reused, "w") as f:
            for s in snaps:
                s = dict(s, start_ticks=s["start_ticks"] + 12345)
                f.write(json.dumps(s) + "\n")
        refused(hi, a.pid, reused, env,
                [r"started at another time", r"reused"])

        print("a file without start times, of another executable:")
        other = os.path.join(tmp.name, "other-exe.jsonl")
        with open(other, "w") as f:
            for s in snaps:
                s = dict(s, exe="/usr/sbin/another-daemon")
                s.pop("start_ticks")
                s.pop("boot_id")
                f.write(json.dumps(s) + "\n")
        refused(hi, a.pid, other, env,
                [r"running .*hi_target, not /usr/sbin/another-daemon"])

        print("a JSON document of snapshot -o:")
        doc = os.path.join(tmp.name, "one.json")
        rc, _, err = run([hi, "snapshot", "-p", str(a.pid), "-o", doc], env)
        if rc != 0:
            raise Failure("snapshot -o: exit %d: %s" % (rc, err))
        refused(hi, a.pid, doc, env, [r"one JSON document"])

        print("a series of a pid file (A), then -p:")
        pidfile = os.path.join(tmp.name, "a.pid")
        with open(pidfile, "w") as f:
            f.write("%d\n" % a.pid)
        fpath = os.path.join(tmp.name, "followed.jsonl")
        rc, _, err = run([hi, "watch", "--pidfile", pidfile, "--interval",
                          "100ms", "--count", "2", "-o", fpath], env)
        first = json.loads(read(fpath).splitlines()[0])
        src = "pid file " + os.path.realpath(pidfile)
        if rc != 0 or first.get("event") != "resolved" or \
                first.get("source") != src:
            raise Failure("watch --pidfile: exit %d, first line %r: %s"
                          % (rc, first, err))
        refused(hi, b.pid, fpath, env,
                [r"holds snapshots of another process"])
        rc, _, err = watch(hi, a.pid, fpath, env)
        rc2, out, err2 = run([hi, "trend", "--json", fpath], env)
        v = json.loads(out) if rc2 in (0, 1) else {}
        if rc != 0 or v.get("segments") != 1 or v.get("samples") != 4:
            raise Failure("watch -p A into A's followed series: exit %d, "
                          "trend exit %d, segments %r, samples %r: %s %s"
                          % (rc, rc2, v.get("segments"), v.get("samples"),
                             err, err2))
        print("  -p A appended: one process, 4 snapshots")

        tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % b.pid)
                      if int(t) != b.pid)
        if not tids:
            raise Failure("threads8 has no thread but the main one")
        tid = tids[len(tids) // 2]
        rc, out, err = run([hi, "-p", str(tid), "--json"], env)
        if rc != 0:
            raise Failure("-p %d (a thread of %d): exit %d: %s"
                          % (tid, b.pid, rc, err))
        snap = json.loads(out)
        note = "note: %d is a thread of pid %d (hi_target)" % (tid, b.pid)
        if snap["pid"] != b.pid or note not in err:
            raise Failure("-p %d: pid %r in the JSON, stderr %r"
                          % (tid, snap["pid"], err))
        bad = [k for k in FIGURES if snap["mallinfo2"][k] != ready_b[k]]
        if bad:
            raise Failure("-p %d: figures differ from the target's: %s"
                          % (tid, bad))
        print("-p %d (a thread): pid %d in the JSON, the target's figures; "
              "stderr: %s" % (tid, b.pid, err.strip()))
        tpath = os.path.join(tmp.name, "tid.jsonl")
        rc, _, err = watch(hi, tid, tpath, env)
        pids = {json.loads(x)["pid"] for x in read(tpath).splitlines()}
        if rc != 0 or pids != {b.pid} or note not in err:
            raise Failure("watch -p %d: exit %d, pids %s, stderr %r"
                          % (tid, rc, pids, err))
        print("watch -p %d: every line of pid %d" % (tid, b.pid))
        for t in (a, b):
            t.check()
            t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        a.kill()
        b.kill()
        tmp.cleanup()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
