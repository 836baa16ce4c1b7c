#!/usr/bin/env python3
"""valgrind memcheck's verdict on a leak target: the truth for leaks.

Runs a target program (tests/targets/hi_leaks, hi_leaks_cxx, or a Python
script using the pyleak extension) under

    valgrind --tool=memcheck --leak-check=no --show-leak-kinds=all

The target builds its heap, writes what it built (protocol below), and,
seeing RUNNING_ON_VALGRIND, asks memcheck for a full leak check at the
moment it waits (VALGRIND_DO_LEAK_CHECK), then writes "checked".  This
script then ends the target, reads valgrind's log, and extracts the LEAK
SUMMARY and every loss record (kind, bytes, direct and indirect bytes,
blocks, allocation stack), written as JSON with --json.  That is what a
later live test compares `heapinspect leaks` with, block for block.

With --check it also holds valgrind to what the target says it built, so
that the targets are known to build the cases they claim:

    block NAME ADDR SIZE KIND   a block of a size no other block has, made
                                at a call site of its own: valgrind's loss
                                record of that size must have KIND
                                (definite, indirect, possible, reachable;
                                "lost": definite or indirect; "none": no
                                record, e.g. a block that was freed)
    lost_groups N               of the "lost" blocks, N are definite
                                (one per clique: the cycle tests)
    expect KIND SIZE COUNT [FN] loss records of KIND whose blocks are SIZE
                                bytes each (and whose allocation stack
                                passes through function FN) hold COUNT
                                blocks in all
    expect_class, expect_type   (what the lost blocks hold: a C++ class,
                                a Python type; for heapinspect, not
                                valgrind)
    ready ...                   the target waits
    checked                     valgrind's leak check was made

Exit status: 0 agreed (or no --check), 1 disagreement, 2 could not run,
77 valgrind is not installed.
"""

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

KINDS = {
    "definitely lost": "definite",
    "indirectly lost": "indirect",
    "possibly lost": "possible",
    "still reachable": "reachable",
}

RECORD = re.compile(
    r"^==\d+== (?P<bytes>[\d,]+)(?: \((?P<direct>[\d,]+) direct, "
    r"(?P<indirect>[\d,]+) indirect\))? bytes in (?P<blocks>[\d,]+) blocks "
    r"are (?P<kind>definitely lost|indirectly lost|possibly lost|"
    r"still reachable) in loss record (?P<n>[\d,]+) of (?P<of>[\d,]+)$")
FRAME = re.compile(r"^==\d+==    (?:at|by) 0x[0-9A-F]+: (?P<fn>.*)$")
SUMMARY = re.compile(
    r"^==\d+==\s+(?P<kind>definitely lost|indirectly lost|possibly lost|"
    r"still reachable|suppressed): (?P<bytes>[\d,]+) bytes in "
    r"(?P<blocks>[\d,]+) blocks$")


def num(s):
    return int(s.replace(",", ""))


def parse_log(text):
    """The records and summary of the first full leak check in the log."""
    records, summary = [], {}
    cur = None
    for line in text.splitlines():
        m = RECORD.match(line)
        if m:
            direct = num(m["direct"]) if m["direct"] else num(m["bytes"])
            cur = {
                "kind": KINDS[m["kind"]],
                "bytes": num(m["bytes"]),
                "direct": direct,
                "indirect": num(m["indirect"]) if m["indirect"] else 0,
                "blocks": num(m["blocks"]),
                "record": num(m["n"]),
                "stack": [],
            }
            records.append(cur)
            continue
        m = FRAME.match(line)
        if m and cur is not None:
            cur["stack"].append(m["fn"])
            continue
        if cur is not None and not line.rstrip().endswith("=="):
            cur = None
        m = SUMMARY.match(line)
        if m:
            kind = KINDS.get(m["kind"], m["kind"])
            if kind in summary:
                break  # a second check (there should be none)
            summary[kind] = {"bytes": num(m["bytes"]),
                             "blocks": num(m["blocks"])}
    return records, summary


def run(cmd, env, timeout):
    """Run cmd under valgrind; return (target lines, log text)."""
    log = tempfile.NamedTemporaryFile(prefix="vg-leaks-", suffix=".log",
                                      delete=False)
    log.close()
    vg = ["valgrind", "--tool=memcheck", "--leak-check=no",
          "--show-leak-kinds=all", "--num-callers=12",
          "--log-file=" + log.name] + cmd
    proc = subprocess.Popen(vg, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env, bufsize=0)
    lines, buf = [], b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no 'checked' from the target within "
                                   "%d s" % timeout)
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("the target ended before 'checked' "
                                   "(status %r)" % proc.poll())
            buf += chunk
            done = False
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                line = line.decode("utf-8", "replace")
                lines.append(line)
                if line == "checked":
                    done = True
            if done:
                break
        proc.stdin.write(b"exit\n")
        proc.stdin.close()
        proc.wait(timeout=120)
        with open(log.name, encoding="utf-8", errors="replace") as f:
            text = f.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(log.name)
    return lines, text


