#!/usr/bin/env python3
"""A real pre-forking server: a PostgreSQL backend, read every way.

A backend is forked from the postmaster, whose heap it inherits; the heap
it grows afterwards is another mapping, so the kernel shows its [heap] in
two (issue 14: heapinspect refused such a process without debug
information, and its injected call failed with "Bad address").  The test
makes a cluster in a temporary directory (initdb, as an unprivileged user
when run as root), starts it on a Unix socket only, opens a session with
psql whose backend grows its heap (two large sorts, then a cursor WITH
HOLD that keeps 200,000 rows in memory), and reads that backend while it
waits for the next query:

  - as heapinspect does by default,
  - without debug information and without a layout cache (the built-in
    tables, found and verified in memory),
  - by calling the backend's own mallinfo2() (--method call),
  - by default once more;

each must exit 0 with consistent figures, and the three reads must equal
the call's figures, which are the process's own mallinfo2().  Afterwards
the backend must be alive, not stopped, not traced, and answer a query on
the same session.

Exit 0 when all passed, 1 on a failure, 77 (skip) when PostgreSQL is not
installed (tests/setup-debian.sh installs it).
"""

import argparse
import glob
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import (FIGURES, Failure, heapinspect_argv,  # noqa: E402
                     heapinspect_env, proc_state, run_heapinspect,
                     tracer_pid)

# The backend's heap: sorts of 64 MiB of work memory first (glibc's
# dynamic mmap threshold rises when their blocks are unmapped, so that
# later blocks come from the heap), then a cursor WITH HOLD, whose rows
# stay in the backend's memory until it is closed.
GROW = [
    "SET work_mem = '64MB'; SELECT 'set';",
    "SELECT count(*) FROM (SELECT md5(i::text) FROM "
    "generate_series(1, 300000) i ORDER BY 1) s;",
    "SELECT count(*) FROM (SELECT md5(i::text) FROM "
    "generate_series(1, 300000) i ORDER BY 1) s;",
    "BEGIN; DECLARE held CURSOR WITH HOLD FOR SELECT md5(i::text) FROM "
    "generate_series(1, 200000) i; COMMIT; SELECT 'held';",
]


class Skip(Exception):
    """The test cannot run here; the message says why (exit 77)."""


def pg_bindir():
    """The newest Debian PostgreSQL (/usr/lib/postgresql/N/bin), or the
    one on PATH."""
    need = ("initdb", "pg_ctl", "postgres")
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: [int(x) for x in
                                 d.split("/")[-2].split(".")
                                 if x.isdigit()])
    for d in reversed(dirs):
        if all(os.access(os.path.join(d, n), os.X_OK) for n in need):
            return d
    found = [shutil.which(n) for n in need]
    if all(found):
        return os.path.dirname(os.path.realpath(found[0]))
    raise Skip("PostgreSQL is not installed (no initdb, pg_ctl and "
               "postgres in /usr/lib/postgresql/*/bin or on PATH; "
               "tests/setup-debian.sh installs the postgresql package)")


def server_user():
    """initdb refuses root: as root, the server runs as postgres (the
    package's user) or nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise Skip("running as root, and neither user postgres nor nobody "
               "exists to run the server as")


class Session:
    """psql on pipes, one query a line, answers unaligned, tuples only."""

    def __init__(self, psql, sockdir):
        self.proc = subprocess.Popen(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0",
             "-h", sockdir, "-U", "postgres", "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, bufsize=0)
        self.buf = b""

    def query(self, sql, timeout=60):
        """The query's last output line."""
        self.proc.stdin.write(sql.encode() + b"\n")
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("psql: no answer to %r within %d s"
                              % (sql, timeout))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise Failure("psql exited (status %r) on %r"
                              % (self.proc.poll(), sql))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace").strip()

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def run_as(user, argv, what, timeout=60):
    """Run argv as user (None: as we are); Failure with its output."""
    kw = {}
    if user is not None:
        kw = {"user": user.pw_uid, "group": user.pw_gid,
              "extra_groups": []}
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=timeout,
                             cwd="/", **kw)
    except subprocess.TimeoutExpired:
        raise Failure("%s: no result within %d s" % (what, timeout)) \
            from None
    if res.returncode != 0:
        raise Failure("%s: exit status %d\n%s"
                      % (what, res.returncode,
                         (res.stdout + res.stderr).decode("utf-8",
                                                          "replace")))


def heap_maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return sum(1 for line in f if line.rstrip().endswith("[heap]"))


