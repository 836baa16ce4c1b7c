#!/usr/bin/env python3
"""The Debian package CPack made (tests/install/build.sh).

    deb.py --deb-dir DIR --target BIN [--no-root]

1. dpkg-deb: its fields (name, version, amd64, Depends from dpkg-shlibdeps
   naming libc6, libdw1, libelf1 and libjansson4), and its contents: the
   files of a Linux tool and nothing else, owned by root, with the modes
   Debian wants.
2. Its files unpacked (dpkg-deb -x): the binary reads a live target and
   prints the target's own figures.
3. Unless --no-root: installed with apt on a fresh Debian 12, a minimal
   root made by debootstrap (about a minute from the host's own Debian
   mirror), which has none of its libraries: apt must find them from the
   package's Depends, and the installed heapinspect must read a target
   in that root (/proc bound into a mount namespace of their own).

Exit status 0 on pass, 1 on failure, 77 when part 3 cannot run here (not
root, or no debootstrap: package debootstrap), after 1 and 2 passed.
"""

import argparse
import glob
import os
import re
import shutil
import sys
import tempfile

from hi_install import CmdTarget, Failure, check_figures, run

FILES = {
    "./usr/bin/heapinspect": "-rwxr-xr-x",
    "./usr/share/man/man1/heapinspect.1.gz": "-rw-r--r--",
    "./usr/share/bash-completion/completions/heapinspect": "-rw-r--r--",
    "./usr/share/zsh/vendor-completions/_heapinspect": "-rw-r--r--",
    "./usr/lib/systemd/system/heapinspect-watch@.service": "-rw-r--r--",
    "./usr/share/doc/heapinspect/copyright": "-rw-r--r--",
    "./usr/share/doc/heapinspect/LICENSE": "-rw-r--r--",
    "./usr/share/doc/heapinspect/README.md": "-rw-r--r--",
}
DEPENDS = ("libc6", "libdw1", "libelf1", "libjansson4")


