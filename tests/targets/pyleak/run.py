"""A Python service with native leaks (pyleak), waiting to be read.

Usage: PYTHONPATH=<where pyleak was built> python3 run.py [N] [BYTES]

Calls pyleak.leak32(N) and pyleak.forget_decref(BYTES), writes what
valgrind must find (the protocol of tests/live/vg_leaks.py) and the
addresses of the lost blocks, then "ready pid=<pid>", and waits for
"exit" on stdin.  Under valgrind (PYTHONMALLOC=malloc) it asks memcheck
for a leak check first and writes "checked".
"""
import os
import sys

import pyleak

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
# 256 KiB: above glibc's mmap threshold (an mmapped chunk natively).  Not
# 1 MiB: under valgrind's address layout a block that large covers the
# value of words in Python's static data (who_points_at shows them), and
# valgrind calls it possibly lost.
size = int(sys.argv[2]) if len(sys.argv) > 2 else 256 << 10
addrs = pyleak.leak32(n)
lost = pyleak.forget_decref(size)
out = ["expect definite 32 %d leak32" % n]
out += ["leak32 0x%x" % a for a in addrs]
out.append("bytes_object 0x%x %d" % (lost, size))
# the object's header (sys.getsizeof(b"")) and its bytes, in one block
out.append("expect definite %d 1 forget_decref" % (sys.getsizeof(b"") + size))
out.append("expect_type definite bytes 1")
out.append("ready pid=%d" % os.getpid())
sys.stdout.write("\n".join(out) + "\n")
sys.stdout.flush()
del addrs
if pyleak.do_leak_check():
    sys.stdout.write("checked\n")
    sys.stdout.flush()
for line in sys.stdin:
    if line.strip() == "exit":
        break
