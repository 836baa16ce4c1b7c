/* SPDX-License-Identifier: MIT */
/*
 * Metric names follow Prometheus' conventions (prometheus.io, "Metric and
 * label naming"): one prefix, snake_case, base units as suffixes (_bytes,
 * _seconds), gauges for figures that go up and down, an _info metric with
 * value 1 for facts that are strings.  The text is valid both as the
 * Prometheus text format 0.0.4 and as OpenMetrics 1.0 (which ends with
 * "# EOF"; the older parsers read that line as a comment).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openmetrics.h"

/*
 * A label value: backslash, double quote and newline escaped as both
 * formats require.  Bytes outside printable ASCII become '?': comm is
 * whatever the process wrote with prctl(PR_SET_NAME) and need not be
 * UTF-8, which label values must be.
 */
static void put_label(FILE *f, const char *name, const char *v, int first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '\\' || c == '"')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c >= 0x7f)
			fputc('?', f);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void labels2(FILE *f, int pid, const char *comm)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%d", pid);
	put_label(f, "pid", buf, 1);
	put_label(f, "comm", comm, 0);
}

static void labels(FILE *f, const struct hi_snapshot *s)
{
	labels2(f, (int)s->pid, s->comm);
}

static const char up_help[] = "1 while heapinspect reads the process; 0 "
			      "once it has exited.";

