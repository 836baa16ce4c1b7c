#!/usr/bin/env python3
"""heapinspect diff between two snapshots of a target that allocated
exactly N more bytes in between.

    diff_alloc.py --heapinspect BIN --target BIN

`hi_target grow` holds one 1-byte block and has freed nothing: its only
free chunk is each arena's top (the target's own mallinfo2 says ordblks=1,
smblks=0), and its tcache is empty.  So `alloc N K` takes K new chunks
from the top, and live bytes grow by exactly the sum of glibc's
request2size() of the K sizes (series_util.py, from malloc.c): that is N
plus the allocator's own overhead, computed here, not by heapinspect.

For every round: snapshot -o A, alloc, snapshot -o B, then `diff --json A
B` must give exactly that change; the same two snapshots as lines of a
JSON Lines file with --lines 1,2 must give the same; snapshots of
different processes are refused unless --force.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import json
import os
import sys
import tempfile

from hi_live import Failure, Target
from series_util import expect_rc, request2size, run

# (N, K): bytes in all and blocks, all below the mmap threshold (128 KiB).
ROUNDS = [(100003, 7), (1000, 37), (5, 5), (300000, 3), (12345, 1)]


def sizes(n, k):
    """The block sizes hi_target's `alloc N K` uses."""
    return [n // k + (n % k if i == k - 1 else 0) for i in range(k)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    args = ap.parse_args()
    hi = args.heapinspect
    target = Target(args.target, "grow")
    tmp = tempfile.mkdtemp(prefix="hi-diff-")
    a, b = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
    try:
        ready = target.wait_ready()
        if ready["ordblks"] != 1 or ready["smblks"] != 0:
            raise Failure("the target has free chunks besides top: %r"
                          % ready)
        for n, k in ROUNDS:
            argv = [hi, "snapshot", "-p", str(target.pid), "-o", a]
            rc, _, err = run(argv)
            expect_rc(argv, rc, 0, err)
            target.send("alloc %d %d" % (n, k))
            ready = target.wait_ready()
            argv = [hi, "snapshot", "-p", str(target.pid), "-o", b]
            rc, _, err = run(argv)
            expect_rc(argv, rc, 0, err)

            want = sum(request2size(s) for s in sizes(n, k))
            argv = [hi, "diff", "--json", a, b]
            rc, out, err = run(argv)
            expect_rc(argv, rc, 0, err)
            d = json.loads(out)
            live = d["figures"]["live_bytes"]["change"]
            uord = d["figures"]["uordblks"]["change"]
            print("alloc %d bytes in %d blocks: expected +%d (%d of "
                  "overhead), diff live_bytes %+d, uordblks %+d"
                  % (n, k, want, want - n, live, uord))
            if live != want or uord != want:
                raise Failure("diff says %+d live bytes, expected %+d"
                              % (live, want))
            if d["figures"]["hblkhd"]["change"] != 0:
                raise Failure("mmapped bytes changed")
            if d["a"]["pid"] != target.pid or d["seconds"] <= 0:
                raise Failure("bad header: %r %r" % (d["a"], d["seconds"]))

            # The same two snapshots as lines of a JSON Lines file.
            jl = os.path.join(tmp, "ab.jsonl")
            with open(jl, "w") as f:
                for p in (a, b):
                    with open(p) as g:
                        f.write(json.dumps(json.load(g)) + "\n")
            for extra in ([], ["--lines", "1,2"]):
                argv = [hi, "diff", "--json", jl] + extra
                rc, out, err = run(argv)
                expect_rc(argv, rc, 0, err)
                if json.loads(out)["figures"]["live_bytes"]["change"] != \
                        want:
                    raise Failure("%s: a different change" % argv)
            argv = [hi, "diff", a, b]
            rc, out, err = run(argv)
            expect_rc(argv, rc, 0, err)
            if "live_bytes" not in out:
                raise Failure("the text diff has no live_bytes: %r" % out)

        # Another process: refused, unless --force.
        with open(b) as f:
            other = json.load(f)
        other["pid"] += 1
        c = os.path.join(tmp, "c.json")
        with open(c, "w") as f:
            json.dump(other, f, indent=2)
        argv = [hi, "diff", a, c]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 2, err)
        if "different processes" not in err or "--force" not in err:
            raise Failure("unclear refusal: %r" % err)
        argv = [hi, "diff", "--force", "--json", a, c]
        rc, out, err = run(argv)
        expect_rc(argv, rc, 0, err)
        if not any("different processes" in x
                   for x in json.loads(out)["notes"]):
            raise Failure("--force: no note of different processes")
        target.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        target.kill()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
