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

A service followed across a restart (watch --unit, --pidfile, --name):
the file records it with an "exited" event line of the one process and a
"resolved" event line of the next.  trend judges the last process (and
says which, and what it left out), --segment N another; diff compares
within the last and refuses --lines across the restart without --force;
plot breaks its lines there.  The same files without those event lines,
or with event lines that name other processes or come in another order,
are refused naming the line.

Hostile files: bad JSON, the wrong schema, huge numbers, negative sizes,
fractions, a 1 GiB line (a sparse file), a million tiny values, deep
nesting, NUL bytes, random bytes, an empty file, a directory.  Each must
give exit status 2 and a message that names the file and, where there is
one, the line, never a crash, a hang or unbounded memory.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import calendar
import copy
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

import trend_stats
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


def snapshot_at(sec, live, free, mmapped=0, rss=None):
    """A snapshot at sec seconds (microseconds kept) after 2026-01-01."""
    o = snapshot(0, int(live), free=int(free), mmapped=int(mmapped),
                 rss=None if rss is None else int(rss))
    whole = int(sec)
    o["timestamp"] = "%s.%06dZ" % (time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(1767225600 + whole)),
        round((sec - whole) * 1e6))
    return o


FIGS = ("live_bytes", "free_bytes", "mmapped_bytes", "outside_heap_bytes")


def figures(o):
    m = o["mallinfo2"]
    heap = m["arena"] + m["hblkhd"]
    return {"live_bytes": m["uordblks"] + m["hblkhd"],
            "free_bytes": m["fordblks"], "mmapped_bytes": m["hblkhd"],
            "outside_heap_bytes": o["process"]["rss"] - heap}, heap


