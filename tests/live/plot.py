#!/usr/bin/env python3
"""heapinspect plot, rendered: the SVG must be something a person sees.

    plot.py --heapinspect BIN --target BIN [--rsvg-convert PATH]

Watches `hi_target leak` for 2 s, plots the series, renders the SVG with
rsvg-convert (librsvg2-bin; missing is a failure) and decodes the PNG here
(zlib, no imaging library): it must have the declared size, not be blank
(a good share of pixels differ from the white background), and show the
live line's red.

Exit status 0 on pass, 1 on failure.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from hi_live import Failure, Target
from series_util import expect_rc, run


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
    target = Target(args.target, "leak")
    try:
        target.wait_ready()
        series = os.path.join(tmp, "s.jsonl")
        svg = os.path.join(tmp, "s.svg")
        png = os.path.join(tmp, "s.png")
        argv = [hi, "watch", "-p", str(target.pid), "--interval", "100ms",
                "--duration", "2s", "-o", series]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 0, err)
        argv = [hi, "plot", series, "-o", svg]
        rc, _, err = run(argv)
        expect_rc(argv, rc, 0, err)
        res = subprocess.run([rsvg, "-b", "white", "-o", png, svg],
                             capture_output=True, timeout=60)
        if res.returncode != 0:
            raise Failure("rsvg-convert: exit %d: %s"
                          % (res.returncode, res.stderr.decode()))
        with open(png, "rb") as f:
            w, h, rows = decode_png(f.read())
        total = w * h
        ink = red = 0
        for row in rows:
            for i in range(0, len(row), 4):
                r, g, b = row[i], row[i + 1], row[i + 2]
                if (r, g, b) != (255, 255, 255):
                    ink += 1
                if r > 180 and g < 90 and b < 90:
                    red += 1
        print("PNG %dx%d: %d of %d pixels drawn (%.1f%%), %d red"
              % (w, h, ink, total, 100.0 * ink / total, red))
        if (w, h) != (960, 540):
            raise Failure("size %dx%d, expected 960x540" % (w, h))
        if ink < total // 100:
            raise Failure("the picture is nearly blank")
        if red < 200:
            raise Failure("no live line (red) to be seen")
        target.exit()
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        target.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
