/* SPDX-License-Identifier: MIT */
#ifndef HEAPINSPECT_TRIM_H
#define HEAPINSPECT_TRIM_H

/*
 * heapinspect trim -p PID [--pad BYTES] ...: call malloc_trim(pad) in the
 * target and report what it gave back.  argv[0] is "trim".  Returns the exit
 * status.
 */
int hi_trim_main(int argc, char **argv);

#endif
