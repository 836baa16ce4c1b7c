#!/usr/bin/env python3
"""heapinspect plot, rendered: the SVG must be something a person reads.

    plot.py --heapinspect BIN --target BIN [--rsvg-convert PATH]

Watches `hi_target leak` through a pid file for about 2 s, restarts it
(the watch follows: an exited and a resolved event line), watches the new
one for about 2 s, adds an event line of a failed sample, plots the series
(TZ=UTC), renders the SVG with rsvg-convert (librsvg2-bin; missing is a
failure) and decodes the PNG here (zlib, no imaging library).  Then, as a
person would look at it:

- the picture has the declared size and is not blank;
- live bytes (red, megabytes) are drawn in the upper panel and nowhere in
  the lower one; free bytes (blue, about a hundred KiB) in the lower panel,
  standing clear of its axis (their top at least a third of the way up),
  not flat on the axis of the megabytes;
- the legend is beside the panels, not over them: every legend element
  lies right of the panels, and its colour samples are there in the PNG;
- the exit, the restart and the failed sample are marked: their colours
  inside the panels;
- the title and the time axis speak in human time (the first snapshot's
  date as "Sun 29 Nov 2026 21:45:09", the ticks as clock times), with no
  RFC 3339 timestamp left.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import calendar
import json
import os
import re
import signal
import time
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from hi_live import Failure, Target


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """(width, height, rows of RGBA bytes) of an 8-bit RGB(A) PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failure("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise Failure("unexpected PNG format %r" % (ihdr,))
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (0, a, b, (a + b) // 2,
                                  paeth(a, b, c))[f]) & 0xff
        prev = line
        if bpp == 3:
            line = bytearray(b"".join(bytes(line[i:i + 3]) + b"\xff"
                                      for i in range(0, stride, 3)))
        rows.append(line)
    return w, h, rows


def near(px, rgb, tol=40):
    return all(abs(px[i] - rgb[i]) <= tol for i in range(3))


def hexrgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


LIVE, FREE = hexrgb("#d62728"), hexrgb("#1f77b4")
MARKS = {"exited": hexrgb("#9467bd"), "resolved": hexrgb("#17becf"),
         "error": hexrgb("#ff7f0e")}


