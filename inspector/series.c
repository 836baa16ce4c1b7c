/* SPDX-License-Identifier: MIT */
/*
 * Reading snapshots back.  A file may come from anywhere: each line is
 * bounded (HI_LINE_MAX), counted before jansson builds it (so that a line
 * of a million tiny values cannot make it allocate without bound), and
 * every value is checked for its type and range.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "series.h"

const char *const hi_mi_names[HI_MI_N] = {
	"arena", "ordblks", "smblks", "hblks", "hblkhd",
	"usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
};

static const char *const proc_names[HI_PROC_N] = {
	"rss", "pss", "uss", "swap",
};

/*
 * The most values one line may hold.  A snapshot has about 40 plus 15 per
 * arena; glibc allows 8 arenas per core (arena_get2, arena.c), so this
 * leaves room for thousands of cores and keeps jansson's memory for one
 * line to some tens of MiB.
 */
#define MAX_VALUES 200000

static void why_set(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

/* A figure: a JSON integer from 0 to HI_FIGURE_MAX. */
static int get_figure(json_t *o, const char *key, const char *where,
		      uint64_t *v, char *why, size_t size)
{
	json_t *j = json_object_get(o, key);
	json_int_t i;

	if (!j) {
		why_set(why, size, "%s%s is missing", where, key);
		return -EINVAL;
	}
	if (!json_is_integer(j)) {
		why_set(why, size, "%s%s is not an integer", where, key);
		return -EINVAL;
	}
	i = json_integer_value(j);
	if (i < 0) {
		why_set(why, size, "%s%s is negative (%" JSON_INTEGER_FORMAT
			")", where, key, i);
		return -EINVAL;
	}
	if ((uint64_t)i > HI_FIGURE_MAX) {
		why_set(why, size, "%s%s is out of range (%" JSON_INTEGER_FORMAT
			" > 2^53)", where, key, i);
		return -EINVAL;
	}
	*v = (uint64_t)i;
	return 0;
}

static int get_string(json_t *o, const char *key, char *buf, size_t bufsize,
		      int required, char *why, size_t size)
{
	json_t *j = json_object_get(o, key);

	buf[0] = '\0';
	if (!j && !required)
		return 0;
	if (!json_is_string(j)) {
		why_set(why, size, "%s is %s", key,
			j ? "not a string" : "missing");
		return -EINVAL;
	}
	/* Cut to fit; strings with NUL bytes end at the first one. */
	snprintf(buf, bufsize, "%s", json_string_value(j));
	return 0;
}

/* RFC 3339 in UTC as the snapshot writes it: 2026-11-21T22:02:18.123456Z. */
static int parse_time(const char *s, double *t)
{
	struct tm tm;
	const char *p;
	double frac = 0, scale = 0.1;
	time_t sec;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		if (!(p[1] >= '0' && p[1] <= '9'))
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	if (tm.tm_year < 70 || tm.tm_year > 1100)
		return -1;
	sec = timegm(&tm);
	if (sec == (time_t)-1)
		return -1;
	*t = (double)sec + frac;
	return 0;
}

static int parse_addr(const char *s, hi_addr_t *a)
{
	char *end;
	unsigned long long v;

	if (strncmp(s, "0x", 2) != 0 || !s[2])
		return -1;
	errno = 0;
	v = strtoull(s + 2, &end, 16);
	if (errno || *end)
		return -1;
	*a = v;
	return 0;
}

static int read_arenas(json_t *arr, struct hi_sample *out, char *why,
		       size_t size)
{
	size_t i;
	json_t *a;

	if (!json_is_array(arr)) {
		why_set(why, size, "arenas is %s", arr ? "not an array" :
			"missing");
		return -EINVAL;
	}
	out->narenas = json_array_size(arr);
	if (!out->narenas)
		return 0;
	out->arenas = calloc(out->narenas, sizeof(*out->arenas));
	if (!out->arenas) {
		out->narenas = 0;
		why_set(why, size, "out of memory");
		return -ENOMEM;
	}
	json_array_foreach(arr, i, a) {
		struct hi_sample_arena *ar = &out->arenas[i];
		char where[48], addr[64];
		json_t *m;
		int ret;

		snprintf(where, sizeof(where), "arenas[%zu].", i);
		if (!json_is_object(a)) {
			why_set(why, size, "arenas[%zu] is not an object", i);
			return -EINVAL;
		}
		ret = get_string(a, "address", addr, sizeof(addr), 1, why,
				 size);
		if (ret || parse_addr(addr, &ar->addr)) {
			why_set(why, size, "%saddress is not a hex address",
				where);
			return -EINVAL;
		}
		m = json_object_get(a, "main");
		ar->is_main = json_is_true(m);
		if (get_string(a, "state", ar->state, sizeof(ar->state), 1,
			       why, size)) {
			why_set(why, size, "%sstate is not a string", where);
			return -EINVAL;
		}
		ar->ok = strcmp(ar->state, "ok") == 0;
		if (!ar->ok)
			continue;
		if (get_figure(a, "system_mem", where, &ar->system_mem, why,
			       size) ||
		    get_figure(a, "in_use_bytes", where, &ar->in_use, why,
			       size) ||
		    get_figure(a, "free_bytes", where, &ar->free_bytes, why,
			       size))
			return -EINVAL;
		if (ar->in_use > ar->system_mem ||
		    ar->free_bytes > ar->system_mem) {
			why_set(why, size, "%sin_use_bytes or free_bytes is "
				"larger than system_mem", where);
			return -EINVAL;
		}
	}
	return 0;
}

int hi_sample_from_json(json_t *o, int keep_arenas, struct hi_sample *out,
			char *why, size_t size)
{
	char schema[64], ts[64];
	json_t *j, *alloc, *proc, *mm;
	json_int_t pid;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(o)) {
		why_set(why, size, "not a JSON object");
		return -EINVAL;
	}
	if (get_string(o, "schema", schema, sizeof(schema), 1, why, size))
		return -EINVAL;
	if (strcmp(schema, HI_EVENT_SCHEMA) == 0)
		return 1;
	if (strcmp(schema, HI_SNAPSHOT_SCHEMA) != 0) {
		why_set(why, size, "schema is '%.60s', expected '%s'", schema,
			HI_SNAPSHOT_SCHEMA);
		return -EINVAL;
	}
	j = json_object_get(o, "pid");
	pid = json_is_integer(j) ? json_integer_value(j) : -1;
	if (pid <= 0 || pid > 0x3fffffff) {
		why_set(why, size, "pid is not a process id");
		return -EINVAL;
	}
	out->id.pid = (pid_t)pid;
	if (get_string(o, "timestamp", ts, sizeof(ts), 1, why, size))
		return -EINVAL;
	if (parse_time(ts, &out->t)) {
		why_set(why, size, "timestamp '%.40s' is not RFC 3339 UTC "
			"(2026-01-31T12:00:00.000000Z)", ts);
		return -EINVAL;
	}
	snprintf(out->timestamp, sizeof(out->timestamp), "%.39s", ts);
	if (get_string(o, "comm", out->comm, sizeof(out->comm), 0, why,
		       size) ||
	    get_string(o, "exe", out->exe, sizeof(out->exe), 0, why, size))
		return -EINVAL;

	/* Who the process is (since 0.x; absent from older files). */
	j = json_object_get(o, "start_ticks");
	if (j || json_object_get(o, "boot_id")) {
		if (!j || get_figure(o, "start_ticks", "",
				     &out->id.start_ticks, why, size) ||
		    get_string(o, "boot_id", out->id.boot_id,
			       sizeof(out->id.boot_id), 1, why, size)) {
			why_set(why, size, "start_ticks and boot_id are not "
				"an integer and a string");
			return -EINVAL;
		}
		out->id.known = 1;
	}

	alloc = json_object_get(o, "allocator");
	if (!json_is_object(alloc)) {
		why_set(why, size, "allocator is not an object");
		return -EINVAL;
	}
	if (get_string(alloc, "version", out->version, sizeof(out->version),
		       0, why, size) ||
	    get_string(alloc, "method", out->method, sizeof(out->method), 0,
		       why, size)) {
		why_set(why, size, "allocator.version or .method is not a "
			"string");
		return -EINVAL;
	}

	j = json_object_get(o, "consistent");
	if (!json_is_boolean(j)) {
		why_set(why, size, "consistent is not true or false");
		return -EINVAL;
	}
	out->consistent = json_is_true(j);
	j = json_object_get(o, "mallinfo2");
	if (json_is_object(j)) {
		for (int k = 0; k < HI_MI_N; k++) {
			if (get_figure(j, hi_mi_names[k], "mallinfo2.",
				       &out->mi[k], why, size))
				return -EINVAL;
		}
		/* int_mallinfo: uordblks = arena - fordblks. */
		if (out->mi[HI_MI_UORDBLKS] + out->mi[HI_MI_FORDBLKS] !=
		    out->mi[HI_MI_ARENA]) {
			why_set(why, size, "mallinfo2: uordblks + fordblks is "
				"not arena");
			return -EINVAL;
		}
		out->has_mi = 1;
	} else if (!json_is_null(j)) {
		why_set(why, size, "mallinfo2 is %s", j ? "neither an object "
			"nor null" : "missing");
		return -EINVAL;
	}

	proc = json_object_get(o, "process");
	if (proc && !json_is_object(proc)) {
		why_set(why, size, "process is not an object");
		return -EINVAL;
	}
	for (int k = 0; proc && k < HI_PROC_N; k++) {
		j = json_object_get(proc, proc_names[k]);
		if (!j || json_is_null(j))
			continue;
		if (get_figure(proc, proc_names[k], "process.", &out->proc[k],
			       why, size))
			return -EINVAL;
		out->has_proc[k] = 1;
	}
	mm = json_object_get(o, "mmap");
	if (mm) {
		if (!json_is_object(mm) ||
		    get_figure(mm, "chunks", "mmap.", &out->mmap_chunks, why,
			       size) ||
		    get_figure(mm, "bytes", "mmap.", &out->mmap_bytes, why,
			       size)) {
			if (!json_is_object(mm))
				why_set(why, size, "mmap is not an object");
			return -EINVAL;
		}
	}
	j = json_object_get(o, "pause_us");
	if (j && get_figure(o, "pause_us", "", &out->pause_us, why, size))
		return -EINVAL;
	/* Checked always, so that every command refuses the same files. */
	ret = read_arenas(json_object_get(o, "arenas"), out, why, size);
	if (ret || !keep_arenas)
		hi_sample_free(out);
	return ret;
}

