/* SPDX-License-Identifier: MIT */
/*
 * heapinspect diff: what changed between two snapshots, every figure with
 * its old and new value, the change and the change per hour.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "series.h"

static void diff_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect diff [--json] [--bytes] [--force] A B\n"
"       heapinspect diff [--json] [--bytes] [--force] FILE.jsonl\n"
"                        [--lines M,N]\n"
"\n"
"What changed between two snapshots: files of one snapshot each\n"
"(heapinspect snapshot -o, or --json), or two lines of a JSON Lines file\n"
"(heapinspect watch): by default its first and its last consistent\n"
"snapshot, or lines M and N.  A series of a service followed across\n"
"restarts is compared within its last process (the last with two\n"
"consistent snapshots): a restart starts a new heap.  Every figure with\n"
"its old and new value,\n"
"the change and the change per hour; the arenas that appeared, went, grew\n"
"or shrank; RSS against the heap.\n"
"\n"
"  --json     one JSON object (schema heapinspect/diff/v1)\n"
"  --bytes    sizes in exact bytes in the text\n"
"  --force    compare snapshots of different processes: two files, or\n"
"             --lines across a restart\n"
"  --lines M,N  the line numbers of the two snapshots in FILE.jsonl\n"
"\n"
"exit status: 0 compared; 2 a file cannot be read, a snapshot has no\n"
"mallinfo2 figures, or the two are of different processes; 64 wrong\n"
"usage.\n");
}

/* One compared figure. */
struct row {
	const char *name;
	int size;               /* a size in bytes, not a count */
	int have;
	int64_t old, cur;
};

enum {
	R_LIVE, R_FREE, R_MMAP, R_HEAP, R_OUTSIDE,
	R_MI0,
	R_RSS = R_MI0 + HI_MI_N, R_PSS, R_USS, R_SWAP,
	R_N
};

static const char *const row_names[R_N] = {
	[R_LIVE] = "live_bytes",
	[R_FREE] = "free_bytes",
	[R_MMAP] = "mmapped_bytes",
	[R_HEAP] = "heap_bytes",
	[R_OUTSIDE] = "outside_heap_bytes",
	[R_RSS] = "rss",
	[R_PSS] = "pss",
	[R_USS] = "uss",
	[R_SWAP] = "swap",
};

static void fill_rows(struct row *r, const struct hi_sample *a,
		      const struct hi_sample *b)
{
	const struct hi_sample *s[2] = { a, b };

	for (int i = 0; i < R_N; i++) {
		r[i].name = i >= R_MI0 && i < R_MI0 + HI_MI_N ?
			    hi_mi_names[i - R_MI0] : row_names[i];
		r[i].size = 1;
		r[i].have = 1;
	}
	/* mallinfo2's counts: ordblks, smblks, hblks; usmblks is 0. */
	r[R_MI0 + HI_MI_ORDBLKS].size = 0;
	r[R_MI0 + HI_MI_SMBLKS].size = 0;
	r[R_MI0 + HI_MI_HBLKS].size = 0;
	for (int k = 0; k < 2; k++) {
		const struct hi_sample *x = s[k];
		int64_t v[R_N];

		v[R_LIVE] = (int64_t)hi_live_bytes(x);
		v[R_FREE] = (int64_t)x->mi[HI_MI_FORDBLKS];
		v[R_MMAP] = (int64_t)x->mi[HI_MI_HBLKHD];
		v[R_HEAP] = (int64_t)hi_heap_bytes(x);
		v[R_OUTSIDE] = (int64_t)x->proc[HI_PROC_RSS] - v[R_HEAP];
		for (int m = 0; m < HI_MI_N; m++)
			v[R_MI0 + m] = (int64_t)x->mi[m];
		for (int p = 0; p < HI_PROC_N; p++) {
			v[R_RSS + p] = (int64_t)x->proc[p];
			if (!x->has_proc[p])
				r[R_RSS + p].have = 0;
		}
		if (!x->has_proc[HI_PROC_RSS])
			r[R_OUTSIDE].have = 0;
		for (int i = 0; i < R_N; i++) {
			if (k == 0)
				r[i].old = v[i];
			else
				r[i].cur = v[i];
		}
	}
}

static const struct hi_sample_arena *find_arena(const struct hi_sample *s,
						hi_addr_t addr)
{
	for (size_t i = 0; i < s->narenas; i++)
		if (s->arenas[i].addr == addr)
			return &s->arenas[i];
	return NULL;
}

struct side {
	const char *path;
	const struct hi_sample *s;
	int line;               /* name the line: it is one of several */
};

