/* SPDX-License-Identifier: MIT */
#ifndef HEAPINSPECT_OUTPUT_H
#define HEAPINSPECT_OUTPUT_H

#include <stdio.h>

#include <jansson.h>

#include "snapshot.h"

/* The snapshot as the JSON object of schema heapinspect/snapshot/v1. */
json_t *hi_snapshot_json(const struct hi_snapshot *s);

/* The ten figures as a JSON object, glibc's names and order. */
json_t *hi_mallinfo_json(const struct hi_mallinfo *m);

/* What happened around an injected call, as a JSON object. */
json_t *hi_call_report_json(const struct hi_call_report *r);

/* Print it, indented, with a newline.  0 or -1 on a write error. */
int hi_print_json(FILE *out, const struct hi_snapshot *s);

/* The report for people; exact prints sizes in bytes. */
void hi_print_text(FILE *out, const struct hi_snapshot *s, int exact);

/*
 * How the allocator was found (heapinspect info, --explain): the libc, its
 * build-id and version, the method that worked and why the ones before it
 * did not, where each address came from and which checks passed.
 */
void hi_print_locate(FILE *out, const struct hi_snapshot *s);

/*
 * Text from the target (its comm, a path) made safe for a terminal, as the
 * text report writes it: control characters, backslashes and bytes that
 * are not UTF-8 as \xHH.  Cut to fit buf; returns buf.
 */
const char *hi_safe_str(const char *str, char *buf, size_t size);

#endif
