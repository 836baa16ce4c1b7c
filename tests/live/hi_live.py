"""Shared helpers of the live tests: driving hi_target and heapinspect.

hi_target's protocol (see tests/targets/hi_target.c): after building its
heap it writes one line

    ready pid=<pid> api=<mallinfo2|mallinfo|none> [<figure>=<n> ...] threads=<n>

then answers the commands `report` (a new ready line), `check` ("ok" or
"bad <index>") and `exit` (exit status 0 if its data is intact).
"""

import json
import os
import select
import signal
import subprocess
import time

FIGURES = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
           "fsmblks", "uordblks", "fordblks", "keepcost")

SCHEMA = "heapinspect/snapshot/v1"


class Failure(Exception):
    """A test failure; the message says what went wrong."""


def parse_ready(line):
    words = line.split()
    if not words or words[0] != "ready":
        raise Failure("target: expected a ready line, got %r" % line)
    ready = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise Failure("target: malformed ready line %r" % line)
        if key == "api":
            ready[key] = value
        elif value.isdigit():
            ready[key] = int(value)
        else:
            raise Failure("target: bad %s in ready line %r" % (key, line))
    for key in ("pid", "api", "threads"):
        if key not in ready:
            raise Failure("target: ready line without %s: %r" % (key, line))
    if ready["api"] not in ("mallinfo2", "mallinfo", "none"):
        raise Failure("target: unknown api %r" % ready["api"])
    if ready["api"] != "none":
        for key in FIGURES:
            if key not in ready:
                raise Failure("target: ready line without %s: %r"
                              % (key, line))
    return ready


class Target:
    """hi_target SCENARIO, with its stdin and stdout on pipes."""

    def __init__(self, path, scenario, nice=0, args=()):
        self.proc = subprocess.Popen([path, scenario] + list(args),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0,
                                     preexec_fn=(lambda: os.nice(nice))
                                     if nice else None)
        self.pid = self.proc.pid
        self.buf = b""

    def readline(self, timeout):
        """One line without its newline; Failure on timeout or EOF."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("target: no answer within %g s" % timeout)
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise Failure("target: output closed (exit status %r)"
                              % self.proc.poll())
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def send(self, command):
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Failure("target: gone before %r (exit status %r)"
                          % (command, self.proc.poll())) from None

    def wait_ready(self, timeout=120):
        return parse_ready(self.readline(timeout))

    def report(self, timeout=30):
        self.send("report")
        return self.wait_ready(timeout)

    def check(self, timeout=60):
        """Fail unless the target answers `check` with ok."""
        self.send("check")
        answer = self.readline(timeout)
        if answer != "ok":
            raise Failure("target: check answered %r" % answer)

    def exit(self, timeout=30):
        """Send `exit`, fail unless the target exits with status 0."""
        self.send("exit")
        self.proc.stdin.close()
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("target: still running %d s after exit"
                          % timeout) from None
        if status != 0:
            raise Failure("target: exit status %d" % status)

    def kill(self):
        """Kill the target if it still runs (every path ends here)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def heapinspect_argv(binary, pid, debuginfo_path=None, extra_args=()):
    argv = [binary, "-p", str(pid), "--json"]
    if debuginfo_path:
        argv += ["--debuginfo-path", debuginfo_path]
    return argv + list(extra_args)


def heapinspect_env(cache_dir=None, keep_debuginfod=False):
    """The environment heapinspect runs in: no debuginfod server unless a
    test asks for one (the host's profile may set DEBUGINFOD_URLS), and a
    layout cache of the test's own, so that no test sees another's."""
    env = dict(os.environ)
    if not keep_debuginfod:
        env.pop("DEBUGINFOD_URLS", None)
    if cache_dir is not None:
        env["XDG_CACHE_HOME"] = cache_dir
    return env


def run_heapinspect(argv, timeout=120, ok_codes=(0,), env=None):
    """Run heapinspect, require an exit status in ok_codes (0: complete;
    1: printed, some arena busy or corrupt), return its parsed JSON."""
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise Failure("heapinspect: no result within %d s" % timeout) \
            from None
    elapsed = time.monotonic() - t0
    err = res.stderr.decode("utf-8", "replace").strip()
    if res.returncode not in ok_codes:
        raise Failure("heapinspect: exit status %d\n  argv: %s\n  stderr: %s"
                      % (res.returncode, " ".join(argv), err or "(empty)"))
    try:
        snap = json.loads(res.stdout)
    except ValueError as e:
        raise Failure("heapinspect: stdout is not JSON (%s): %r"
                      % (e, res.stdout[:200])) from None
    return snap, elapsed, err


def proc_state(pid):
    """Single-letter states of all threads of pid."""
    states = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        states.append(stat[stat.rindex(")") + 2])
    return states


def tracer_pid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    raise Failure("no TracerPid in /proc/%d/status" % pid)


def tracer_process(pid):
    """The process (thread group) that traces pid, or 0: heapinspect
    stops a process from a thread of its own, which TracerPid names."""
    tracer = tracer_pid(pid)
    if not tracer:
        return 0
    try:
        with open("/proc/%d/status" % tracer) as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return tracer
