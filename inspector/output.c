/* SPDX-License-Identifier: MIT */
/*
 * A snapshot as text for people and as JSON (jansson) for scripts.  Every
 * figure printed is one that was read; what could not be read is absent
 * (null in JSON), never guessed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "output.h"

#define SCHEMA "heapinspect/snapshot/v1"

/* RFC 3339 in UTC with microseconds: 2026-11-21T22:02:18.123456Z. */
static void rfc3339(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	char base[32];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%06ldZ", base, ts->tv_nsec / 1000);
}

/*
 * A string taken from the target (its name, paths in its mappings): any
 * bytes at all.  jansson escapes control characters and quotes; bytes that
 * are not UTF-8 it cannot write, so they become the text \xHH.
 */
static json_t *target_str(const char *s)
{
	json_t *j = json_string(s);
	char *buf;
	size_t n = 0;

	if (j)
		return j;
	buf = malloc(strlen(s) * 4 + 1);
	if (!buf)
		return json_null();
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x80)
			n += sprintf(buf + n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	j = json_string(buf);
	free(buf);
	return j ? j : json_null();
}

static void hex(hi_addr_t a, char *buf, size_t size)
{
	snprintf(buf, size, "0x%" PRIx64, a);
}

static json_t *jint(uint64_t v)
{
	/* JSON integers in jansson are signed 64-bit; no figure comes near. */
	return json_integer((json_int_t)v);
}

static const char *arena_state(const struct hi_arena *a)
{
	switch (a->status) {
	case 0:
		return "ok";
	case -HI_E_BUSY:
		return "busy";
	case -HI_E_CORRUPT:
		return "corrupt";
	default:
		return "unreadable";
	}
}

static json_t *arena_json(const struct hi_arena *a)
{
	json_t *o = json_object();
	char addr[32];

	hex(a->addr, addr, sizeof(addr));
	json_object_set_new(o, "address", json_string(addr));
	json_object_set_new(o, "main", json_boolean(a->is_main));
	json_object_set_new(o, "state", json_string(arena_state(a)));
	if (a->status) {
		if (a->status == -HI_E_CORRUPT) {
			hex(a->bad_addr, addr, sizeof(addr));
			json_object_set_new(o, "error", json_string(a->why));
			json_object_set_new(o, "error_address",
					    json_string(addr));
		} else {
			json_object_set_new(o, "error",
					    json_string(hi_strerror(a->status)));
		}
		return o;
	}
	json_object_set_new(o, "system_mem", jint(a->system_mem));
	json_object_set_new(o, "max_system_mem", jint(a->max_system_mem));
	json_object_set_new(o, "top_size", jint(a->top_size));
	json_object_set_new(o, "free_bytes",
			    jint(a->top_size + a->fast_bytes + a->bin_bytes));
	/* Free chunks on the lists; top is in free_bytes, not here. */
	json_object_set_new(o, "free_chunks",
			    jint(a->bin_chunks + a->fast_chunks));
	json_object_set_new(o, "fast_bytes", jint(a->fast_bytes));
	json_object_set_new(o, "fast_chunks", jint(a->fast_chunks));
	json_object_set_new(o, "bin_bytes", jint(a->bin_bytes));
	json_object_set_new(o, "bin_chunks", jint(a->bin_chunks));
	json_object_set_new(o, "in_use_bytes",
			    jint(a->system_mem - a->top_size - a->fast_bytes -
				 a->bin_bytes));
	json_object_set_new(o, "attached_threads",
			    a->has_attached_threads ? jint(a->attached_threads)
						    : json_null());
	return o;
}

static json_t *mallinfo_json(const struct hi_mallinfo *m)
{
	json_t *o = json_object();

	/* glibc's order and names (struct mallinfo2, malloc.h). */
	json_object_set_new(o, "arena", jint(m->arena));
	json_object_set_new(o, "ordblks", jint(m->ordblks));
	json_object_set_new(o, "smblks", jint(m->smblks));
	json_object_set_new(o, "hblks", jint(m->hblks));
	json_object_set_new(o, "hblkhd", jint(m->hblkhd));
	json_object_set_new(o, "usmblks", jint(m->usmblks));
	json_object_set_new(o, "fsmblks", jint(m->fsmblks));
	json_object_set_new(o, "uordblks", jint(m->uordblks));
	json_object_set_new(o, "fordblks", jint(m->fordblks));
	json_object_set_new(o, "keepcost", jint(m->keepcost));
	return o;
}