static void where(const struct side *x, char *buf, size_t size)
{
	if (x->line)
		snprintf(buf, size, "'%s' line %lu", x->path, x->s->line);
	else
		snprintf(buf, size, "'%s'", x->path);
}

static double per_hour(int64_t change, double dt)
{
	return dt > 0 ? (double)change * 3600.0 / dt : NAN;
}

static json_t *jside(const struct side *x)
{
	json_t *o = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s}", "file", x->path,
			      "pid", x->s->id.pid, "comm", x->s->comm,
			      "timestamp", x->s->timestamp, "glibc",
			      x->s->version, "method", x->s->method);

	if (o && x->line) {
		json_object_set_new(o, "line", json_integer((json_int_t)
							    x->s->line));
		json_object_set_new(o, "segment", json_integer(
			(json_int_t)x->s->seg + 1));
	}
	return o;
}

static json_t *jchange(int64_t old, int64_t cur, double dt)
{
	double ph = per_hour(cur - old, dt);

	return json_pack("{s:I,s:I,s:I,s:o}", "old", (json_int_t)old, "new",
			 (json_int_t)cur, "change", (json_int_t)(cur - old),
			 "per_hour", isnan(ph) ? json_null() :
			 json_integer((json_int_t)llround(ph)));
}

static json_t *jarena(const struct hi_sample_arena *a)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "0x%" PRIx64, a->addr);
	if (!a->ok)
		return json_pack("{s:s,s:b,s:s}", "address", addr, "main",
				 a->is_main, "state", a->state);
	return json_pack("{s:s,s:b,s:s,s:I,s:I,s:I}", "address", addr, "main",
			 a->is_main, "state", a->state, "system_mem",
			 (json_int_t)a->system_mem, "in_use_bytes",
			 (json_int_t)a->in_use, "free_bytes",
			 (json_int_t)a->free_bytes);
}

static int print_json(const struct side *a, const struct side *b,
		      const struct row *r, double dt, json_t *notes)
{
	json_t *o = json_object(), *figs = json_object(), *ar, *app, *gone,
	       *grew, *shrank, *rvh;
	int ret;

	json_object_set_new(o, "schema", json_string("heapinspect/diff/v1"));
	json_object_set_new(o, "a", jside(a));
	json_object_set_new(o, "b", jside(b));
	json_object_set_new(o, "seconds", json_real(dt));
	for (int i = 0; i < R_N; i++) {
		json_object_set_new(figs, r[i].name, r[i].have ?
				    jchange(r[i].old, r[i].cur, dt) :
				    json_null());
	}
	json_object_set_new(o, "figures", figs);

	app = json_array();
	gone = json_array();
	grew = json_array();
	shrank = json_array();
	for (size_t i = 0; i < b->s->narenas; i++) {
		const struct hi_sample_arena *x = &b->s->arenas[i];
		const struct hi_sample_arena *y = find_arena(a->s, x->addr);
		json_t *c;

		if (!y) {
			json_array_append_new(app, jarena(x));
			continue;
		}
		if (!x->ok || !y->ok)
			continue;
		if (x->system_mem == y->system_mem && x->in_use == y->in_use)
			continue;
		c = jarena(x);
		json_object_set_new(c, "system_mem",
				    jchange((int64_t)y->system_mem,
					    (int64_t)x->system_mem, dt));
		json_object_set_new(c, "in_use_bytes",
				    jchange((int64_t)y->in_use,
					    (int64_t)x->in_use, dt));
		json_object_set_new(c, "free_bytes",
				    jchange((int64_t)y->free_bytes,
					    (int64_t)x->free_bytes, dt));
		/* Grew: took more from the system, or holds more in use. */
		if (x->system_mem > y->system_mem ||
		    (x->system_mem == y->system_mem && x->in_use > y->in_use))
			json_array_append_new(grew, c);
		else
			json_array_append_new(shrank, c);
	}
	for (size_t i = 0; i < a->s->narenas; i++) {
		if (!find_arena(b->s, a->s->arenas[i].addr))
			json_array_append_new(gone, jarena(&a->s->arenas[i]));
	}
	ar = json_pack("{s:o,s:o,s:o,s:o}", "appeared", app, "gone", gone,
		       "grew", grew, "shrank", shrank);
	json_object_set_new(o, "arenas", ar);
	if (r[R_OUTSIDE].have) {
		rvh = json_pack("{s:I,s:I,s:I}", "rss_change",
				(json_int_t)(r[R_RSS].cur - r[R_RSS].old),
				"heap_change",
				(json_int_t)(r[R_HEAP].cur - r[R_HEAP].old),
				"outside_heap_change",
				(json_int_t)(r[R_OUTSIDE].cur -
					     r[R_OUTSIDE].old));
		json_object_set_new(o, "rss_vs_heap", rvh);
	} else {
		json_object_set_new(o, "rss_vs_heap", json_null());
	}
	json_object_set(o, "notes", notes);
	ret = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!ret)
		ret = fputc('\n', stdout) == EOF ? -1 : 0;
	json_decref(o);
	return ret;
}

