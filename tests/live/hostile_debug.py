#!/usr/bin/env python3
"""Debug files are hostile input: the target's libc debug file, as
libc6-dbg installs it, copied into a directory laid out by build-id
(DIR/.build-id/xx/rest.debug) and then truncated or corrupted, offered with
--debuginfo-path DIR.

    hostile_debug.py --heapinspect BIN --target BIN [--seed N]

The intact copy must give the target's own figures (proving the layout of
DIR is right).  Every corrupted copy must give, within the time limit and
without a crash (a signal, a sanitizer report):
  - exit 2 with a message that names the file (a debug file that does not
    describe malloc as expected, or one that is there but unusable), or
  - exit 1 with an arena reported corrupt (a layout that reads nonsense),
  - or exit 0 with exactly the target's figures (the damage missed what
    heapinspect reads).
Each run has a layout cache of its own, empty (an entry from an earlier
run, or another test's, would answer for the debug file), and its answer
must say where the layout came from: from_cache false, located_by "dwarf"
for the file, or "builtin" with the reason the file was not used.
The target must run on untouched.  Exit 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hi_live  # noqa: E402
from hi_live import FIGURES, Failure, Target  # noqa: E402


def libc_of(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            path = line.split(None, 5)[5].strip() if len(line.split()) > 5 \
                else ""
            if re.search(r"/libc(\.so\.6|-2\.\d+\.so)$", path):
                return path
    raise Failure("no libc in /proc/%d/maps" % pid)


def build_id(path):
    """The GNU build-id of an ELF file, from its notes (ELF64 only)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise Failure("%s is not a 64-bit ELF file" % path)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            name_at = off + 12
            desc_at = name_at + ((namesz + 3) & ~3)
            if ntype == 3 and data[name_at:name_at + 4] == b"GNU\0":
                return data[desc_at:desc_at + descsz].hex()
            off = desc_at + ((descsz + 3) & ~3)
    raise Failure("%s has no GNU build-id note" % path)


