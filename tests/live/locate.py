#!/usr/bin/env python3
"""How heapinspect finds the allocator, beyond the plain DWARF path:

- the layout cache: a first run with debug information fills it, a second
  one without gets exact figures from it (located_by "dwarf", from_cache);
  a damaged cache file is ignored with a note; a well-formed one whose
  addresses are wrong fails verification, is proven wrong by libc's own
  file (the built-in tables find main_arena elsewhere), removed, and the
  same run reads with what the file gave; an entry that is right but
  fails a check for a reason of the process's own (it moved the brk
  itself) is kept, the debug information agreeing with it: every run
  exact, never one that fails because the last one removed the entry;
  --no-cache writes nothing;
- copies of the host's libc whose version banner says another version
  (the build-id, and so the debug file, stay the host libc's):
  - 2.99, no table and no debug information: --method auto calls the
    target's own mallinfo2(), says so and why, and is exact; --method read
    is refused (exit 2, what would help, no figure);
  - 2.99 with its debug information: read from the DWARF, exact, as a
    later glibc whose DWARF describes a malloc heapinspect knows;
  - 2.99 with debug information that does not describe such a malloc
    (malloc_par.sbrk_base renamed in a decompressed copy): auto calls;
  - 2.37, whose table is mapped from glibc's sources onto the 2.36 build:
    read, exact, and the table said not proven on a build of 2.37;
  - 2.43, whose table (no fastbins) does not fit this libc's file: no
    main_arena in it, auto calls;
  - 2.99 while a thread holds main_arena's lock inside malloc_stats(): no
    safe moment for the call either, exit 2 naming what would help.

Every case prints PASS or FAIL; exit 0 only when all passed.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import check_snapshot  # noqa: E402
import hi_live  # noqa: E402
from hi_live import Failure, Target, heapinspect_env  # noqa: E402

results = {"pass": 0, "fail": 0}


def case(name, fn):
    try:
        fn()
    except Failure as e:
        results["fail"] += 1
        print("FAIL %s: %s" % (name, e))
        return
    results["pass"] += 1
    print("PASS %s" % name)


def run(argv, env):
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=120, env=env)
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def fnv(data):
    """FNV-1a, 64 bits: the cache file's checksum (ptmalloc_cache.c)."""
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def rewrite_entry(path, key, delta):
    """The entry with key's value moved by delta, checksum made good."""
    with open(path) as f:
        lines = f.read().splitlines()
    body = []
    for line in lines:
        if line.startswith("checksum "):
            break
        if line.startswith(key + " "):
            line = "%s %d" % (key, int(line.split()[1]) + delta)
        body.append(line)
    text = "\n".join(body) + "\n"
    text += "checksum %016x\n" % fnv(text.encode())
    with open(path, "w") as f:
        f.write(text)


