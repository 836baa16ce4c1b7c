"""Driving tests/targets/hi_callhost.c, the single-threaded target of the
injected call's tests, and checking that it came out of heapinspect as it
went in: alive, running, untraced, nothing printed by glibc."""

import os
import select
import subprocess
import tempfile
import time

from hi_live import FIGURES, Failure, parse_ready, proc_state, tracer_pid


class CallHost:
    """hi_callhost MODE, stdin and stdout on pipes, stderr to a file."""

    def __init__(self, path, mode):
        self.mode = mode
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([path, mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.err, bufsize=0)
        self.pid = self.proc.pid
        self.buf = b""
        self.ready = parse_ready(self.line(60))

    def line(self, timeout=30):
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
                    raise Failure("target: output closed, status %r, "
                                  "stderr %r" % (self.proc.wait(5),
                                                 self.stderr()))
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def ask(self, command, timeout=30):
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Failure("target gone before %r, status %r"
                          % (command, self.proc.poll())) from None
        return self.line(timeout)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def check_untouched(self, when, syscall=None, sigblk=None):
        """Alive, every thread running or sleeping, untraced, nothing on
        stderr; optionally in system call `syscall` (its number, as
        /proc/PID/syscall shows it) with SigBlk `sigblk`."""
        deadline = time.monotonic() + 3
        while True:
            if self.proc.poll() is not None:
                raise Failure("%s: the target died, status %d, stderr %r"
                              % (when, self.proc.returncode, self.stderr()))
            states = proc_state(self.pid)
            tracer = tracer_pid(self.pid)
            now = None
            if syscall is not None:
                with open("/proc/%d/syscall" % self.pid) as f:
                    now = f.read().split()[0]
            ok = (tracer == 0 and all(s == "S" for s in states) and
                  (syscall is None or now in syscall))
            if ok:
                break
            if time.monotonic() > deadline:
                raise Failure("%s: the target is not back as it was: "
                              "states %s, TracerPid %d, system call %s "
                              "(want %s)" % (when, "".join(states), tracer,
                                             now, syscall))
            time.sleep(0.01)
        if sigblk is not None:
            with open("/proc/%d/status" % self.pid) as f:
                blk = [ln.split()[1] for ln in f
                       if ln.startswith("SigBlk:")][0]
            if int(blk, 16) != sigblk:
                raise Failure("%s: the target's signal mask is %s, not "
                              "%x" % (when, blk, sigblk))
        if self.stderr():
            raise Failure("%s: the target wrote on stderr: %r"
                          % (when, self.stderr()))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.err.close()


def figures_of(line):
    """The ten figures of a ready or done line."""
    words = dict(w.split("=", 1) for w in line.split() if "=" in w)
    return {k: int(words[k]) for k in FIGURES}


def same_figures(want, got, what):
    bad = ["%s %r != %r" % (k, got.get(k), want[k]) for k in FIGURES
           if got.get(k) != want[k]]
    if bad:
        raise Failure("%s: figures differ from the target's own: %s"
                      % (what, ", ".join(bad)))


def run(argv, env_extra=None, timeout=120):
    env = dict(os.environ)
    for k in ("HEAPINSPECT_CALL_TID", "HEAPINSPECT_TEST_DIE",
              "HEAPINSPECT_TEST_UNCHECKED"):
        env.pop(k, None)
    env.update(env_extra or {})
    res = subprocess.run(argv, env=env, capture_output=True,
                         stdin=subprocess.DEVNULL, timeout=timeout)
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))
