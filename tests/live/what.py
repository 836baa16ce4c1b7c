#!/usr/bin/env python3
"""What leaked blocks hold, named from outside (symbols/what.c).

hi_leaks_cxx reports the addresses of the Widget objects it leaked: each
must be named "Widget" (its first word points into "vtable for Widget").
A running Python with the pyleak extension (built with setuptools) reports
the bytes object it forgot to Py_DECREF: it must be named "bytes" (its
type pointer leads to PyBytes_Type, whose type is PyType_Type).

Exit status 0 named, 1 misnamed, 2 could not run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def start(cmd, env=None):
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("%s ended early (status %r)"
                               % (cmd[0], proc.poll()))
        lines.append(line.split())
        if lines[-1] and lines[-1][0] == "ready":
            return proc, lines


def stop(proc):
    try:
        proc.stdin.write("exit\n")
        proc.stdin.close()
        proc.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def probe(exe, pid, addrs):
    out = subprocess.run([exe, str(pid)] + addrs, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    if out.returncode:
        raise RuntimeError("hi_what_probe: %s" % out.stderr.strip())
    return [line.split(None, 3)[1:] for line in out.stdout.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--cxx", required=True, help="hi_leaks_cxx")
    ap.add_argument("--pyleak", required=True, help="tests/targets/pyleak")
    args = ap.parse_args()
    bad = []
    built = tempfile.mkdtemp(prefix="pyleak-")
    try:
        proc, lines = start([args.cxx])
        try:
            addrs = [w[1] for w in lines if w[0] == "widget"]
            if not addrs:
                raise RuntimeError("hi_leaks_cxx reported no Widget")
            for addr, kind, name in probe(args.probe, proc.pid, addrs):
                if (kind, name) != ("cxx", "Widget"):
                    bad.append("Widget at %s named %s %s"
                               % (addr, kind, name))
        finally:
            stop(proc)
        try:
            subprocess.run([sys.executable, "setup.py", "-q", "build_ext",
                            "--build-lib", built, "--build-temp",
                            os.path.join(built, "tmp")], cwd=args.pyleak,
                           check=True, stdout=subprocess.DEVNULL)
        except (OSError, subprocess.CalledProcessError) as e:
            print("what: cannot build the extension: %s (python3-dev and "
                  "python3-setuptools installed?)" % e)
            return 2
        env = dict(os.environ, PYTHONPATH=built)
        proc, lines = start([sys.executable,
                             os.path.join(args.pyleak, "run.py"), "10"], env)
        try:
            addrs = [w[1] for w in lines if w[0] == "bytes_object"]
            for addr, kind, name in probe(args.probe, proc.pid, addrs):
                if (kind, name) != ("python", "bytes"):
                    bad.append("bytes object at %s named %s %s"
                               % (addr, kind, name))
        finally:
            stop(proc)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("what: %s" % e)
        return 2
    finally:
        shutil.rmtree(built, ignore_errors=True)
    for b in bad:
        print("what: " + b)
    if not bad:
        print("what: every Widget and the bytes object named")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
