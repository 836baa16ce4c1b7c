#!/usr/bin/env python3
"""A target whose name holds an escape sequence, a quote, a backslash and a
byte that is not UTF-8 (hi_target.c "hostile_name"), and one run from a
file whose name holds an escape sequence, a bell, a newline and the rest
(its exe path): the JSON must still be
valid, with the name escaped as the README says (non-UTF-8 bytes as the
text \\xHH), and the text report must carry no control byte and no invalid
UTF-8 to the terminal.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hi_live import Failure, Target  # noqa: E402

NAME = b'\x1b[31m"q\\\xff'


def expected_json_name(raw):
    out = ""
    for b in raw:
        out += "\\x%02x" % b if b >= 0x80 else chr(b)
    return out


# A program file named to break careless output: an OSC sequence that
# would set the terminal's title, a bell, a quote, a backslash, a newline
# and a byte that is not UTF-8.  It shows in exe (/proc/PID/exe).
EXE_NAME = b'hi\x1b]0;pwned\x07"q\\\n\xff'


def hostile_exe(args):
    """The target run from a file with a hostile name: exe escaped in JSON
    and in text."""
    tmp = tempfile.mkdtemp(prefix="hi-name-")
    path = os.path.join(os.fsencode(tmp), EXE_NAME)
    shutil.copyfile(args.target, path)
    os.chmod(path, 0o755)
    t = Target(os.fsdecode(path), "small_frees")
    try:
        t.wait_ready()
        res = subprocess.run([args.heapinspect, "-p", str(t.pid), "--json"],
                             capture_output=True, timeout=60)
        if res.returncode != 0:
            raise Failure("exe: --json exit %d: %s"
                          % (res.returncode, res.stderr.decode()))
        snap = json.loads(res.stdout.decode("utf-8"))
        if snap["exe"] != expected_json_name(path):
            raise Failure("exe in JSON is %r, expected %r"
                          % (snap["exe"], expected_json_name(path)))
        res = subprocess.run([args.heapinspect, "-p", str(t.pid)],
                             capture_output=True, timeout=60)
        out = res.stdout
        first = out.split(b"\n", 1)[0]
        bad = [b for b in out if (b < 0x20 and b != 0x0a) or b == 0x7f]
        if res.returncode != 0 or bad:
            raise Failure("exe: text exit %d, control bytes %r"
                          % (res.returncode, bad[:5]))
        want = b"hi\\x1b]0;pwned\\x07\"q\\x5c\\x0a\\xff"
        if want not in first:
            raise Failure("exe not shown escaped on its line: %r" % first)
        t.check()
        t.exit()
    finally:
        t.kill()
        shutil.rmtree(tmp, ignore_errors=True)


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
        hostile_exe(args)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
    print("PASS hostile_name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
