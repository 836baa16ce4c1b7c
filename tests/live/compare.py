#!/usr/bin/env python3
"""Compare heapinspect's snapshot of a live hi_target with the target's own
mallinfo2() figures.

    compare.py --heapinspect BIN --target BIN --scenario S
               [--debuginfo-path DIR] [--snapshots N] [--extra-arg ARG ...]
               [--located-by dwarf|debuginfod|builtin] [--glibc VERSION]
               [--method read|call] [--method-reason TEXT]
               [--quiesce-every K] [--min-consistent PCT]
               [--max-timeouts N]
               [--ready-pid] [--expect-split] [--cache-run]

Starts `hi_target S`, waits for its ready line, runs
`heapinspect -p PID --json [...]` N times (default 1) and checks each
snapshot: schema, pid, the ten mallinfo2 figures (exactly; for api=mallinfo
the low 32 bits), the per-arena sums against the totals, the process
figures.  Then the target must report the same figures again, answer
`check` with ok and exit with status 0.  With --glibc (the target's glibc,
from its package, not from heapinspect), the scenario is also checked to
build the heap it is meant to, by the target's own figures.

The busy scenarios (busy, busy16, churn: api=none) change their heap all
the time, so their figures are truth only at moments the target controls:
every K-th snapshot (--quiesce-every, default 10; the first is one) is
taken after `pause`, which parks every worker outside malloc and reports
the target's own mallinfo2(); that snapshot must be complete (exit 0)
and equal to it, figure for figure; then `resume`.  The snapshots in between, of a target that
allocates all the time, may find an arena busy in every attempt (exit 1,
no figures); at least PCT percent of them (--min-consistent) must be
consistent, and at most N stops (--max-timeouts, default 0) may time out.

--ready-pid reads the process the ready line names (a forked child);
--expect-split first requires the target's heaps to be in several
mappings; --cache-run makes the first snapshot fill the layout cache and
every other run without debug information, from the cache.

Exit status 0 on pass, 1 on any mismatch or failure, 77 when the test
cannot run here (said why).
"""

import argparse
import contextlib
import io
import re
import sys
import tempfile

from hi_live import FIGURES, SCHEMA, Failure, Target, heapinspect_argv, \
    heapinspect_env, run_heapinspect

TOP_KEYS = ("schema", "pid", "timestamp", "exe", "allocator", "consistent",
            "mallinfo2", "arenas", "process", "pause_us")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def figure_table(ready, mi):
    """Print figure / target / heapinspect / verdict; return mismatches."""
    low32 = ready["api"] == "mallinfo"
    bad = []
    print("  %-10s %16s %16s  %s" % ("figure", "target", "heapinspect",
                                     "verdict"))
    for key in FIGURES:
        want = ready[key]
        got = mi.get(key)
        if not is_int(got):
            ok = False
        elif low32:
            ok = (got & 0xffffffff) == want
        else:
            ok = got == want
        print("  %-10s %16d %16s  %s" % (key, want, got,
                                         "OK" if ok else "MISMATCH"))
        if not ok:
            bad.append("%s: target %d, heapinspect %r" % (key, want, got))
    if low32:
        print("  (api=mallinfo: the target's figures are 32-bit; "
              "compared with heapinspect's & 0xffffffff)")
    return bad


def arena_sum(arenas, key, problems):
    total = 0
    for i, a in enumerate(arenas):
        v = a.get(key)
        if not is_int(v):
            problems.append("arenas[%d].%s is %r, not an integer"
                            % (i, key, v))
            return None
        total += v
    return total


