/* SPDX-License-Identifier: MIT */
/*
 * One snapshot of a live process's allocator: locate, stop, read, resume.
 */
#ifndef HEAPINSPECT_SNAPSHOT_H
#define HEAPINSPECT_SNAPSHOT_H

#include <stdint.h>
#include <time.h>

#include "platform.h"
#include "target.h"

struct hi_snapshot_opts {
	pid_t pid;
	const char *debuginfo_path; /* NULL: elfutils' default */
	unsigned attempts;          /* stops tried while the heap is busy */
	unsigned stop_timeout_ms;   /* for all threads to stop */
	unsigned locate_flags;      /* HI_LOCATE_* */
	const char *cache_dir;      /* the layout cache, NULL: none */
};

struct hi_snapshot {
	pid_t pid;
	char comm[64];
	char exe[4096];
	struct timespec when;       /* CLOCK_REALTIME at the final stop */
	const char *allocator;      /* "glibc" */
	const char *method;         /* "read" */
	char version[32];
	char libc_path[4096];
	char build_id[129];
	char debug_file[4096];
	struct hi_alloc_ctx loc;    /* how the allocator was found; its
				       pointers are cleared */
	struct hi_heap heap;
	int pc_busy;                /* a lone thread stopped inside malloc */
	struct hi_memstat mem;
	uint64_t pause_us;          /* the longest stop */
	uint64_t pause_total_us;    /* all stops together */
	unsigned attempts;
	size_t threads_stopped;
	uint64_t reads;             /* read system calls during the stops */
};

/* Why a snapshot failed, for the message. */
struct hi_snapshot_err {
	int code;
	char detail[4096]; /* build-id, module path, member, address ... */
	pid_t tracer;      /* TracerPid when attaching was refused */
	char state;        /* /proc state of the target */
};

/*
 * Take a snapshot.  Return 0 (s->heap.complete says whether every arena was
 * read), or a negative code with err filled.  The target is always running
 * again, exactly as before, when this returns.
 */
int hi_snapshot_take(const struct hi_snapshot_opts *o, struct hi_snapshot *s,
		     struct hi_snapshot_err *err);

void hi_snapshot_free(struct hi_snapshot *s);

#endif
