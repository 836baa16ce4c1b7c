#!/usr/bin/env python3
"""heapinspect without root: the installed binary with CAP_SYS_PTRACE
(setcap cap_sys_ptrace+ep, as the manual says), run by a normal user.

    setcap.py --heapinspect STAGED_BIN --target BIN

A user made for the test (useradd) runs two copies of the installed
binary, one plain and one given the capability with setcap, against a
process of its own and one of root's (hi_target mixed):

- with the capability: its own process is read, the target's own
  mallinfo2 figures, whatever kernel.yama.ptrace_scope (below 3) says;
- without it: its own process is read where ptrace_scope is 0 or there is
  no Yama, and refused with the hint that names ptrace_scope and the
  setcap command where it is 1 or 2;
- root's process is refused either way (exit 2), with the hint that names
  the other user (and, with the capability, that it is not enough: the
  process's /proc files, such as auxv, are root's alone).

Needs root (to make the user and to setcap); exit 77, saying why, where it
cannot run (not root, no setcap, a file system without file
capabilities, CAP_SYS_PTRACE outside the bounding set, ptrace_scope 3).
Exit status 0 on pass, 1 on failure.
"""

import argparse
import os
import pwd
import shutil
import sys
import tempfile

from hi_install import CmdTarget, Failure, check_figures, run, tracer_free

USER = "hi-captest"
CAP_SYS_PTRACE = 19


def skip(why):
    print("SKIP: %s" % why)
    return 77


def ptrace_scope():
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        return skip("not root: the test makes a user and runs setcap")
    for tool in ("setcap", "getcap", "useradd", "userdel", "setpriv"):
        if not shutil.which(tool):
            return skip("no %s (packages libcap2-bin, passwd, util-linux)"
                        % tool)
    with open("/proc/self/status") as f:
        bnd = next(int(x.split()[1], 16) for x in f
                   if x.startswith("CapBnd:"))
    if not bnd >> CAP_SYS_PTRACE & 1:
        return skip("CAP_SYS_PTRACE is not in the bounding set here (a "
                    "container without it): no file capability can give it")
    scope = ptrace_scope()
    if scope == 3:
        return skip("kernel.yama.ptrace_scope is 3: nothing may attach")
    print("kernel.yama.ptrace_scope: %s"
          % ("no Yama in this kernel" if scope is None else scope))

    made_user = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        rc, _, err = run(["useradd", "--system", "--no-create-home",
                          "--shell", "/usr/sbin/nologin", USER])
        if rc != 0:
            print("FAIL: useradd %s: %s" % (USER, err.strip()))
            return 1
        made_user = True
    pw = pwd.getpwnam(USER)
    tmp = tempfile.mkdtemp(prefix="hi-setcap-")
    os.chmod(tmp, 0o755)
    targets = []
    try:
        plain = os.path.join(tmp, "plain", "heapinspect")
        capped = os.path.join(tmp, "cap", "heapinspect")
        target = os.path.join(tmp, "hi_target")
        for path in (plain, capped):
            os.mkdir(os.path.dirname(path), 0o755)
            shutil.copy(args.heapinspect, path)
        shutil.copy(args.target, target)
        rc, _, err = run(["setcap", "cap_sys_ptrace+ep", capped])
        rc2, out, _ = run(["getcap", capped])
        if rc != 0 or "cap_sys_ptrace" not in out:
            return skip("setcap did not hold on %s (%s): the file system "
                        "keeps no file capabilities" % (tmp, err.strip()))
        home = os.path.join(tmp, "home")
        os.mkdir(home, 0o700)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        as_user = ["setpriv", "--reuid=%d" % pw.pw_uid,
                   "--regid=%d" % pw.pw_gid, "--clear-groups",
                   "--inh-caps=-all", "--"]
        env = {"PATH": "/usr/bin:/bin", "HOME": home,
               "XDG_CACHE_HOME": os.path.join(home, "cache")}

        own = CmdTarget(as_user, target, "mixed")
        targets.append(own)
        own_ready = own.wait_ready()
        root = CmdTarget([], target, "mixed")
        targets.append(root)
        root_ready = root.wait_ready()

        # With the capability: its own process; root's stays refused, as
        # the manual says (the process's /proc files are root's).
        check_figures(as_user + [capped, "-p", str(own.pid), "--json"],
                      own_ready, "%s with CAP_SYS_PTRACE, its own process"
                      % USER, env=env)
        for binary, what, hint in (
                (capped, "with", "CAP_SYS_PTRACE is not enough"),
                (plain, "without", "run heapinspect as that user or as "
                 "root")):
            argv = as_user + [binary, "-p", str(root.pid)]
            rc, out, err = run(argv, env=env)
            wants = ["heapinspect: cannot attach to pid %d: " % root.pid,
                     "it belongs to another user (uid 0)", hint]
            if rc != 2 or any(w not in err for w in wants):
                raise Failure("%s %s the capability, root's process: exit "
                              "%d, expected 2 and %r:\n%s"
                              % (USER, what, rc, wants, err))
            print("%s %s CAP_SYS_PTRACE, root's process: exit 2:\n  %s"
                  % (USER, what, err.strip().replace("\n", "\n  ")))

        # Without: its own process, as ptrace_scope says.
        argv = as_user + [plain, "-p", str(own.pid), "--json"]
        if not scope:
            check_figures(argv, own_ready, "%s without CAP_SYS_PTRACE, its "
                          "own process (ptrace_scope %s)" % (USER, scope),
                          env=env)
        else:
            rc, out, err = run(argv, env=env)
            wants = ["kernel.yama.ptrace_scope is %d" % scope,
                     "setcap cap_sys_ptrace+ep %s" % plain]
            if rc != 2 or any(w not in err for w in wants):
                raise Failure("%s without the capability, its own process "
                              "under ptrace_scope %d: exit %d, expected 2 "
                              "and %r:\n%s" % (USER, scope, rc, wants, err))
            print("%s without CAP_SYS_PTRACE, its own process: exit 2:\n  %s"
                  % (USER, err.strip().replace("\n", "\n  ")))
        for t in targets:
            tracer_free(t.pid)
            t.check()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        for t in targets:
            t.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if made_user:
            run(["userdel", USER])
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