def close(a, b, rel):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def statistical(hi, tmp):
    """Series with known slopes and noise: trend's verdict, states, tests
    and words against the statistics computed here (trend_stats.py)."""
    rnd = random.Random(14)
    cases = []

    def case(name, want, objs):
        cases.append((name, want, objs))

    # A 100 KB/h leak watched for a day every 10 minutes, noise of 50 KB.
    case("100 KB/h for a day", "leak",
         [snapshot_at(i * 600, 20 * MIB + 100e3 * i / 6 +
                      rnd.gauss(0, 50e3), 8 * MIB) for i in range(145)])
    # 100 KB/s for 5 s, 24 of 24 intervals up, R^2 1: a leak, not steady.
    case("100 KB/s for 5 s", "leak",
         [snapshot_at(i * 0.2, 1 * MIB + 100e3 * i * 0.2, 1 * MIB)
          for i in range(25)])
    # memcached: live bytes 44 -> 66 MiB in 10 s, a warm-up curve with
    # noise; not steady.
    case("44 to 66 MiB in 10 s", "leak",
         [snapshot_at(i * 0.2, 44 * MIB + 22 * MIB *
                      (1 - math.exp(-i * 0.2 / 3)) + rnd.gauss(0, 200e3),
                      4 * MIB) for i in range(50)])
    # node: a collected heap that rises between collections and ends at
    # 14.7 MiB from 24.8: never growth.
    node, v = [], 24.8 * MIB
    for i in range(40):
        node.append(v)
        v += 0.8 * MIB
        if i % 8 == 7:
            v -= 7 * MIB
    node[-1] = 14.7 * MIB
    case("24.8 down to 14.7 MiB", "fluctuating",
         [snapshot_at(i * 0.25, y, 20 * MIB) for i, y in enumerate(node)])
    # Noise of 1 MiB around 100 MiB: steady.
    case("noise", "steady",
         [snapshot_at(i * 60, 100 * MIB + rnd.randrange(-MIB, MIB),
                      64 * MIB) for i in range(30)])
    # One step of 50 MiB that stays: growth, not along a line.
    case("one step", "growing",
         [snapshot_at(i * 60, 100 * MIB + (50 * MIB if i >= 15 else 0),
                      64 * MIB) for i in range(30)])
    # 10 KB/h on a 180 MiB heap for an hour, little noise: it rises
    # steadily, but by far less than 1% of the heap.
    case("10 KB/h on 180 MiB", "steady",
         [snapshot_at(i * 60, 100 * MIB + 10e3 * i / 60 + rnd.gauss(0, 1e3),
                      80 * MIB) for i in range(61)])
    # Live bytes falling 2 MiB a minute.
    case("falling", "shrinking",
         [snapshot_at(i * 60, 200 * MIB - 2 * MIB * i + rnd.gauss(0, 1e5),
                      64 * MIB) for i in range(30)])
    # Free bytes up 1 MiB a minute, live flat with noise.
    case("free grows", "fragmentation",
         [snapshot_at(i * 60, 100 * MIB + rnd.gauss(0, 1e5),
                      10 * MIB + MIB * i) for i in range(30)])
    # RSS outside the heap up 3 MiB a minute with noise.
    case("rss grows", "outside-heap",
         [snapshot_at(i * 60, 100 * MIB, 64 * MIB,
                      rss=200 * MIB + 3 * MIB * i + rnd.gauss(0, 3e5))
          for i in range(30)])

    for name, want, objs in cases:
        p = os.path.join(tmp, "stat-%s.jsonl" % name.replace(" ", "_")
                         .replace("/", "_"))
        write_lines(p, objs)
        secs = [time_of(o["timestamp"]) for o in objs]
        x = [(t - secs[0]) / 3600 for t in secs]
        vals = [figures(o) for o in objs]
        heap = sum(h for _, h in vals) / len(vals)
        grow_min, swing_min = 0.01 * heap, 0.10 * heap
        fits, states = {}, {}
        for fig in FIGS:
            y = [v[fig] for v, _ in vals]
            f = trend_stats.fit(x, y)
            near = trend_stats.margins(f, grow_min, swing_min)
            if near:
                raise Failure("case %r is too near a threshold to test: "
                              "%s: %s" % (name, fig, near))
            fits[fig] = f
            states[fig] = (trend_stats.classify(f, grow_min, swing_min),
                           f["slope"])
        expect = trend_stats.verdict(states)
        if expect != want:
            raise Failure("case %r: the statistics here say %s, the case "
                          "was meant to be %s" % (name, expect, want))
        rc, v, _ = trend(hi, p)
        got_rc = 1 if expect in ("leak", "fragmentation", "outside-heap",
                                 "growing") else 0
        if v["verdict"] != expect or rc != got_rc:
            raise Failure("%s: trend says %s (exit %d); the statistics "
                          "say %s (exit %d)" % (name, v["verdict"], rc,
                                                expect, got_rc))
        if abs(v["heap_bytes"] - heap) > 1:
            raise Failure("%s: heap_bytes %r, computed %.0f"
                          % (name, v["heap_bytes"], heap))
        for fig in FIGS:
            f, j = fits[fig], v["series"][fig]
            problems = []
            if j["state"] != states[fig][0]:
                problems.append("state %s, computed %s"
                                % (j["state"], states[fig][0]))
            if not close(j["bytes_per_hour"], f["slope"], 1e-9) and \
                    abs(j["bytes_per_hour"] - f["slope"]) > 1:
                problems.append("slope %r, computed %.1f"
                                % (j["bytes_per_hour"], f["slope"]))
            if (j["rose"], j["fell"], j["mann_kendall"]["s"]) != \
                    (f["rose"], f["fell"], f["s"]):
                problems.append("rose/fell/S %s/%s/%s, computed %s/%s/%s"
                                % (j["rose"], j["fell"],
                                   j["mann_kendall"]["s"], f["rose"],
                                   f["fell"], f["s"]))
            for key, mine in (("line.p_rise", f["p_line_up"]),
                              ("line.p_fall", f["p_line_down"]),
                              ("mann_kendall.p_rise", f["p_mk_up"]),
                              ("sign.p_rise", f["p_sign_up"]),
                              ("sign.p_fall", f["p_sign_down"])):
                a, b = key.split(".")
                theirs = j[a][b]
                if theirs is None or not (
                        close(theirs, mine, 1e-3) or
                        (theirs < 1e-12 and mine < 1e-12)):
                    problems.append("%s %r, computed %.6g"
                                    % (key, theirs, mine))
            if problems:
                raise Failure("%s, %s: %s" % (name, fig,
                                              "; ".join(problems)))
        # The words: one statement or finding per figure that moved, in
        # the direction it moved, none about growth for a figure that
        # did not grow; the text report says the same.
        words = [x["message"] for x in v["findings"]] + v["statements"]
        for fig in FIGS:
            st = states[fig][0]
            mine = [w for w in words if w.startswith(WORDS[fig])]
            if st == "flat":
                continue
            if len(mine) != 1:
                raise Failure("%s: %d statements about %s (%s): %r"
                              % (name, len(mine), fig, st, words))
            up = st in ("grows", "grows-slightly", "rose", "rose-slightly")
            head = mine[0].split("(")[0]
            if ("grow" in head or "rose" in head) != up:
                raise Failure("%s: %s %s, but trend says: %s"
                              % (name, fig, st, mine[0]))
        rc, out, err, _ = run([hi, "trend", p])
        if "verdict: %s\n" % expect not in out or \
                any(w not in out for w in words):
            raise Failure("%s: the text report says otherwise:\n%s"
                          % (name, out))
        print("%-22s %-13s live %s, free %s, outside %s"
              % (name, expect, states["live_bytes"][0],
                 states["free_bytes"][0], states["outside_heap_bytes"][0]))

    # Extremes: 2^52 bytes a microsecond apart, a rate beyond 2^63 an
    # hour: valid JSON, no crash, no wrapped integer.
    p = os.path.join(tmp, "extreme.jsonl")
    write_lines(p, [snapshot_at(1e-6 * i, [0, 2 ** 52, 2 ** 52 - 4096,
                                           0][i], 0) for i in range(4)])
    rc, v, err = trend(hi, p)
    slope = v["slopes"]["live_bytes_per_hour"]
    if not isinstance(slope, float) or slope > -1e22:
        raise Failure("extreme series: slope %r: %s" % (slope, err))
    print("%-22s %s, slope %.3g B/h as a real" % ("extremes", v["verdict"],
                                                  slope))

    # Two snapshots at one moment, or out of order: refused, line named.
    for name, secs, line in (("same moment", [0, 60, 60, 120], 3),
                             ("clock back", [0, 60, 30, 120], 3)):
        p = os.path.join(tmp, "time-%s.jsonl" % name.replace(" ", "_"))
        write_lines(p, [snapshot_at(t, 100 * MIB + i * MIB, 64 * MIB)
                        for i, t in enumerate(secs)])
        rc, _, err, _ = run([hi, "trend", p])
        if rc != 2 or "'%s' line %d:" % (p, line) not in err:
            raise Failure("trend of %s: exit %d, expected 2 naming line "
                          "%d: %s" % (name, rc, line, err))
        print("%-22s refused: %s" % (name, err.strip()))