def sections(data):
    """(name, offset, size) of each section of an ELF64 file."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    hdrs = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
            for i in range(shnum)]
    strtab = hdrs[shstrndx][4]
    out = []
    for name, stype, _, _, off, size in hdrs:
        end = data.index(b"\0", strtab + name)
        out.append((data[strtab + name:end].decode(), off, size,
                    stype))
    return out


def variants(data, rng):
    """(label, bytes) of every corrupted copy."""
    n = len(data)
    for cut in (0, 4, 16, 63, 64, 1000, 4096, n // 10, n // 3, n // 2,
                9 * n // 10, n - 4096, n - 1):
        yield "truncated at %d" % cut, data[:cut]
    shoff, = struct.unpack_from("<Q", data, 0x28)
    for label, at, value in (
            ("ELF class byte", 4, b"\x09"),
            ("e_shoff past the end", 0x28, struct.pack("<Q", n + 4096)),
            ("e_shoff huge", 0x28, struct.pack("<Q", 1 << 62)),
            ("e_shnum huge", 0x3c, struct.pack("<H", 0xffff)),
            ("e_shstrndx out of range", 0x3e, struct.pack("<H", 0xfffe)),
            ("e_shentsize odd", 0x3a, struct.pack("<H", 7))):
        yield label, data[:at] + value + data[at + len(value):]
    secs = sections(data)
    for name, off, size, stype in secs:
        if not name.startswith(".debug_") or stype == 8 or size == 0:
            continue
        # Zeroed, and flipped at random in the section's own bytes.
        buf = bytearray(data)
        buf[off:off + min(size, 4096)] = bytes(min(size, 4096))
        yield "%s: first 4 KiB zeroed" % name, bytes(buf)
        buf = bytearray(data)
        for _ in range(64):
            i = off + rng.randrange(size)
            buf[i] ^= rng.randrange(1, 256)
        yield "%s: 64 bytes flipped" % name, bytes(buf)
    # A few bytes only, where heapinspect reads most: the DIEs.
    info = [(off, size) for name, off, size, _ in secs
            if name == ".debug_info"]
    for k in range(12) if info else ():
        off, size = info[0]
        buf = bytearray(data)
        for _ in range(1 + k % 4):
            i = off + rng.randrange(size)
            buf[i] ^= rng.randrange(1, 256)
        yield ".debug_info: %d bytes flipped (%d)" % (1 + k % 4, k), \
            bytes(buf)
    # Section headers themselves: offsets and sizes of every section.
    for k in range(8):
        buf = bytearray(data)
        for _ in range(16):
            i = shoff + rng.randrange(len(secs) * 64)
            buf[i] ^= rng.randrange(1, 256)
        yield "section headers flipped (%d)" % k, bytes(buf)


def where(snap, label, path):
    """Where the layout came from, checked: never the cache (each run has
    an empty one of its own); the debug file, or the built-in tables with
    the reason the file was refused."""
    alloc = snap.get("allocator") or {}
    loc = alloc.get("locate") or {}
    by = alloc.get("located_by")
    if loc.get("from_cache") is not False:
        raise Failure("%s: from_cache is %r with an empty cache"
                      % (label, loc.get("from_cache")))
    if by == "dwarf":
        if alloc.get("debuginfo") != path:
            raise Failure("%s: located by dwarf from %r, not %s"
                          % (label, alloc.get("debuginfo"), path))
    elif by == "builtin":
        tried = " ".join(loc.get("tried") or [])
        if "debug information" not in tried:
            raise Failure("%s: builtin without the reason the debug file "
                          "was not used: %r" % (label, tried))
    else:
        raise Failure("%s: located_by %r" % (label, by))
    return "located by " + by


def run_one(args, pid, ddir, path, label, ready, counts):
    argv = [args.heapinspect, "-p", str(pid), "--json",
            "--debuginfo-path", ddir]
    cache = tempfile.mkdtemp(prefix="hi-debug-cache-")
    try:
        res = subprocess.run(argv, capture_output=True, timeout=120,
                             stdin=subprocess.DEVNULL,
                             env=hi_live.heapinspect_env(cache))
    except subprocess.TimeoutExpired:
        raise Failure("%s: heapinspect hung" % label) from None
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    err = res.stderr.decode("utf-8", "replace")
    rc = res.returncode
    if rc < 0 or "Sanitizer" in err or "runtime error" in err:
        raise Failure("%s: heapinspect crashed (status %d): %s"
                      % (label, rc, err.strip()[:2000]))
    if rc == 2:
        if not err.startswith("heapinspect: ") or path not in err:
            raise Failure("%s: exit 2 without naming %s: %s"
                          % (label, path, err.strip()))
        key = "exit 2: " + re.sub(r"[0-9a-f]{16,}|\d+", "N",
                                  err.splitlines()[0])[:70]
    elif rc == 1:
        if "is corrupt at 0x" not in err:
            raise Failure("%s: exit 1 without a corrupt arena: %s"
                          % (label, err.strip()))
        key = "exit 1: an arena reads as corrupt, " + where(
            json.loads(res.stdout), label, path)
    elif rc == 0:
        snap = json.loads(res.stdout)
        mi = snap["mallinfo2"]
        wrong = [k for k in FIGURES if mi[k] != ready[k]]
        if wrong:
            raise Failure("%s: exit 0 with wrong figures %s"
                          % (label, wrong))
        key = "exit 0: exact figures, " + where(snap, label, path)
    else:
        raise Failure("%s: exit %d: %s" % (label, rc, err.strip()))
    counts[key] = counts.get(key, 0) + 1
    print("  %-40s %s" % (label, key))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t = Target(args.target, "small_frees")
    tmp = tempfile.mkdtemp(prefix="hi-debug-")
    try:
        ready = t.wait_ready()
        libc = libc_of(t.pid)
        bid = build_id(libc)
        real = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
        if not os.path.exists(real):
            raise Failure("%s is missing: install libc6-dbg (of the same "
                          "version as libc6); this test must run" % real)
        with open(real, "rb") as f:
            data = f.read()
        ddir = os.path.join(tmp, "debug")
        os.makedirs(os.path.join(ddir, ".build-id", bid[:2]))
        path = os.path.join(ddir, ".build-id", bid[:2], bid[2:] + ".debug")
        print("libc %s, build-id %s, debug file %d bytes"
              % (libc, bid, len(data)))
        counts = {}
        shutil.copyfile(real, path)
        run_one(args, t.pid, ddir, path, "intact copy", ready, counts)
        if counts != {"exit 0: exact figures, located by dwarf": 1}:
            raise Failure("the intact copy did not give exact figures")
        n = 0
        for label, buf in variants(data, rng):
            with open(path, "wb") as f:
                f.write(buf)
            run_one(args, t.pid, ddir, path, label, ready, counts)
            n += 1
        print("%d corrupted debug files:" % n)
        for k, v in sorted(counts.items()):
            print("  %4d  %s" % (v, k))
        states = hi_live.proc_state(t.pid)
        if any(s in "tT" for s in states) or hi_live.tracer_pid(t.pid):
            raise Failure("target left stopped or traced: %s" % states)
        again = t.report()
        if any(again[k] != ready[k] for k in FIGURES):
            raise Failure("the target's figures changed")
        t.check()
        t.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        t.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS hostile_debug")
    return 0


if __name__ == "__main__":
    sys.exit(main())
