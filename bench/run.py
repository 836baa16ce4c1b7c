#!/usr/bin/env python3
"""heapinspect's benchmark: one command, one run, every figure side by side.

    python3 bench/run.py [--quick] [--heapinspect build/heapinspect]
                         [--output FILE.md] [--json FILE.json] [...]

For each heap (10 thousand, 100 thousand, 1 million and 4 million chunks,
each over 1, 8 and 64 threads) it starts bench/bench_target, which builds
the heap and keeps a heartbeat thread ticking, and then, on that same heap:

  * runs heapinspect -p PID --json once to warm it up (its cold wall time is
    kept), then --runs more times, each time reading back from the target
    the longest gap of its heartbeat (the pause the process saw), and
    taking heapinspect's own pause_us, its wall time and its peak RSS;
  * after each run, lets the target run untouched for as long as that run
    took and reads the heartbeat again: the noise floor of the machine;
  * asks the target to time its own mallinfo2() (and keeps its figures:
    heapinspect's must be equal, or the row says which are not);
  * times `gdb -p PID -batch -ex 'p main_arena.system_mem'` (one warm-up,
    then --gdb-runs), as a reference.

Then the same on a "sparse" heap (the same free chunks in ten times the
bytes) and a "big" heap (3 GiB in a few thousand 1 MiB chunks) for peak
RSS, and a verdict on each of the issue's targets.  It prints markdown; the
benchmark is not a test and always exits 0 unless it could not run at all.

Needs: the build (bench_target and bench_measure beside heapinspect's
build, see bench/README.md), root or CAP_SYS_PTRACE, libc6-dbg, and gdb for
the gdb column (left empty without it).
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

FIGURES = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
           "fsmblks", "uordblks", "fordblks", "keepcost")

FULL_CHUNKS = (10000, 100000, 1000000, 4000000)
FULL_THREADS = (1, 8, 64)
QUICK_CHUNKS = (10000, 100000)
QUICK_THREADS = (1, 8)
# How far "linear" may stray on a shared, noisy machine.
LINEAR_SLACK = 1.5


class BenchError(Exception):
    """Something that stops one measurement; the message says what."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_words(line, first):
    """'first k=v k=v ...' -> {k: int or float or str}."""
    words = line.split()
    if not words or words[0] != first:
        raise BenchError("expected %r, got %r" % (first, line))
    out = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            continue
        if re.fullmatch(r"\d+", value):
            out[key] = int(value)
        elif re.fullmatch(r"\d+\.\d+", value):
            out[key] = float(value)
        else:
            out[key] = value
    return out