def check_relations(mi, arenas, problems):
    """Per-arena figures against the totals, as glibc's int_mallinfo()
    adds them up: per arena, ordblks counts the top chunk plus every chunk
    in the unsorted, small and large bins; fordblks the top's size plus
    those chunks and the fastbin chunks; smblks/fsmblks the fastbins alone;
    keepcost is the main arena's top."""
    rel = [
        ("sum(arenas.system_mem)", "system_mem", "arena"),
        ("sum(arenas.free_bytes)", "free_bytes", "fordblks"),
        ("sum(arenas.fast_bytes)", "fast_bytes", "fsmblks"),
        ("sum(arenas.fast_chunks)", "fast_chunks", "smblks"),
    ]
    for label, key, fig in rel:
        total = arena_sum(arenas, key, problems)
        if total is None:
            continue
        ok = total == mi[fig]
        print("  %-24s %16d == %-9s %16d  %s"
              % (label, total, fig, mi[fig], "OK" if ok else "MISMATCH"))
        if ok:
            continue
        hint = ""
        diff = mi[fig] - total
        if key == "free_chunks" and diff == len(arenas):
            hint = " (exactly one per arena: top chunks not counted?)"
        elif key == "free_bytes":
            tops = arena_sum(arenas, "top_size", [])
            fast = arena_sum(arenas, "fast_bytes", [])
            if tops is not None and diff == tops:
                hint = " (by the sum of top_size: top not counted?)"
            elif fast is not None and diff == fast:
                hint = " (by the sum of fast_bytes: fastbins not counted?)"
        problems.append("%s = %d, mallinfo2.%s = %d%s"
                        % (label, total, fig, mi[fig], hint))

    # ordblks counts each arena's top as one block besides the binned
    # chunks; free_chunks is what is on the lists (bins and fastbins).
    bins = arena_sum(arenas, "bin_chunks", problems)
    fast = arena_sum(arenas, "fast_chunks", problems)
    free = arena_sum(arenas, "free_chunks", problems)
    if bins is not None:
        ok = bins + len(arenas) == mi["ordblks"]
        print("  %-24s %16d == %-9s %16d  %s"
              % ("sum(bin_chunks)+arenas", bins + len(arenas), "ordblks",
                 mi["ordblks"], "OK" if ok else "MISMATCH"))
        if not ok:
            problems.append("sum(bin_chunks) + one top per arena = %d, "
                            "ordblks = %d" % (bins + len(arenas),
                                              mi["ordblks"]))
    if None not in (bins, fast, free) and free != bins + fast:
        problems.append("sum(free_chunks) %d != bin_chunks %d + "
                        "fast_chunks %d" % (free, bins, fast))

    mains = [a for a in arenas if a.get("main") is True]
    if len(mains) == 1 and "top_size" in mains[0]:
        top = mains[0]["top_size"]
        ok = top == mi["keepcost"]
        print("  %-24s %16s == %-9s %16d  %s"
              % ("main arena top_size", top, "keepcost", mi["keepcost"],
                 "OK" if ok else "MISMATCH"))
        if not ok:
            problems.append("main arena top_size = %r, keepcost = %d"
                            % (top, mi["keepcost"]))
    if mi["uordblks"] != mi["arena"] - mi["fordblks"]:
        problems.append("mallinfo2: uordblks %d != arena %d - fordblks %d"
                        % (mi["uordblks"], mi["arena"], mi["fordblks"]))


def scenario_sanity(scenario, glibc, ready):
    """Whether the scenario built the heap it is meant to, by the target's
    own figures; returns the list of problems."""
    if scenario != "small_frees" or not glibc or ready["api"] == "none":
        return []
    v = tuple(int(x) for x in glibc.split(".")[:2])
    if v < (2, 43):
        # Up to 2.42, what tcache does not take stays in the fastbins.
        if ready["smblks"] < 1000:
            return ["small_frees: only %d chunks in fastbins (smblks), "
                    "glibc %s keeps about 10,000 there"
                    % (ready["smblks"], glibc)]
    elif ready["smblks"] != 0 or ready["ordblks"] < 1000:
        # 2.43 has no fastbins: the frees are merged into the bins.
        return ["small_frees: smblks %d, ordblks %d: glibc %s has no "
                "fastbins and bins thousands of chunks"
                % (ready["smblks"], ready["ordblks"], glibc)]
    return []


