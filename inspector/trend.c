/* SPDX-License-Identifier: MIT */
/*
 * heapinspect trend: over a series of snapshots, does live memory grow (a
 * leak), free memory kept by malloc (fragmentation), or memory outside the
 * malloc heap?  Decided on statistics over the series (stats.h): whether
 * a figure moves in one direction (Mann-Kendall), whether it does so
 * along a line that stands out from the noise the series shows (the
 * least-squares slope against its standard error, corrected for noise
 * that follows itself), and how large the change is against the heap.
 * Every word printed follows from the numbers in the table beside it.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "series.h"
#include "stats.h"

/* The thresholds; README "heapinspect trend" explains them. */
#define ALPHA          0.001 /* each test, one-sided */
#define GROWTH_OF_HEAP 0.01  /* a change that matters: 1% of the heap */
#define SWING_OF_HEAP  0.10  /* a move without direction worth a word */
#define NEARLY_EVERY   0.9

static void trend_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect trend [--json] [--min-growth SIZE] [--segment N]\n"
"                         FILE.jsonl\n"
"\n"
"A verdict over a series of snapshots (heapinspect watch) for live heap\n"
"bytes, free-but-retained bytes, mmapped bytes and RSS outside the malloc\n"
"heap.  For each: the least-squares slope (bytes per hour) and R^2, and\n"
"three one-sided tests at p < 0.001: Mann-Kendall's (does it move in one\n"
"direction?), Student's t of the slope against the noise the series\n"
"shows, its autocorrelation taken into account (along a line?), and the\n"
"sign test of the intervals (in most of them?).  A figure grows when\n"
"Mann-Kendall's test and one of the others say it rises, by at least 1%%\n"
"of the heap (arena + hblkhd, on average); it rose, when only\n"
"Mann-Kendall's does (a step, a walk).  Live bytes that grow: a leak;\n"
"free bytes: fragmentation; RSS outside the heap: outside-heap.\n"
"\n"
"  --json             one JSON object (schema heapinspect/trend/v1)\n"
"  --min-growth SIZE  also require a growth of at least SIZE (as 1048576,\n"
"                     512KiB, 1MiB) over the series; default none\n"
"  --segment N        judge the file's Nth process (1: the first)\n"
"\n"
"A series of a service followed across restarts (watch --unit, --pidfile,\n"
"--name) holds one segment per process.  A restart starts a new heap, so\n"
"a trend runs within one: by default the last that has at least 3\n"
"consistent snapshots; the report says which, and which it left out.\n"
"\n"
"verdicts: leak, fragmentation, outside-heap (a figure grows); growing (a\n"
"figure rose, not along a line); shrinking (a figure fell); fluctuating\n"
"(a figure moved by a tenth of the heap or more, without a direction);\n"
"steady (none of these).\n"
"\n"
"exit status: 0 steady, shrinking or fluctuating; 1 leak, fragmentation,\n"
"outside-heap or growing; 2 the file cannot be read, no process in it (or\n"
"not the one --segment names) has 3 consistent snapshots, or two of them\n"
"are at the same moment or out of order; 64 wrong usage.\n");
}

enum { F_LIVE, F_FREE, F_MMAP, F_OUTSIDE, F_N };

static const char *const fig_names[F_N] = {
	"live_bytes", "free_bytes", "mmapped_bytes", "outside_heap_bytes",
};

/* The figure in words. */
static const char *const fig_words[F_N] = {
	"live bytes", "free bytes kept by malloc", "mmapped bytes",
	"RSS outside the heap",
};

static const char *const slope_names[F_N] = {
	"live_bytes_per_hour", "free_bytes_per_hour", "mmap_bytes_per_hour",
	"outside_heap_bytes_per_hour",
};

/* What a figure did; README "heapinspect trend" defines each. */
enum state {
	S_FLAT,
	S_SWINGS,
	S_GROWS,
	S_GROWS_SLIGHTLY,
	S_ROSE,
	S_ROSE_SLIGHTLY,
	S_FALLS,
	S_FALLS_SLIGHTLY,
	S_FELL,
	S_FELL_SLIGHTLY,
};

static const char *const state_names[] = {
	"flat", "swings", "grows", "grows-slightly", "rose", "rose-slightly",
	"falls", "falls-slightly", "fell", "fell-slightly",
};

struct fig {
	int have;
	double first, last;
	double change;          /* last - first */
	double fitted;          /* slope * span: the line's change */
	struct hi_fit fit;      /* slope in bytes per hour */
	enum state state;
	double p;               /* the larger p of the tests behind the
				   state; NAN for flat and swings */
	int linear;             /* grows or falls along a line */
	int nearly_every;
};