static const char *const rank_names[] = {
	[HI_HOST_NO] = "none",
	[HI_HOST_RESTARTBLOCK] = "sleeping (restart_block)",
	[HI_HOST_USER] = "running its own code",
	[HI_HOST_SYSCALL] = "blocked in a system call",
};

json_t *hi_mallinfo_json(const struct hi_mallinfo *m)
{
	return mallinfo_json(m);
}

json_t *hi_call_report_json(const struct hi_call_report *r)
{
	json_t *o = json_object(), *sys = json_object();

	json_object_set_new(o, "function", json_string(r->function));
	json_object_set_new(o, "thread", json_integer(r->thread));
	json_object_set_new(o, "thread_was",
			    json_string(rank_names[r->host_rank]));
	json_object_set_new(o, "attempts", jint(r->attempts));
	json_object_set_new(o, "waited_us", jint(r->waited_us));
	json_object_set_new(o, "call_us", jint(r->call_us));
	json_object_set_new(o, "locks_checked",
			    json_boolean(r->locks_checked));
	json_object_set_new(o, "stacks_checked",
			    json_boolean(r->stacks_checked));
	json_object_set_new(o, "signals_held", jint(r->signals_held));
	for (int i = 0; i < HI_CALL_MAX_SYSCALLS && r->syscalls[i].name; i++)
		json_object_set_new(sys, r->syscalls[i].name,
				    jint(r->syscalls[i].count));
	if (r->nsyscalls_other)
		json_object_set_new(sys, "other", jint(r->nsyscalls_other));
	json_object_set_new(o, "syscalls", sys);
	return o;
}

static json_t *call_json(const struct hi_snapshot *s)
{
	json_t *o = hi_call_report_json(&s->call);

	json_object_set_new(o, "agrees_with_memory",
			    s->read_agrees < 0 ? json_null()
					       : json_boolean(s->read_agrees));
	if (s->call_wraps)
		json_object_set_new(o, "note", json_string(
			"mallinfo() of glibc before 2.33: its fields are int "
			"and wrap above 2 GiB; shown as unsigned 32-bit"));
	return o;
}

static json_t *locate_json(const struct hi_alloc_ctx *l)
{
	json_t *o = json_object(), *checks = json_array(), *tried;
	char a[32];

	tried = json_array();
	for (unsigned i = 0; i < l->ntried; i++)
		json_array_append_new(tried, target_str(l->tried[i]));
	json_object_set_new(o, "tried", tried);
	json_object_set_new(o, "table", l->table[0] ? json_string(l->table)
						    : json_null());
	json_object_set_new(o, "table_proven", l->table[0]
				    ? json_boolean(!l->table_mapped)
				    : json_null());
	json_object_set_new(o, "tables", l->tables[0] ? json_string(l->tables)
						      : json_null());
	json_object_set_new(o, "from_cache", json_boolean(l->from_cache));
	json_object_set_new(o, "cache_note", l->cache_note[0]
		? target_str(l->cache_note) : json_null());
	hex(l->main_arena, a, sizeof(a));
	json_object_set_new(o, "main_arena", json_pack("{s:s,s:s%}",
		"address", a, "how", l->main_arena_how,
		strlen(l->main_arena_how)));
	hex(l->mp, a, sizeof(a));
	json_object_set_new(o, "mp_", json_pack("{s:s,s:s%}", "address", a,
		"how", l->mp_how, strlen(l->mp_how)));
	for (unsigned i = 0; i < l->nchecks; i++)
		json_array_append_new(checks, json_pack("{s:s,s:b,s:s%}",
			"name", l->checks[i].name, "ok", l->checks[i].ok,
			"detail", l->checks[i].detail,
			strlen(l->checks[i].detail)));
	json_object_set_new(o, "checks", checks);
	json_object_set_new(o, "verified", json_boolean(l->verified));
	return o;
}