def read(args, pid, name, extra, env, located_by=None, method="read"):
    argv = heapinspect_argv(args.heapinspect, pid, None, extra)
    snap, elapsed, err = run_heapinspect(argv, 60, (0,), env)
    alloc = snap.get("allocator") or {}
    mi = snap.get("mallinfo2")
    print("%s: %.3f s, pause_us %r, located_by %r, method %r"
          % (name, elapsed, snap.get("pause_us"), alloc.get("located_by"),
             alloc.get("method")))
    problems = []
    if snap.get("pid") != pid:
        problems.append("pid is %r, not %d" % (snap.get("pid"), pid))
    if snap.get("consistent") is not True or not isinstance(mi, dict):
        problems.append("not consistent: %r" % snap.get("consistent"))
        mi = None
    if alloc.get("method") != method:
        problems.append("method is %r, not %r"
                        % (alloc.get("method"), method))
    if located_by and alloc.get("located_by") != located_by:
        problems.append("located_by is %r, not %r"
                        % (alloc.get("located_by"), located_by))
    if method == "call":
        call = alloc.get("call") or {}
        if call.get("function") != "mallinfo2" or \
                call.get("agrees_with_memory") is not True:
            problems.append("the call did not run or disagreed with "
                            "the memory read in its stop: %r" % call)
    return mi, ["%s: %s" % (name, p) for p in problems]


def run(args):
    bindir = pg_bindir()
    psql = shutil.which("psql") or os.path.join(bindir, "psql")
    user = server_user()
    tmp = tempfile.mkdtemp(prefix="hi-pg-")
    data = os.path.join(tmp, "data")
    started = False
    session = None
    failed = []
    try:
        if user is not None:
            os.chown(tmp, user.pw_uid, user.pw_gid)
        os.chmod(tmp, 0o700)
        run_as(user, [os.path.join(bindir, "initdb"), "-D", data,
                      "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--locale=C", "--no-sync"], "initdb", 120)
        # A Unix socket in the directory only, no TCP port; nothing that
        # wakes an idle backend (statistics to flush, autovacuum's
        # invalidations) and could change its heap between the reads.
        run_as(user, [os.path.join(bindir, "pg_ctl"), "-D", data, "-w",
                      "-t", "60", "-l", os.path.join(tmp, "log"), "-o",
                      "-k %s -c listen_addresses= -c fsync=off "
                      "-c shared_buffers=16MB -c autovacuum=off "
                      "-c track_counts=off" % tmp, "start"],
               "pg_ctl start", 90)
        started = True
        session = Session(psql, tmp)
        pid = int(session.query("SELECT pg_backend_pid();"))
        for sql in GROW:
            session.query(sql)
        nmaps = heap_maps(pid)
        print("backend pid %d: [heap] in %d mappings" % (pid, nmaps))
        if nmaps < 2:
            raise Failure("the backend's [heap] is in %d mapping: no "
                          "split heap to read" % nmaps)

        cache = tempfile.TemporaryDirectory(prefix="hi-cache-")
        bare = tempfile.TemporaryDirectory(prefix="hi-cache-")
        env = heapinspect_env(cache.name)
        got = {}
        for name, extra, e, loc, method in (
                ("default", [], env, None, "read"),
                ("no debug information",
                 ["--debuginfo-path", "/nonexistent", "--no-cache"],
                 heapinspect_env(bare.name), "builtin", "read"),
                ("--method call", ["--method", "call"], env, None, "call"),
                ("default again", [], env, None, "read")):
            mi, problems = read(args, pid, name, extra, e, loc, method)
            failed += problems
            got[name] = mi
        own = got["--method call"]
        for name, mi in got.items():
            if own is None or mi is None or name == "--method call":
                continue
            diff = ["%s %d, the call %d" % (k, mi[k], own[k])
                    for k in FIGURES if mi.get(k) != own.get(k)]
            if diff:
                failed.append("%s: differs from the backend's own "
                              "mallinfo2(): %s" % (name, "; ".join(diff)))
        if own is not None:
            print("the backend's own mallinfo2(): arena %d, ordblks %d, "
                  "fordblks %d, hblks %d" % (own["arena"], own["ordblks"],
                                             own["fordblks"],
                                             own["hblks"]))

        # Left as it was found: alive, running, untraced, answering.
        states = proc_state(pid)
        if any(s in "tTZX" for s in states):
            failed.append("backend threads in state %s after the reads"
                          % "".join(states))
        if tracer_pid(pid) != 0:
            failed.append("backend still traced by pid %d"
                          % tracer_pid(pid))
        answer = session.query("SELECT 6 * 7;")
        if answer != "42":
            failed.append("the session answered %r, not 42, after the "
                          "reads" % answer)
        cache.cleanup()
        bare.cleanup()
        return failed
    finally:
        if session is not None:
            session.close()
        if started:
            try:
                run_as(user, [os.path.join(bindir, "pg_ctl"), "-D", data,
                              "-m", "immediate", "-w", "stop"],
                       "pg_ctl stop", 60)
            except Failure as e:
                print("cleanup: %s" % e)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    args = ap.parse_args()
    try:
        failed = run(args)
    except Skip as e:
        print("SKIP postgres: %s" % e)
        return 77
    except Failure as e:
        failed = [str(e)]
    except OSError as e:
        failed = ["%s" % e]
    if failed:
        print("FAIL postgres:")
        for f in failed:
            print("  %s" % f)
        return 1
    print("PASS postgres")
    return 0


if __name__ == "__main__":
    sys.exit(main())
