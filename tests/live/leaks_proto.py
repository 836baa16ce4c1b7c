#!/usr/bin/env python3
"""heapinspect's leak finder against valgrind's, block for block.

Runs hi_leaks under valgrind (vg_leaks.py: the truth), then natively,
where hi_leaks_probe stops it and classifies every in-use block with the
product's code (TLS, roots, mark) over a stand-in chunk walk.  Every
block the target names must have the kind valgrind gave it, and the
blocks of each kind must be as many as valgrind's.

Exit status 0 agreed, 1 disagreed, 2 could not run, 77 no valgrind.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vg_leaks  # noqa: E402

KINDS = ("definite", "indirect", "possible", "reachable")


def valgrind_kinds(verdict):
    """name -> kind, from the target's block lines and the records."""
    by_size = {}
    for r in verdict["records"]:
        if r["blocks"] == 1 and any("block_k" in f for f in r["stack"]):
            by_size.setdefault(r["direct"], []).append(r["kind"])
    kinds = {}
    for line in verdict["target"]:
        w = line.split()
        if len(w) == 5 and w[0] == "block" and w[4] != "none":
            got = by_size.get(int(w[3]), [])
            if len(got) == 1:
                kinds[w[1]] = got[0]
    return kinds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        print("leaks_proto: skip: valgrind is not installed")
        return 77
    try:
        lines, text = vg_leaks.run([args.target], dict(os.environ), 600)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("leaks_proto: valgrind: %s" % e)
        return 2
    records, summary = vg_leaks.parse_log(text)
    truth = valgrind_kinds({"records": records, "target": lines})

    proc = subprocess.Popen([args.target], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        named = {}
        while True:
            line = proc.stdout.readline()
            if not line:
                print("leaks_proto: the target ended early")
                return 2
            w = line.split()
            if w and w[0] == "block" and w[4] != "none":
                named[w[1]] = int(w[2], 16)
            if w and w[0] == "ready":
                break
        try:
            out = subprocess.run([args.probe, str(proc.pid)],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 timeout=300)
        except subprocess.TimeoutExpired:
            print("leaks_proto: hi_leaks_probe took more than 300 s")
            return 2
    finally:
        try:
            proc.stdin.write("exit\n")
            proc.stdin.close()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
    if out.returncode:
        print("leaks_proto: hi_leaks_probe: %s" % out.stderr.strip())
        return 2
    mine, msum = {}, {}
    for line in out.stdout.splitlines():
        w = line.split()
        if w[0] == "block":
            mine[int(w[1], 16)] = (w[3], int(w[2]))
        elif w[0] == "summary":
            msum[w[1]] = (int(w[2]), int(w[3]))
        elif w[0] in ("tcache", "skipped"):
            print("leaks_proto: %s %s" % (w[0], w[1]))
    bad = []
    for name, addr in sorted(named.items()):
        if name not in truth:
            bad.append("%s: no valgrind record" % name)
        elif addr not in mine:
            bad.append("%s: no block at %#x" % (name, addr))
        elif mine[addr][0] != truth[name]:
            bad.append("%s: heapinspect says %s, valgrind %s"
                       % (name, mine[addr][0], truth[name]))
    for k in KINDS:
        vb = summary.get(k, {"blocks": 0})["blocks"]
        hb = msum.get(k, (0, 0))[0]
        print("leaks_proto: %-9s valgrind %4d blocks, heapinspect %4d"
              % (k, vb, hb))
        if vb != hb:
            bad.append("%s: %d blocks, valgrind %d" % (k, hb, vb))
    for b in bad:
        print("leaks_proto: " + b)
    if not bad:
        print("leaks_proto: %d named blocks and every kind's count agree"
              % len(named))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
