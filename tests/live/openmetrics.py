#!/usr/bin/env python3
"""heapinspect watch --format openmetrics, checked with promtool.

    openmetrics.py --heapinspect BIN --target BIN [--promtool PATH]

Watches `hi_target threads8` (9 arenas) into a .prom file and requires:
`promtool check metrics` accepts it (promtool missing is a failure, not a
skip: tests/setup-debian.sh installs Debian's prometheus package);
heapinspect_live_bytes is the target's own uordblks + hblkhd; one
heapinspect_arena_system_bytes per arena, with pid, comm and arena labels;
no temporary file is left beside it; an -o that is a symlink is replaced,
its target untouched; and once the target exits the file says
heapinspect_up 0.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from hi_live import Failure, Target
from series_util import expect_rc, run

SAMPLE = re.compile(r'^([a-z_]+)\{([^}]*)\} (\S+)$')


def parse(text):
    """{name: [(labels dict, value)]} of the sample lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Failure("not a sample line: %r" % line)
        labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"',
                                 m.group(2)))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def promtool_check(promtool, path):
    with open(path, "rb") as f:
        res = subprocess.run([promtool, "check", "metrics"], stdin=f,
                             capture_output=True, timeout=60)
    if res.returncode != 0:
        raise Failure("promtool check metrics %s: exit %d\n%s%s"
                      % (path, res.returncode, res.stdout.decode(),
                         res.stderr.decode()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--promtool", default="promtool")
    args = ap.parse_args()
    hi = args.heapinspect
    promtool = shutil.which(args.promtool)
    if not promtool:
        print("FAIL: no promtool: install Debian's prometheus package "
              "(tests/setup-debian.sh)")
        return 1
    tmp = tempfile.mkdtemp(prefix="hi-prom-")
    target = Target(args.target, "threads8")
    try:
        ready = target.wait_ready()
        prom = os.path.join(tmp, "heap.prom")
        victim = os.path.join(tmp, "victim")
        with open(victim, "w") as f:
            f.write("untouched\n")
        os.symlink(victim, prom)
        argv = [hi, "watch", "-p", str(target.pid), "--interval", "100ms",
                "--count", "3", "--format", "openmetrics", "-o", prom]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 0, err)
        if os.path.islink(prom) or open(victim).read() != "untouched\n":
            raise Failure("the symlink at -o was followed")
        left = sorted(set(os.listdir(tmp)) - {"heap.prom", "victim"})
        if left:
            raise Failure("files left beside it: %s" % left)
        promtool_check(promtool, prom)
        text = open(prom).read()
        if not text.endswith("# EOF\n"):
            raise Failure("no '# EOF' at the end")
        m = parse(text)
        (labels, live), = m["heapinspect_live_bytes"]
        want = ready["uordblks"] + ready["hblkhd"]
        if labels != {"pid": str(target.pid), "comm": "hi_target"} or \
                live != want:
            raise Failure("heapinspect_live_bytes %r %d, expected %d"
                          % (labels, live, want))
        arenas = m["heapinspect_arena_system_bytes"]
        if len(arenas) != 9 or \
                len({a[0]["arena"] for a in arenas}) != 9 or \
                sum(a[1] for a in arenas) != ready["arena"]:
            raise Failure("arena metrics: %r" % arenas)
        for name in m:
            if not name.startswith("heapinspect_"):
                raise Failure("metric without the prefix: %s" % name)
        print("promtool: ok; %d metrics; live %d as the target says; "
              "%d arenas" % (len(m), live, len(arenas)))

        os.unlink(prom)
        p = subprocess.Popen([hi, "watch", "-p", str(target.pid),
                              "--interval", "50ms", "--format",
                              "openmetrics", "-o", prom],
                             stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        # The target exits once the watch has taken a sample.
        for _ in range(1500):
            if os.path.exists(prom):
                break
            time.sleep(0.02)
        target.exit()
        rc = p.wait(10)
        p.stderr.close()
        if rc != 3:
            raise Failure("watch after the target exited: exit %d" % rc)
        promtool_check(promtool, prom)
        m = parse(open(prom).read())
        if [v for _, v in m.get("heapinspect_up", [])] != [0.0]:
            raise Failure("after the exit: %r" % m)
        print("target exited: heapinspect_up 0")
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        target.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