/* The figure f of sample s (README: "Definitions"). */
static double figure(const struct hi_sample *s, int f)
{
	switch (f) {
	case F_LIVE:
		return (double)hi_live_bytes(s);
	case F_FREE:
		return (double)s->mi[HI_MI_FORDBLKS];
	case F_MMAP:
		return (double)s->mi[HI_MI_HBLKHD];
	default:
		return (double)s->proc[HI_PROC_RSS] -
		       (double)hi_heap_bytes(s);
	}
}

/*
 * Decide what figure f did (README "heapinspect trend"): it grows when
 * Mann-Kendall says it moves up and either its slope stands out from the
 * noise (then the line says how fast) or most intervals rose (a curve
 * that speeds up or slows down); it rose when only Mann-Kendall says so
 * (a step, a walk); falls and fell the same downwards.  Each counts from
 * grow_min, the line's change for a line, else first to last; below it,
 * slightly.  A move of swing_min or more that no test gives a direction
 * swings.
 */
static void classify(struct fig *g, double grow_min, double swing_min)
{
	const struct hi_fit *t = &g->fit;
	int mk_up = t->p_mk_up < ALPHA, mk_down = t->p_mk_down < ALPHA;
	int line_up = t->p_line_up < ALPHA && t->slope > 0;
	int line_down = t->p_line_down < ALPHA && t->slope < 0;
	int sign_up = t->p_sign_up < ALPHA, sign_down = t->p_sign_down < ALPHA;
	double size;

	g->p = NAN;
	g->linear = 0;
	if (mk_up && (line_up || (sign_up && g->change > 0))) {
		g->linear = line_up;
		size = line_up ? g->fitted : g->change;
		g->state = size >= grow_min ? S_GROWS : S_GROWS_SLIGHTLY;
		g->p = fmax(t->p_mk_up, line_up ? t->p_line_up : t->p_sign_up);
	} else if (mk_down && (line_down || (sign_down && g->change < 0))) {
		g->linear = line_down;
		size = line_down ? -g->fitted : -g->change;
		g->state = size >= grow_min ? S_FALLS : S_FALLS_SLIGHTLY;
		g->p = fmax(t->p_mk_down,
			    line_down ? t->p_line_down : t->p_sign_down);
	} else if (mk_up && g->change > 0) {
		g->state = g->change >= grow_min ? S_ROSE : S_ROSE_SLIGHTLY;
		g->p = t->p_mk_up;
	} else if (mk_down && g->change < 0) {
		g->state = -g->change >= grow_min ? S_FELL : S_FELL_SLIGHTLY;
		g->p = t->p_mk_down;
	} else if (g->change != 0 && fabs(g->change) >= swing_min) {
		g->state = S_SWINGS;
	} else {
		g->state = S_FLAT;
	}
}

static void rate_str(double v, char *buf, size_t size)
{
	char b[32];

	snprintf(buf, size, "%s/h", hi_size_str(v, 1, b, sizeof(b)));
}

/* A p-value for people: 3.2e-09, or "< 1e-300". */
static const char *p_str(double p, char *buf, size_t size)
{
	if (isnan(p))
		snprintf(buf, size, "-");
	else if (p == 0)
		snprintf(buf, size, "0");
	else if (p < 1e-300)
		snprintf(buf, size, "<1e-300");
	else if (p < 0.001)
		snprintf(buf, size, "%.1e", p);
	else
		snprintf(buf, size, "%.3f", p);
	return buf;
}

/* "12.5%" of the heap, or "-" when there is no heap to compare with. */
static const char *of_heap_str(double v, double heap, char *buf, size_t size)
{
	if (heap > 0)
		snprintf(buf, size, "%+.1f%%", 100 * v / heap);
	else
		snprintf(buf, size, "-");
	return buf;
}

/* The p of each test in the direction the figure moved in. */
static double p_line(const struct fig *g)
{
	return g->fit.slope >= 0 ? g->fit.p_line_up : g->fit.p_line_down;
}

static double p_mk(const struct fig *g)
{
	return g->fit.mk_s >= 0 ? g->fit.p_mk_up : g->fit.p_mk_down;
}

static double p_sign(const struct fig *g)
{
	return g->fit.rose >= g->fit.fell ? g->fit.p_sign_up
					  : g->fit.p_sign_down;
}