class Target:
    """bench_target with its stdin and stdout on pipes."""

    def __init__(self, path, args, timeout):
        self.argv = [path] + args
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)
        self.pid = self.proc.pid
        self.buf = b""
        try:
            self.ready = parse_words(self.readline(timeout), "ready")
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError("bench_target: no answer in %g s" % timeout)
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise BenchError("bench_target exited (status %r)"
                                 % self.proc.poll())
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def command(self, line, timeout=600):
        self.proc.stdin.write(line.encode() + b"\n")
        return self.readline(timeout)

    def mallinfo(self, calls):
        return parse_words(self.command("mallinfo %d" % calls), "mallinfo")

    def gap_reset(self):
        if self.command("gap-reset", 10) != "ok":
            raise BenchError("bench_target: gap-reset not acknowledged")

    def gap(self):
        return parse_words(self.command("gap", 10), "gap")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"exit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def measured(measure_bin, argv, timeout):
    """Run argv under bench_measure: (status, wall_s, maxrss_kib, out, err)."""
    rfd, wfd = os.pipe()
    try:
        proc = subprocess.Popen([measure_bin, str(wfd)] + argv,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(wfd,))
    finally:
        os.close(wfd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        os.close(rfd)
        raise BenchError("%s: no result in %d s" % (argv[0], timeout))
    with os.fdopen(rfd) as f:
        line = f.read().strip()
    if proc.returncode != 0 or not line:
        raise BenchError("bench_measure failed: %s" % err.decode().strip())
    m = parse_words(line, "measure")
    return (m["status"], m["wall_us"] / 1e6, m["maxrss_kib"], out.decode(),
            err.decode())


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Bench:
    def __init__(self, args):
        self.args = args
        self.hi = os.path.abspath(args.heapinspect)
        bdir = os.path.dirname(self.hi)
        self.target_bin = args.target or os.path.join(bdir, "bench",
                                                      "bench_target")
        self.measure_bin = args.measure or os.path.join(bdir, "bench",
                                                        "bench_measure")
        for path in (self.hi, self.target_bin, self.measure_bin):
            if not os.access(path, os.X_OK):
                raise SystemExit("run.py: %s is not there: build first "
                                 "(see bench/README.md)" % path)
        self.gdb = None if args.no_gdb else shutil.which("gdb")

    def hi_argv(self, pid):
        argv = [self.hi, "-p", str(pid), "--json"]
        if self.args.debuginfo_path:
            argv += ["--debuginfo-path", self.args.debuginfo_path]
        return argv

    def run_hi(self, target, want):
        """One heapinspect run, framed by gap-reset and gap."""
        target.gap_reset()
        status, wall, rss, out, err = measured(
            self.measure_bin, self.hi_argv(target.pid), 900)
        gap = target.gap()
        run = {"status": status, "wall_s": wall, "rss_kib": rss,
               "gap_us": gap["max_us"], "ticks": gap["ticks"],
               "stderr": err.strip()}
        try:
            snap = json.loads(out)
        except ValueError:
            snap = None
        if snap:
            run["pause_us"] = snap.get("pause_us")
            run["arenas"] = len(snap.get("arenas") or [])
            run["attempts"] = (snap.get("stop") or {}).get("attempts")
            run["main_system_mem"] = next(
                (a.get("system_mem") for a in snap.get("arenas", [])
                 if a.get("main")), None)
            mi = snap.get("mallinfo2") or {}
            run["mismatch"] = ["%s %s != %s" % (k, mi.get(k), want[k])
                               for k in FIGURES if mi.get(k) != want[k]]
        else:
            run["mismatch"] = ["no JSON"]
        if status != 0:
            run["mismatch"].insert(0, "exit %d: %s" % (
                status, err.strip().splitlines()[0] if err.strip() else ""))
        return run

    def idle_gap(self, target, seconds):
        """The heartbeat's longest gap over the same time, nobody stopping
        the target: the machine's noise floor."""
        target.gap_reset()
        time.sleep(max(seconds, 0.02))
        return target.gap()["max_us"]

    def run_gdb(self, target):
        target.gap_reset()
        status, wall, _, out, err = measured(
            self.measure_bin,
            [self.gdb, "-nx", "-p", str(target.pid), "-batch", "-ex",
             "p main_arena.system_mem"], 900)
        gap = target.gap()["max_us"]
        m = re.search(r"^\$1 = (\d+)", out, re.M)
        return {"status": status, "wall_s": wall, "gap_us": gap,
                "system_mem": int(m.group(1)) if m else None,
                "stderr": err.strip()[-300:]}

    def measure(self, specs, runs):
        """Measure one heap, or several side by side.

        specs: [(label, target_args, gdb_runs)].  With several, their
        targets live together and every step alternates between them, so
        that the machine's load, which moves from minute to minute, weighs
        on each the same.  Return the rows, None for a heap that could not
        be measured.
        """
        sessions = []
        try:
            for label, targs, gdb_runs in specs:
                log("%s: building the heap (%s)" % (label, " ".join(targs)))
                try:
                    sessions.append(Session(self, label, targs, gdb_runs))
                except BenchError as e:
                    log("%s: not measured: %s" % (label, e))
            live = list(sessions)
            for step in [Session.start] + [Session.step] * runs + \
                    [Session.finish]:
                for sess in list(live):
                    try:
                        step(sess)
                    except BenchError as e:
                        log("%s: not measured: %s" % (sess.label, e))
                        live.remove(sess)
            return [s.row if s in live else None for s in sessions]
        finally:
            for sess in sessions:
                sess.target.close()


class Session:
    """One heap being measured: its target and its samples.

    Each step is one heapinspect run, the heartbeat around it, the same
    time left idle, a few mallinfo2() calls timed by the target, and (for
    the first gdb_runs steps) one gdb run: every ratio the report gives is
    made of samples taken next to each other.
    """

    def __init__(self, bench, label, targs, gdb_runs):
        self.bench = bench
        self.label = label
        self.gdb_runs = gdb_runs if bench.gdb else 0
        self.target = Target(bench.target_bin, targs, 1800)
        self.row = {"label": label, "ready": self.target.ready, "runs": [],
                    "idle_us": [], "mi_us_samples": [], "gdb": [],
                    "figures_moved": []}

    def start(self):
        bench, target, row = self.bench, self.target, self.row
        mi = target.mallinfo(5)
        self.want = {k: mi[k] for k in FIGURES}
        row["mallinfo"] = mi
        log("%s: ready in %d ms, mallinfo2 %.1f us; heapinspect..."
            % (self.label, target.ready["build_ms"], mi["median_us"]))
        row["cold"] = bench.run_hi(target, self.want)
        if self.gdb_runs:
            bench.run_gdb(target)  # warm-up: page cache, as heapinspect's

    def step(self):
        bench, target, row = self.bench, self.target, self.row
        run = bench.run_hi(target, self.want)
        row["runs"].append(run)
        row["idle_us"].append(bench.idle_gap(target, run["wall_s"]))
        mi = target.mallinfo(3)
        row["mi_us_samples"].append(mi["median_us"])
        # The heap must not move under us: the same figures every time.
        row["figures_moved"] += [k for k in FIGURES if mi[k] != self.want[k]]
        if len(row["gdb"]) < self.gdb_runs:
            row["gdb"].append(bench.run_gdb(target))

    def finish(self):
        summarise(self.row, self.want)
        r = self.row
        log("%s: pause %s us, heartbeat %s us, mallinfo2 %s us, wall %.1f ms,"
            " figures %s" % (self.label, fmt(r["pause_us"]), fmt(r["gap_us"]),
                             fmt(r["mi_us"]), r["wall_ms"], r["figures"]))


def summarise(row, want):
    """The row's medians and ratios, from its samples."""
    runs = row["runs"]
    every = runs + [row["cold"]]
    row["arenas"] = max((r.get("arenas") or 0) for r in every)
    row["free_chunks"] = (want["ordblks"] + want["smblks"] - row["arenas"]
                          if row["arenas"] else None)
    row["heap_mib"] = want["arena"] / 2**20
    row["mi_us"] = median(row["mi_us_samples"])
    row["pause_us"] = median(r.get("pause_us") for r in runs)
    row["gap_us"] = median(r["gap_us"] for r in runs)
    row["idle_gap_us"] = median(row["idle_us"])
    row["wall_ms"] = median(r["wall_s"] for r in runs) * 1000
    row["cold_wall_ms"] = row["cold"]["wall_s"] * 1000
    row["rss_mib"] = max(r["rss_kib"] for r in every) / 1024
    bad = sorted({m for r in every for m in r["mismatch"]})
    if row["figures_moved"]:
        bad.append("the target's own %s changed during the run"
                   % ", ".join(sorted(set(row["figures_moved"]))))
    gdb_ok = [g for g in row["gdb"] if g["status"] == 0 and
              g["system_mem"] is not None]
    main_mem = {r.get("main_system_mem") for r in every} - {None}
    for g in gdb_ok:
        if main_mem and g["system_mem"] not in main_mem:
            bad.append("gdb's main_arena.system_mem %d is not heapinspect's "
                       "%s" % (g["system_mem"], sorted(main_mem)))
            break
    row["figures"] = "equal" if not bad else "; ".join(bad)
    row["gdb_ms"] = median(g["wall_s"] * 1000 for g in gdb_ok)
    row["gdb_gap_us"] = median(g["gap_us"] for g in gdb_ok)
    if row["gdb"] and not gdb_ok:
        row["gdb_error"] = row["gdb"][0]["stderr"]
    row["gap_ratio"] = row["gap_us"] / row["mi_us"] if row["mi_us"] else None
    row["pause_ratio"] = (row["pause_us"] / row["mi_us"]
                          if row["mi_us"] and row["pause_us"] is not None
                          else None)
    row["gdb_ratio"] = (row["gdb_ms"] / row["wall_ms"]
                        if row["gdb_ms"] else None)


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.*f" % (digits, v)
    return str(v)


def si(n):
    for div, suffix in ((1000000, "M"), (1000, "k")):
        if n >= div and n % (div // 10) == 0:
            return "%g%s" % (n / div, suffix)
    return str(n)


def machine_facts(hi_path):
    facts = {}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            facts["cpu"] = m.group(1).strip() if m else platform.machine()
    except OSError:
        facts["cpu"] = platform.machine()
    facts["cores"] = os.cpu_count()
    facts["kernel"] = platform.release()
    facts["glibc"] = os.confstr("CS_GNU_LIBC_VERSION")
    try:
        with open("/proc/meminfo") as f:
            kib = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
            facts["memory"] = "%.0f GiB" % (kib / 2**20)
    except (OSError, AttributeError):
        pass
    facts["loadavg"] = " ".join(open("/proc/loadavg").read().split()[:3])
    # If heapinspect's build directory is in a git work tree: the last
    # commit that changed its sources, and whether they have changed since.
    def git(*argv):
        return subprocess.run(["git", "-C", os.path.dirname(hi_path)] +
                              list(argv), capture_output=True,
                              text=True).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        if top:
            srcs = ["--"] + [os.path.join(top, d) for d in
                             ("include", "inspector", "platforms", "symbols")]
            rev = git("log", "-1", "--format=%h %s", *srcs)
            dirty = git("status", "--porcelain", "-uno", *srcs)
            facts["commit"] = "%s%s (heapinspect's sources; HEAD %s)" % (
                rev, " + uncommitted changes" if dirty else "",
                git("rev-parse", "--short", "HEAD"))
    except OSError:
        pass
    try:
        facts["version"] = subprocess.run(
            [hi_path, "--version"], capture_output=True,
            text=True).stdout.strip()
    except OSError:
        pass
    gdb = shutil.which("gdb")
    if gdb:
        facts["gdb"] = subprocess.run(
            [gdb, "--version"], capture_output=True,
            text=True).stdout.splitlines()[0]
    return facts


def main_table(rows, layout=False):
    out = [
        ("| layout " if layout else "") +
        "| chunks | threads | arenas | free chunks | heap MiB "
        "| mallinfo2 µs | pause_us | heartbeat µs | idle µs "
        "| heartbeat / mallinfo2 | pause_us / mallinfo2 "
        "| wall ms | cold wall ms | peak RSS MiB "
        "| gdb wall ms | gdb heartbeat µs | gdb / hi wall | figures |",
        ("|---" if layout else "") + "|" + "---:|" * 17 + "---|",
    ]
    for r in rows:
        rd = r["ready"]
        out.append(("| %s " % rd["layout"] if layout else "") +
                   "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s "
                   "| %s | %s | %s | %s | %s | %s | %s |" % (
                       si(rd["chunks"]), rd["threads"], r["arenas"],
                       fmt(r["free_chunks"]), fmt(r["heap_mib"]),
                       fmt(r["mi_us"], 1), fmt(r["pause_us"]),
                       fmt(r["gap_us"]), fmt(r["idle_gap_us"]),
                       fmt(r["gap_ratio"], 2), fmt(r["pause_ratio"], 2),
                       fmt(r["wall_ms"], 1), fmt(r["cold_wall_ms"], 1),
                       fmt(r["rss_mib"], 1), fmt(r["gdb_ms"]),
                       fmt(r["gdb_gap_us"]), fmt(r["gdb_ratio"], 1),
                       r["figures"]))
    return out


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**not met**"


def targets(rows, sparse_rows, big):
    """The issue's targets, each with the rows it was judged on."""
    out = []
    big_rows = [r for r in rows if r["ready"]["chunks"] >= 100000]
    fails = ["%s×%d: %.0f µs > %.0f µs" % (si(r["ready"]["chunks"]),
                                           r["ready"]["threads"],
                                           r["gap_us"], r["mi_us"])
             for r in big_rows if r["gap_us"] > r["mi_us"]]
    ok = not fails if big_rows else None
    out.append("- pause (heartbeat) ≤ in-process mallinfo2() from 100k "
               "chunks up: %s%s" % (verdict(ok), (" (" + "; ".join(fails)
                                                  + ")") if fails else ""))
    small = [r for r in rows if r["ready"]["chunks"] == min(
        x["ready"]["chunks"] for x in rows) and r["ready"]["threads"] == 1]
    if small:
        r = small[0]
        out.append("- end to end ≤ 30 ms on a small process, layout cache "
                   "warm (%s chunks, 1 thread, median after a warm-up): "
                   "%.1f ms, %s" % (si(r["ready"]["chunks"]), r["wall_ms"],
                                   verdict(r["wall_ms"] <= 30)))
    gdb_rows = [r for r in rows if r["gdb_ratio"] is not None]
    fails = ["%s×%d: %.1f×" % (si(r["ready"]["chunks"]),
                               r["ready"]["threads"], r["gdb_ratio"])
             for r in gdb_rows if r["gdb_ratio"] < 10]
    out.append("- ≥ 10 times faster than gdb's read-only attach: %s%s" % (
        verdict(not fails if gdb_rows else None),
        (" (" + "; ".join(fails) + ")") if fails else ""))
    if big:
        out.append("- peak RSS < 64 MiB for a %.1f GiB heap: %.1f MiB, %s"
                   % (big["heap_mib"] / 1024, big["rss_mib"],
                      verdict(big["rss_mib"] < 64)))
    else:
        out.append("- peak RSS < 64 MiB for a 3 GiB heap: not measured")
    # Linear in free chunks: the pause per free chunk stays within
    # LINEAR_SLACK from the smallest heap measured to the largest.
    one = sorted((r for r in rows if r["ready"]["threads"] == 1
                  and r["ready"]["chunks"] >= 100000 and r["free_chunks"]
                  and r["pause_us"] is not None),
                 key=lambda r: r["ready"]["chunks"])
    per = [r["pause_us"] / r["free_chunks"] for r in one]
    ok = max(per) / min(per) <= LINEAR_SLACK if len(per) > 1 else None
    out.append("- cost linear in the number of free chunks (pause_us per "
               "free chunk, 1 thread, within %.1f×): %s, %s" % (
                   LINEAR_SLACK, ", ".join(
                       "%s: %.2f µs" % (si(r["ready"]["chunks"]), p)
                       for r, p in zip(one, per)) or "-", verdict(ok)))
    # Not in bytes: ten times the bytes, the same free chunks, about the
    # same pause.
    lines, ok = [], None
    for dense, sparse in sparse_rows:
        ratio = sparse["pause_us"] / max(dense["pause_us"], 1)
        ok = (ok is not False) and ratio <= LINEAR_SLACK
        lines.append(
            "%s chunks: %.1f× the bytes, %.2f× the free chunks, "
            "%.2f× the pause_us, %.2f× the wall time, %.2f× mallinfo2's "
            "time" % (
                si(dense["ready"]["chunks"]),
                sparse["heap_mib"] / dense["heap_mib"],
                sparse["free_chunks"] / dense["free_chunks"],
                ratio, sparse["wall_ms"] / dense["wall_ms"],
                sparse["mi_us"] / dense["mi_us"]))
    out.append("- not in the heap's bytes (sparse vs dense, pause within "
               "%.1f×): %s, %s" % (LINEAR_SLACK,
                                    "; ".join(lines) or "-", verdict(ok)))
    return out


def report(bench, facts, rows, sparse_rows, big, started, quick):
    out = []
    out.append("# heapinspect benchmark%s" % (" (--quick)" if quick else ""))
    out.append("")
    out.append("- date: %s" % started)
    for key in ("commit", "version", "cpu", "cores", "memory", "kernel",
                "glibc", "gdb"):
        if key in facts:
            out.append("- %s: %s" % (key, facts[key]))
    out.append("- load average at start / end: %s / %s" % (
        facts["loadavg"], " ".join(open("/proc/loadavg").read().split()[:3])))
    out.append("- runs per row: %d after one warm-up (medians; peak RSS is "
               "the maximum); gdb: %d after one warm-up"
               % (bench.args.runs, bench.args.gdb_runs if bench.gdb else 0))
    if rows:
        out.append("- heartbeat: %s, tick %d µs"
                   % (rows[0]["ready"].get("heartbeat", "?"),
                      bench.args.tick_us))
    out.append("- cold wall ms is the warm-up run, the first on each heap; "
               "the other columns are after it (a layout cache, where "
               "heapinspect has one, is warm)")
    out.append("")
    out.append("## Dense heaps")
    out.append("")
    out.extend(main_table(rows))
    out.append("")
    if sparse_rows:
        out.append("## Sparse vs dense: the same free chunks, "
                   "about 9× the bytes")
        out.append("")
        out.extend(main_table([r for pair in sparse_rows for r in pair],
                              layout=True))
        out.append("")
    if big:
        out.append("## Big heap: peak RSS")
        out.append("")
        out.extend(main_table([big], layout=True))
        out.append("")
    out.append("## Targets")
    out.append("")
    out.extend(targets(rows, sparse_rows, big))
    out.append("")
    errors = [r for r in rows + [x for p in sparse_rows for x in p] +
              ([big] if big else []) if r.get("gdb_error")]
    for r in errors:
        out.append("gdb failed on %s: %s" % (r["label"], r["gdb_error"]))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small heaps only: a smoke run of a minute or two")
    ap.add_argument("--heapinspect", default=os.path.join(
        REPO, "build", "heapinspect"), help="the binary to measure")
    ap.add_argument("--target", help="bench_target (default: beside "
                    "heapinspect, in bench/)")
    ap.add_argument("--measure", help="bench_measure (default: beside "
                    "heapinspect, in bench/)")
    ap.add_argument("--chunks", type=int, nargs="+",
                    help="heap sizes in chunks (default 10k 100k 1M 4M)")
    ap.add_argument("--threads", type=int, nargs="+",
                    help="thread counts (default 1 8 64)")
    ap.add_argument("--runs", type=int, help="measured runs per heap "
                    "(default 5, --quick 3)")
    ap.add_argument("--gdb-runs", type=int, help="gdb runs per heap "
                    "(default 3, --quick 1)")
    ap.add_argument("--no-gdb", action="store_true")
    ap.add_argument("--no-sparse", action="store_true")
    ap.add_argument("--big-mib", type=int, help="the big heap in MiB "
                    "(default 3072, --quick 256; 0: skip)")
    ap.add_argument("--tick-us", type=int, default=100,
                    help="the heartbeat's period")
    ap.add_argument("--debuginfo-path", help="passed to heapinspect")
    ap.add_argument("--output", help="also write the report to this file")
    ap.add_argument("--json", help="write every sample to this file")
    args = ap.parse_args()
    q = args.quick
    chunks = args.chunks or (QUICK_CHUNKS if q else FULL_CHUNKS)
    threads = args.threads or (QUICK_THREADS if q else FULL_THREADS)
    args.runs = args.runs or (3 if q else 5)
    args.gdb_runs = args.gdb_runs if args.gdb_runs is not None else (
        1 if q else 3)
    big_mib = args.big_mib if args.big_mib is not None else (
        256 if q else 3072)
    sparse_sizes = [] if args.no_sparse else [
        c for c in chunks if c in ((100000,) if q else (100000, 1000000))]

    bench = Bench(args)
    started = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    facts = machine_facts(bench.hi)
    tick = ["--tick-us", str(args.tick_us)]
    rows, sparse_rows, big = [], [], None

    for c in chunks:
        for t in threads:
            row, = bench.measure([("%s×%d" % (si(c), t),
                                   ["--chunks", str(c), "--threads", str(t)]
                                   + tick, args.gdb_runs)], args.runs)
            if row:
                rows.append(row)
    for c in sparse_sizes:
        # Measured again, side by side with the sparse heap: the same load.
        pair = bench.measure([
            ("%s×1 dense" % si(c), ["--chunks", str(c)] + tick, 0),
            ("%s×1 sparse" % si(c),
             ["--chunks", str(c), "--layout", "sparse"] + tick, 0)],
            args.runs)
        if None not in pair:
            sparse_rows.append(tuple(pair))
    if big_mib:
        big, = bench.measure([("big %d MiB" % big_mib,
                               ["--layout", "big", "--heap-mib", str(big_mib)]
                               + tick, 0)], min(args.runs, 3))

    text = report(bench, facts, rows, sparse_rows, big, started, q)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "rows": rows,
                       "sparse": sparse_rows, "big": big}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