def host_mirror():
    """The host's Debian mirror: the first "deb" URI with main that is
    not a security archive, from its apt sources (deb822, then one-line)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$",
                                         stanza, re.M))
                if "deb" in fields.get("Types", "").split() and \
                        "main" in fields.get("Components", "").split() and \
                        not fields.get("Enabled", "yes").lower() \
                        .startswith("no"):
                    for uri in fields.get("URIs", "").split():
                        if "security" not in uri:
                            return uri
    for path in ["/etc/apt/sources.list"] + \
            sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    w = re.sub(r"\[[^]]*\]", "", line).split()
                    if len(w) >= 4 and w[0] == "deb" and \
                            "security" not in w[1] and "main" in w[3:]:
                        return w[1]
    return None


def check_control(deb):
    rc, out, err = run(["dpkg-deb", "-f", deb])
    if rc != 0:
        raise Failure("dpkg-deb -f: %s" % err)
    fields = dict(re.findall(r"^(\S+): (.*)$", out, re.M))
    for key, want in (("Package", "heapinspect"),
                      ("Architecture", "amd64")):
        if fields.get(key) != want:
            raise Failure("%s is %r, expected %r" % (key, fields.get(key),
                                                     want))
    deps = {d.strip().split()[0] for d in fields.get("Depends", "")
            .split(",") if d.strip()}
    if not set(DEPENDS) <= deps:
        raise Failure("Depends %r lacks %s" % (fields.get("Depends"),
                                               set(DEPENDS) - deps))
    print("control: %s %s %s, Depends: %s"
          % (fields["Package"], fields.get("Version"),
             fields["Architecture"], fields["Depends"]))


def check_contents(deb):
    rc, out, err = run(["dpkg-deb", "-c", deb])
    if rc != 0:
        raise Failure("dpkg-deb -c: %s" % err)
    files = {}
    for line in out.splitlines():
        mode, owner, _, _, _, path = line.split(None, 5)
        if owner != "root/root":
            raise Failure("%s is owned by %s" % (path, owner))
        if mode.startswith("d"):
            if mode != "drwxr-xr-x":
                raise Failure("directory %s has mode %s" % (path, mode))
            continue
        files[path] = mode
    if files != FILES:
        raise Failure("the package holds %r, expected %r" % (files, FILES))
    print("contents: %d files, owned by root, modes as Debian wants"
          % len(files))


def unpacked(deb, target, tmp):
    root = os.path.join(tmp, "x")
    rc, _, err = run(["dpkg-deb", "-x", deb, root])
    if rc != 0:
        raise Failure("dpkg-deb -x: %s" % err)
    t = CmdTarget([], target, "mixed")
    try:
        ready = t.wait_ready()
        check_figures([os.path.join(root, "usr/bin/heapinspect"), "-p",
                       str(t.pid), "--json"], ready,
                      "heapinspect unpacked from the package")
        t.exit()
    finally:
        t.kill()


def fresh_root(deb, target, tmp):
    mirror = host_mirror()
    if not mirror:
        raise Failure("no Debian mirror in the host's apt sources")
    root = os.path.join(tmp, "root")
    rc, out, err = run(["debootstrap", "--variant=minbase", "bookworm",
                        root, mirror], timeout=1200)
    if rc != 0:
        raise Failure("debootstrap bookworm from %s: exit %d: %s"
                      % (mirror, rc, (out + err)[-2000:]))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    for lib in ("libdw.so.1", "libjansson.so.4"):
        if glob.glob(os.path.join(root, "usr/lib/x86_64-linux-gnu", lib)):
            raise Failure("the fresh root already has %s" % lib)
    shutil.copy(deb, os.path.join(root, "tmp/heapinspect.deb"))
    shutil.copy(target, os.path.join(root, "tmp/hi_target"))
    for argv in (["apt-get", "-q", "update"],
                 ["apt-get", "-q", "-y", "install", "--no-install-recommends",
                  "/tmp/heapinspect.deb"]):
        rc, out, err = run(["chroot", root] + argv, env=env, timeout=1200)
        if rc != 0:
            raise Failure("in the fresh root, %s: exit %d: %s"
                          % (" ".join(argv), rc, (out + err)[-2000:]))
    new = re.findall(r"^Setting up (\S+)", out, re.M)
    print("apt installed in a fresh Debian 12 root: %s" % ", ".join(new))
    # The target in the root, with /proc bound into it in a mount
    # namespace of its own (gone when the target exits); heapinspect in
    # the same namespace and root (nsenter), so that both see one file
    # system.
    t = CmdTarget(["unshare", "--mount", "--propagation", "private", "--",
                   "sh", "-c", 'mount --rbind /proc "$0/proc" && exec '
                   'chroot "$0" "$@"', root], "/tmp/hi_target", "mixed")
    try:
        ready = t.wait_ready()
        argv = ["nsenter", "--target", str(t.pid), "--mount", "--root",
                "--wd", "--", "/usr/bin/heapinspect", "-p", str(t.pid),
                "--json"]
        check_figures(argv, ready, "heapinspect installed by apt in the "
                      "fresh root", env=env)
        t.exit()
    finally:
        t.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deb-dir", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--no-root", action="store_true")
    args = ap.parse_args()
    debs = glob.glob(os.path.join(args.deb_dir, "*.deb"))
    tmp = tempfile.mkdtemp(prefix="hi-deb-")
    skip = None
    try:
        if len(debs) != 1:
            raise Failure("expected one .deb in %s, found %r"
                          % (args.deb_dir, debs))
        deb = debs[0]
        print("package: %s" % os.path.basename(deb))
        check_control(deb)
        check_contents(deb)
        unpacked(deb, args.target, tmp)
        if args.no_root:
            skip = "--no-root: not installed in a fresh root"
        elif os.geteuid() != 0:
            skip = "not root: cannot debootstrap a fresh root"
        elif not shutil.which("debootstrap"):
            skip = "no debootstrap (package debootstrap): not installed " \
                   "in a fresh root"
        else:
            fresh_root(deb, args.target, tmp)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if skip:
        print("SKIP: %s" % skip)
        return 77
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