/*
 * /proc/PID/exe of a program whose file was replaced while it runs (a
 * package upgrade renames the new file over it) reads "PATH (deleted)":
 * the same program.
 */
static int same_exe(const char *a, const char *b)
{
	static const char del[] = " (deleted)";
	size_t la = strlen(a), lb = strlen(b), n = sizeof(del) - 1;

	if (la >= n && strcmp(a + la - n, del) == 0)
		la -= n;
	if (lb >= n && strcmp(b + lb - n, del) == 0)
		lb -= n;
	return la == lb && memcmp(a, b, la) == 0;
}

int hi_sample_same_process(const struct hi_sample *a,
			   const struct hi_sample *b, char *why, size_t size)
{
	switch (hi_proc_id_cmp(&a->id, &b->id)) {
	case HI_ID_PID:
		why_set(why, size, "pid %d (%.64s), not pid %d (%.64s)",
			(int)b->id.pid, b->comm, (int)a->id.pid, a->comm);
		return 0;
	case HI_ID_BOOT:
		why_set(why, size, "pid %d (%.64s) of another boot (boot_id "
			"%.40s, not %.40s): another process", (int)b->id.pid,
			b->comm, b->id.boot_id, a->id.boot_id);
		return 0;
	case HI_ID_START:
		why_set(why, size, "pid %d (%.64s) started at another time "
			"(start_ticks %" PRIu64 ", not %" PRIu64 "): the pid "
			"was reused by another process", (int)b->id.pid,
			b->comm, b->id.start_ticks, a->id.start_ticks);
		return 0;
	}
	if (a->exe[0] && b->exe[0] && !same_exe(a->exe, b->exe)) {
		why_set(why, size, "pid %d running %.200s, not %.200s: it "
			"executed another program, or the pid was reused",
			(int)b->id.pid, b->exe, a->exe);
		return 0;
	}
	return 1;
}