def check_snapshot(snap, ready, pid, located_by=None, method=None,
                   reason=None, want_call=False):
    """All checks of one snapshot; returns the list of problems.  With
    want_call (--method call), the figures must come from a call that was
    made, and agree with the read of the same stop."""
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(msg)
        return cond

    if not need(isinstance(snap, dict), "snapshot is not a JSON object"):
        return problems
    for key in TOP_KEYS:
        need(key in snap, "snapshot has no %r" % key)
    need(snap.get("schema") == SCHEMA,
         "schema is %r, not %r" % (snap.get("schema"), SCHEMA))
    need(snap.get("pid") == pid,
         "pid is %r, not %d" % (snap.get("pid"), pid))

    alloc = snap.get("allocator")
    if need(isinstance(alloc, dict), "allocator is not an object"):
        need(alloc.get("name") == "glibc",
             "allocator.name is %r" % alloc.get("name"))
        ver = alloc.get("version")
        m = re.match(r"^(\d+)\.(\d+)", ver) if isinstance(ver, str) else None
        if need(m, "allocator.version is %r" % ver):
            v = (int(m.group(1)), int(m.group(2)))
            if ready["api"] == "mallinfo2":
                need(v >= (2, 33), "allocator.version %s, but the target "
                     "has mallinfo2 (>= 2.33)" % ver)
            elif ready["api"] == "mallinfo":
                need(v < (2, 33), "allocator.version %s, but the target "
                     "has no mallinfo2 (< 2.33)" % ver)
        need("method" in alloc, "allocator has no method")
        if method:
            need(alloc.get("method") == method,
                 "allocator.method is %r, not %r"
                 % (alloc.get("method"), method))
        if reason:
            need(reason in str(alloc.get("method_reason")),
                 "allocator.method_reason is %r, without %r"
                 % (alloc.get("method_reason"), reason))
        if want_call:
            need(alloc.get("method") == "call",
                 "--method call, but allocator.method is %r: no call was "
                 "made" % alloc.get("method"))
        if alloc.get("method") == "call":
            call = alloc.get("call")
            if need(isinstance(call, dict), "method call without call"):
                # The reader's figures of the same stop must agree; where
                # a layout was known (every test that asks for a call, and
                # auto on an idle target), the reader must have read them.
                agrees = call.get("agrees_with_memory")
                need(agrees is not False,
                     "the call's figures differ from the memory reader's "
                     "in the same stop")
                if want_call or (alloc.get("located_by") and
                                 ready["api"] != "none"):
                    need(agrees is True,
                         "the call was not compared with the memory "
                         "reader (agrees_with_memory %r)" % agrees)
                need(is_int(call.get("thread")) and call["thread"] > 0,
                     "the call ran in no thread: %r" % call.get("thread"))
                if ready["api"] == "mallinfo":
                    need(call.get("function") == "mallinfo" and
                         "wrap" in call.get("note", ""),
                         "mallinfo() called without the wrap note")
        if located_by:
            need(alloc.get("located_by") == located_by,
                 "allocator.located_by is %r, not %r"
                 % (alloc.get("located_by"), located_by))
            loc = alloc.get("locate") or {}
            if located_by == "builtin":
                need(loc.get("verified") is True and loc.get("checks") and
                     all(c.get("ok") for c in loc["checks"]),
                     "the symbol-less addresses were not verified: %r"
                     % loc.get("checks"))

    consistent = snap.get("consistent")
    mi = snap.get("mallinfo2")
    need(isinstance(consistent, bool), "consistent is %r" % consistent)
    need((mi is None) == (consistent is False),
         "consistent is %r but mallinfo2 is %s"
         % (consistent, "null" if mi is None else "present"))
    idle = ready["api"] != "none"
    if idle:
        need(consistent is True,
             "snapshot of an idle target is not consistent")
    if mi is not None:
        if not need(isinstance(mi, dict), "mallinfo2 is not an object"):
            mi = None
    if mi is not None:
        need(set(mi) == set(FIGURES),
             "mallinfo2 keys are %s" % sorted(mi))
        for key in FIGURES:
            need(is_int(mi.get(key)) and mi.get(key) >= 0,
                 "mallinfo2.%s is %r" % (key, mi.get(key)))
        if idle:
            problems += figure_table(ready, mi)
        else:
            print("  (api=none: the target's figures are volatile, "
                  "no comparison)")

    arenas = snap.get("arenas")
    # A call with no layout to read the arenas with: the totals alone.
    no_layout = isinstance(alloc, dict) and alloc.get("method") == "call" \
        and alloc.get("located_by") is None
    if no_layout:
        need(arenas == [], "arenas %r read without a layout" % arenas)
        arenas = []
    elif not need(isinstance(arenas, list) and arenas,
                  "arenas is not a non-empty array"):
        arenas = []
    else:
        need(all(isinstance(a, dict) for a in arenas),
             "arenas holds a non-object")
        arenas = [a for a in arenas if isinstance(a, dict)]
        mains = [a for a in arenas if a.get("main") is True]
        need(len(mains) == 1, "%d arenas have main=true" % len(mains))
        addrs = [a.get("address") for a in arenas]
        need(all(isinstance(x, str) and re.match(r"^0x[0-9a-fA-F]+$", x)
                 for x in addrs), "arena addresses are %r" % addrs)
        need(len(set(addrs)) == len(addrs), "duplicate arena addresses")
        print("  arenas: %d" % len(arenas))
        if mi is not None and all(is_int(mi.get(k)) for k in FIGURES):
            check_relations(mi, arenas, problems)

    proc = snap.get("process")
    if need(isinstance(proc, dict), "process is not an object"):
        # A target whose threads come and go (churn) has no fixed count.
        need(proc.get("threads") == ready["threads"] or
             (not idle and is_int(proc.get("threads")) and
              proc.get("threads") >= 1),
             "process.threads is %r, the target has %d threads"
             % (proc.get("threads"), ready["threads"]))
        need(is_int(proc.get("rss")) and proc["rss"] > 0,
             "process.rss is %r" % proc.get("rss"))
        # Only for a quiet target: a thread that is switching arenas
        # counts in both for a moment (reused_arena, then detach_arena).
        if idle and arenas and all(is_int(a.get("attached_threads"))
                                   for a in arenas):
            att = sum(a["attached_threads"] for a in arenas)
            nthreads = ready["threads"]
            need(att <= nthreads,
                 "arenas have %d attached threads, the process %d"
                 % (att, nthreads))
    pause = snap.get("pause_us")
    need(is_int(pause) and pause >= 0, "pause_us is %r" % pause)
    return problems