def check(lines, records):
    """Hold valgrind's records to the target's claims; list of problems."""
    problems = []
    by_size = {}
    for r in records:
        if r["blocks"] == 1 and any("block_k" in f for f in r["stack"]):
            by_size.setdefault(r["direct"], []).append(r)
    lost_definite = lost_groups = None
    ncheck = 0
    for line in lines:
        w = line.split()
        if not w:
            continue
        if w[0] == "block" and len(w) == 5:
            name, size, want = w[1], int(w[3]), w[4]
            got = by_size.get(size, [])
            ncheck += 1
            if want == "none":
                if got:
                    problems.append("%s: valgrind has a %s record of %d "
                                    "bytes" % (name, got[0]["kind"], size))
                continue
            if len(got) != 1:
                problems.append("%s: %d records of %d bytes, expected one"
                                % (name, len(got), size))
                continue
            kind = got[0]["kind"]
            if want == "lost":
                if kind not in ("definite", "indirect"):
                    problems.append("%s: valgrind says %s, expected lost"
                                    % (name, kind))
                lost_definite = (lost_definite or 0) + (kind == "definite")
            elif kind != want:
                problems.append("%s: valgrind says %s, expected %s"
                                % (name, kind, want))
        elif w[0] == "lost_groups" and len(w) == 2:
            lost_groups = int(w[1])
        elif w[0] == "expect" and len(w) in (4, 5):
            kind, size, count = w[1], int(w[2]), int(w[3])
            fn = w[4] if len(w) == 5 else None
            n = sum(r["blocks"] for r in records if r["kind"] == kind and
                    r["blocks"] and r["direct"] == size * r["blocks"] and
                    (fn is None or any(f.startswith(fn + " ") or
                                       f.startswith(fn + "(")
                                       for f in r["stack"])))
            ncheck += 1
            if n != count:
                problems.append("expected %d %s blocks of %d bytes, "
                                "valgrind has %d" % (count, kind, size, n))
    if lost_groups is not None and lost_definite != lost_groups:
        problems.append("%s of the lost blocks are definite, expected %d"
                        % (lost_definite, lost_groups))
    if not ncheck:
        problems.append("the target claimed nothing to check")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write valgrind's verdict here")
    ap.add_argument("--check", action="store_true",
                    help="hold valgrind to the target's claims")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--env", action="append", default=[],
                    help="NAME=VALUE for the target (e.g. PYTHONMALLOC=malloc)")
    ap.add_argument("--pyleak", metavar="DIR",
                    help="build the CPython extension in DIR (setup.py) "
                    "with this interpreter and run DIR/run.py")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not shutil.which("valgrind"):
        print("vg_leaks: skip: valgrind is not installed "
              "(tests/setup-debian.sh installs it)")
        return 77
    env = dict(os.environ)
    for e in args.env:
        k, _, v = e.partition("=")
        env[k] = v
    if args.pyleak:
        built = tempfile.mkdtemp(prefix="pyleak-")
        try:
            subprocess.run([sys.executable, "setup.py", "-q", "build_ext",
                            "--build-lib", built,
                            "--build-temp", os.path.join(built, "tmp")],
                           cwd=args.pyleak, check=True,
                           stdout=subprocess.DEVNULL)
        except (OSError, subprocess.CalledProcessError) as e:
            shutil.rmtree(built, ignore_errors=True)
            print("vg_leaks: cannot build the extension in %s: %s "
                  "(python3-dev and python3-setuptools installed?)"
                  % (args.pyleak, e))
            return 2
        env["PYTHONPATH"] = built
        # pymalloc hides its blocks from valgrind (and from malloc)
        env["PYTHONMALLOC"] = "malloc"
        cmd = [sys.executable, os.path.join(args.pyleak, "run.py")] + cmd
    if not cmd:
        ap.error("no target command")
    try:
        lines, text = run(cmd, env, args.timeout)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("vg_leaks: cannot run %s under valgrind: %s" % (cmd[0], e))
        return 2
    records, summary = parse_log(text)
    if not summary:
        print("vg_leaks: no LEAK SUMMARY in valgrind's log:\n" + text[-3000:])
        return 2
    verdict = {"command": cmd, "summary": summary, "records": records,
               "target": lines}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(verdict, f, indent=1)
    for kind in ("definite", "indirect", "possible", "reachable"):
        s = summary.get(kind, {"bytes": 0, "blocks": 0})
        print("%-10s %8d bytes in %5d blocks" % (kind, s["bytes"],
                                                 s["blocks"]))
    if not args.check:
        return 0
    problems = check(lines, records)
    for p in problems:
        print("vg_leaks: " + p)
    if problems:
        return 1
    print("vg_leaks: valgrind agrees with every case the target built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
