/* SPDX-License-Identifier: MIT */
/*
 * One snapshot of a live process's allocator: locate, stop, read, resume.
 */
#ifndef HEAPINSPECT_SNAPSHOT_H
#define HEAPINSPECT_SNAPSHOT_H

#include <stdint.h>
#include <time.h>

#include "call.h"
#include "platform.h"
#include "procid.h"
#include "target.h"

/* How the figures are had: --method. */
enum hi_method {
	HI_METHOD_AUTO = 0, /* read memory where possible, else call */
	HI_METHOD_READ,     /* read the allocator's memory */
	HI_METHOD_CALL,     /* call the target's own mallinfo2() */
};

struct hi_snapshot_opts {
	pid_t pid;
	const char *debuginfo_path; /* NULL: elfutils' default */
	unsigned attempts;          /* stops tried while the heap is busy */
	unsigned stop_timeout_ms;   /* for all threads to stop */
	int method;                 /* enum hi_method */
	unsigned timeout_ms;        /* --timeout: for a safe moment to call */
	unsigned locate_flags;      /* HI_LOCATE_* */
	const char *cache_dir;      /* the layout cache, NULL: none */
	struct hi_proc_id only;     /* when only.known: only this process
				       (its pid is pid), not a later one
				       that got its pid */
};

/*
 * Fill o with the defaults of the command line: every way of locating the
 * allocator, the layout cache when a cache directory can be named (cache_dir
 * is the caller's buffer for its path), read where possible and call where
 * not.
 */
void hi_snapshot_opts_default(struct hi_snapshot_opts *o, pid_t pid,
			      char *cache_dir, size_t cache_dir_size);

struct hi_snapshot {
	pid_t pid;
	char comm[64];
	char exe[4096];
	struct hi_proc_id id;       /* who it is: start time and boot when
				       id.known */
	struct timespec when;       /* CLOCK_REALTIME at the final stop */
	const char *allocator;      /* "glibc" */
	const char *method;         /* "read" or "call" */
	const char *method_why;     /* why auto chose it, or NULL */
	char method_why_buf[2048];  /* ... when made for this snapshot */
	int called;                 /* the figures come from a call */
	int call_refused;           /* --method call refused: the heap is
				       corrupt where mallinfo2() walks (the
				       figures are the read's) */
	struct hi_call_report call;
	int call_wraps;             /* mallinfo(): int fields, they wrap */
	int read_agrees;            /* call and memory agree: 1, 0, -1 n/a */
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
	size_t threads_in_kernel;   /* of those, held asleep in the kernel */
	size_t sharers_held;        /* children of vfork() held too */
	uint64_t reads;             /* read system calls during the stops */
};

/* Why a snapshot failed, for the message. */
struct hi_snapshot_err {
	int code;
	char detail[4096]; /* build-id, module path, member, address ... */
	pid_t tracer;      /* TracerPid when attaching was refused */
	char state;        /* /proc state of the target */
	struct hi_stop_why stop; /* -EPERM, -ETIMEDOUT: the thread that could
				    not be held, and why */
};

/*
 * Whether pid runs a program heapinspect can read, from its executable's
 * ELF headers: -HI_E_UNSUPPORTED for another architecture or word size
 * than the host's, or a musl program; -HI_E_STATIC for a statically
 * linked one (glibc or not: said in detail), which is refused only when
 * no glibc libc.so is found in it after all; 0 otherwise, and when the
 * executable cannot be read.  detail: what the program is and why it
 * cannot be read ("is a 32-bit x86 (i386) program: heapinspect reads
 * x86_64 processes only"), to follow "pid N (comm) ".
 */
int hi_exe_check(pid_t pid, char *detail, size_t size);

/*
 * Take a snapshot.  Return 0 (s->heap.complete says whether every arena was
 * read), or a negative code with err filled.  The target is always running
 * again, exactly as before, when this returns: it is taken in a session of
 * its own (hi_target_session), which nothing outlives.  With --method call,
 * -HI_E_UNSOUND: the call was refused and s holds the read's snapshot.
 */
int hi_snapshot_take(const struct hi_snapshot_opts *o, struct hi_snapshot *s,
		     struct hi_snapshot_err *err);

void hi_snapshot_free(struct hi_snapshot *s);

/*
 * The snapshot's figures from a call of the target's own mallinfo2()
 * (mallinfo() before glibc 2.33), with the arenas read from memory first in
 * the same stop when located is set.  For hi_snapshot_take, after probe and
 * locate.  Return 0 or a negative code; the target is running again.
 * -HI_E_UNSOUND: the read found the heap corrupt where mallinfo2() would
 * walk, so nothing was called; s holds the read (call_refused set).
 */
int hi_snapshot_by_call(const struct hi_snapshot_opts *o,
			struct hi_snapshot *s, struct hi_alloc_ctx *ctx,
			const struct hi_allocator_ops *ops, int located);

#endif