# How trend's statements name each figure.
WORDS = {"live_bytes": ("live ",), "free_bytes": ("heap free space",
                                                   "free bytes"),
         "mmapped_bytes": ("mmapped",),
         "outside_heap_bytes": ("RSS",)}


def time_of(ts):
    """Seconds of an RFC 3339 UTC timestamp, microseconds kept."""
    base, frac = ts[:-1].split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
        int(frac) / 1e6


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


EVENT = "heapinspect/event/v1"
BOOT = "b" * 36


def event(kind, minute, pid, start=None, source=None, boot=BOOT):
    """An event line as heapinspect watch writes it (README)."""
    o = {"schema": EVENT, "pid": pid, "event": kind, "samples": 0,
         "timestamp": "2026-01-01T%02d:%02d:30.000000Z"
         % (minute // 60, minute % 60)}
    if start is not None:
        o["start_ticks"], o["boot_id"] = start, boot
    if source:
        o["source"] = source
    return o


def followed(hi, tmp):
    """A service followed across a restart: trend, diff and plot; the same
    change of process without the record of a restart refused."""
    src = "unit server.service"

    def proc(pid, start, minutes, live):
        return [dict(snapshot(m, live(m), pid=pid), start_ticks=start,
                     boot_id=BOOT) for m in minutes]

    # A leaks 1 MiB a minute for 10 minutes, exits; B runs flat for 20.
    a = proc(4242, 1000, range(10), lambda m: 100 * MIB + m * MIB)
    b = proc(5151, 2000, range(11, 31), lambda m: 80 * MIB)
    start = event("resolved", 0, 4242, 1000, src)
    start["timestamp"] = a[0]["timestamp"]
    ex = event("exited", 9, 4242, 1000)
    rs = event("resolved", 10, 5151, 2000, src)
    good = [start] + a + [ex, rs] + b
    b_first = 1 + len(a) + 2 + 1       # its line
    b_last = len(good)
    p = os.path.join(tmp, "followed.jsonl")
    write_lines(p, good)

    rc, v, err = trend(hi, p)
    want = {"segments": 2, "segment": 2, "first_line": b_first,
            "last_line": b_last, "pid": 5151, "samples": 20,
            "verdict": "steady"}
    got = {k: v.get(k) for k in want}
    lo = v.get("left_out") or [{}]
    if got != want or rc != 0 or len(lo) != 1 or \
            (lo[0].get("segment"), lo[0].get("pid"), lo[0].get("first_line"),
             lo[0].get("last_line")) != (1, 4242, 2, 1 + len(a)):
        raise Failure("trend of a followed series: exit %d, %r, left out "
                      "%r (expected %r and process 1, pid 4242, lines 2 "
                      "to %d): %s" % (rc, got, v.get("left_out"), want,
                                      1 + len(a), err))
    rc, out, err, _ = run([hi, "trend", p])
    for w in ("20 snapshots of pid 5151", "judged: process 2 of the 2 in "
              "the file (lines %d to %d), the last" % (b_first, b_last),
              "left out: process 1, pid 4242 (server), lines 2 to %d"
              % (1 + len(a)), "a restart starts a new heap",
              "--segment 1"):
        if w not in out:
            raise Failure("trend's report lacks %r:\n%s" % (w, out))
    # The process before the restart, asked for: A's leak, 60 MiB/h.
    rc, v, err = trend(hi, p, ["--segment", "1"])
    if rc != 1 or v["verdict"] != "leak" or v["segment"] != 1 or \
            v["slopes"]["live_bytes_per_hour"] != 60 * MIB or \
            v["left_out"][0]["pid"] != 5151:
        raise Failure("trend --segment 1: exit %d, %s, segment %r, slope "
                      "%r" % (rc, v["verdict"], v["segment"],
                              v["slopes"]["live_bytes_per_hour"]))
    rc, _, err, _ = run([hi, "trend", "--segment", "3", p])
    if rc != 2 or "holds 2 processes" not in err:
        raise Failure("trend --segment 3 of 2: exit %d: %s" % (rc, err))
    # B with only 2 snapshots: A, the last with 3, is judged.
    short = os.path.join(tmp, "followed-short.jsonl")
    write_lines(short, [start] + a + [ex, rs] + b[:2])
    rc, v, err = trend(hi, short)
    if v["segment"] != 1 or v["verdict"] != "leak" or \
            v["left_out"][0]["segment"] != 2:
        raise Failure("trend, the last process with 2 snapshots: judged "
                      "%r, %s" % (v["segment"], v["verdict"]))
    print("trend: judges process 2 of 2 (lines %d to %d), says process 1 "
          "was left out; --segment 1: leak; a last process of 2 snapshots "
          "left out" % (b_first, b_last))

    # diff: within the last process; across the restart only --force.
    rc, out, err, _ = run([hi, "diff", "--json", p])
    d = json.loads(out) if rc == 0 else None
    if rc != 0 or (d["a"]["line"], d["b"]["line"]) != (b_first, b_last) \
            or d["a"]["pid"] != 5151 or \
            d["figures"]["live_bytes"]["change"] != 0 or \
            not any("restart" in x for x in d["notes"]):
        raise Failure("diff of a followed series: exit %d %s %s"
                      % (rc, err, out[:400]))
    argv = [hi, "diff", "--lines", "2,%d" % b_last, p]
    rc, _, err, _ = run(argv)
    if rc != 2 or "different processes" not in err or \
            "restart" not in err or "--force" not in err:
        raise Failure("diff --lines across the restart: exit %d: %s"
                      % (rc, err))
    rc, out, err, _ = run(argv[:2] + ["--force", "--json"] + argv[2:])
    d = json.loads(out) if rc == 0 else None
    if rc != 0 or d["figures"]["live_bytes"]["change"] != -20 * MIB or \
            not any("restart" in x for x in d["notes"]):
        raise Failure("diff --force --lines across the restart: exit %d "
                      "%s %s" % (rc, err, out[:400]))
    print("diff: lines %d and %d (the last process); --lines across the "
          "restart refused, --force compares" % (b_first, b_last))

    # plot: one line per process, the restart marked once.
    svg = os.path.join(tmp, "followed.svg")
    rc, _, err, _ = run([hi, "plot", p, "-o", svg])
    text = open(svg).read() if rc == 0 else ""
    live = text.count('<polyline class="series" fill="none" '
                      'stroke="#d62728"')
    marks = {c: sum(1 for line in text.splitlines()
                    if 'class="event"' in line and 'stroke="%s"' % c in line)
             for c in ("#9467bd", "#17becf")}
    if rc != 0 or live != 2 or marks != {"#9467bd": 1, "#17becf": 1}:
        raise Failure("plot of a followed series: exit %d, %d live lines "
                      "(expected 2), marks %r (expected one exit, one "
                      "restart): %s" % (rc, live, marks, err))
    print("plot: 2 lines of live bytes, one exit and one restart marked")

    # Restarts that are recorded: B got A's pid; an old file's events
    # without start times; an error line between exited and resolved.
    same_pid = proc(4242, 2000, range(11, 31), lambda m: 80 * MIB)
    ok = {
        "the pid reused by the restart": [start] + a + [
            ex, event("resolved", 10, 4242, 2000, src)] + same_pid,
        "events without start times": a + [
            event("exited", 9, 4242), event("resolved", 10, 5151)] + b,
        "an error between": a + [ex, event("error", 9, 4242, 1000), rs]
        + b,
    }
    for name, objs in ok.items():
        q = os.path.join(tmp, "ok-%s.jsonl" % name.replace(" ", "_"))
        write_lines(q, objs)
        rc, v, err = trend(hi, q)
        if rc != 0 or v["segments"] != 2 or v["segment"] != 2:
            raise Failure("%s: trend exit %d, segments %r: %s"
                          % (name, rc, v.get("segments"), err))
        print("%-32s two processes, the restart recorded" % name)

    # The change of process not recorded as a restart: refused, naming
    # the line of the other process's first snapshot.
    c = proc(6161, 3000, range(31, 35), lambda m: 80 * MIB)
    bad = {
        "no event lines": (a + b, len(a) + 1, "records no restart"),
        "no resolved line": (a + [ex] + b, len(a) + 2,
                             'no "resolved" event line'),
        "resolved before exited": (a + [rs, ex] + b, len(a) + 3,
                                   'no "resolved" event line'),
        "the exit of another pid": (
            a + [event("exited", 9, 4343, 1000), rs] + b, len(a) + 3,
            "records no restart"),
        "the exit of another start": (
            a + [event("exited", 9, 4242, 999), rs] + b, len(a) + 3,
            "records no restart"),
        "the next named as another pid": (
            a + [ex, event("resolved", 10, 6000, 2000, src)] + b,
            len(a) + 3, "names pid 6000"),
        "the next named with another start": (
            a + [ex, event("resolved", 10, 5151, 2001, src)] + b,
            len(a) + 3, "names pid 5151 (start_ticks 2001)"),
        "a third process unrecorded": (a + [ex, rs] + b + c,
                                       len(a) + 2 + len(b) + 1,
                                       "records no restart"),
    }
    for name, (objs, line, words) in bad.items():
        q = os.path.join(tmp, "bad-%s.jsonl" % name.replace(" ", "_"))
        write_lines(q, objs)
        for cmd in (["trend"], ["diff"], ["plot", "-o",
                                          os.path.join(tmp, "m.svg")]):
            rc, _, err, _ = run([hi] + cmd + [q])
            if rc != 2 or "'%s' line %d:" % (q, line) not in err or \
                    "mixes processes" not in err or words not in err:
                raise Failure("%s, %s: exit %d, expected 2 naming line %d, "
                              "the mixing and %r: %s"
                              % (cmd[0], name, rc, line, words,
                                 err.strip()))
        print("%-32s refused: line %d" % (name, line))


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


def trend(hi, path, opts=()):
    rc, out, err, _ = run([hi, "trend", "--json"] + list(opts) + [path])
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
          "diff per hour: all right")


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
        statistical(args.heapinspect, tmp)
        mixed(args.heapinspect, tmp)
        followed(args.heapinspect, tmp)
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