char *hi_openmetrics_gone(int pid, const char *comm, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	family(f, "heapinspect_up", up_help);
	fprintf(f, "heapinspect_up{");
	labels2(f, pid, comm);
	fprintf(f, "} 0\n# EOF\n");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

static void gauge_u(FILE *f, const struct hi_snapshot *s, const char *name,
		    const char *help, uint64_t v)
{
	family(f, name, help);
	fprintf(f, "%s{", name);
	labels(f, s);
	fprintf(f, "} %" PRIu64 "\n", v);
}

static void gauge_i(FILE *f, const struct hi_snapshot *s, const char *name,
		    const char *help, int64_t v)
{
	family(f, name, help);
	fprintf(f, "%s{", name);
	labels(f, s);
	fprintf(f, "} %" PRId64 "\n", v);
}

static const struct {
	const char *name;
	const char *help;
	size_t off;
} arena_metrics[] = {
	{ "heapinspect_arena_system_bytes",
	  "Memory the arena has from the system (malloc_state.system_mem).",
	  0 },
	{ "heapinspect_arena_in_use_bytes",
	  "Bytes of the arena in use: system_mem less its free bytes.", 1 },
	{ "heapinspect_arena_free_bytes",
	  "Free bytes the arena keeps: top, bins and fastbins.", 2 },
};

char *hi_openmetrics(const struct hi_snapshot *s, size_t *len)
{
	const struct hi_mallinfo *m = &s->heap.mi;
	char *buf = NULL, ts[32];
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	gauge_u(f, s, "heapinspect_up", up_help, 1);
	family(f, "heapinspect_info", "The process and its allocator; the "
	       "value is always 1.");
	fprintf(f, "heapinspect_info{");
	labels(f, s);
	put_label(f, "allocator", s->allocator ? s->allocator : "", 0);
	put_label(f, "version", s->version, 0);
	put_label(f, "method", s->method ? s->method : "", 0);
	fprintf(f, "} 1\n");
	snprintf(ts, sizeof(ts), "%lld.%06ld", (long long)s->when.tv_sec,
		 s->when.tv_nsec / 1000);
	family(f, "heapinspect_snapshot_timestamp_seconds",
	       "When the process was stopped for the snapshot, in seconds "
	       "since the epoch.");
	fprintf(f, "heapinspect_snapshot_timestamp_seconds{");
	labels(f, s);
	fprintf(f, "} %s\n", ts);
	gauge_u(f, s, "heapinspect_snapshot_consistent", "1 when every arena "
		"was read; 0 when one was busy or corrupt and the mallinfo2 "
		"metrics are left out.", s->heap.complete ? 1 : 0);
	family(f, "heapinspect_pause_seconds", "The longest time the process "
	       "was held stopped for this snapshot.");
	fprintf(f, "heapinspect_pause_seconds{");
	labels(f, s);
	fprintf(f, "} %" PRIu64 ".%06" PRIu64 "\n", s->pause_us / 1000000,
		s->pause_us % 1000000);
	if (s->heap.complete) {
		gauge_u(f, s, "heapinspect_live_bytes", "Bytes in live "
			"allocations: mallinfo2 uordblks + hblkhd.",
			m->uordblks + m->hblkhd);
		gauge_u(f, s, "heapinspect_heap_bytes", "Memory malloc has "
			"from the system: mallinfo2 arena + hblkhd.",
			m->arena + m->hblkhd);
		gauge_u(f, s, "heapinspect_system_bytes", "Memory of the "
			"arenas from the system (mallinfo2 arena).", m->arena);
		gauge_u(f, s, "heapinspect_in_use_bytes", "Bytes in use in "
			"the arenas (mallinfo2 uordblks).", m->uordblks);
		gauge_u(f, s, "heapinspect_free_bytes", "Free bytes kept by "
			"malloc, the free-retained memory (mallinfo2 "
			"fordblks).", m->fordblks);
		gauge_u(f, s, "heapinspect_fastbin_free_bytes", "Free bytes "
			"in fastbins (mallinfo2 fsmblks).", m->fsmblks);
		gauge_u(f, s, "heapinspect_releasable_top_bytes", "Size of "
			"the main arena's top chunk (mallinfo2 keepcost).",
			m->keepcost);
		gauge_u(f, s, "heapinspect_mmapped_bytes", "Bytes in chunks "
			"served by mmap (mallinfo2 hblkhd).", m->hblkhd);
		gauge_u(f, s, "heapinspect_free_chunks", "Free chunks in the "
			"bins, tops included (mallinfo2 ordblks).",
			m->ordblks);
		gauge_u(f, s, "heapinspect_fastbin_free_chunks", "Free chunks "
			"in fastbins (mallinfo2 smblks).", m->smblks);
		gauge_u(f, s, "heapinspect_mmapped_chunks", "Chunks served by "
			"mmap (mallinfo2 hblks).", m->hblks);
		if (s->mem.valid)
			gauge_i(f, s, "heapinspect_outside_heap_bytes",
				"RSS less the heap (arena + hblkhd); may be "
				"negative, see the README.",
				(int64_t)s->mem.rss -
				(int64_t)(m->arena + m->hblkhd));
	}
	if (s->mem.valid) {
		gauge_u(f, s, "heapinspect_rss_bytes", "Resident set size "
			"(smaps_rollup Rss).", s->mem.rss);
		gauge_u(f, s, "heapinspect_pss_bytes", "Proportional set size "
			"(smaps_rollup Pss).", s->mem.pss);
		gauge_u(f, s, "heapinspect_uss_bytes", "Unique set size: "
			"private clean + private dirty.", s->mem.uss);
		gauge_u(f, s, "heapinspect_swap_bytes", "Swapped out "
			"(smaps_rollup Swap).", s->mem.swap);
	}
	/* One family at a time: each metric's samples stay together. */
	for (size_t k = 0; k < 3; k++) {
		int any = 0;

		for (size_t i = 0; i < s->heap.narenas; i++) {
			const struct hi_arena *a = &s->heap.arenas[i];
			uint64_t fr = a->top_size + a->fast_bytes +
				      a->bin_bytes, v;
			char addr[32];

			if (a->status)
				continue;
			if (!any)
				family(f, arena_metrics[k].name,
				       arena_metrics[k].help);
			any = 1;
			v = arena_metrics[k].off == 0 ? a->system_mem :
			    arena_metrics[k].off == 1 ? a->system_mem - fr : fr;
			snprintf(addr, sizeof(addr), "0x%" PRIx64, a->addr);
			fprintf(f, "%s{", arena_metrics[k].name);
			labels(f, s);
			put_label(f, "arena", addr, 0);
			put_label(f, "kind", a->is_main ? "main" : "thread", 0);
			fprintf(f, "} %" PRIu64 "\n", v);
		}
	}
	fputs("# EOF\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}