json_t *hi_snapshot_json(const struct hi_snapshot *s)
{
	json_t *o = json_object(), *alloc, *arenas, *proc, *pause;
	char ts[64];

	rfc3339(&s->when, ts, sizeof(ts));
	json_object_set_new(o, "schema", json_string(SCHEMA));
	json_object_set_new(o, "pid", json_integer(s->pid));
	json_object_set_new(o, "timestamp", json_string(ts));
	/* Strings from the target may hold any byte: jansson escapes them. */
	json_object_set_new(o, "exe", target_str(s->exe));
	json_object_set_new(o, "comm", target_str(s->comm));
	/* Who the process is beyond its pid, which the kernel reuses. */
	if (s->id.known && s->id.boot_id[0]) {
		json_object_set_new(o, "start_ticks", jint(s->id.start_ticks));
		json_object_set_new(o, "boot_id", json_string(s->id.boot_id));
	}

	alloc = json_object();
	json_object_set_new(alloc, "name", json_string(s->allocator));
	json_object_set_new(alloc, "version", json_string(s->version));
	json_object_set_new(alloc, "method", json_string(s->method));
	if (s->method_why)
		json_object_set_new(alloc, "method_reason",
				    json_string(s->method_why));
	if (s->called)
		json_object_set_new(alloc, "call", call_json(s));
	if (s->call_refused)
		json_object_set_new(alloc, "call_refused", json_string(
			"the heap is corrupt where mallinfo2() would walk: "
			"nothing was called"));
	json_object_set_new(alloc, "located_by",
			    s->loc.located_by ? json_string(s->loc.located_by)
					      : json_null());
	json_object_set_new(alloc, "libc", target_str(s->libc_path));
	json_object_set_new(alloc, "build_id", json_string(s->build_id));
	json_object_set_new(alloc, "debuginfo",
			    target_str(s->debug_file));
	json_object_set_new(alloc, "locate", locate_json(&s->loc));
	json_object_set_new(o, "allocator", alloc);

	json_object_set_new(o, "consistent", json_boolean(s->heap.complete));
	json_object_set_new(o, "mallinfo2", s->heap.complete
					    ? mallinfo_json(&s->heap.mi)
					    : json_null());
	arenas = json_array();
	for (size_t i = 0; i < s->heap.narenas; i++)
		json_array_append_new(arenas, arena_json(&s->heap.arenas[i]));
	json_object_set_new(o, "arenas", arenas);

	json_object_set_new(o, "mmap", json_pack("{s:I,s:I,s:I}",
		"chunks", (json_int_t)s->heap.n_mmaps,
		"bytes", (json_int_t)s->heap.mmapped_mem,
		"max_bytes", (json_int_t)s->heap.max_mmapped_mem));

	proc = json_object();
	if (s->mem.valid) {
		json_object_set_new(proc, "rss", jint(s->mem.rss));
		json_object_set_new(proc, "pss", jint(s->mem.pss));
		json_object_set_new(proc, "uss", jint(s->mem.uss));
		json_object_set_new(proc, "swap", jint(s->mem.swap));
	} else {
		json_object_set_new(proc, "rss", json_null());
		json_object_set_new(proc, "pss", json_null());
		json_object_set_new(proc, "uss", json_null());
		json_object_set_new(proc, "swap", json_null());
	}
	json_object_set_new(proc, "threads", jint(s->threads_stopped));
	json_object_set_new(o, "process", proc);

	json_object_set_new(o, "pause_us", jint(s->pause_us));
	pause = json_pack("{s:I,s:I,s:I,s:I}", "attempts",
			  (json_int_t)s->attempts, "total_us",
			  (json_int_t)s->pause_total_us, "in_kernel",
			  (json_int_t)s->threads_in_kernel, "vfork_children",
			  (json_int_t)s->sharers_held);
	json_object_set_new(o, "stop", pause);
	return o;
}

int hi_print_json(FILE *out, const struct hi_snapshot *s)
{
	json_t *o = hi_snapshot_json(s);
	int ret;

	if (!o)
		return -1;
	ret = json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (ret == 0)
		ret = fputc('\n', out) == EOF ? -1 : 0;
	json_decref(o);
	return ret;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
	int n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond Unicode, and the C1 controls. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/*
 * Text from the target (comm, paths) with control characters, backslashes
 * and bytes that are not UTF-8 escaped as \xHH, so that a target cannot
 * write to the terminal.
 */
static void put_safe(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		int n = utf8_len(s);

		if (n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f ||
					  *s == '\\'))) {
			fprintf(out, "\\x%02x", *s++);
			continue;
		}
		fwrite(s, 1, n, out);
		s += n;
	}
}

