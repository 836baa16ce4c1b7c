#!/usr/bin/env python3
"""A glibc release heapinspect knows nothing of, built like a recent one.

    future.py --heapinspect BIN --target BIN --libc LIBC --debuginfo-path DIR

A copy of LIBC (the target's own glibc, e.g. sid's 2.43, which has no
fastbins) whose version banner says 2.99 is preloaded into the target, so
that heapinspect has no built-in table for it while its build-id, and so
its debug file under DIR, stay those of LIBC.  Then, against the target's
own mallinfo2():

1. with the debug information: read from the DWARF, exact (a later
   release whose DWARF describes a malloc heapinspect knows needs no new
   code);
2. with it and --method call: the call agrees with the read of the same
   stop;
3. without it: --method auto calls mallinfo2() in the target, exact, and
   says why.

Every case prints PASS or FAIL; exit 0 only when all passed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import check_snapshot  # noqa: E402
from hi_live import Failure, Target, heapinspect_env  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--libc", required=True,
                    help="the libc the target runs with (to copy)")
    ap.add_argument("--debuginfo-path", required=True,
                    help="where that libc's debug file is, by build-id")
    ap.add_argument("--scenario", default="threads8")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hi-future-")
    failed = 0
    try:
        with open(args.libc, "rb") as f:
            data = f.read()
        banner = b"release version 2."
        at = data.find(banner)
        if at < 0:
            raise Failure("no version banner in %s" % args.libc)
        at += len(banner)
        lib = os.path.join(tmp, "libc.so.6")
        with open(lib, "wb") as f:
            f.write(data[:at] + b"99" + data[at + 2:])
        # DT_RPATH would win over LD_LIBRARY_PATH; a preloaded object
        # whose soname is libc.so.6 is the one every NEEDED entry gets.
        t = Target.__new__(Target)
        t.proc = subprocess.Popen(
            [args.target, args.scenario], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, bufsize=0,
            env=dict(os.environ, LD_PRELOAD=lib))
        t.pid, t.buf = t.proc.pid, b""
        try:
            ready = t.wait_ready()
            with open("/proc/%d/maps" % t.pid) as f:
                if lib not in f.read():
                    raise Failure("the target does not run the copy")
            env = heapinspect_env(os.path.join(tmp, "xdg"))
            cases = [
                ("glibc 2.99 with its DWARF: read from it",
                 ["--debuginfo-path", args.debuginfo_path], "read",
                 None, "dwarf"),
                ("glibc 2.99 with its DWARF, --method call: agrees",
                 ["--debuginfo-path", args.debuginfo_path, "--method",
                  "call"], "call", None, "dwarf"),
                ("glibc 2.99 without debug information: auto calls",
                 ["--debuginfo-path", "/nonexistent"], "call",
                 "glibc 2.99 has no built-in layout", None),
            ]
            for name, extra, method, reason, located_by in cases:
                argv = [args.heapinspect, "-p", str(t.pid), "--json",
                        "--no-cache"] + extra
                res = subprocess.run(argv, capture_output=True,
                                     timeout=120, stdin=subprocess.DEVNULL,
                                     env=env)
                problems = []
                if res.returncode != 0:
                    problems = ["exit %d: %s" % (res.returncode,
                                                 res.stderr.decode())]
                else:
                    snap = json.loads(res.stdout)
                    problems = check_snapshot(snap, ready, t.pid,
                                              located_by, method, reason)
                if problems:
                    failed += 1
                    print("FAIL %s: %s" % (name, "; ".join(problems)))
                else:
                    print("PASS %s" % name)
            t.check()
            t.exit()
        finally:
            t.kill()
    except Failure as e:
        print("FAIL: %s" % e)
        failed += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
