#!/usr/bin/env python3
"""heapinspect info must not exit 0 when one of its checks failed.

    info_checks.py --heapinspect BIN --target BIN

With libc's debug information, main_arena and mp_ come from the DWARF and
are read without proof; info (and --explain) still runs every check and
shows it.  This test breaks one check in a harmless way: it writes 1 into
the target's mp_.max_mmapped_mem (a statistic only malloc_stats() and
malloc_info() print; a value that is not a multiple of the page size fails
"mp_'s counters agree").  Where mp_ is and where that member lies come
from gdb reading libc's own debug information, not from heapinspect.
Then info must say which check failed and exit 1 (text and --json); with
the original value written back, exit 0.  The target's data must be intact
afterwards.

Exit status 0 on pass, 1 on failure, 77 when gdb or libc's debug
information is missing (the test says which).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import Failure, Target, heapinspect_env  # noqa: E402

SKIP = 77


def libc_mapping(pid):
    """Path and load address of the libc.so.6 mapped in pid."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].endswith("/libc.so.6") and \
                    int(parts[2], 16) == 0:
                return parts[5], int(parts[0].split("-")[0], 16)
    raise Failure("no libc.so.6 mapped at offset 0 in pid %d" % pid)


def gdb_offsets(libc):
    """mp_'s address in libc's file and the offset of max_mmapped_mem in
    struct malloc_par, from gdb over libc's debug information."""
    res = subprocess.run(
        ["gdb", "-nx", "-batch", "-ex", "info address mp_", "-ex",
         "print (long)&((struct malloc_par *)0)->max_mmapped_mem", libc],
        capture_output=True, timeout=120, text=True)
    m1 = re.search(r'Symbol "mp_" is static storage at address (0x[0-9a-f]+)',
                   res.stdout)
    m2 = re.search(r"\$1 = (\d+)", res.stdout)
    if not m1 or not m2:
        return None
    return int(m1.group(1), 16), int(m2.group(1))


def info(hi, pid, env, json_out=False):
    # --no-cache: the DWARF's addresses, not the cache's (which must pass
    # the checks before they are used at all).
    argv = [hi, "info", "-p", str(pid), "--no-cache"] + \
        (["--json"] if json_out else [])
    res = subprocess.run(argv, capture_output=True, timeout=120, env=env,
                         text=True)
    return res.returncode, res.stdout, res.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    if not shutil.which("gdb"):
        print("SKIP: gdb is not installed (tests/setup-debian.sh installs "
              "it): nothing to find mp_ with")
        return SKIP
    hi = args.heapinspect
    cache = tempfile.TemporaryDirectory(prefix="hi-info-")
    env = heapinspect_env(cache.name)
    t = Target(args.target, "small_frees")
    try:
        t.wait_ready()
        libc, base = libc_mapping(t.pid)
        offs = gdb_offsets(libc)
        if offs is None:
            print("SKIP: gdb found no mp_ in %s: libc's debug information "
                  "(libc6-dbg) is not installed" % libc)
            return SKIP
        addr = base + offs[0] + offs[1]
        print("mp_.max_mmapped_mem at 0x%x (libc at 0x%x, mp_ at +0x%x, "
              "member at +%d)" % (addr, base, offs[0], offs[1]))

        rc, out, err = info(hi, t.pid, env)
        if rc != 0 or "checks:     all passed" not in out:
            raise Failure("intact target: info exit %d, expected 0:\n%s%s"
                          % (rc, out, err))
        print("intact: exit 0, all checks passed")

        with open("/proc/%d/mem" % t.pid, "r+b", buffering=0) as mem:
            mem.seek(addr)
            orig = mem.read(8)
            mem.seek(addr)
            mem.write((1).to_bytes(8, "little"))
            try:
                rc, out, err = info(hi, t.pid, env)
                print("broken, text: exit %d; stderr: %s"
                      % (rc, err.strip().splitlines()[0] if err.strip()
                         else "(empty)"))
                if rc != 1:
                    raise Failure("info exit %d with a failed check, "
                                  "expected 1:\n%s%s" % (rc, out, err))
                if not re.search(r"FAIL +mp_'s counters agree", out) or \
                        "check failed: mp_'s counters agree" not in err:
                    raise Failure("the failed check is not named:\n%s%s"
                                  % (out, err))
                if "nothing was read" in out:
                    raise Failure("info says nothing was read, though the "
                                  "DWARF's addresses were:\n%s" % out)
                rc, out, err = info(hi, t.pid, env, json_out=True)
                loc = json.loads(out)["allocator"]["locate"]
                if rc != 1 or loc.get("verified") is not False:
                    raise Failure("info --json: exit %d, verified %r"
                                  % (rc, loc.get("verified")))
                print("broken, json: exit 1, verified false")
            finally:
                mem.seek(addr)
                mem.write(orig)
        rc, out, err = info(hi, t.pid, env)
        if rc != 0:
            raise Failure("restored: info exit %d:\n%s" % (rc, err))
        print("restored: exit 0")
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
        cache.cleanup()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