const char *hi_safe_str(const char *str, char *buf, size_t size)
{
	FILE *f = fmemopen(buf, size, "w");

	if (!f) {
		snprintf(buf, size, "?");
		return buf;
	}
	/* Full buffer: fmemopen keeps the last byte for the NUL. */
	setbuf(f, NULL);
	put_safe(f, str);
	fclose(f);
	buf[size - 1] = '\0';
	return buf;
}

void hi_print_text(FILE *out, const struct hi_snapshot *s, int exact)
{
	const struct hi_mallinfo *m = &s->heap.mi;
	char a[32], b[32], c[32], d[32], e[32];

	fprintf(out, "pid %d (", (int)s->pid);
	put_safe(out, s->comm);
	fprintf(out, ") ");
	put_safe(out, s->exe);
	if (s->called)
		fprintf(out, "\nallocator: %s %s, %s() called in thread %d, "
			"%zu arena%s read\n", s->allocator, s->version,
			s->call.function, (int)s->call.thread,
			s->heap.narenas, s->heap.narenas == 1 ? "" : "s");
	else
		fprintf(out, "\nallocator: %s %s, read from memory, %zu "
			"arena%s, located by %s%s\n", s->allocator,
			s->version, s->heap.narenas,
			s->heap.narenas == 1 ? "" : "s",
			s->loc.located_by ? s->loc.located_by : "?",
			s->loc.from_cache ? " (layout cache)" : "");
	if (s->method_why)
		fprintf(out, "method:    call: %s\n", s->method_why);
	if (s->call_refused)
		fprintf(out, "method:    read: mallinfo2() was not called, the "
			"heap is corrupt where it would walk\n");
	if (s->call_wraps)
		fprintf(out, "note:      mallinfo() of glibc before 2.33: int "
			"fields, they wrap above 2 GiB\n");
	if (s->called && s->read_agrees == 0)
		fprintf(out, "note:      the figures read from memory differ "
			"from the call's\n");
	fprintf(out, "paused:    %" PRIu64 " us (%zu thread%s, %u attempt%s)\n",
		s->pause_us, s->threads_stopped,
		s->threads_stopped == 1 ? "" : "s", s->attempts,
		s->attempts == 1 ? "" : "s");
	if (s->mem.valid) {
		fprintf(out, "process:   rss %s  pss %s  uss %s  swap %s\n",
			hi_bytes_str(s->mem.rss, exact, a, sizeof(a)),
			hi_bytes_str(s->mem.pss, exact, b, sizeof(b)),
			hi_bytes_str(s->mem.uss, exact, c, sizeof(c)),
			hi_bytes_str(s->mem.swap, exact, d, sizeof(d)));
	}
	fputc('\n', out);
	if (s->heap.complete) {
		fprintf(out, "mallinfo2\n");
		fprintf(out, "  arena     %14s  memory from the system (brk and "
			"arena heaps)\n", hi_bytes_str(m->arena, exact, a, 32));
		fprintf(out, "  uordblks  %14s  in use (tcache counts as in "
			"use)\n", hi_bytes_str(m->uordblks, exact, a, 32));
		fprintf(out, "  fordblks  %14s  free, kept by malloc\n",
			hi_bytes_str(m->fordblks, exact, a, 32));
		fprintf(out, "  fsmblks   %14s  free in fastbins\n",
			hi_bytes_str(m->fsmblks, exact, a, 32));
		fprintf(out, "  keepcost  %14s  top of the main arena, "
			"releasable\n", hi_bytes_str(m->keepcost, exact, a, 32));
		fprintf(out, "  hblkhd    %14s  in mmapped chunks\n",
			hi_bytes_str(m->hblkhd, exact, a, 32));
		fprintf(out, "  ordblks   %14" PRIu64 "  free chunks\n",
			m->ordblks);
		fprintf(out, "  smblks    %14" PRIu64 "  free fastbin chunks\n",
			m->smblks);
		fprintf(out, "  hblks     %14" PRIu64 "  mmapped chunks\n",
			m->hblks);
		fprintf(out, "  usmblks   %14" PRIu64 "  (always 0)\n",
			m->usmblks);
	} else {
		fprintf(out, "mallinfo2: not shown: the snapshot is not "
			"consistent (see the arenas below)\n");
	}
	fprintf(out, "\n%-16s %-5s %7s %11s %11s %11s %11s %9s\n", "arena",
		"kind", "threads", "system", "in use", "free", "top",
		"free blks");
	for (size_t i = 0; i < s->heap.narenas; i++) {
		const struct hi_arena *ar = &s->heap.arenas[i];
		uint64_t freeb = ar->top_size + ar->fast_bytes + ar->bin_bytes;
		char th[24];

		if (ar->status) {
			fprintf(out, "0x%-14" PRIx64 " %-5s %s", ar->addr,
				ar->is_main ? "main" : "", arena_state(ar));
			if (ar->status == -HI_E_CORRUPT)
				fprintf(out, ": %s", ar->why);
			else if (ar->status == -HI_E_BUSY)
				fprintf(out, ": held by the target in every "
					"attempt, not read");
			fputc('\n', out);
			continue;
		}
		if (ar->has_attached_threads)
			snprintf(th, sizeof(th), "%" PRIu64,
				 ar->attached_threads);
		else
			snprintf(th, sizeof(th), "-");
		fprintf(out, "0x%-14" PRIx64 " %-5s %7s %11s %11s %11s %11s "
			"%9" PRIu64 "\n", ar->addr, ar->is_main ? "main" : "",
			th, hi_bytes_str(ar->system_mem, exact, a, 32),
			hi_bytes_str(ar->system_mem - freeb, exact, b, 32),
			hi_bytes_str(freeb, exact, c, 32),
			hi_bytes_str(ar->top_size, exact, e, 32),
			ar->fast_chunks + ar->bin_chunks);
	}
}

