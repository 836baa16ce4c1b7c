#!/usr/bin/env python3
"""heapinspect never writes into the process it reads.

    readonly.py --heapinspect BIN --target BIN [--scenario S] [--snapshots N]

Starts `hi_target S` (default threads8: 9 threads, 9 arenas), which does
nothing at all once it has reported: its main thread waits in read(2) for a
command, the others in pthread_cond_wait.  Hashes every writable mapping of
it through /proc/PID/mem, twice (the two must agree, or the target is not
idle and the test proves nothing), runs N (default 100) snapshots, each of
which must give the target's own figures, and hashes again: every mapping
must be there with the same bytes, and no mapping may have come or gone.

Left out, and why:
  - mappings that are not writable: nobody can change them without
    mprotect, which would show in the mappings list, compared whole;
  - [vvar], [vdso], [vsyscall]: the kernel's own pages (time data), never
    writable by the process;
  - the threads' rseq areas: the kernel itself writes the CPU number into
    each thread's struct rseq whenever the thread returns to user space on
    another CPU, and a thread stopped by ptrace and resumed does return;
    that is the kernel's bookkeeping, not heapinspect writing, so the
    target runs with glibc's rseq registration off
    (GLIBC_TUNABLES=glibc.pthread.rseq=0).
Exit 0 on pass, 1 on failure.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hi_live  # noqa: E402
from hi_live import FIGURES, Failure, Target  # noqa: E402

SPECIAL = ("[vvar]", "[vdso]", "[vsyscall]", "[vvar_vclock]")


def mappings(pid):
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else ""
            out.append((start, end, parts[1], path))
    return out


def hashes(pid):
    """{(start, end, path): (sha256, the bytes' page hashes)} of every
    writable mapping, and the list of all mappings."""
    maps = mappings(pid)
    out = {}
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, perms, path in maps:
            if perms[1] != "w" or path in SPECIAL:
                continue
            mem.seek(start)
            data = mem.read(end - start)
            if len(data) != end - start:
                raise Failure("short read of %x-%x %s" % (start, end, path))
            pages = [hashlib.sha256(data[i:i + 4096]).digest()
                     for i in range(0, len(data), 4096)]
            out[(start, end, path)] = (hashlib.sha256(data).hexdigest(),
                                       pages)
    return out, maps


def differences(a, b):
    diff = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            diff.append("%x-%x %s %s" % (key[0], key[1], key[2],
                                         "appeared" if key not in a
                                         else "vanished"))
        elif a[key][0] != b[key][0]:
            pages = [i for i, (x, y) in enumerate(zip(a[key][1], b[key][1]))
                     if x != y]
            diff.append("%x-%x %s: %d pages changed, first at +0x%x"
                        % (key[0], key[1], key[2] or "(anonymous)",
                           len(pages), pages[0] * 4096))
    return diff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--scenario", default="threads8")
    ap.add_argument("--snapshots", type=int, default=100)
    args = ap.parse_args()
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = "glibc.pthread.rseq=0"
    t = Target.__new__(Target)
    t.proc = subprocess.Popen([args.target, args.scenario],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              bufsize=0, env=env)
    t.pid = t.proc.pid
    t.buf = b""
    try:
        ready = t.wait_ready()
        # Its threads settle into their waits just after the ready line
        # (the last broadcast, the condition variable): wait for two
        # hashes in a row to agree.
        before, maps0 = hashes(t.pid)
        for _ in range(20):
            time.sleep(0.1)
            again, _ = hashes(t.pid)
            if not differences(before, again):
                break
            before = again
        else:
            raise Failure("the target is not idle: its memory keeps "
                          "changing with nobody reading it: %s"
                          % differences(before, again)[:5])
        size = sum(k[1] - k[0] for k in before)
        print("target %s: pid %d, %d writable mappings, %d bytes hashed"
              % (args.scenario, t.pid, len(before), size))
        argv = hi_live.heapinspect_argv(args.heapinspect, t.pid)
        for i in range(args.snapshots):
            snap, _, _ = hi_live.run_heapinspect(argv)
            wrong = [k for k in FIGURES
                     if snap["mallinfo2"][k] != ready[k]]
            if wrong:
                raise Failure("snapshot %d: figures %s differ from the "
                              "target's" % (i + 1, wrong))
        after, maps1 = hashes(t.pid)
        diff = differences(before, after)
        if maps0 != maps1:
            diff.append("the mappings list changed")
        if diff:
            raise Failure("after %d snapshots the target's memory "
                          "changed:\n  %s" % (args.snapshots,
                                              "\n  ".join(diff)))
        print("%d snapshots: every writable mapping unchanged"
              % args.snapshots)
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS readonly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