def snapshot(hi, t, ready, env, extra, located_by, from_cache):
    rc, out, err = run([hi, "-p", str(t.pid), "--json"] + extra, env)
    if rc != 0:
        raise Failure("exit %d: %s" % (rc, err.strip()))
    snap = json.loads(out)
    problems = check_snapshot(snap, ready, t.pid, located_by)
    loc = snap["allocator"]["locate"]
    if loc.get("from_cache") is not from_cache:
        problems.append("from_cache is %r" % loc.get("from_cache"))
    if problems:
        raise Failure("; ".join(problems))
    return snap, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--libc", required=True,
                    help="the libc the target runs with (to copy)")
    args = ap.parse_args()
    hi = args.heapinspect
    tmp = tempfile.mkdtemp(prefix="hi-locate-")

    def cache():
        env = heapinspect_env(os.path.join(tmp, "xdg"))
        t = Target(args.target, "mixed")
        try:
            ready = t.wait_ready()
            snapshot(hi, t, ready, env, [], "dwarf", False)
            files = glob.glob(os.path.join(tmp, "xdg", "heapinspect",
                                           "glibc-*.layout"))
            if len(files) != 1:
                raise Failure("cache files: %r" % files)
            # No debug information now: the cache alone gives the layout.
            hidden = ["--debuginfo-path", "/nonexistent"]
            snapshot(hi, t, ready, env, hidden, "dwarf", True)
            # A damaged entry is ignored, with a note, and never used.
            with open(files[0], "r+") as f:
                text = f.read().replace("\ntop 96,", "\ntop 104,")
                f.seek(0)
                f.write(text)
            snap, _ = snapshot(hi, t, ready, env, hidden, "builtin", False)
            note = snap["allocator"]["locate"].get("cache_note") or ""
            if "ignored" not in note:
                raise Failure("no note of the ignored cache file: %r"
                              % note)
            # A valid entry with the wrong main_arena: proven wrong by
            # libc's file, removed, and the run reads without it.
            os.unlink(files[0])
            snapshot(hi, t, ready, env, [], "dwarf", False)
            rewrite_entry(files[0], "main_arena", 64)
            snap, _ = snapshot(hi, t, ready, env, hidden, "builtin", False)
            note = snap["allocator"]["locate"].get("cache_note") or ""
            if "removed" not in note:
                raise Failure("a wrong cache entry: note %r" % note)
            if os.path.exists(files[0]):
                raise Failure("the wrong cache entry was kept")
            snapshot(hi, t, ready, env, hidden, "builtin", False)
            # --no-cache neither reads nor writes (the entry is gone).
            snapshot(hi, t, ready, env, ["--no-cache"], "dwarf", False)
            if os.path.exists(files[0]):
                raise Failure("--no-cache wrote %s" % files[0])
            t.check()
            t.exit()
        finally:
            t.kill()

    def kept():
        """An entry that is right, on a process that fails a check of
        its own making: kept, and every run exact."""
        env = heapinspect_env(os.path.join(tmp, "xdg3"))
        t = Target(args.target, "sbrk_own")
        try:
            ready = t.wait_ready()
            snapshot(hi, t, ready, env, [], "dwarf", False)
            files = glob.glob(os.path.join(tmp, "xdg3", "heapinspect",
                                           "glibc-*.layout"))
            if len(files) != 1:
                raise Failure("cache files: %r" % files)
            with open(files[0]) as f:
                entry = f.read()
            for i in range(3):
                snap, _ = snapshot(hi, t, ready, env, [], "dwarf", False)
                note = snap["allocator"]["locate"].get("cache_note") or ""
                if "kept" not in note:
                    raise Failure("run %d: cache note %r" % (i + 2, note))
                with open(files[0]) as f:
                    if f.read() != entry:
                        raise Failure("run %d: the entry changed"
                                      % (i + 2))
            # Without the debug information nothing proves it wrong, nor
            # right: the checks decide (they fail), and it stays.
            rc, out, err = run([hi, "-p", str(t.pid), "--json",
                                "--debuginfo-path", "/nonexistent"], env)
            if rc != 2 or out.strip() or "was kept" not in err:
                raise Failure("without debug information: exit %d, %r"
                              % (rc, err.strip()[:300]))
            if not os.path.exists(files[0]):
                raise Failure("the entry was removed")
            t.check()
            t.exit()
        finally:
            t.kill()

    def patched_libc(version):
        """A directory with the host's libc, its banner saying version."""
        lib = os.path.join(tmp, "lib-" + version)
        if os.path.isdir(lib):
            return lib
        os.makedirs(lib)
        with open(args.libc, "rb") as f:
            data = f.read()
        banner = b"release version 2."
        at = data.find(banner)
        if at < 0:
            raise Failure("no version banner in %s" % args.libc)
        at += len(banner)
        minor = version.split(".")[1].encode()
        if len(minor) != 2 or data[at:at + 2].decode().isdigit() is False:
            raise Failure("cannot patch the banner of %s" % args.libc)
        data = data[:at] + minor + data[at + 2:]
        with open(os.path.join(lib, "libc.so.6"), "wb") as f:
            f.write(data)
        return lib

    def start(lib, scenario):
        tenv = dict(os.environ, LD_LIBRARY_PATH=lib)
        t = Target.__new__(Target)
        t.proc = subprocess.Popen([args.target, scenario],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, bufsize=0, env=tenv)
        t.pid, t.buf = t.proc.pid, b""
        return t

    def on_patched(version, scenario, fn):
        lib = patched_libc(version)
        env = heapinspect_env(os.path.join(tmp, "xdg-" + version))
        t = start(lib, scenario)
        try:
            ready = t.wait_ready()
            maps = open("/proc/%d/maps" % t.pid).read()
            if os.path.join(lib, "libc.so.6") not in maps:
                raise Failure("the target does not run the patched libc")
            fn(t, ready, env)
            if scenario != "locked":
                t.check()
                t.exit()
        finally:
            t.kill()

    def snap_of(t, ready, env, extra, method, reason=None, located_by=None):
        rc, out, err = run([hi, "-p", str(t.pid), "--json", "--no-cache"]
                           + extra, env)
        if rc != 0:
            raise Failure("exit %d: %s" % (rc, err.strip()))
        snap = json.loads(out)
        problems = check_snapshot(snap, ready, t.pid, located_by, method,
                                  reason)
        if problems:
            raise Failure("; ".join(problems))
        return snap["allocator"]

    hidden = ["--debuginfo-path", "/nonexistent"]

    def unknown_version(t, ready, env):
        alloc = snap_of(t, ready, env, hidden, "call",
                        "glibc 2.99 has no built-in layout")
        agrees = (alloc.get("call") or {}).get("agrees_with_memory")
        if alloc.get("located_by") is not None or agrees is not None:
            raise Failure("a layout was used: located_by %r, agrees %r"
                          % (alloc.get("located_by"), agrees))
        print("  method_reason: %s" % alloc["method_reason"])
        rc, out, err = run([hi, "-p", str(t.pid)] + hidden, env)
        if rc != 0 or "method:    call: glibc 2.99 has no built-in " \
                "layout" not in out or "no debug information" not in out:
            raise Failure("text report: exit %d: %s%s" % (rc, out, err))
        rc, out, err = run([hi, "info", "-p", str(t.pid)] + hidden, env)
        if rc != 0 or "method:     call of mallinfo2(): glibc 2.99" \
                not in out:
            raise Failure("info: exit %d: %s%s" % (rc, out, err))
        rc, out, err = run([hi, "-p", str(t.pid), "--method", "read"]
                           + hidden, env)
        if rc != 2 or out.strip():
            raise Failure("--method read: exit %d, stdout %r"
                          % (rc, out[:200]))
        for want in ("glibc 2.99 has no built-in layout",
                     "2.31 to 2.44", "nothing was read", "libc6-dbg"):
            if want not in err:
                raise Failure("--method read: stderr lacks %r: %s"
                              % (want, err))

    def unknown_with_dwarf(t, ready, env):
        snap_of(t, ready, env, [], "read", None, "dwarf")

    def unknown_bad_dwarf(t, ready, env):
        dbg = os.path.join(tmp, "debug")
        if not os.path.isdir(dbg):
            bid = subprocess.run(["readelf", "-n", args.libc],
                                 capture_output=True, text=True).stdout
            bid = bid.split("Build ID:")[1].split()[0]
            src = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2],
                                                             bid[2:])
            if not os.path.exists(src):
                raise Failure("no debug file %s (libc6-dbg)" % src)
            sub = os.path.join(dbg, ".build-id", bid[:2])
            os.makedirs(sub)
            dst = os.path.join(sub, bid[2:] + ".debug")
            subprocess.run(["objcopy", "--decompress-debug-sections", src,
                            dst], check=True)
            with open(dst, "rb") as f:
                data = f.read()
            if data.count(b"\0sbrk_base\0") != 1:
                raise Failure("sbrk_base is not one string in %s" % dst)
            with open(dst, "wb") as f:
                f.write(data.replace(b"\0sbrk_base\0", b"\0sbrk_basX\0"))
        alloc = snap_of(t, ready, env, ["--debuginfo-path", dbg], "call",
                        "does not describe malloc as expected")
        if "sbrk_base" not in str(alloc.get("method_reason")):
            raise Failure("the reason does not name sbrk_base: %r"
                          % alloc["method_reason"])

    def mapped_table(t, ready, env):
        alloc = snap_of(t, ready, env, hidden, "read", None, "builtin")
        loc = alloc.get("locate") or {}
        if loc.get("table_proven") is not False or \
                "mapped from glibc's sources" not in str(loc.get("table")):
            raise Failure("table %r, proven %r" % (loc.get("table"),
                                                   loc.get("table_proven")))
        rc, out, err = run([hi, "info", "-p", str(t.pid), "--no-cache"]
                           + hidden, env)
        if rc != 0 or "not proven on a real build of this version" \
                not in out:
            raise Failure("info: exit %d: %s%s" % (rc, out, err))

    def table_misfit(t, ready, env):
        snap_of(t, ready, env, hidden, "call", "no main_arena in")

    def no_safe_way(t, ready, env):
        rc, out, err = run([hi, "-p", str(t.pid), "--timeout", "300"]
                           + hidden, env)
        if rc != 2 or out.strip():
            raise Failure("exit %d, stdout %r" % (rc, out[:200]))
        for want in ("no safe moment", "--method auto called instead of "
                     "reading: glibc 2.99 has no built-in layout",
                     "with the debug information of this libc"):
            if want not in err:
                raise Failure("stderr lacks %r: %s" % (want, err))
        print("  %s" % err.strip().splitlines()[0])
        states = hi_live.proc_state(t.pid)
        if any(s in "tT" for s in states) or hi_live.tracer_pid(t.pid):
            raise Failure("target left stopped or traced: %s" % states)
        t.send("release")
        t.wait_ready()
        t.check()
        t.exit()

    try:
        case("layout cache", cache)
        case("a right entry is kept", kept)
        case("glibc 2.99 without debug information: auto calls",
             lambda: on_patched("2.99", "mixed", unknown_version))
        case("glibc 2.99 with its DWARF: read from it",
             lambda: on_patched("2.99", "threads8", unknown_with_dwarf))
        case("glibc 2.99, DWARF of an unknown malloc: auto calls",
             lambda: on_patched("2.99", "mixed", unknown_bad_dwarf))
        case("glibc 2.37: a table mapped from the sources",
             lambda: on_patched("2.37", "mixed", mapped_table))
        case("glibc 2.43's table on a 2.36 libc: auto calls",
             lambda: on_patched("2.43", "mixed", table_misfit))
        case("glibc 2.99 locked: no safe way, exit 2",
             lambda: on_patched("2.99", "locked", no_safe_way))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (results["pass"], results["fail"]))
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
