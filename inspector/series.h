/* SPDX-License-Identifier: MIT */
/*
 * Snapshots read back from files: one JSON document (heapinspect snapshot
 * -o, or --json) or JSON Lines (heapinspect watch).  The files are input
 * from anywhere: every field is checked before it is used.
 */
#ifndef HEAPINSPECT_SERIES_H
#define HEAPINSPECT_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "heapinspect/hi.h"
#include "procid.h"

#define HI_SNAPSHOT_SCHEMA "heapinspect/snapshot/v1"
#define HI_EVENT_SCHEMA "heapinspect/event/v1"

/*
 * Figures larger than this are refused: 2^53 bytes (8 PiB) is more than any
 * process has, and every figure up to it is exact as a double, which the
 * slopes and the plot use.
 */
#define HI_FIGURE_MAX ((uint64_t)1 << 53)

/* mallinfo2's fields, in glibc's order (struct mallinfo2, malloc.h). */
enum hi_mi_field {
	HI_MI_ARENA,
	HI_MI_ORDBLKS,
	HI_MI_SMBLKS,
	HI_MI_HBLKS,
	HI_MI_HBLKHD,
	HI_MI_USMBLKS,
	HI_MI_FSMBLKS,
	HI_MI_UORDBLKS,
	HI_MI_FORDBLKS,
	HI_MI_KEEPCOST,
	HI_MI_N
};

extern const char *const hi_mi_names[HI_MI_N];

struct hi_sample_arena {
	hi_addr_t addr;
	int is_main;
	int ok;                 /* state "ok": the figures below were read */
	char state[16];
	uint64_t system_mem;
	uint64_t in_use;
	uint64_t free_bytes;
};

enum { HI_PROC_RSS, HI_PROC_PSS, HI_PROC_USS, HI_PROC_SWAP, HI_PROC_N };

struct hi_sample {
	unsigned long line;     /* 1-based line of the file */
	unsigned seg;           /* its segment: 0 for the file's first
				   process, one more at each restart */
	struct hi_proc_id id;   /* pid; id.known when the line gives
				   start_ticks and boot_id */
	char comm[64];
	char exe[512];          /* cut to fit; only compared */
	char timestamp[40];
	double t;               /* seconds since the epoch, from timestamp */
	char version[32];
	char method[16];
	int consistent;
	int has_mi;             /* mallinfo2 is an object, not null */
	uint64_t mi[HI_MI_N];
	int has_proc[HI_PROC_N];
	uint64_t proc[HI_PROC_N];
	uint64_t mmap_chunks, mmap_bytes;
	uint64_t pause_us;
	struct hi_sample_arena *arenas;
	size_t narenas;
};

/*
 * An event line (heapinspect/event/v1): the process exited, a sample
 * failed, watch found the process that a unit, pid file or name names
 * ("resolved": at the start of a watch that follows one, and after each
 * restart).
 */
struct hi_series_event {
	unsigned long line;
	double t;               /* seconds since the epoch; -1 unknown */
	struct hi_proc_id id;   /* the process: id.pid 0 unknown; id.known
				   when it gives start_ticks and boot_id */
	char event[16];         /* "exited", "error", "resolved", ... */
	char source[320];       /* resolved: "unit nginx.service", "pid
				   file /run/x.pid", "name 'x'"; "" */
	char message[160];
	int restart;            /* an exited or resolved line that records
				   the change to the next segment */
};

/*
 * What a series is made of: the snapshots, in file order, one segment per
 * process.  A file holds one process, or several one after another where
 * heapinspect watch recorded each restart (hi_series_read): after the
 * last snapshot of one process, an "exited" event line of that process,
 * then a "resolved" event line of the next, before its first snapshot.
 */
struct hi_series {
	struct hi_sample *v;
	size_t n;
	size_t segments;        /* processes: 1 + the restarts (0 when n
				   is 0) */
	struct hi_series_event *ev; /* the event lines, in file order */
	size_t events;          /* heapinspect/event/v1 lines */
	int exited;             /* an event line says the target exited */
	int single;             /* the file was one JSON document */
	int cut_last;           /* an unfinished last line was left out */
	unsigned long cut_line;
};

/* Why a file could not be read. */
struct hi_series_err {
	int code;               /* -errno, -E2BIG, -EINVAL (bad content) */
	unsigned long line;     /* 0: not about a line */
	char msg[512];
};

/*
 * Read every snapshot of path.  keep_arenas: keep the per-arena figures
 * (diff needs them; trend and plot do not).  A file whose first line is a
 * lone "{" is one JSON document (as --json and snapshot -o write it); any
 * other file is JSON Lines, one snapshot per line; blank lines are
 * skipped, and so is an unterminated last line that does not parse (what
 * a writer killed in the middle of a line leaves).  A snapshot of another
 * process than the one before it is refused (-EINVAL, the line named)
 * unless the file records a restart between them (struct hi_series): it
 * then begins the next segment.  Return 0, or a negative code with err
 * filled; out is then empty.  Free out with
 * hi_series_free().
 */
int hi_series_read(const char *path, int keep_arenas, struct hi_series *out,
		   struct hi_series_err *err);

void hi_series_free(struct hi_series *s);

/*
 * Segment k of s: the index of its first snapshot in s->v and how many it
 * has (snapshots of one segment are contiguous).  0, or -1 when there is
 * no segment k.
 */
int hi_series_segment(const struct hi_series *s, unsigned k, size_t *first,
		      size_t *n);

/*
 * One snapshot from its JSON object.  Return 0 or -EINVAL with why filled
 * (which key, what is wrong); 1 for an event line (not a snapshot).
 */
int hi_sample_from_json(json_t *o, int keep_arenas, struct hi_sample *out,
			char *why, size_t size);

void hi_sample_free(struct hi_sample *s);

/*
 * Whether a and b are snapshots of one process: the same pid, and, where
 * both say, the same executable, start time and boot (a pid the kernel
 * gave to another process, or a process that executed another program,
 * is another).  Return 1, or 0 with why filled: what b is, against a
 * ("pid 456 (b), not pid 123 (a)").
 */
int hi_sample_same_process(const struct hi_sample *a,
			   const struct hi_sample *b, char *why, size_t size);

/* Derived figures, defined in the README. */
static inline uint64_t hi_live_bytes(const struct hi_sample *s)
{
	return s->mi[HI_MI_UORDBLKS] + s->mi[HI_MI_HBLKHD];
}

static inline uint64_t hi_heap_bytes(const struct hi_sample *s)
{
	return s->mi[HI_MI_ARENA] + s->mi[HI_MI_HBLKHD];
}

#endif
