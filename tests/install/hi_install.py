"""Helpers of the install tests: run the installed heapinspect and compare
its figures with the target's own mallinfo2() report."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "live"))

from hi_live import FIGURES, Failure, Target  # noqa: E402,F401


class CmdTarget(Target):
    """hi_target started through a command that executes it in its own
    place (setpriv, chroot): the pid is the target's."""

    def __init__(self, prefix, path, scenario):
        self.proc = subprocess.Popen(prefix + [path, scenario],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)
        self.pid = self.proc.pid
        self.buf = b""


def run(argv, env=None, timeout=180):
    """(exit status, stdout, stderr) of argv."""
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, env=env,
                             capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("%s: no result within %d s"
                      % (" ".join(argv), timeout)) from None
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def check_figures(argv, ready, what, env=None):
    """Run argv (heapinspect -p PID --json ...): exit 0 and the ten
    mallinfo2 figures the target reported itself."""
    rc, out, err = run(argv, env=env)
    if rc != 0:
        raise Failure("%s: exit %d: %s" % (what, rc, err.strip()))
    try:
        mi = json.loads(out).get("mallinfo2") or {}
    except ValueError as e:
        raise Failure("%s: not JSON (%s)" % (what, e)) from None
    wrong = ["%s %r != %d" % (k, mi.get(k), ready[k]) for k in FIGURES
             if mi.get(k) != ready[k]]
    if wrong:
        raise Failure("%s: not the target's own figures: %s"
                      % (what, ", ".join(wrong)))
    print("%s: exit 0, the target's own mallinfo2 figures (uordblks %d)"
          % (what, ready["uordblks"]))


def tracer_free(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                if int(line.split()[1]) != 0:
                    raise Failure("pid %d left traced" % pid)
                return