/* What the three tests say, with the numbers behind each. */
static void evidence(const struct fig *g, char *buf, size_t size)
{
	char a[32], b[32], c[32], line[160];

	if (g->fit.t_tested && isinf(g->fit.t))
		snprintf(line, sizeof(line), "every sample on the line: no "
			 "noise to test the slope against");
	else if (!g->fit.t_tested)
		snprintf(line, sizeof(line), "no slope test: the residuals "
			 "follow each other so closely (autocorrelation %.2f) "
			 "that fewer than 3 samples are independent",
			 g->fit.r1);
	else
		snprintf(line, sizeof(line), "slope p = %s for a %s (t = %.1f, "
			 "%.1f effective samples of %zu)",
			 p_str(p_line(g), a, sizeof(a)),
			 g->fit.slope >= 0 ? "rise" : "fall", g->fit.t,
			 g->fit.n_eff, g->fit.n);
	snprintf(buf, size, "%s; direction p = %s for a %s (Mann-Kendall z "
		 "= %.1f); intervals p = %s for %s (%lu rose, %lu fell of "
		 "%lu)", line, p_str(p_mk(g), b, sizeof(b)),
		 g->fit.mk_s >= 0 ? "rise" : "fall", g->fit.mk_z,
		 p_str(p_sign(g), c, sizeof(c)),
		 g->fit.rose >= g->fit.fell ? "rises" : "falls", g->fit.rose,
		 g->fit.fell, g->fit.intervals);
}

/*
 * How a figure that grows or falls does it: at the line's rate, or, off
 * a line, in most intervals, the rate an average only; with the change
 * that counted (classify) and its share of the heap.
 */
static void how(const struct fig *g, double heap, char *buf, size_t bsize)
{
	char r[48], c[32], h[32];

	rate_str(g->fit.slope, r, sizeof(r));
	if (g->linear)
		snprintf(buf, bsize, "steadily at %s (%s along the line, %s "
			 "of the heap)", r, hi_size_str(g->fitted, 1, c,
							sizeof(c)),
			 of_heap_str(g->fitted, heap, h, sizeof(h)));
	else
		snprintf(buf, bsize, "in most intervals but not along a line "
			 "(it speeds up or slows down; %s on average): %s from "
			 "first to last, %s of the heap", r,
			 hi_size_str(g->change, 1, c, sizeof(c)),
			 of_heap_str(g->change, heap, h, sizeof(h)));
}

struct finding {
	const char *kind;       /* leak, fragmentation, outside-heap */
	int fig;
	double rate;
	char message[1536];
};

/* The finding about figure f, which grows. */
static void growth_message(const struct fig *fig, int f, double heap,
			   const struct hi_sample *last, char *buf,
			   size_t size)
{
	char m[32], hw[256], hw2[256], ev[320];

	how(&fig[f], heap, hw, sizeof(hw));
	switch (f) {
	case F_LIVE:
		/* Growth off a line may be a cache still filling. */
		snprintf(buf, size, "live allocations grow %s: %s", hw,
			 fig[F_LIVE].linear ? "likely a leak" : "a leak, or "
			 "memory still warming up (a cache, a pool): watch "
			 "longer to tell");
		if (fig[F_MMAP].state == S_GROWS) {
			how(&fig[F_MMAP], heap, hw2, sizeof(hw2));
			snprintf(buf + strlen(buf), size - strlen(buf),
				 "; in mmapped chunks: they grow %s", hw2);
		}
		break;
	case F_FREE:
		/*
		 * What malloc_trim(0) would give back is not in a snapshot:
		 * it returns the top chunk beyond M_TOP_PAD with brk and,
		 * since glibc 2.8 (mtrim, malloc.c), the whole pages inside
		 * every free chunk with MADV_DONTNEED; a snapshot records the
		 * free bytes (fordblks) but not how they fall on pages.  So
		 * the free-retained bytes are the bound that can be
		 * justified, and are named as a bound.
		 */
		snprintf(buf, size, "heap free space grows %s while live "
			 "bytes %s: fragmentation; malloc_trim(0) could give "
			 "back at most %s, the free-retained bytes now (how "
			 "much exactly depends on how many whole pages the "
			 "free chunks span)", hw,
			 fig[F_LIVE].state == S_GROWS ? "grow too"
						      : "do not grow",
			 hi_size_str((double)last->mi[HI_MI_FORDBLKS], 0, m,
				     sizeof(m)));
		break;
	default:
		snprintf(buf, size, "RSS grows outside the malloc heap %s "
			 "(mmap of its own, thread stacks, another allocator, "
			 "...)", hw);
		break;
	}
	evidence(&fig[f], ev, sizeof(ev));
	snprintf(buf + strlen(buf), size - strlen(buf), "; %s", ev);
}