static const char *fig_str(int64_t v, int size, int sign, int exact,
			   char *buf, size_t len)
{
	if (!size || exact)
		snprintf(buf, len, sign && v > 0 ? "+%" PRId64 : "%" PRId64,
			 v);
	else
		hi_size_str((double)v, sign, buf, len);
	return buf;
}

/* Text from a file: no control characters reach the terminal. */
static void put_safe(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void print_side(const char *label, const struct side *x)
{
	char w[4200];

	where(x, w, sizeof(w));
	printf("%s ", label);
	put_safe(w);
	printf(": %s, pid %d (", x->s->timestamp, x->s->id.pid);
	put_safe(x->s->comm);
	printf("), glibc ");
	put_safe(x->s->version);
	printf("\n");
}

static void arena_line(const char *what, const struct hi_sample_arena *x,
		       const struct hi_sample_arena *y, int exact)
{
	char a[32], b[32], c[32], d[32];

	printf("  %-8s 0x%-14" PRIx64 " %-4s", what, x->addr,
	       x->is_main ? "main" : "");
	if (!x->ok) {
		printf(" %s\n", x->state);
		return;
	}
	if (!y) {
		printf(" system %s, in use %s\n",
		       fig_str((int64_t)x->system_mem, 1, 0, exact, a, 32),
		       fig_str((int64_t)x->in_use, 1, 0, exact, b, 32));
		return;
	}
	printf(" system %s (%s), in use %s (%s)\n",
	       fig_str((int64_t)x->system_mem, 1, 0, exact, a, 32),
	       fig_str((int64_t)x->system_mem - (int64_t)y->system_mem, 1, 1,
		       exact, b, 32),
	       fig_str((int64_t)x->in_use, 1, 0, exact, c, 32),
	       fig_str((int64_t)x->in_use - (int64_t)y->in_use, 1, 1, exact,
		       d, 32));
}

static void print_text(const struct side *a, const struct side *b,
		       const struct row *r, double dt, json_t *notes,
		       int exact)
{
	char o[32], n[32], c[32], h[32];
	size_t i, changed = 0;
	json_t *note;

	print_side("from", a);
	print_side("to  ", b);
	printf("%.3f s apart (%.2f h)\n", dt, dt / 3600);
	json_array_foreach(notes, i, note)
		printf("note: %s\n", json_string_value(note));
	printf("\n%-20s %14s %14s %14s %14s\n", "figure", "old", "new",
	       "change", "per hour");
	for (int k = 0; k < R_N; k++) {
		double ph;

		if (k == R_MI0)
			printf("mallinfo2\n");
		if (k == R_RSS)
			printf("process\n");
		if (!r[k].have) {
			printf("  %-18s %14s\n", r[k].name, "(not recorded)");
			continue;
		}
		ph = per_hour(r[k].cur - r[k].old, dt);
		if (isnan(ph))
			snprintf(h, sizeof(h), "-");
		else
			fig_str((int64_t)llround(ph), r[k].size, 1, exact, h,
				sizeof(h));
		printf("  %-18s %14s %14s %14s %14s\n", r[k].name,
		       fig_str(r[k].old, r[k].size, 0, exact, o, sizeof(o)),
		       fig_str(r[k].cur, r[k].size, 0, exact, n, sizeof(n)),
		       fig_str(r[k].cur - r[k].old, r[k].size, 1, exact, c,
			       sizeof(c)), h);
	}
	printf("\narenas\n");
	for (i = 0; i < b->s->narenas; i++) {
		const struct hi_sample_arena *x = &b->s->arenas[i];
		const struct hi_sample_arena *y = find_arena(a->s, x->addr);

		if (!y) {
			arena_line("appeared", x, NULL, exact);
			changed++;
		} else if (x->ok && y->ok &&
			   (x->system_mem != y->system_mem ||
			    x->in_use != y->in_use)) {
			arena_line(x->system_mem > y->system_mem ||
				   (x->system_mem == y->system_mem &&
				    x->in_use > y->in_use) ? "grew" : "shrank",
				   x, y, exact);
			changed++;
		}
	}
	for (i = 0; i < a->s->narenas; i++) {
		if (!find_arena(b->s, a->s->arenas[i].addr)) {
			arena_line("gone", &a->s->arenas[i], NULL, exact);
			changed++;
		}
	}
	if (!changed)
		printf("  no arena appeared, went or changed\n");
	if (r[R_OUTSIDE].have) {
		int64_t dr = r[R_RSS].cur - r[R_RSS].old;
		int64_t dh = r[R_HEAP].cur - r[R_HEAP].old;

		printf("\nrss against heap: rss %s, heap %s: %s outside the "
		       "malloc heap\n", fig_str(dr, 1, 1, exact, o, 32),
		       fig_str(dh, 1, 1, exact, n, 32),
		       fig_str(dr - dh, 1, 1, exact, c, 32));
	}
}

/* The index of the snapshot on line `line` of s, or -1. */
static long at_line(const struct hi_series *s, unsigned long line)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].line == line)
			return (long)i;
	return -1;
}

