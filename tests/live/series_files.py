#!/usr/bin/env python3
"""diff, trend and plot on files written here, not by heapinspect: series
with a known answer, and malformed, truncated or hostile files.

    series_files.py --heapinspect BIN

Known answers: a series whose live bytes grow by exactly 1 MiB a minute
(60 MiB/h), one whose free bytes grow while live bytes stay, one whose RSS
grows while the heap stays, a flat one; inconsistent snapshots (mallinfo2
null) among them are left out.

Files that mix processes (another pid, the same pid with another start
time or boot, another executable) are refused by trend, diff and plot,
which name the line where the other process starts.

Hostile files: bad JSON, the wrong schema, huge numbers, negative sizes,
fractions, a 1 GiB line (a sparse file), a million tiny values, deep
nesting, NUL bytes, random bytes, an empty file, a directory.  Each must
give exit status 2 and a message that names the file and, where there is
one, the line, never a crash, a hang or unbounded memory.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import copy
import json
import os
import random
import resource
import subprocess
import sys
import tempfile

from hi_live import SCHEMA, Failure

MIB = 1 << 20


def snapshot(minute, live, free=64 * MIB, mmapped=0, rss=None, pid=4242):
    """A snapshot as heapinspect/snapshot/v1 describes it (README)."""
    arena = live - mmapped + free
    ts = "2026-01-01T%02d:%02d:00.000000Z" % (minute // 60, minute % 60)
    return {
        "schema": SCHEMA, "pid": pid, "timestamp": ts,
        "exe": "/usr/bin/server", "comm": "server",
        "allocator": {"name": "glibc", "version": "2.36", "method": "read",
                      "libc": "/lib/libc.so.6", "build_id": "00",
                      "debuginfo": "/usr/lib/debug/x.debug"},
        "consistent": True,
        "mallinfo2": {"arena": arena, "ordblks": 1, "smblks": 0,
                      "hblks": 1 if mmapped else 0, "hblkhd": mmapped,
                      "usmblks": 0, "fsmblks": 0,
                      "uordblks": live - mmapped, "fordblks": free,
                      "keepcost": 4096},
        "arenas": [{"address": "0x7f0000000000", "main": True,
                    "state": "ok", "system_mem": arena,
                    "max_system_mem": arena, "top_size": 4096,
                    "free_bytes": free, "free_chunks": 0, "fast_bytes": 0,
                    "fast_chunks": 0, "bin_bytes": free - 4096,
                    "bin_chunks": 1, "in_use_bytes": live - mmapped,
                    "attached_threads": 1}],
        "mmap": {"chunks": 1 if mmapped else 0, "bytes": mmapped,
                 "max_bytes": mmapped},
        "process": {"rss": rss if rss is not None else arena + mmapped,
                    "pss": 0, "uss": 0, "swap": 0, "threads": 1},
        "pause_us": 100, "stop": {"attempts": 1, "total_us": 100},
    }


def mixed(hi, tmp):
    """Files that mix processes: refused by trend, diff and plot, naming
    the line where another process starts; the same process under a
    replaced executable ("PATH (deleted)") and old files without the
    process's start time are one process."""
    def ident(o, start=1000, boot="b" * 36, exe="/usr/bin/server"):
        o["start_ticks"], o["boot_id"], o["exe"] = start, boot, exe
        return o

    def series(changes):
        objs = [ident(snapshot(m, 100 * MIB + m * MIB)) for m in range(8)]
        for line, fn in changes.items():
            fn(objs[line - 1])
        return objs

    bad = {
        "another pid": (4, lambda o: o.update(pid=4243, comm="other")),
        "a reused pid": (3, lambda o: o.update(start_ticks=2000)),
        "another boot": (5, lambda o: o.update(boot_id="c" * 36)),
        "another program": (2, lambda o: o.update(exe="/usr/bin/other")),
    }
    for name, (line, fn) in bad.items():
        p = os.path.join(tmp, "mixed-%s.jsonl" % name.replace(" ", "_"))
        objs = series({})
        for o in objs[line - 1:]:
            fn(o)
        write_lines(p, objs)
        for cmd in (["trend"], ["diff"], ["plot", "-o",
                                          os.path.join(tmp, "m.svg")]):
            rc, _, err, _ = run([hi] + cmd + [p])
            if rc != 2 or "'%s' line %d:" % (p, line) not in err or \
                    "mixes processes" not in err:
                raise Failure("%s, %s: exit %d, expected 2 naming line %d "
                              "and the mixing: %s" % (cmd[0], name, rc,
                                                      line, err.strip()))
        print("%-16s refused: %s" % (name, err.strip()))
    good = {
        "a replaced executable": series({
            5: lambda o: o.update(exe="/usr/bin/server (deleted)"),
            6: lambda o: o.update(exe="/usr/bin/server (deleted)"),
            7: lambda o: o.update(exe="/usr/bin/server (deleted)"),
            8: lambda o: o.update(exe="/usr/bin/server (deleted)")}),
        "an old file": [snapshot(m, 100 * MIB + m * MIB) for m in range(8)],
    }
    for name, objs in good.items():
        p = os.path.join(tmp, "one-%s.jsonl" % name.replace(" ", "_"))
        write_lines(p, objs)
        for cmd, ok in ((["trend"], (0, 1)), (["diff"], (0,)),
                        (["plot", "-o", os.path.join(tmp, "m.svg")], (0,))):
            rc, _, err, _ = run([hi] + cmd + [p])
            if rc not in ok:
                raise Failure("%s of %s: exit %d: %s" % (cmd[0], name, rc,
                                                         err.strip()))
        print("%-22s one process" % name)


