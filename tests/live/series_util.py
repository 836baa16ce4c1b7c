"""Helpers of the series tests (watch, diff, trend, plot): running a
heapinspect subcommand and glibc's chunk size rule, written from glibc's
source, not from heapinspect."""

import subprocess

from hi_live import Failure


def run(argv, timeout=120, stdin=subprocess.DEVNULL):
    """Run argv; return (exit status, stdout, stderr as text)."""
    try:
        res = subprocess.run(argv, stdin=stdin, capture_output=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("%s: no result within %d s" % (" ".join(argv),
                                                     timeout)) from None
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def expect_rc(argv, rc, want, err):
    if rc != want:
        raise Failure("%s: exit status %d, expected %d\n  stderr: %s"
                      % (" ".join(argv), rc, want, err.strip() or "(empty)"))


# x86_64: SIZE_SZ 8, MALLOC_ALIGNMENT 16, MINSIZE 32 (malloc.c).
SIZE_SZ = 8
MALLOC_ALIGN_MASK = 15
MINSIZE = 32


def request2size(n):
    """glibc's request2size(): the chunk that malloc(n) takes."""
    if n + SIZE_SZ + MALLOC_ALIGN_MASK < MINSIZE:
        return MINSIZE
    return (n + SIZE_SZ + MALLOC_ALIGN_MASK) & ~MALLOC_ALIGN_MASK