static int parse_lines(const char *arg, unsigned long *m, unsigned long *n)
{
	char buf[64], *comma;

	snprintf(buf, sizeof(buf), "%s", arg);
	comma = strchr(buf, ',');
	if (!comma)
		return -1;
	*comma = '\0';
	if (parse_uint(buf, 1UL << 40, m) || parse_uint(comma + 1,
							 1UL << 40, n))
		return -1;
	return *m && *n ? 0 : -1;
}

static int need_mi(const struct side *x)
{
	char w[4200];

	if (x->s->has_mi)
		return 0;
	where(x, w, sizeof(w));
	errmsg("%s: the snapshot is not consistent (an arena was busy or "
	       "corrupt when it was taken): it has no mallinfo2 figures to "
	       "compare", w);
	return -1;
}

/*
 * The two snapshots diff FILE.jsonl compares: the first and the last with
 * mallinfo2 figures of the last process that has two (one segment: a
 * restart starts a new heap, and the change across it is the restart's).
 * Return 0 with *i and *j set and notes added, or -1 after a message.
 */
static int default_pair(const char *path, const struct hi_series *s,
			long *i, long *j, json_t *notes)
{
	size_t first = 0, cnt = 0, good = 0;
	unsigned k = (unsigned)s->segments;
	char note[320];

	while (k-- > 0) {
		if (hi_series_segment(s, k, &first, &cnt))
			continue;
		good = 0;
		for (size_t x = first; x < first + cnt; x++)
			good += s->v[x].has_mi;
		if (good >= 2)
			break;
	}
	if (good < 2) {
		if (s->segments > 1)
			errmsg("'%s' holds %zu processes (restarts), none with "
			       "two consistent snapshots: nothing to compare "
			       "(--lines M,N --force compares across a "
			       "restart)", path, s->segments);
		else
			errmsg("'%s' holds %s: nothing to compare", path,
			       good ? "only one consistent snapshot" :
			       "no consistent snapshot");
		return -1;
	}
	for (*i = (long)first; !s->v[*i].has_mi; (*i)++)
		;
	for (*j = (long)(first + cnt - 1); !s->v[*j].has_mi; (*j)--)
		;
	if (s->segments > 1) {
		snprintf(note, sizeof(note), "the file holds %zu processes "
			 "(restarts recorded by watch): compared within "
			 "process %u, lines %lu to %lu%s, as a restart starts "
			 "a new heap", s->segments, k + 1, s->v[first].line,
			 s->v[first + cnt - 1].line, k + 1 == s->segments ?
			 " (the last)" : " (the last with two consistent "
			 "snapshots)");
		json_array_append_new(notes, json_string(note));
	}
	if (*i != (long)first || *j != (long)(first + cnt - 1)) {
		snprintf(note, sizeof(note), "lines %lu and %lu are the first "
			 "and last consistent snapshots%s", s->v[*i].line,
			 s->v[*j].line, s->segments > 1 ? " of that process" :
			 "");
		json_array_append_new(notes, json_string(note));
	}
	return 0;
}