def write_lines(path, objs):
    with open(path, "w") as f:
        for o in objs:
            f.write((o if isinstance(o, str) else json.dumps(o)) + "\n")


def run(argv, timeout=120):
    """Run argv; return (status, stdout, stderr, max RSS in KiB)."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise Failure("%s: no result within %d s" % (argv, timeout)) \
            from None
    # The child's own peak, from wait4 through Popen's returncode path.
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return p.returncode, out.decode("utf-8", "replace"), \
        err.decode("utf-8", "replace"), maxrss


def trend(hi, path):
    rc, out, err, _ = run([hi, "trend", "--json", path])
    if rc not in (0, 1):
        raise Failure("trend %s: exit %d: %s" % (path, rc, err))
    return rc, json.loads(out), err


def known_answers(hi, tmp):
    # Live bytes +1 MiB a minute, exactly: 60 MiB/h, a perfect line.
    p = os.path.join(tmp, "leak.jsonl")
    write_lines(p, [snapshot(m, 100 * MIB + m * MIB) for m in range(30)])
    rc, v, _ = trend(hi, p)
    if rc != 1 or v["verdict"] != "leak" or \
            v["slopes"]["live_bytes_per_hour"] != 60 * MIB:
        raise Failure("leak series: exit %d, %s, slope %r (expected %d)"
                      % (rc, v["verdict"], v["slopes"], 60 * MIB))
    # A leak in mmapped chunks: live and mmapped both grow.
    p = os.path.join(tmp, "mleak.jsonl")
    write_lines(p, [snapshot(m, 100 * MIB + 2 * m * MIB,
                             mmapped=2 * m * MIB) for m in range(30)])
    rc, v, _ = trend(hi, p)
    if v["verdict"] != "leak" or \
            v["slopes"]["mmap_bytes_per_hour"] != 120 * MIB:
        raise Failure("mmapped leak: %s %r" % (v["verdict"], v["slopes"]))
    # Free bytes +512 KiB a minute, live flat; one inconsistent snapshot.
    objs = [snapshot(m, 100 * MIB, free=10 * MIB + m * MIB // 2)
            for m in range(30)]
    bad = copy.deepcopy(objs[7])
    bad["consistent"] = False
    bad["mallinfo2"] = None
    objs[7] = bad
    p = os.path.join(tmp, "frag.jsonl")
    write_lines(p, objs)
    rc, v, err = trend(hi, p)
    if v["verdict"] != "fragmentation" or v["skipped"] != 1 or \
            v["slopes"]["free_bytes_per_hour"] != 30 * MIB or \
            "not consistent" not in err:
        raise Failure("fragmentation series: %s, skipped %d, %r, %r"
                      % (v["verdict"], v["skipped"], v["slopes"], err))
    # RSS +2 MiB a minute, heap flat.
    p = os.path.join(tmp, "outside.jsonl")
    write_lines(p, [snapshot(m, 100 * MIB, rss=300 * MIB + 2 * m * MIB)
                    for m in range(30)])
    rc, v, _ = trend(hi, p)
    if v["verdict"] != "outside-heap" or \
            v["slopes"]["outside_heap_bytes_per_hour"] != 120 * MIB:
        raise Failure("outside-heap series: %s %r" % (v["verdict"],
                                                     v["slopes"]))
    # Flat, with noise below the threshold; and a single jump.
    rnd = random.Random(7)
    p = os.path.join(tmp, "flat.jsonl")
    write_lines(p, [snapshot(m, 100 * MIB + rnd.randrange(-MIB, MIB))
                    for m in range(30)])
    rc, v, _ = trend(hi, p)
    if rc != 0 or v["verdict"] != "steady" or v["findings"]:
        raise Failure("flat series: exit %d, %s" % (rc, v["verdict"]))
    p = os.path.join(tmp, "step.jsonl")
    write_lines(p, [snapshot(m, 100 * MIB + (50 * MIB if m >= 15 else 0))
                    for m in range(30)])
    rc, v, _ = trend(hi, p)
    if v["verdict"] != "steady":
        raise Failure("one step up is not a leak: %s" % v["verdict"])

    # diff of the first and last lines: the change and the change per hour.
    p = os.path.join(tmp, "leak.jsonl")
    rc, out, err, _ = run([hi, "diff", "--json", p])
    d = json.loads(out) if rc == 0 else None
    if rc != 0 or d["figures"]["live_bytes"]["change"] != 29 * MIB or \
            d["figures"]["live_bytes"]["per_hour"] != 60 * MIB or \
            d["a"]["line"] != 1 or d["b"]["line"] != 30:
        raise Failure("diff of leak.jsonl: exit %d %s %s" % (rc, err,
                                                            out[:300]))
    rc, out, err, _ = run([hi, "diff", "--json", "--lines", "8,8",
                           os.path.join(tmp, "frag.jsonl")])
    if rc != 2 or "line 8" not in err or "not consistent" not in err:
        raise Failure("diff of an inconsistent line: exit %d %r" % (rc, err))
    # plot of a good series.
    svg = os.path.join(tmp, "leak.svg")
    rc, _, err, _ = run([hi, "plot", p, "-o", svg])
    if rc != 0 or not open(svg).read().startswith("<?xml"):
        raise Failure("plot: exit %d %s" % (rc, err))
    print("known answers: leak, mmapped leak, fragmentation, outside-heap, "
          "flat, a step, diff per hour: all right")


def hostile(hi, tmp):
    good = json.dumps(snapshot(0, 100 * MIB))
    good2 = json.dumps(snapshot(1, 101 * MIB))
    cases = []

    def case(name, lines=None, raw=None, line=None):
        p = os.path.join(tmp, name + ".jsonl")
        if raw is not None:
            with open(p, "wb") as f:
                f.write(raw)
        else:
            write_lines(p, lines)
        cases.append((name, p, line))

    def mutate(fn):
        o = snapshot(2, 102 * MIB)
        fn(o)
        return json.dumps(o)

    case("bad_json", [good, good2, '{"schema": "heapinspect/snap'
                      'shot/v1", "pid": }', good], line=3)
    case("wrong_schema", [good, mutate(lambda o: o.update(
        schema="heapinspect/snapshot/v9"))], line=2)
    case("not_object", [good, "[1, 2, 3]"], line=2)
    case("huge_int", [good, good.replace('"pid": 4242',
                                         '"pid": 4242, "x": '
                                         '123456789012345678901234567890')],
         line=2)
    case("huge_figure", [good, mutate(lambda o: o["mallinfo2"].update(
        uordblks=2 ** 62, arena=2 ** 62 + o["mallinfo2"]["fordblks"]))],
        line=2)
    case("huge_real", [good, mutate(lambda o: o["process"].update(
        rss=1e300))], line=2)
    case("negative", [good, good2, mutate(lambda o: o["mallinfo2"].update(
        fordblks=-5))], line=3)
    case("fraction", [good, mutate(lambda o: o["mallinfo2"].update(
        hblkhd=1.5))], line=2)
    case("string_figure", [good, mutate(lambda o: o["mallinfo2"].update(
        arena="lots"))], line=2)
    case("inconsistent_sum", [good, mutate(lambda o: o["mallinfo2"].update(
        uordblks=1))], line=2)
    case("bad_time", [good, mutate(lambda o: o.update(
        timestamp="yesterday"))], line=2)
    case("pid_zero", [good, mutate(lambda o: o.update(pid=0))], line=2)
    case("no_mallinfo", [good, mutate(lambda o: o.pop("mallinfo2"))])
    case("bad_arena", [good, mutate(lambda o: o["arenas"][0].update(
        address="nowhere"))], line=2)
    case("duplicate_key", [good, good[:-1] + ', "pid": 1}'], line=2)
    case("many_values", [good, "[" + ",".join(["0"] * 1000000) + "]"],
         line=2)
    case("deep", [good, "[" * 100000 + "]" * 100000], line=2)
    case("nul_bytes", raw=good.encode() + b"\n" + b'{"schema"\0\0\0}\n',
         line=2)
    rnd = random.Random(3)
    case("random_bytes", raw=bytes(rnd.randrange(256) for _ in range(65536)))
    case("empty", raw=b"")
    case("pretty_broken", raw=b"{\n  \"schema\": \"heapinspect/snapshot/v1\""
         b",\n  \"pid\": 12,\n")
    # A 1 GiB line: sparse, so it costs no disk.
    big = os.path.join(tmp, "huge_line.jsonl")
    with open(big, "wb") as f:
        f.write(good.encode() + b"\n" + b'{"schema": "')
        f.truncate(1 << 30)
    cases.append(("huge_line", big, 2))
    d = os.path.join(tmp, "a_directory")
    os.mkdir(d)
    cases.append(("directory", d, None))
    cases.append(("missing", os.path.join(tmp, "missing.jsonl"), None))

    for name, path, line in cases:
        for cmd in (["trend"], ["diff"], ["plot", "-o",
                                          os.path.join(tmp, "x.svg")]):
            argv = [hi] + cmd + [path]
            rc, _, err, maxrss = run(argv, timeout=60)
            if rc < 0:
                raise Failure("%s: killed by signal %d: %s" % (name, -rc,
                                                               err))
            if "Sanitizer" in err or "runtime error" in err:
                raise Failure("%s: %s" % (name, err))
            if cmd[0] == "diff" and name == "no_mallinfo" and rc == 2:
                pass
            want = "heapinspect: "
            if rc != 2 or not err.startswith(want) or \
                    ("'%s'" % path) not in err or \
                    (line and "line %d" % line not in err):
                raise Failure("%s %s: exit %d, expected 2 and a message "
                              "naming '%s'%s:\n  %s"
                              % (cmd[0], name, rc, path,
                                 " line %d" % line if line else "",
                                 err.strip()))
            if maxrss > 512 * 1024:
                raise Failure("%s %s: peak RSS %d KiB" % (cmd[0], name,
                                                          maxrss))
        print("%-18s %s" % (name, err.strip().splitlines()[0]))

    # Unfinished last line (a writer killed mid-line): left out, noted.
    p = os.path.join(tmp, "cut.jsonl")
    with open(p, "w") as f:
        f.write("\n".join(json.dumps(snapshot(m, 100 * MIB))
                          for m in range(5)) + "\n" + good[:100])
    rc, v, err = trend(hi, p)
    if v["samples"] != 5 or "line 6" not in err or "unfinished" not in err:
        raise Failure("unfinished last line: %r %r" % (v["samples"], err))
    print("unfinished last line: left out with a note")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hi-files-")
    try:
        known_answers(args.heapinspect, tmp)
        mixed(args.heapinspect, tmp)
        hostile(args.heapinspect, tmp)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        subprocess.run(["rm", "-rf", "--", tmp])
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
