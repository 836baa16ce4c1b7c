#!/usr/bin/env python3
"""cmake --install into a staging directory (DESTDIR), then the installed
heapinspect run as a user would.

    staged.py --stage DIR --source DIR --target BIN

Every file is where a Linux tool's is (binary, manual page, bash and zsh
completion, systemd unit, license); the binary holds no test hook (no
HEAPINSPECT_* variable name: HI_TEST_HOOKS is off); it runs from its installed
place against a live target and prints the target's own figures; the
manual page renders without a warning (man --warnings); the unit runs the
installed binary.  Exit status 0 on pass, 1 on failure.
"""

import argparse
import filecmp
import os
import re
import sys

from hi_install import CmdTarget, Failure, check_figures, run, tracer_free

FILES = {
    "usr/bin/heapinspect": 0o755,
    "usr/share/man/man1/heapinspect.1.gz": 0o644,
    "usr/share/bash-completion/completions/heapinspect": 0o644,
    "usr/share/zsh/vendor-completions/_heapinspect": 0o644,
    "usr/lib/systemd/system/heapinspect-watch@.service": 0o644,
    "usr/share/doc/heapinspect/copyright": 0o644,
    "usr/share/doc/heapinspect/LICENSE": 0o644,
    "usr/share/doc/heapinspect/README.md": 0o644,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    stage = args.stage
    target = None
    try:
        found = sorted(os.path.relpath(os.path.join(d, f), stage)
                       for d, _, fs in os.walk(stage) for f in fs)
        if sorted(FILES) != found:
            raise Failure("installed files %r, expected %r"
                          % (found, sorted(FILES)))
        for rel, mode in FILES.items():
            got = os.stat(os.path.join(stage, rel)).st_mode & 0o7777
            if got != mode:
                raise Failure("%s: mode %o, expected %o" % (rel, got, mode))
        print("installed: %d files, modes as expected" % len(FILES))
        if not filecmp.cmp(os.path.join(args.source, "LICENSE"),
                           os.path.join(stage,
                                        "usr/share/doc/heapinspect/copyright"),
                           shallow=False):
            raise Failure("copyright is not the LICENSE")

        hi = os.path.join(stage, "usr/bin/heapinspect")
        with open(os.path.join(args.source, "CMakeLists.txt")) as f:
            version = re.search(r"project\(heapinspect VERSION ([0-9.]+)",
                                f.read()).group(1)
        rc, out, err = run([hi, "--version"])
        if rc != 0 or out.strip() != "heapinspect " + version:
            raise Failure("--version: exit %d, %r" % (rc, out))
        rc, out, err = run(["readelf", "-S", "-W", hi])
        if rc != 0 or ".symtab" in out or ".debug_info" in out:
            raise Failure("the installed binary is not stripped (readelf "
                          "exit %d)" % rc)

        # Built as shipped: no test hook is read (HI_TEST_HOOKS off).
        with open(hi, "rb") as f:
            hooks = set(re.findall(rb"HEAPINSPECT_[A-Z_]+", f.read()))
        if hooks:
            raise Failure("the installed binary reads test hooks: %s"
                          % b", ".join(sorted(hooks)).decode())
        print("no test hook in the installed binary")

        target = CmdTarget([], args.target, "mixed")
        ready = target.wait_ready()
        check_figures([hi, "-p", str(target.pid), "--json"], ready,
                      "installed heapinspect -p %d" % target.pid)
        tracer_free(target.pid)

        man = os.path.join(stage, "usr/share/man/man1/heapinspect.1.gz")
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
        rc, out, err = run(["man", "--warnings", "-l", man], env=env)
        if rc != 0 or err.strip():
            raise Failure("man --warnings -l heapinspect.1.gz: exit %d: %s"
                          % (rc, err.strip()))
        if "heapinspect - glibc malloc figures" not in out or \
                "@HI_VERSION@" in out or ("heapinspect " + version) not in out:
            raise Failure("the manual page does not render as expected")
        print("man heapinspect: renders, no warning, version %s" % version)

        with open(os.path.join(stage, "usr/lib/systemd/system/"
                               "heapinspect-watch@.service")) as f:
            unit = f.read()
        if "ExecStart=/usr/bin/heapinspect watch --unit %i" not in unit:
            raise Failure("the unit does not run /usr/bin/heapinspect")
        target.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        if target:
            target.kill()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
