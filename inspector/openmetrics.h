/* SPDX-License-Identifier: MIT */
/*
 * A snapshot in the Prometheus / OpenMetrics text format, for
 * node_exporter's textfile collector.
 */
#ifndef HEAPINSPECT_OPENMETRICS_H
#define HEAPINSPECT_OPENMETRICS_H

#include <stddef.h>

#include "snapshot.h"

/*
 * The metrics of s as text (README: "OpenMetrics").  Return a malloc'ed
 * NUL-terminated string with *len set, or NULL when out of memory.
 */
char *hi_openmetrics(const struct hi_snapshot *s, size_t *len);

/*
 * What replaces the metrics once the process has exited: heapinspect_up 0
 * with its pid and comm, so that the textfile collector stops exporting
 * the last figures as if they were current.  As hi_openmetrics().
 */
char *hi_openmetrics_gone(int pid, const char *comm, size_t *len);

#endif