/*
 * The words for figure f in its state; "" for a flat figure, which the
 * table says all about.
 */
static void statement(const struct fig *g, int f, double heap, char *buf,
		      size_t size)
{
	char a[32], b[32], c[32], h[32], hw[256], ev[320];
	const char *name = fig_words[f];

	hi_size_str(g->first, 0, a, sizeof(a));
	hi_size_str(g->last, 0, b, sizeof(b));
	hi_size_str(g->change, 1, c, sizeof(c));
	of_heap_str(g->change, heap, h, sizeof(h));
	how(g, heap, hw, sizeof(hw));
	evidence(g, ev, sizeof(ev));
	switch (g->state) {
	case S_GROWS:
		snprintf(buf, size, "%s grow %s (%s)", name, hw, ev);
		break;
	case S_GROWS_SLIGHTLY:
		snprintf(buf, size, "%s grow %s: too little to call growth "
			 "yet (%s)", name, hw, ev);
		break;
	case S_FALLS:
		snprintf(buf, size, "%s fall %s (%s)", name, hw, ev);
		break;
	case S_FALLS_SLIGHTLY:
		snprintf(buf, size, "%s fall %s: little (%s)", name, hw, ev);
		break;
	case S_ROSE:
		snprintf(buf, size, "%s rose from %s to %s (%s, %s of the "
			 "heap) in one direction, but neither along a line "
			 "nor in most intervals: a step, or a walk, not a "
			 "steady trend (%s)", name, a, b, c, h, ev);
		break;
	case S_ROSE_SLIGHTLY:
		snprintf(buf, size, "%s rose from %s to %s in one direction, "
			 "but only by %s, %s of the heap (%s)", name, a, b, c,
			 h, ev);
		break;
	case S_FELL:
		snprintf(buf, size, "%s fell from %s to %s (%s, %s of the "
			 "heap) in one direction, but neither along a line "
			 "nor in most intervals (%s)", name, a, b, c, h, ev);
		break;
	case S_FELL_SLIGHTLY:
		snprintf(buf, size, "%s fell from %s to %s in one direction, "
			 "but only by %s, %s of the heap (%s)", name, a, b, c,
			 h, ev);
		break;
	case S_SWINGS:
		snprintf(buf, size, "%s moved from %s to %s (%s, %s of the "
			 "heap) with no trend either way (neither the slope "
			 "nor Mann-Kendall's test finds one at p < %g): it "
			 "swings (%s)", name, a, b, c, h, ALPHA, ev);
		break;
	default:
		buf[0] = '\0';
		break;
	}
}

/*
 * The samples trend uses: the consistent ones of s->v[first] to
 * s->v[first + cnt - 1] (one segment), in time order.  Return how many,
 * or -1 after a message.
 */
static long usable(const char *path, const struct hi_series *s,
		   size_t first, size_t cnt, const struct hi_sample **v,
		   size_t *skipped, int *have_rss)
{
	size_t n = 0;

	*skipped = 0;
	*have_rss = 1;
	for (size_t i = first; i < first + cnt; i++) {
		if (!s->v[i].has_mi) {
			(*skipped)++;
			continue;
		}
		/*
		 * Two snapshots of one process cannot be of one moment (a
		 * file written twice, or joined with itself), and a clock
		 * that went back leaves no order to fit a line to: refused,
		 * not merged or reordered, so that no figure is guessed.
		 */
		if (n && s->v[i].t == v[n - 1]->t) {
			errmsg("'%s' line %lu: the same timestamp as line %lu "
			       "(%s): two snapshots of one moment (a line "
			       "written twice?); trend needs each at its own "
			       "time", path, s->v[i].line, v[n - 1]->line,
			       s->v[i].timestamp);
			return -1;
		}
		if (n && s->v[i].t < v[n - 1]->t) {
			errmsg("'%s' line %lu: its timestamp %s is earlier than "
			       "line %lu's (%s): the clock went back while the "
			       "series was written; trend needs them in order",
			       path, s->v[i].line, s->v[i].timestamp,
			       v[n - 1]->line, v[n - 1]->timestamp);
			return -1;
		}
		v[n++] = &s->v[i];
		*have_rss &= s->v[i].has_proc[HI_PROC_RSS];
	}
	return (long)n;
}

