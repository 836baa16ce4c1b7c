#!/usr/bin/env python3
"""Files heapinspect writes (snapshot -o, watch -o): created with the
user's umask, and a symlink planted at the output path is replaced, never
followed (the data goes to a fresh O_EXCL temporary file, then rename).
"""

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import Failure, Target  # noqa: E402


def snapshot(hi, pid, path, umask):
    old = os.umask(umask)
    try:
        res = subprocess.run([hi, "snapshot", "-p", str(pid), "-o", path],
                             capture_output=True, timeout=120)
    finally:
        os.umask(old)
    if res.returncode != 0:
        raise Failure("snapshot -o exit %d: %s"
                      % (res.returncode, res.stderr.decode()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    t = Target(args.target, "small_frees")
    try:
        t.wait_ready()
        with tempfile.TemporaryDirectory(prefix="hi-out-") as d:
            for umask, mode in ((0o077, 0o600), (0o022, 0o644),
                                (0o027, 0o640)):
                path = os.path.join(d, "snap-%03o.json" % umask)
                snapshot(args.heapinspect, t.pid, path, umask)
                got = stat.S_IMODE(os.stat(path).st_mode)
                if got != mode:
                    raise Failure("umask %03o: mode %03o, expected %03o"
                                  % (umask, got, mode))
                json.load(open(path))
            print("umask 077, 022, 027: modes 600, 644, 640: OK")
            victim = os.path.join(d, "victim")
            with open(victim, "w") as f:
                f.write("untouched\n")
            out = os.path.join(d, "planted.json")
            os.symlink(victim, out)
            snapshot(args.heapinspect, t.pid, out, 0o022)
            if os.path.islink(out) or open(victim).read() != "untouched\n":
                raise Failure("the symlink planted at -o was followed")
            json.load(open(out))
            left = sorted(f for f in os.listdir(d) if f.endswith(".tmp"))
            if left:
                raise Failure("temporary files left: %s" % left)
            print("symlink planted at -o: replaced, its target untouched: "
                  "OK")
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS output_files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
