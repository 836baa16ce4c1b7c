#!/usr/bin/env python3
"""A target whose name holds an escape sequence, a quote, a backslash and a
byte that is not UTF-8 (hi_target.c "hostile_name"): the JSON must still be
valid, with the name escaped as the README says (non-UTF-8 bytes as the
text \\xHH), and the text report must carry no control byte and no invalid
UTF-8 to the terminal.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import Failure, Target  # noqa: E402

NAME = b'\x1b[31m"q\\\xff'


def expected_json_name(raw):
    out = ""
    for b in raw:
        out += "\\x%02x" % b if b >= 0x80 else chr(b)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    t = Target(args.target, "hostile_name")
    try:
        t.wait_ready()
        with open("/proc/%d/comm" % t.pid, "rb") as f:
            comm = f.read().rstrip(b"\n")
        if comm != NAME:
            raise Failure("the target's name is %r, not %r" % (comm, NAME))
        res = subprocess.run([args.heapinspect, "-p", str(t.pid), "--json"],
                             capture_output=True, timeout=60)
        if res.returncode != 0:
            raise Failure("--json exit %d: %s" % (res.returncode,
                                                  res.stderr.decode()))
        snap = json.loads(res.stdout.decode("utf-8"))
        if snap["comm"] != expected_json_name(NAME):
            raise Failure("comm in JSON is %r, expected %r"
                          % (snap["comm"], expected_json_name(NAME)))
        res = subprocess.run([args.heapinspect, "-p", str(t.pid)],
                             capture_output=True, timeout=60)
        if res.returncode != 0:
            raise Failure("text exit %d" % res.returncode)
        out = res.stdout
        bad = [b for b in out if b < 0x20 and b not in (0x0a,)] + \
              [b for b in out if b == 0x7f]
        if bad:
            raise Failure("control bytes reach the terminal: %r" % bad[:5])
        try:
            out.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Failure("text report is not UTF-8: %s" % e) from None
        if b"(\\x1b[31m\"q\\x5c\\xff)" not in out:
            raise Failure("name not shown escaped: %r" % out[:80])
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS hostile_name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