/*
 * A byte count or rate as a JSON integer; one beyond 2^62 (a rate over
 * snapshots a microsecond apart can be) as a real, never a wrapped one.
 */
static json_t *jbytes(double v)
{
	if (!isfinite(v))
		return json_null();
	if (fabs(v) >= 4611686018427387904.0)
		return json_real(v);
	return json_integer((json_int_t)llround(v));
}

static json_t *jp(double p)
{
	return isnan(p) ? json_null() : json_real(p);
}

static json_t *jreal(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *series_json(const struct fig *g, double heap)
{
	const struct hi_fit *t = &g->fit;

	return json_pack(
		"{s:o,s:o,s:o,s:o,s:o,s:o,s:f,s:I,s:I,s:I,s:b,s:s,s:o,s:b,"
		"s:{s:o,s:f,s:f,s:f,s:o,s:o},s:{s:I,s:f,s:f,s:f},"
		"s:{s:f,s:f},s:b}",
		"first", jbytes(g->first),
		"last", jbytes(g->last),
		"change", jbytes(g->change),
		"fitted_change", jbytes(g->fitted),
		"fitted_of_heap", heap > 0 ? json_real(g->fitted / heap)
					   : json_null(),
		"bytes_per_hour", jbytes(t->slope),
		"r2", t->r2,
		"intervals", (json_int_t)t->intervals,
		"rose", (json_int_t)t->rose,
		"fell", (json_int_t)t->fell,
		"nearly_every_interval", g->nearly_every,
		"state", state_names[g->state],
		"p_value", jp(g->p),
		"grows", g->state == S_GROWS,
		"line",
		"t", t->t_tested ? jreal(t->t) : json_null(),
		"df", t->df, "autocorrelation", t->r1,
		"effective_samples", t->n_eff,
		"p_rise", jp(t->p_line_up), "p_fall", jp(t->p_line_down),
		"mann_kendall",
		"s", (json_int_t)t->mk_s, "z", t->mk_z,
		"p_rise", t->p_mk_up, "p_fall", t->p_mk_down,
		"sign",
		"p_rise", t->p_sign_up, "p_fall", t->p_sign_down,
		"along_line", g->linear);
}

/* How many snapshots of segment k have mallinfo2 figures. */
static size_t consistent(const struct hi_series *s, unsigned k)
{
	size_t first, cnt, n = 0;

	if (hi_series_segment(s, k, &first, &cnt))
		return 0;
	for (size_t i = first; i < first + cnt; i++)
		n += s->v[i].has_mi;
	return n;
}

/*
 * Which segment to judge: want (1-based, from --segment), or else the
 * last with at least 3 consistent snapshots, the process that ran last:
 * a restart starts a new heap, so a line through two processes' figures
 * would measure the restart, not either process.  The last one when none
 * has 3 (the caller says so).
 */
static unsigned judged_segment(const struct hi_series *s, unsigned want)
{
	if (want)
		return want - 1;
	for (unsigned k = (unsigned)s->segments; k-- > 0;)
		if (consistent(s, k) >= 3)
			return k;
	return s->segments ? (unsigned)s->segments - 1 : 0;
}

/* The segments left out, for the JSON. */
static json_t *left_out_json(const struct hi_series *s, unsigned judged)
{
	json_t *a = json_array();

	for (unsigned k = 0; a && k < s->segments; k++) {
		size_t first, cnt;
		const struct hi_sample *f, *l;

		if (k == judged || hi_series_segment(s, k, &first, &cnt))
			continue;
		f = &s->v[first];
		l = &s->v[first + cnt - 1];
		json_array_append_new(a, json_pack(
			"{s:I,s:i,s:s,s:I,s:I,s:I,s:I,s:s,s:s}",
			"segment", (json_int_t)k + 1, "pid", (int)f->id.pid,
			"comm", f->comm, "first_line", (json_int_t)f->line,
			"last_line", (json_int_t)l->line, "snapshots",
			(json_int_t)cnt, "consistent",
			(json_int_t)consistent(s, k), "first", f->timestamp,
			"last", l->timestamp));
	}
	return a;
}

/* The segments left out, in words: one line each. */
static void left_out_text(const struct hi_series *s, unsigned judged)
{
	for (unsigned k = 0; k < s->segments; k++) {
		size_t first, cnt;
		const struct hi_sample *f, *l;

		if (k == judged || hi_series_segment(s, k, &first, &cnt))
			continue;
		f = &s->v[first];
		l = &s->v[first + cnt - 1];
		printf("left out: process %u, pid %d (%s), lines %lu to %lu, "
		       "%s to %s: %s; --segment %u judges it\n", k + 1,
		       (int)f->id.pid, f->comm, f->line, l->line,
		       f->timestamp, l->timestamp, k < judged ? "it ran "
		       "before a restart, and a restart starts a new heap" :
		       consistent(s, k) < 3 ? "it has fewer than 3 "
		       "consistent snapshots" : "not the one asked for", k + 1);
	}
}

int hi_cmd_trend(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "min-growth", required_argument, NULL, 'm' },
		{ "segment", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t min_growth = 0;
	struct hi_series s = { 0 };
	const struct hi_sample **v = NULL;
	double *x = NULL, *y = NULL;
	struct fig fig[F_N];
	struct finding fd[F_N];
	char words[F_N][1536];
	const char *path, *verdict = "steady";
	size_t skipped = 0, first = 0, cnt = 0;
	unsigned want = 0, judged;
	unsigned long val;
	long n;
	int json = 0, c, rc = EXIT_FAILED, nf = 0, dom = -1, have_rss, ret;
	double span, heap = 0, grow_min, swing_min;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'm':
			if (hi_parse_size(optarg, &min_growth) ||
			    min_growth > HI_FIGURE_MAX) {
				errmsg("invalid --min-growth '%s': expected "
				       "bytes, or KiB, MiB, GiB", optarg);
				return hi_usage_hint("trend");
			}
			break;
		case 's':
			if (parse_uint(optarg, 1000000000, &val) || !val) {
				errmsg("invalid --segment '%s': expected a "
				       "process of the file, 1 for the first",
				       optarg);
				return hi_usage_hint("trend");
			}
			want = (unsigned)val;
			break;
		case 'h':
			trend_usage(stdout);
			return EXIT_OK;
		default:
			return hi_usage_hint("trend");
		}
	}
	if (argc - optind != 1) {
		errmsg(argc - optind < 1 ? "which series? give a JSON Lines "
		       "file of heapinspect watch" : "trend reads one file");
		return hi_usage_hint("trend");
	}
	path = argv[optind];
	if (hi_series_load(path, 0, &s))
		return EXIT_FAILED;
	v = calloc(s.n ? s.n : 1, sizeof(*v));
	x = calloc(s.n ? s.n : 1, sizeof(*x));
	y = calloc(s.n ? s.n : 1, sizeof(*y));
	if (!v || !x || !y) {
		errmsg("out of memory");
		goto out;
	}
	if (want > s.segments) {
		errmsg("invalid --segment %u: '%s' holds %zu process%s", want,
		       path, s.segments, s.segments == 1 ? "" : "es");
		goto out;
	}
	judged = judged_segment(&s, want);
	if (hi_series_segment(&s, judged, &first, &cnt))
		first = cnt = 0;
	n = usable(path, &s, first, cnt, v, &skipped, &have_rss);
	if (n < 0)
		goto out;
	if (skipped)
		errmsg("'%s': %zu snapshot%s not consistent (an arena busy "
		       "or corrupt): left out", path, skipped,
		       skipped == 1 ? " is" : "s are");
	if (n < 3 && s.segments > 1 && want) {
		errmsg("'%s' process %u (lines %lu to %lu) has %ld consistent "
		       "snapshot%s: a trend needs at least 3", path, want,
		       s.v[first].line, s.v[first + cnt - 1].line, n,
		       n == 1 ? "" : "s");
		goto out;
	}
	if (n < 3 && s.segments > 1) {
		errmsg("'%s' holds %zu processes (restarts), none with 3 "
		       "consistent snapshots: a trend needs at least 3 of one "
		       "process, as a restart starts a new heap", path,
		       s.segments);
		goto out;
	}
	if (n < 3) {
		errmsg("'%s' has %ld consistent snapshot%s: a trend needs at "
		       "least 3", path, n, n == 1 ? "" : "s");
		goto out;
	}
	span = v[n - 1]->t - v[0]->t;
	for (long i = 0; i < n; i++) {
		x[i] = (v[i]->t - v[0]->t) / 3600.0;
		heap += (double)hi_heap_bytes(v[i]);
	}
	heap /= (double)n;
	grow_min = fmax(GROWTH_OF_HEAP * heap, (double)min_growth);
	swing_min = SWING_OF_HEAP * heap;
	memset(fig, 0, sizeof(fig));
	for (int f = 0; f < F_N; f++) {
		struct fig *g = &fig[f];

		if (f == F_OUTSIDE && !have_rss)
			continue;
		for (long i = 0; i < n; i++)
			y[i] = figure(v[i], f);
		ret = hi_fit_series(x, y, (size_t)n, &g->fit);
		if (ret) {
			errmsg("'%s': %s", path, ret == -ENOMEM ? "out of "
			       "memory" : "the timestamps do not increase");
			goto out;
		}
		g->have = 1;
		g->first = y[0];
		g->last = y[n - 1];
		g->change = y[n - 1] - y[0];
		g->fitted = g->fit.slope * (span / 3600.0);
		g->nearly_every = g->fit.rose >= NEARLY_EVERY *
						 g->fit.intervals;
		classify(g, grow_min, swing_min);
	}
	if (!have_rss)
		errmsg("'%s': some snapshots have no RSS: RSS outside the "
		       "heap is left out", path);

	/* Growth along a line: the findings; the fastest is the verdict. */
	for (int f = 0; f < F_N; f++) {
		static const char *const kind[F_N] = {
			"leak", "fragmentation", NULL, "outside-heap",
		};

		if (!kind[f] || !fig[f].have || fig[f].state != S_GROWS)
			continue;
		fd[nf].kind = kind[f];
		fd[nf].fig = f;
		fd[nf].rate = fig[f].fit.slope;
		growth_message(fig, f, heap, v[n - 1], fd[nf].message,
			       sizeof(fd[nf].message));
		nf++;
	}
	for (int i = 0; i < nf; i++)
		if (dom < 0 || fd[i].rate > fd[dom].rate)
			dom = i;
	if (dom >= 0) {
		verdict = fd[dom].kind;
	} else {
		/* No steady growth: what the figures that count did. */
		static const int counted[] = { F_LIVE, F_FREE, F_OUTSIDE };
		int rose = 0, fell = 0, swings = 0;

		for (size_t i = 0; i < 3; i++) {
			const struct fig *g = &fig[counted[i]];

			if (!g->have)
				continue;
			rose |= g->state == S_ROSE;
			fell |= g->state == S_FALLS || g->state == S_FELL;
			swings |= g->state == S_SWINGS;
		}
		verdict = rose ? "growing" : fell ? "shrinking"
			: swings ? "fluctuating" : "steady";
	}
	for (int f = 0; f < F_N; f++) {
		words[f][0] = '\0';
		if (fig[f].have && !(fig[f].state == S_GROWS && f != F_MMAP))
			statement(&fig[f], f, heap, words[f],
				  sizeof(words[f]));
	}

	if (json) {
		json_t *o = json_object(), *jf = json_array(),
		       *sl = json_object(), *ser = json_object(),
		       *st = json_array();

		json_object_set_new(o, "schema",
				    json_string("heapinspect/trend/v1"));
		json_object_set_new(o, "file", json_string(path));
		json_object_set_new(o, "pid", json_integer(v[0]->id.pid));
		json_object_set_new(o, "comm", json_string(v[0]->comm));
		json_object_set_new(o, "segments",
				    json_integer((json_int_t)s.segments));
		json_object_set_new(o, "segment",
				    json_integer((json_int_t)judged + 1));
		json_object_set_new(o, "first_line", json_integer(
			(json_int_t)s.v[first].line));
		json_object_set_new(o, "last_line", json_integer(
			(json_int_t)s.v[first + cnt - 1].line));
		json_object_set_new(o, "left_out", left_out_json(&s, judged));
		json_object_set_new(o, "samples", json_integer(n));
		json_object_set_new(o, "skipped",
				    json_integer((json_int_t)skipped));
		json_object_set_new(o, "first", json_string(v[0]->timestamp));
		json_object_set_new(o, "last",
				    json_string(v[n - 1]->timestamp));
		json_object_set_new(o, "span_seconds", json_real(span));
		json_object_set_new(o, "verdict", json_string(verdict));
		for (int i = 0; i < nf; i++)
			json_array_append_new(jf, json_pack(
				"{s:s,s:s,s:o,s:f,s:s}", "kind", fd[i].kind,
				"figure", fig_names[fd[i].fig],
				"bytes_per_hour", jbytes(fd[i].rate), "p_value",
				fig[fd[i].fig].p, "message", fd[i].message));
		json_object_set_new(o, "findings", jf);
		for (int f = 0; f < F_N; f++)
			if (words[f][0])
				json_array_append_new(st,
						      json_string(words[f]));
		json_object_set_new(o, "statements", st);
		for (int f = 0; f < F_N; f++) {
			json_object_set_new(sl, slope_names[f], fig[f].have ?
					    jbytes(fig[f].fit.slope) :
					    json_null());
			json_object_set_new(ser, fig_names[f], fig[f].have ?
					    series_json(&fig[f], heap) :
					    json_null());
		}
		json_object_set_new(o, "slopes", sl);
		json_object_set_new(o, "series", ser);
		json_object_set_new(o, "heap_bytes", jbytes(heap));
		json_object_set_new(o, "alpha", json_real(ALPHA));
		json_object_set_new(o, "growth_threshold_bytes",
				    jbytes(grow_min));
		json_object_set_new(o, "swing_threshold_bytes",
				    jbytes(swing_min));
		json_object_set_new(o, "min_growth_bytes",
				    json_integer((json_int_t)min_growth));
		if (json_dumpf(o, stdout, JSON_INDENT(2) |
			       JSON_PRESERVE_ORDER) || putchar('\n') == EOF) {
			json_decref(o);
			goto write_error;
		}
		json_decref(o);
	} else {
		char hb[32], gb[32], sb[32];

		printf("'%s': %ld snapshots of pid %d (%s) over %.1f s (%.2f "
		       "h), %s to %s\n", path, n, v[0]->id.pid, v[0]->comm,
		       span, span / 3600, v[0]->timestamp,
		       v[n - 1]->timestamp);
		if (s.segments > 1) {
			printf("judged: process %u of the %zu in the file "
			       "(lines %lu to %lu)%s\n", judged + 1,
			       s.segments, s.v[first].line,
			       s.v[first + cnt - 1].line,
			       judged + 1 == s.segments ? ", the last" : "");
			left_out_text(&s, judged);
		}
		printf("heap (arena + hblkhd) %s on average: a change counts "
		       "from %s%s, a swing from %s; tests one-sided at p < "
		       "%g\n\n", hi_size_str(heap, 0, hb, sizeof(hb)),
		       hi_size_str(grow_min, 0, gb, sizeof(gb)),
		       min_growth && grow_min == (double)min_growth
		       ? " (--min-growth)" : " (1% of it)",
		       hi_size_str(swing_min, 0, sb, sizeof(sb)), ALPHA);
		printf("%-18s %10s %10s %13s %5s %9s %8s %8s %8s %7s  %s\n",
		       "figure", "first", "last", "slope", "R^2", "rose/fell",
		       "p slope", "p dir", "p intv", "of heap", "state");
		for (int f = 0; f < F_N; f++) {
			const struct fig *g = &fig[f];
			char a[32], b[32], r[48], ri[32], p1[16], p2[16],
			     p3[16], h[16];

			if (!g->have) {
				printf("%-18s %10s\n", fig_names[f],
				       "(no RSS)");
				continue;
			}
			rate_str(g->fit.slope, r, sizeof(r));
			snprintf(ri, sizeof(ri), "%lu/%lu", g->fit.rose,
				 g->fit.fell);
			printf("%-18s %10s %10s %13s %5.3f %9s %8s %8s %8s "
			       "%7s  %s\n", fig_names[f],
			       hi_size_str(g->first, 0, a, sizeof(a)),
			       hi_size_str(g->last, 0, b, sizeof(b)), r,
			       g->fit.r2, ri,
			       p_str(p_line(g), p1, sizeof(p1)),
			       p_str(p_mk(g), p2, sizeof(p2)),
			       p_str(p_sign(g), p3, sizeof(p3)),
			       of_heap_str(g->change, heap, h, sizeof(h)),
			       state_names[g->state]);
		}
		printf("\nverdict: %s\n", verdict);
		if (dom >= 0)
			printf("  %s\n", fd[dom].message);
		for (int i = 0; i < nf; i++)
			if (i != dom)
				printf("  also: %s\n", fd[i].message);
		for (int f = 0; f < F_N; f++)
			if (words[f][0])
				printf("  %s\n", words[f]);
		if (!strcmp(verdict, "steady"))
			printf("  no figure moved in one direction by %s or "
			       "more, nor by %s without one\n", gb, sb);
	}
	if (fflush(stdout) != 0)
		goto write_error;
	rc = dom >= 0 || !strcmp(verdict, "growing") ? 1 : EXIT_OK;
	goto out;
write_error:
	errmsg("cannot write the report: %s", lower(strerror(errno)));
	rc = EXIT_FAILED;
out:
	free(v);
	free(x);
	free(y);
	hi_series_free(&s);
	return rc;
}
