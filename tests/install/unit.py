#!/usr/bin/env python3
"""The installed systemd unit template heapinspect-watch@.service.

    unit.py --stage DIR --target BIN

1. systemd-analyze verify accepts heapinspect-watch@NAME.service (its
   ExecStart pointed at the staged binary, and MANPATH at the staged
   manual page, which verify looks up for Documentation=man:).
2. The unit's own command line, taken from ExecStart with its defaults
   (the interval shortened to 100ms) and %i filled in, run against a
   stand-in service: a hi_target named by a stand-in systemctl on PATH.
   It must write NAME's figures into the textfile directory in the
   OpenMetrics format and stop with exit 0 on SIGTERM, as systemd stops it.

Exit status 0 on pass, 1 on failure, 77 when systemd-analyze is missing
(part 1 cannot run; the output says so).
"""

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from hi_install import CmdTarget, Failure, run

UNIT = "usr/lib/systemd/system/heapinspect-watch@.service"


def exec_start(text):
    """ExecStart= with its continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", text)
    m = re.search(r"^ExecStart=(.*)$", text, re.M)
    if not m:
        raise Failure("no ExecStart= in the unit")
    return m.group(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    stage = os.path.abspath(args.stage)
    hi = os.path.join(stage, "usr/bin/heapinspect")
    with open(os.path.join(stage, UNIT)) as f:
        text = f.read()
    tmp = tempfile.mkdtemp(prefix="hi-unit-")
    target = watch = None
    skip = None
    try:
        analyze = shutil.which("systemd-analyze")
        if analyze:
            path = os.path.join(tmp, "heapinspect-watch@.service")
            with open(path, "w") as f:
                f.write(text.replace("/usr/bin/heapinspect", hi))
            env = dict(os.environ,
                       MANPATH=os.path.join(stage, "usr/share/man"))
            inst = os.path.join(tmp, "heapinspect-watch@nginx.service")
            rc, out, err = run([analyze, "verify", inst], env=env)
            if rc != 0 or err.strip():
                raise Failure("systemd-analyze verify: exit %d: %s"
                              % (rc, (out + err).strip()))
            print("systemd-analyze verify heapinspect-watch@nginx.service: "
                  "no complaint")
        else:
            skip = "no systemd-analyze (package systemd): the unit file " \
                   "was not verified"

        # Its command, run the way systemd would run it.
        defaults = dict(re.findall(r"^Environment=(HEAPINSPECT_\w+)=(\S*)$",
                                   text, re.M))
        if set(defaults) != {"HEAPINSPECT_INTERVAL",
                             "HEAPINSPECT_TEXTFILE_DIR"}:
            raise Failure("the unit's settings: %r" % defaults)
        textdir = os.path.join(tmp, "textfile")
        os.mkdir(textdir)
        defaults["HEAPINSPECT_INTERVAL"] = "100ms"
        defaults["HEAPINSPECT_TEXTFILE_DIR"] = textdir
        line = exec_start(text).replace("%i", "hi-svc")
        line = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], line)
        argv = shlex.split(line)
        if argv[0] != "/usr/bin/heapinspect":
            raise Failure("ExecStart runs %s" % argv[0])
        argv[0] = hi
        target = CmdTarget([], args.target, "mixed")
        ready = target.wait_ready()
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        with open(os.path.join(bindir, "systemctl"), "w") as f:
            f.write("#!/bin/sh\n# systemctl show, for hi-svc\n"
                    "echo Id=hi-svc.service\necho LoadState=loaded\n"
                    "echo ActiveState=active\necho MainPID=%d\n"
                    % target.pid)
        os.chmod(os.path.join(bindir, "systemctl"), 0o755)
        env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin")
        watch = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        prom = os.path.join(textdir, "heapinspect-hi-svc.prom")
        end = time.monotonic() + 60
        while not os.path.exists(prom):
            if watch.poll() is not None or time.monotonic() > end:
                raise Failure("%s wrote no %s: exit %r: %s"
                              % (line, prom, watch.poll(),
                                 watch.stderr.read().decode()
                                 if watch.poll() is not None else ""))
            time.sleep(0.05)
        with open(prom) as f:
            metrics = f.read()
        want = 'heapinspect_in_use_bytes{pid="%d",' % target.pid
        got = [x for x in metrics.splitlines() if x.startswith(want)]
        if not got or int(got[0].split()[-1]) != ready["uordblks"] or \
                not metrics.endswith("# EOF\n"):
            raise Failure("%s: no in-use bytes %d of pid %d: %r"
                          % (prom, ready["uordblks"], target.pid, got))
        watch.send_signal(signal.SIGTERM)
        rc = watch.wait(30)
        if rc != 0:
            raise Failure("the unit's watch: exit %d after SIGTERM: %s"
                          % (rc, watch.stderr.read().decode()))
        print("ExecStart (interval 100ms): %s written with pid %d's "
              "figures; exit 0 on SIGTERM" % (os.path.basename(prom),
                                               target.pid))
        target.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        if watch and watch.poll() is None:
            watch.kill()
            watch.wait()
        if watch:
            watch.stderr.close()
        if target:
            target.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    if skip:
        print("SKIP: %s" % skip)
        return 77
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