def count(rows, box, rgb):
    """(pixels of colour rgb inside box (x0, y0, x1, y1), topmost y)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    n, top = 0, None
    for y in range(max(y0, 0), min(y1, len(rows))):
        row = rows[y]
        for x in range(max(x0, 0), min(x1, len(row) // 4)):
            if near(row[4 * x:4 * x + 3], rgb):
                n += 1
                if top is None:
                    top = y
    return n, top


def records(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def watch_series(hi, target_bin, tmp):
    """A series of two processes, one after the other, and its events."""
    series = os.path.join(tmp, "s.jsonl")
    pidfile = os.path.join(tmp, "t.pid")
    a = Target(target_bin, "leak")
    b = None
    w = None
    try:
        a.wait_ready()
        with open(pidfile, "w") as f:
            f.write("%d\n" % a.pid)
        w = subprocess.Popen([hi, "watch", "--pidfile", pidfile,
                              "--interval", "100ms", "-o", series],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)

        def wait(cond, what):
            end = time.monotonic() + 60
            while not (os.path.exists(series) and cond(records(series))):
                if w.poll() is not None or time.monotonic() > end:
                    raise Failure("watch: no %s (exit %r)"
                                  % (what, w.poll()))
                time.sleep(0.05)

        wait(lambda r: len(r) >= 15, "15 samples")
        a.exit()
        wait(lambda r: any(x.get("event") == "exited" for x in r),
             "exited event")
        b = Target(target_bin, "leak")
        b.wait_ready()
        with open(pidfile + ".new", "w") as f:
            f.write("%d\n" % b.pid)
        os.rename(pidfile + ".new", pidfile)
        wait(lambda r: sum(x.get("pid") == b.pid for x in r) >= 15,
             "15 samples of the next process")
        w.send_signal(signal.SIGINT)
        if w.wait(30) != 0:
            raise Failure("watch: exit %d: %s"
                          % (w.returncode, w.stderr.read().decode()))
        b.exit()
    finally:
        if w:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stderr.close()
        a.kill()
        if b:
            b.kill()
    recs = records(series)
    # A failed sample, as watch records one, in the middle of b's run.
    mid = [x for x in recs if x.get("pid") == b.pid and "mallinfo2" in x]
    ts = mid[len(mid) // 2]["timestamp"]
    with open(series, "a") as f:
        f.write(json.dumps({"schema": "heapinspect/event/v1",
                            "pid": b.pid, "timestamp": ts,
                            "event": "error", "samples": 0,
                            "message": "a sample failed (made up)"}) + "\n")
    return series, recs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapinspect", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--rsvg-convert", default="rsvg-convert")
    args = ap.parse_args()
    hi = args.heapinspect
    rsvg = shutil.which(args.rsvg_convert)
    if not rsvg:
        print("FAIL: no rsvg-convert: install librsvg2-bin "
              "(tests/setup-debian.sh)")
        return 1
    tmp = tempfile.mkdtemp(prefix="hi-plot-")
    try:
        series, recs = watch_series(hi, args.target, tmp)
        svg = os.path.join(tmp, "s.svg")
        png = os.path.join(tmp, "s.png")
        argv = [hi, "plot", series, "-o", svg]
        res = subprocess.run(argv, env=dict(os.environ, TZ="UTC"),
                             capture_output=True, timeout=120)
        if res.returncode != 0:
            raise Failure("plot: exit %d: %s" % (res.returncode,
                                                 res.stderr.decode()))
        res = subprocess.run([rsvg, "-b", "white", "-o", png, svg],
                             capture_output=True, timeout=60)
        if res.returncode != 0:
            raise Failure("rsvg-convert: exit %d: %s"
                          % (res.returncode, res.stderr.decode()))
        with open(png, "rb") as f:
            w, h, rows = decode_png(f.read())
        with open(svg) as f:
            text = f.read()
        total = w * h
        ink = sum(1 for row in rows for i in range(0, len(row), 4)
                  if tuple(row[i:i + 3]) != (255, 255, 255))
        print("PNG %dx%d: %d of %d pixels drawn (%.1f%%)"
              % (w, h, ink, total, 100.0 * ink / total))
        if (w, h) != (960, 600):
            raise Failure("size %dx%d, expected 960x600" % (w, h))
        if ink < total // 100:
            raise Failure("the picture is nearly blank")

        panels = [tuple(float(v) for v in m) for m in re.findall(
            r'<rect class="panel" x="([\d.]+)" y="([\d.]+)" '
            r'width="([\d.]+)" height="([\d.]+)"', text)]
        if len(panels) != 2:
            raise Failure("%d panels, expected 2 (live bytes in MiB, free "
                          "bytes in KiB)" % len(panels))
        boxes = [(x + 2, y + 2, x + pw - 2, y + ph - 2)
                 for x, y, pw, ph in panels]
        up, low = boxes
        n_up, _ = count(rows, up, LIVE)
        n_low, _ = count(rows, low, LIVE)
        if n_up < 200 or n_low:
            raise Failure("live (red): %d pixels in the upper panel, %d in "
                          "the lower" % (n_up, n_low))
        n_free, top = count(rows, low, FREE)
        height = low[3] - low[1]
        if n_free < 200 or top is None or low[3] - top < height / 3:
            raise Failure("free (blue) in the lower panel: %d pixels, top "
                          "at %r of %d..%d: flat on the axis"
                          % (n_free, top, low[1], low[3]))
        print("upper panel: %d red pixels (live); lower panel: %d blue "
              "(free), up to %d%% of its height"
              % (n_up, n_free, 100 * (low[3] - top) / height))

        right = max(x + pw for x, _, pw, _ in panels)
        legend = text[text.index('<g class="legend">'):]
        legend = legend[:legend.index("</g>")]
        xs = [float(v) for v in re.findall(r'\bx[12]?="([\d.]+)"', legend)]
        if not xs or min(xs) <= right:
            raise Failure("legend elements at x %r, the panels end at %g"
                          % (min(xs) if xs else None, right))
        lbox = (right + 4, 0, w, h)
        for name, rgb in (("live", LIVE), ("free", FREE)):
            if count(rows, lbox, rgb)[0] < 20:
                raise Failure("no %s sample in the legend column" % name)
        print("legend: right of the panels (x >= %g > %g), its samples "
              "drawn there" % (min(xs), right))

        for ev, rgb in MARKS.items():
            n = sum(count(rows, b, rgb)[0] for b in boxes)
            if n < 30:
                raise Failure("the %s event is not marked (%d pixels of "
                              "its colour in the panels)" % (ev, n))
        print("events marked: %s" % ", ".join(MARKS))

        texts = re.findall(r"<text[^>]*>([^<]*)</text>", text)
        rfc = [t for t in texts if re.search(r"\d\dT\d\d:\d\d", t)]
        if rfc:
            raise Failure("raw RFC 3339 on the picture: %r" % rfc)
        t0 = recs[0]["timestamp"]
        first = calendar.timegm(time.strptime(t0[:19],
                                              "%Y-%m-%dT%H:%M:%S"))
        human = time.strftime("%a %d %b %Y %H:%M:%S", time.gmtime(first))
        if not any(human in t for t in texts):
            raise Failure("the title does not say %r: %r"
                          % (human, texts[:2]))
        ticks = [t for t in texts if re.fullmatch(
            r"\d\d:\d\d(:\d\d(\.\d)?)?", t)]
        if len(ticks) < 3:
            raise Failure("the time axis has no clock times: %r" % texts)
        print("title: %r; time axis: %s" % (texts[0], ", ".join(ticks)))
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