class Skip(Exception):
    """The test cannot run here; the message says why (exit 77)."""


def split_or_skip(ready):
    """The target's heaps must be in several mappings, as its scenario
    means them to be (hi_target's heap_maps= and arena_maps=), or the test
    would prove nothing."""
    pieces = [(k, ready[k]) for k in ("heap_maps", "arena_maps")
              if k in ready]
    print("  heap in mappings: %s"
          % ", ".join("%s=%d" % kv for kv in pieces))
    if pieces and all(n >= 2 for _, n in pieces):
        return
    if ready.get("thp_madvise") == 1:
        # Whether glibc's first advice covers the whole heap depends on
        # where the brk starts (ASLR): then the kernel keeps one mapping.
        print("  glibc advised the whole heap at once this run: one "
              "mapping; compared all the same")
        return
    if ready.get("thp_madvise") == 0:
        raise Skip("glibc.malloc.hugetlb=1 advises nothing here (glibc "
                   "older than 2.35, or the kernel's THP mode is not "
                   "madvise): the heap is in one mapping")
    raise Failure("the target's heap is not split: %s" % (pieces or
                                                          "no count"))


def run(args):
    target = Target(args.target, args.scenario, args.target_nice)
    try:
        ready = target.wait_ready(120)
        pid = target.pid
        if args.ready_pid:
            pid = ready["pid"]
        elif ready["pid"] != pid:
            raise Failure("target: ready line says pid %d, started %d"
                          % (ready["pid"], pid))
        print("target %s: pid %d api %s threads %d"
              % (args.scenario, pid, ready["api"], ready["threads"]))
        if args.expect_split:
            split_or_skip(ready)
        failed = scenario_sanity(args.scenario, args.glibc, ready)
        for p in failed:
            print("  FAIL %s" % p)
        argv = heapinspect_argv(args.heapinspect, pid, args.debuginfo_path,
                                args.extra_arg)
        cache = tempfile.TemporaryDirectory(prefix="hi-cache-")
        env = heapinspect_env(cache.name)
        consistent = timeouts = busy_n = quiesced = 0
        busy = ready["api"] == "none"
        if busy and not args.quiesce_every:
            # Never a busy run without the target's own figures.
            args.quiesce_every = 10
        # --cache-run: the first run fills the layout cache from the
        # debug information, the others have none and must take it from
        # the cache.
        hidden = heapinspect_argv(args.heapinspect, pid, "/nonexistent",
                                  args.extra_arg)
        for i in range(args.snapshots):
            truth = ready
            paused = busy and i % args.quiesce_every == 0
            if paused:
                # A moment the target controls: its workers parked, its
                # own mallinfo2() the truth.
                target.send("pause")
                truth = target.wait_ready(60)
                if truth["api"] == "none":
                    raise Failure("target: pause gave no figures")
            # A target that keeps allocating may hold a lock in every
            # attempt: then exit 1 with the arena marked busy is right.
            try:
                snap, elapsed, err = run_heapinspect(
                    hidden if args.cache_run and i else argv, 120,
                    (0, 1) if busy and not paused else (0,), env)
            except Failure as e:
                # The bound on the stop doing its job: heapinspect let the
                # target go and said so (its state is checked at the end).
                if paused or "did not stop within" not in str(e):
                    raise
                timeouts += 1
                print("snapshot %d/%d: %s" % (i + 1, args.snapshots,
                                              str(e).splitlines()[-1]))
                if timeouts > args.max_timeouts:
                    raise Failure("%d stops timed out, more than the %d "
                                  "allowed" % (timeouts, args.max_timeouts))
                continue
            # --quiet: a line every 500 snapshots, and every problem.
            loud = not args.quiet or (i + 1) % 500 == 0
            if loud:
                print("snapshot %d/%d: %.3f s, pause_us %r"
                      % (i + 1, args.snapshots, elapsed,
                         snap.get("pause_us") if isinstance(snap, dict)
                         else None))
            if err and loud:
                print("  heapinspect stderr: %s" % err)
            want_call = any(a == "call" and b == "--method" for b, a in
                            zip(args.extra_arg, args.extra_arg[1:]))
            if args.quiet and not (paused and quiesced == 0):
                with contextlib.redirect_stdout(io.StringIO()):
                    problems = check_snapshot(snap, truth, pid,
                                              args.located_by, args.method,
                                              args.method_reason, want_call)
            else:
                if paused:
                    print("  (taken while the target's workers were "
                          "parked: against its own mallinfo2())")
                problems = check_snapshot(snap, truth, pid, args.located_by,
                                          args.method, args.method_reason,
                                          want_call)
            if paused:
                quiesced += 1
                target.send("resume")
                answer = target.readline(60)
                if answer != "resumed":
                    raise Failure("target: resume answered %r" % answer)
            elif busy:
                busy_n += 1
                if isinstance(snap, dict) and \
                        snap.get("consistent") is True:
                    consistent += 1
            if args.cache_run:
                loc = (snap.get("allocator") or {}).get("locate") or {}
                if loc.get("from_cache") is not (i > 0):
                    problems.append("locate.from_cache is %r in run %d "
                                    "of a cache run"
                                    % (loc.get("from_cache"), i + 1))
            for p in problems:
                print("  FAIL snapshot %d: %s" % (i + 1, p))
            failed += ["snapshot %d: %s" % (i + 1, p) for p in problems]
        if busy:
            print("%d snapshots: %d while the target was paused, all "
                  "checked against its own figures; of the %d while it "
                  "ran, %d consistent, %d with an arena busy in every "
                  "attempt (no figures); %d stops timed out"
                  % (args.snapshots, quiesced, busy_n, consistent,
                     busy_n - consistent, timeouts))
            if busy_n and consistent * 100 < args.min_consistent * busy_n:
                failed.append("only %d of %d snapshots of the running "
                              "target were consistent, fewer than %d%%"
                              % (consistent, busy_n, args.min_consistent))

        if ready["api"] != "none":
            again = target.report()
            changed = [k for k in FIGURES if again[k] != ready[k]]
            if changed:
                failed.append("target figures changed after inspection: %s"
                              % ", ".join("%s %d -> %d"
                                          % (k, ready[k], again[k])
                                          for k in changed))
        target.check()
        target.exit(30)
        cache.cleanup()
        return failed
    finally:
        target.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--debuginfo-path")
    ap.add_argument("--snapshots", type=int, default=1)
    ap.add_argument("--located-by", choices=("dwarf", "debuginfod",
                                             "builtin"),
                    help="require allocator.located_by to be this")
    ap.add_argument("--method", choices=("read", "call"),
                    help="require allocator.method to be this")
    ap.add_argument("--method-reason", metavar="TEXT",
                    help="require allocator.method_reason to hold TEXT")
    ap.add_argument("--glibc", help="the target's glibc version (from "
                    "its package): check that the scenario built the heap "
                    "it is meant to")
    ap.add_argument("--max-timeouts", type=int, default=0,
                    help="how many stops of the running target may time "
                    "out (exit 2, the target released) before the test "
                    "fails; none while it is paused")
    ap.add_argument("--quiesce-every", type=int, default=0,
                    help="busy scenarios: every K-th snapshot is taken "
                    "while the target is paused, against its own "
                    "mallinfo2()")
    ap.add_argument("--min-consistent", type=int, default=0,
                    help="busy scenarios: the percentage of snapshots of "
                    "the running target that must be consistent")
    ap.add_argument("--ready-pid", action="store_true",
                    help="read the process the ready line names (a child "
                    "of the one started), not the one started")
    ap.add_argument("--expect-split", action="store_true",
                    help="require the target's heaps in several mappings "
                    "(skip, exit 77, where the kernel or glibc cannot)")
    ap.add_argument("--cache-run", action="store_true",
                    help="the first snapshot fills a fresh layout cache, "
                    "the others run without debug information and must "
                    "take the layout from it")
    ap.add_argument("--target-nice", type=int, default=0,
                    help="run the target at this nice value: on a small "
                    "machine its busy threads would otherwise starve "
                    "heapinspect itself")
    ap.add_argument("--quiet", action="store_true",
                    help="print a line every 500 snapshots, and problems")
    ap.add_argument("--extra-arg", action="append", default=[],
                    help="passed to heapinspect; may be repeated")
    args = ap.parse_args()
    if args.snapshots < 1:
        ap.error("--snapshots must be at least 1")

    try:
        failed = run(args)
    except Skip as e:
        print("SKIP %s: %s" % (args.scenario, e))
        return 77
    except Failure as e:
        failed = [str(e)]
    except OSError as e:
        failed = ["%s" % e]
    if failed:
        print("FAIL %s:" % args.scenario)
        for f in failed:
            print("  %s" % f)
        return 1
    print("PASS %s" % args.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
