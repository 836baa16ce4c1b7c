#!/usr/bin/env python3
"""What heapinspect says and returns when it is interrupted.

    words.py --heapinspect BIN --target BIN

- heapinspect -p, sent SIGINT while it holds the process (seen by the
  process's TracerPid), ends by SIGINT once the process is released: a
  shell's 130, as --help says; the process runs on, untraced.
- watch on a terminal (a pty), stopped by SIGINT, names the signal:
  "stopped by SIGINT after N samples", not "signal 2"; exit status 0.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import os
import pty
import select
import signal
import subprocess
import sys
import tempfile
import time

from hi_live import Failure, Target, tracer_pid, tracer_process


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    hi = args.heapinspect
    tmp = tempfile.mkdtemp(prefix="hi-words-")
    target = Target(args.target, "million")
    try:
        target.wait_ready(300)
        rc = subprocess.run([hi, "--help"], capture_output=True).stdout
        if b"130 after SIGINT" not in rc:
            raise Failure("--help does not say 130 after SIGINT")
        caught = 0
        for _ in range(20):
            p = subprocess.Popen([hi, "-p", str(target.pid)],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            while p.poll() is None and tracer_process(target.pid) != p.pid:
                time.sleep(0.001)
            if p.poll() is not None:
                p.stderr.close()
                continue        # finished before it was seen holding it
            p.send_signal(signal.SIGINT)
            status = p.wait(60)
            err = p.stderr.read().decode()
            p.stderr.close()
            if status != -signal.SIGINT:
                raise Failure("SIGINT while the process was held: status "
                              "%d, expected death by SIGINT (130): %s"
                              % (status, err))
            if tracer_pid(target.pid) != 0:
                raise Failure("the process left traced after SIGINT")
            caught += 1
            if caught == 3:
                break
        if not caught:
            raise Failure("heapinspect was never seen holding the process")
        target.check()
        print("SIGINT while held: ended by SIGINT (a shell's 130) %d times, "
              "the process released" % caught)

        out = os.path.join(tmp, "w.jsonl")
        master, slave = pty.openpty()
        p = subprocess.Popen([hi, "watch", "-p", str(target.pid),
                              "--interval", "1s", "-o", out],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        screen = b""
        end = time.monotonic() + 120
        while b"1 sample" not in screen and time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 1)
            if r:
                screen += os.read(master, 4096)
        p.send_signal(signal.SIGINT)
        status = p.wait(60)
        while True:
            r, _, _ = select.select([master], [], [], 0.5)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        os.close(master)
        text = screen.decode("utf-8", "replace")
        if status != 0 or "stopped by SIGINT after" not in text or \
                "signal 2" in text:
            raise Failure("watch on a terminal after SIGINT: exit %d, "
                          "screen %r" % (status, text[-300:]))
        print("watch on a terminal: %r, exit 0"
              % text.strip().splitlines()[-1])
        target.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        target.kill()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
