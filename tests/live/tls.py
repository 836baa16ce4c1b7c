#!/usr/bin/env python3
"""Thread-local storage of a live process, read from outside (symbols/tls.c).

Starts hi_tls (tests/targets/hi_tls.c), which reports for each of its
threads the address of its own __thread variable, of a dlopen'd module's
(in the threads that touched it; no block in the others) and the block
it freed last into its tcache; then runs hi_tls_probe on it, which finds
the same through the thread pointer, glibc's _thread_db_* descriptors and
the link map, and through glibc's `tcache` pointer of each thread.  Every
address must be the target's own.  The probe also compares its blocks
with glibc's libthread_db where that loads (td_thr_tlsbase); where it
does not (a target glibc newer than the host's), the probe says why.

Exit status 0 agreed, 1 disagreed, 2 could not run.
"""

import argparse
import subprocess
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hi_live import Failure  # noqa: E402


def parse(line):
    words = line.split()
    # printf's %p writes a null pointer as (nil)
    return words[0], dict(w.replace("(nil)", "0x0").split("=", 1)
                          for w in words[1:] if "=" in w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--dyn", required=True, help="libhi_tlsdyn.so")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--debuginfo-path")
    ap.add_argument("--tcache", choices=("required", "optional"),
                    default="required",
                    help="whether libc's debug file must give `tcache`")
    args = ap.parse_args()

    proc = subprocess.Popen([args.target, args.dyn], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        want = {}
        while True:
            line = proc.stdout.readline()
            if not line:
                raise Failure("hi_tls ended early (status %r)" % proc.poll())
            kind, f = parse(line)
            if kind == "thread":
                want[int(f["tid"])] = f
            elif kind == "ready":
                break
        cmd = [args.probe, str(proc.pid)]
        if args.debuginfo_path:
            cmd.append(args.debuginfo_path)
        out = subprocess.run(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=120)
        if out.returncode:
            raise Failure("hi_tls_probe: status %d: %s" % (out.returncode,
                                                           out.stderr))
        got, tdb = {}, None
        for line in out.stdout.splitlines():
            if line.startswith("thread "):
                _, f = parse(line)
                got[int(f["tid"])] = f
            elif line.startswith("tdb "):
                tdb = line
        if set(got) != set(want):
            raise Failure("threads: the target has %s, the probe read %s"
                          % (sorted(want), sorted(got)))
        bad = []
        ntc = 0
        for tid, w in sorted(want.items()):
            g = got[tid]
            for key in ("exe", "dyn"):
                if int(w[key], 16) != int(g[key], 16):
                    bad.append("thread %d %s: target %s, probe %s"
                               % (tid, key, w[key], g[key]))
            if g["tcache80"] == "none":
                if args.tcache == "required":
                    bad.append("thread %d: no tcache (libc's debug file?)"
                               % tid)
            elif int(w["tcache80"], 16) != int(g["tcache80"], 16):
                bad.append("thread %d tcache80: target %s, probe %s"
                           % (tid, w["tcache80"], g["tcache80"]))
            else:
                ntc += 1
        if tdb is None or tdb.startswith("tdb disagrees"):
            bad.append("libthread_db: %s" % tdb)
        for b in bad:
            print("tls: " + b)
        print("tls: %d threads, %d tcache heads, %s"
              % (len(want), ntc, tdb))
        return 1 if bad else 0
    except (Failure, subprocess.TimeoutExpired) as e:
        print("tls: %s" % e)
        return 2
    finally:
        if proc.poll() is None:
            try:
                proc.stdin.write("exit\n")
                proc.stdin.close()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