int hi_cmd_diff(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "force", no_argument, NULL, 'f' },
		{ "lines", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hi_series sa = { 0 }, sb = { 0 };
	struct side a = { 0 }, b = { 0 };
	struct row r[R_N];
	unsigned long lm = 0, ln = 0;
	int json = 0, exact = 0, force = 0, c, rc = EXIT_FAILED;
	const char *lines = NULL;
	json_t *notes = json_array();
	char why[512];
	double dt;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'b':
			exact = 1;
			break;
		case 'f':
			force = 1;
			break;
		case 'l':
			lines = optarg;
			if (parse_lines(optarg, &lm, &ln)) {
				errmsg("invalid --lines '%s': expected two "
				       "line numbers, as 3,10", optarg);
				json_decref(notes);
				return hi_usage_hint("diff");
			}
			break;
		case 'h':
			diff_usage(stdout);
			json_decref(notes);
			return EXIT_OK;
		default:
			json_decref(notes);
			return hi_usage_hint("diff");
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2 || (argc == 2 && lines)) {
		errmsg(argc < 1 ? "what to compare? give two snapshot files, "
		       "or one JSON Lines file" : argc > 2 ?
		       "too many files: diff compares two snapshots" :
		       "--lines goes with one JSON Lines file, not two files");
		json_decref(notes);
		return hi_usage_hint("diff");
	}

	if (argc == 2) {
		if (hi_series_load(argv[0], 1, &sa) ||
		    hi_series_load(argv[1], 1, &sb))
			goto out;
		for (int k = 0; k < 2; k++) {
			struct hi_series *s = k ? &sb : &sa;

			if (s->n != 1) {
				errmsg("'%s' holds %zu snapshots, not one: "
				       "compare two of them with 'heapinspect "
				       "diff %s --lines M,N'", argv[k], s->n,
				       argv[k]);
				goto out;
			}
		}
		a = (struct side){ argv[0], &sa.v[0], 0 };
		b = (struct side){ argv[1], &sb.v[0], 0 };
	} else {
		long i, j;

		if (hi_series_load(argv[0], 1, &sa))
			goto out;
		if (lines) {
			i = at_line(&sa, lm);
			j = at_line(&sa, ln);
			if (i < 0 || j < 0) {
				errmsg("'%s' line %lu is not a snapshot (the "
				       "file has %zu, on lines %lu to %lu)",
				       argv[0], i < 0 ? lm : ln, sa.n,
				       sa.n ? sa.v[0].line : 0,
				       sa.n ? sa.v[sa.n - 1].line : 0);
				goto out;
			}
		} else if (default_pair(argv[0], &sa, &i, &j, notes)) {
			goto out;
		}
		a = (struct side){ argv[0], &sa.v[i], 1 };
		b = (struct side){ argv[0], &sa.v[j], 1 };
	}
	if (need_mi(&a) || need_mi(&b))
		goto out;
	if (!hi_sample_same_process(a.s, b.s, why, sizeof(why))) {
		char wa[4200], wb[4200], note[256];
		int across;

		where(&a, wa, sizeof(wa));
		where(&b, wb, sizeof(wb));
		/* Lines of one file: the file records a restart between. */
		across = a.line && a.s->seg != b.s->seg;
		if (!force) {
			errmsg("%s and %s are snapshots of different processes "
			       "(%s)%s: give --force to compare them anyway",
			       wa, wb, why, across ? "; the file records a "
			       "restart between them, and a restart starts a "
			       "new heap" : "");
			goto out;
		}
		snprintf(note, sizeof(note), "different processes: pid %d and "
			 "pid %d%s (--force)", a.s->id.pid, b.s->id.pid,
			 across ? ", across a restart" : "");
		json_array_append_new(notes, json_string(note));
	}
	if (strcmp(a.s->version, b.s->version)) {
		char note[128];

		snprintf(note, sizeof(note), "glibc versions differ: %s and %s",
			 a.s->version, b.s->version);
		json_array_append_new(notes, json_string(note));
	}
	if (strcmp(a.s->method, b.s->method)) {
		char note[128];

		snprintf(note, sizeof(note), "methods differ: %s and %s",
			 a.s->method, b.s->method);
		json_array_append_new(notes, json_string(note));
	}
	dt = b.s->t - a.s->t;
	if (dt <= 0)
		json_array_append_new(notes, json_string(
			"the second snapshot is not later than the first: no "
			"change per hour"));
	fill_rows(r, a.s, b.s);
	if (json) {
		if (print_json(&a, &b, r, dt, notes))
			goto write_error;
	} else {
		print_text(&a, &b, r, dt, notes, exact);
	}
	if (fflush(stdout) != 0)
		goto write_error;
	rc = EXIT_OK;
	goto out;
write_error:
	errmsg("cannot write the report: %s", lower(strerror(errno)));
out:
	json_decref(notes);
	hi_series_free(&sa);
	hi_series_free(&sb);
	return rc;
}