void hi_print_locate(FILE *out, const struct hi_snapshot *s)
{
	const struct hi_alloc_ctx *l = &s->loc;

	fprintf(out, "libc:       ");
	put_safe(out, s->libc_path);
	fprintf(out, "\nbuild-id:   %s\n", s->build_id[0] ? s->build_id
						      : "(none)");
	fprintf(out, "glibc:      %s (from the version banner in libc's "
		"read-only data)\n", s->version[0] ? s->version : "?");
	fprintf(out, "located by: %s%s\n", l->located_by ? l->located_by
							 : "nothing",
		l->from_cache ? " (layout from the layout cache)" : "");
	for (unsigned i = 0; i < l->ntried; i++) {
		fprintf(out, "  not by an earlier method: ");
		put_safe(out, l->tried[i]);
		fputc('\n', out);
	}
	if (l->cache_note[0]) {
		fprintf(out, "  layout cache: ");
		put_safe(out, l->cache_note);
		fputc('\n', out);
	}
	if (s->debug_file[0]) {
		fprintf(out, "debug file: ");
		put_safe(out, s->debug_file);
		fputc('\n', out);
	}
	if (l->table[0])
		fprintf(out, "layout:     built-in table of %s (%s)\n",
			l->table, l->table_mapped
			? "not proven on a real build of this version"
			: "proven: generated from that build's DWARF");
	else if (l->located_by)
		fprintf(out, "layout:     from the DWARF\n");
	if (l->tables[0])
		fprintf(out, "tables:     built-in for %s\n", l->tables);
	if (s->called)
		fprintf(out, "method:     call of %s()%s%s\n",
			s->call.function ? s->call.function : "?",
			s->method_why ? ": " : "",
			s->method_why ? s->method_why : "");
	else if (s->heap.narenas)
		fprintf(out, "method:     read from memory\n");
	fprintf(out, "main_arena: 0x%" PRIx64 "  ", l->main_arena);
	put_safe(out, l->main_arena_how[0] ? l->main_arena_how : "not found");
	fprintf(out, "\nmp_:        0x%" PRIx64 "  ", l->mp);
	put_safe(out, l->mp_how[0] ? l->mp_how : "not found");
	fputc('\n', out);
	if (l->nchecks) {
		/*
		 * Addresses that need proof are used only once they pass
		 * (a failure stops the snapshot); DWARF's are used without
		 * it, so a failure there is shown, and info exits non-zero.
		 */
		fprintf(out, "checks:     %s\n", l->verified ? "all passed"
			: s->heap.narenas ? "not all passed: the debug "
			"information's addresses were read all the same"
			: "not all passed: nothing was read");
		for (unsigned i = 0; i < l->nchecks; i++)
			fprintf(out, "  %-4s %s: %s\n",
				l->checks[i].ok ? "ok" : "FAIL",
				l->checks[i].name, l->checks[i].detail);
	} else {
		fprintf(out, "checks:     none run\n");
	}
}