void hi_sample_free(struct hi_sample *s)
{
	free(s->arenas);
	s->arenas = NULL;
	s->narenas = 0;
}

void hi_series_free(struct hi_series *s)
{
	for (size_t i = 0; i < s->n; i++)
		hi_sample_free(&s->v[i]);
	free(s->v);
	free(s->ev);
	memset(s, 0, sizeof(*s));
}

/*
 * Count the values of a JSON text (commas, colons and brackets outside
 * strings) without building it.  Return 0, or -1 when there are more than
 * MAX_VALUES.
 */
static int count_values(const char *p, size_t len)
{
	size_t n = 0;
	int in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == ',' || c == ':' || c == '[' || c == '{')
			n++;
		if (n > MAX_VALUES)
			return -1;
	}
	return 0;
}

static int add_sample(struct hi_series *out, size_t *cap,
		      const struct hi_sample *s)
{
	if (out->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct hi_sample *nv = realloc(out->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		out->v = nv;
		*cap = ncap;
	}
	out->v[out->n++] = *s;
	return 0;
}

static int err_set(struct hi_series_err *err, int code, unsigned long line,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int err_set(struct hi_series_err *err, int code, unsigned long line,
		   const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/*
	 * jansson quotes the text near an error: bytes from the file, which
	 * must not reach a terminal as control sequences.
	 */
	for (char *p = err->msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return code;
}

/*
 * What an event line says, as far as it says it: readers skip event lines,
 * so one that lacks a field is kept with that field unknown (t -1, pid 0),
 * never an error.
 */
static void event_from_json(json_t *o, unsigned long line,
			    struct hi_series_event *ev)
{
	json_t *j = json_object_get(o, "pid"), *st, *boot;
	const char *v;

	memset(ev, 0, sizeof(*ev));
	ev->line = line;
	ev->t = -1;
	if (json_is_integer(j) && json_integer_value(j) > 0 &&
	    json_integer_value(j) <= 0x3fffffff)
		ev->id.pid = (pid_t)json_integer_value(j);
	/* Who the process is, as snapshots say it (since 0.x). */
	st = json_object_get(o, "start_ticks");
	boot = json_object_get(o, "boot_id");
	if (json_is_integer(st) && json_integer_value(st) >= 0 &&
	    (uint64_t)json_integer_value(st) <= HI_FIGURE_MAX &&
	    json_is_string(boot)) {
		ev->id.known = 1;
		ev->id.start_ticks = (uint64_t)json_integer_value(st);
		snprintf(ev->id.boot_id, sizeof(ev->id.boot_id), "%s",
			 json_string_value(boot));
	}
	v = json_string_value(json_object_get(o, "timestamp"));
	if (v && parse_time(v, &ev->t))
		ev->t = -1;
	v = json_string_value(json_object_get(o, "event"));
	snprintf(ev->event, sizeof(ev->event), "%s", v ? v : "");
	v = json_string_value(json_object_get(o, "source"));
	snprintf(ev->source, sizeof(ev->source), "%s", v ? v : "");
	v = json_string_value(json_object_get(o, "message"));
	snprintf(ev->message, sizeof(ev->message), "%s", v ? v : "");
}

/* Parse one JSON text (a line, or the whole file) into a sample. */
static int parse_one(const char *buf, size_t len, unsigned long line0,
		     int keep_arenas, struct hi_sample *s,
		     struct hi_series_err *err, unsigned long *at,
		     struct hi_series_event *ev)
{
	json_error_t jerr;
	json_t *o;
	char why[256];
	int ret;

	*at = line0;
	if (count_values(buf, len))
		return err_set(err, -EINVAL, line0, "more than %d JSON values: "
			       "not a snapshot", MAX_VALUES);
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		if (line0 == 0 && jerr.line > 0)
			*at = (unsigned long)jerr.line;
		return err_set(err, -EINVAL, *at ? *at : 1,
			       "not JSON: %s%s", jerr.text,
			       line0 ? "" : " (the file is read as one JSON "
			       "document because its first line is '{')");
	}
	ret = hi_sample_from_json(o, keep_arenas, s, why, sizeof(why));
	if (ret == 1 && ev)
		event_from_json(o, line0, ev);
	json_decref(o);
	if (ret < 0)
		return err_set(err, ret, line0 ? line0 : 1, "%s", why);
	return ret;
}

/*
 * The rest of a file whose first line was "{": one JSON document, as
 * heapinspect --json and snapshot -o write it, bounded like a line.
 */
static int read_document(struct hi_lines *l, int keep_arenas,
			 struct hi_series *out, struct hi_series_err *err)
{
	size_t len = 0, cap = 0;
	char *doc = NULL;
	struct hi_sample s;
	unsigned long at;
	int ret;

	do {
		if (len + l->len + 1 > HI_LINE_MAX) {
			ret = err_set(err, -E2BIG, 0, "larger than %zu MiB: "
				      "not a snapshot", HI_LINE_MAX >> 20);
			goto out;
		}
		if (len + l->len + 1 > cap) {
			size_t ncap = (len + l->len + 1) * 2;
			char *nd = realloc(doc, ncap);

			if (!nd) {
				ret = err_set(err, -ENOMEM, 0, "out of memory");
				goto out;
			}
			doc = nd;
			cap = ncap;
		}
		memcpy(doc + len, l->buf, l->len);
		len += l->len;
		doc[len++] = '\n';
		ret = hi_lines_next(l);
	} while (ret == 1);
	if (ret == -E2BIG) {
		ret = err_set(err, -E2BIG, l->lineno, "the line is longer than "
			      "%zu MiB: not a snapshot", HI_LINE_MAX >> 20);
		goto out;
	}
	if (ret < 0) {
		ret = err_set(err, ret, 0, "%s", strerror(-ret));
		goto out;
	}
	ret = parse_one(doc, len, 0, keep_arenas, &s, err, &at, NULL);
	if (ret == 1)
		ret = err_set(err, -EINVAL, 1, "an event, not a snapshot");
	if (ret < 0)
		goto out;
	s.line = 1;
	out->single = 1;
	out->v = malloc(sizeof(*out->v));
	if (!out->v) {
		hi_sample_free(&s);
		ret = err_set(err, -ENOMEM, 0, "out of memory");
		goto out;
	}
	out->v[0] = s;
	out->n = 1;
	out->segments = 1;
	ret = 0;
out:
	free(doc);
	return ret;
}

static int add_event(struct hi_series *out, size_t *cap,
		     const struct hi_series_event *ev)
{
	if (out->events == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct hi_series_event *nv = realloc(out->ev,
						     ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		out->ev = nv;
		*cap = ncap;
	}
	out->ev[out->events++] = *ev;
	out->exited |= strcmp(ev->event, "exited") == 0;
	return 0;
}

/*
 * A restart, as heapinspect watch records one when it follows a unit, a
 * pid file or a name (watch.c, on_gone): after the last snapshot of the
 * process, an "exited" event line of that process, then a "resolved"
 * event line of the next; other event lines ("error") may stand between,
 * and a snapshot of the first process after the "exited" line (it had
 * not exited after all) cancels it.  An event line names its process by
 * pid, and by start_ticks and boot_id where it gives them (since 0.x).
 */
struct seg_track {
	size_t first;   /* the segment's first snapshot, in out->v */
	long exited;    /* out->ev: "exited" of its process after its last
			   snapshot, or -1 */
	long resolved;  /* out->ev: the last "resolved" after that, or -1 */
};

static void track_event(struct hi_series *out, struct seg_track *k)
{
	const struct hi_series_event *ev = &out->ev[out->events - 1];

	if (!out->n)
		return;
	if (strcmp(ev->event, "exited") == 0 &&
	    hi_proc_id_cmp(&ev->id, &out->v[k->first].id) == HI_ID_SAME) {
		k->exited = (long)out->events - 1;
		k->resolved = -1;
	} else if (strcmp(ev->event, "resolved") == 0 && k->exited >= 0) {
		k->resolved = (long)out->events - 1;
	}
}

/* "pid 42" or "pid 42 (start_ticks 912)". */
static void id_str(const struct hi_proc_id *id, char *buf, size_t size)
{
	if (id->known)
		snprintf(buf, size, "pid %d (start_ticks %" PRIu64 ")",
			 (int)id->pid, id->start_ticks);
	else
		snprintf(buf, size, "pid %d", (int)id->pid);
}

/*
 * Snapshot s follows out's last one: of its process, or of the next one
 * where the file records the restart (struct seg_track); s->seg is set.
 * Return 0, or -EINVAL with err filled: the file mixes processes.
 */
static int next_process(struct hi_series *out, struct seg_track *k,
			struct hi_sample *s, struct hi_series_err *err)
{
	const struct hi_sample *seg = &out->v[k->first];
	const struct hi_series_event *ex, *rs;
	char why[480], a[64], b[64];

	s->seg = out->v[out->n - 1].seg;
	if (hi_sample_same_process(seg, s, why, sizeof(why))) {
		k->exited = k->resolved = -1;
		return 0;
	}
	ex = k->exited >= 0 ? &out->ev[k->exited] : NULL;
	rs = k->resolved >= 0 ? &out->ev[k->resolved] : NULL;
	if (rs && hi_proc_id_cmp(&rs->id, &s->id) == HI_ID_SAME) {
		out->ev[k->exited].restart = 1;
		out->ev[k->resolved].restart = 1;
		s->seg++;
		k->first = out->n;
		k->exited = k->resolved = -1;
		return 0;
	}
	if (!ex)
		return err_set(err, -EINVAL, s->line, "not the process of line "
			       "%lu: %s; the file mixes processes and records "
			       "no restart between them (an \"exited\" event "
			       "line of the one, then a \"resolved\" line of "
			       "the other): give a file of one process",
			       seg->line, why);
	if (!rs)
		return err_set(err, -EINVAL, s->line, "not the process of line "
			       "%lu: %s; the file mixes processes: line %lu "
			       "records that it exited, but no \"resolved\" "
			       "event line names the next process",
			       seg->line, why, ex->line);
	id_str(&rs->id, a, sizeof(a));
	id_str(&s->id, b, sizeof(b));
	return err_set(err, -EINVAL, s->line, "not the process of line %lu: "
		       "%s; the file mixes processes: the \"resolved\" event "
		       "line %lu names %s as the next, not %s", seg->line,
		       why, rs->line, a, b);
}

int hi_series_segment(const struct hi_series *s, unsigned k, size_t *first,
		      size_t *n)
{
	size_t i = 0;

	while (i < s->n && s->v[i].seg < k)
		i++;
	if (i == s->n || s->v[i].seg != k)
		return -1;
	*first = i;
	for (*n = 0; i + *n < s->n && s->v[i + *n].seg == k; (*n)++)
		;
	return 0;
}

static int is_blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

int hi_series_read(const char *path, int keep_arenas, struct hi_series *out,
		   struct hi_series_err *err)
{
	struct seg_track k = { 0, -1, -1 };
	struct hi_lines l;
	size_t cap = 0, ecap = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	ret = hi_lines_open(&l, path);
	if (ret)
		return err_set(err, ret, 0, "%s", strerror(-ret));
	for (;;) {
		struct hi_sample s;
		struct hi_series_event ev;
		unsigned long at;

		ret = hi_lines_next(&l);
		if (ret == 0)
			break;
		if (ret == -E2BIG) {
			ret = err_set(err, ret, l.lineno, "the line is longer "
				      "than %zu MiB: not a snapshot",
				      HI_LINE_MAX >> 20);
			goto fail;
		}
		if (ret < 0) {
			ret = err_set(err, ret, l.lineno, "%s", strerror(-ret));
			goto fail;
		}
		if (l.lineno == 1 && l.len >= 1 && l.buf[0] == '{' &&
		    is_blank(l.buf + 1, l.len - 1)) {
			ret = read_document(&l, keep_arenas, out, err);
			hi_lines_close(&l);
			if (ret)
				hi_series_free(out);
			return ret;
		}
		if (is_blank(l.buf, l.len))
			continue;
		ret = parse_one(l.buf, l.len, l.lineno, keep_arenas, &s, err,
				&at, &ev);
		if (ret < 0 && !l.terminated) {
			/* Left by a writer that was killed mid-line. */
			out->cut_last = 1;
			out->cut_line = l.lineno;
			memset(err, 0, sizeof(*err));
			break;
		}
		if (ret < 0)
			goto fail;
		if (ret == 1) {
			ret = add_event(out, &ecap, &ev);
			if (ret) {
				ret = err_set(err, ret, l.lineno,
					      "out of memory");
				goto fail;
			}
			track_event(out, &k);
			continue;
		}
		s.line = l.lineno;
		if (out->n) {
			ret = next_process(out, &k, &s, err);
			if (ret) {
				hi_sample_free(&s);
				goto fail;
			}
		}
		ret = add_sample(out, &cap, &s);
		if (ret) {
			hi_sample_free(&s);
			ret = err_set(err, ret, l.lineno, "out of memory");
			goto fail;
		}
	}
	out->segments = out->n ? out->v[out->n - 1].seg + 1 : 0;
	hi_lines_close(&l);
	return 0;
fail:
	hi_lines_close(&l);
	hi_series_free(out);
	return ret;
}
