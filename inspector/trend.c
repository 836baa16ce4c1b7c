/* SPDX-License-Identifier: MIT */
/*
 * heapinspect trend: over a series of snapshots, does live memory grow (a
 * leak), free memory kept by malloc (fragmentation), or memory outside the
 * malloc heap?  For each figure: the least-squares slope, how well a line
 * fits (R^2), and in how many intervals it rose, psleak's criterion of a
 * leak: it kept increasing across retries.
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

/* The thresholds; README "heapinspect trend" explains them. */
#define MIN_R2		0.8
#define NEARLY_EVERY	0.9
#define DEFAULT_MIN_GROWTH ((uint64_t)1 << 20)

static void trend_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect trend [--json] [--min-growth SIZE] FILE.jsonl\n"
"\n"
"A verdict over a series of snapshots (heapinspect watch): for live heap\n"
"bytes, free-but-retained bytes, mmapped bytes and RSS outside the heap,\n"
"the least-squares slope (bytes per hour), how well a line fits (R^2) and\n"
"in how many intervals it rose; then which of them grows: live bytes (a\n"
"leak), free bytes while live bytes are flat (fragmentation), or RSS\n"
"outside the malloc heap.  A figure grows when its fitted growth over\n"
"the series is at least SIZE (default 1MiB), R^2 is at least 0.8, and it\n"
"rose in more than half of the intervals.\n"
"\n"
"  --json             one JSON object (schema heapinspect/trend/v1): verdict\n"
"                     steady, leak, fragmentation or outside-heap, findings,\n"
"                     slopes\n"
"  --min-growth SIZE  growth that matters, as 1048576, 512KiB, 1MiB\n"
"\n"
"exit status: 0 steady; 1 something grows (leak, fragmentation or\n"
"outside-heap); 2 the file cannot be read or has fewer than 3 consistent\n"
"snapshots; 64 wrong usage.\n");
}

enum { F_LIVE, F_FREE, F_MMAP, F_OUTSIDE, F_N };

static const char *const fig_names[F_N] = {
	"live_bytes", "free_bytes", "mmapped_bytes", "outside_heap_bytes",
};

static const char *const slope_names[F_N] = {
	"live_bytes_per_hour", "free_bytes_per_hour", "mmap_bytes_per_hour",
	"outside_heap_bytes_per_hour",
};

struct fit {
	int have;
	double first, last;
	double slope;           /* bytes per hour */
	double r2;
	unsigned long rose, fell, intervals;
	int grows;
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
 * Ordinary least squares of y on x (hours since the first sample), with
 * the means taken out first so that large byte counts do not cancel.
 */
static void fit_line(const struct hi_sample **v, size_t n, int f,
		     uint64_t min_growth, struct fit *out)
{
	long double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;
	double t0 = v[0]->t, span;

	memset(out, 0, sizeof(*out));
	out->have = 1;
	for (size_t i = 0; i < n; i++) {
		mx += (v[i]->t - t0) / 3600.0;
		my += figure(v[i], f);
	}
	mx /= n;
	my /= n;
	for (size_t i = 0; i < n; i++) {
		long double dx = (v[i]->t - t0) / 3600.0 - mx;
		long double dy = figure(v[i], f) - my;

		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
		if (i > 0) {
			double a = figure(v[i - 1], f), b = figure(v[i], f);

			out->intervals++;
			out->rose += b > a;
			out->fell += b < a;
		}
	}
	out->first = figure(v[0], f);
	out->last = figure(v[n - 1], f);
	out->slope = (double)(sxy / sxx);
	/* A flat series is fitted exactly by a flat line. */
	out->r2 = syy > 0 ? (double)(sxy * sxy / (sxx * syy)) : 1.0;
	span = (v[n - 1]->t - t0) / 3600.0;
	out->nearly_every = out->rose >= NEARLY_EVERY * out->intervals;
	out->grows = out->slope > 0 &&
		     out->slope * span >= (double)min_growth &&
		     out->r2 >= MIN_R2 && out->rose * 2 > out->intervals;
}

struct finding {
	const char *kind;       /* leak, fragmentation, outside-heap */
	int fig;
	double rate;
	char message[512];
};

static void rate_str(double v, char *buf, size_t size)
{
	char b[32];

	snprintf(buf, size, "%s/h", hi_size_str(v, 0, b, sizeof(b)));
}

static int findings(const struct fit *fit, const struct hi_sample *last,
		    struct finding *out)
{
	char r[48], r2[48], m[32];
	int n = 0;

	if (fit[F_LIVE].grows) {
		struct finding *x = &out[n++];

		rate_str(fit[F_LIVE].slope, r, sizeof(r));
		x->kind = "leak";
		x->fig = F_LIVE;
		x->rate = fit[F_LIVE].slope;
		snprintf(x->message, sizeof(x->message), "live allocations "
			 "grow %sat %s: likely a leak",
			 fit[F_LIVE].nearly_every ? "steadily " : "", r);
		if (fit[F_MMAP].grows) {
			rate_str(fit[F_MMAP].slope, r2, sizeof(r2));
			snprintf(x->message + strlen(x->message),
				 sizeof(x->message) - strlen(x->message),
				 " (in mmapped chunks: %s)", r2);
		}
	}
	if (fit[F_FREE].grows) {
		struct finding *x = &out[n++];

		rate_str(fit[F_FREE].slope, r, sizeof(r));
		x->kind = "fragmentation";
		x->fig = F_FREE;
		x->rate = fit[F_FREE].slope;
		/*
		 * What malloc_trim(0) would give back is not in a snapshot:
		 * it returns the top chunk beyond M_TOP_PAD with brk and,
		 * since glibc 2.8 (mtrim, malloc.c), the whole pages inside
		 * every free chunk with MADV_DONTNEED; a snapshot records the
		 * free bytes (fordblks) but not how they fall on pages.  So
		 * the free-retained bytes are the bound that can be
		 * justified, and are named as a bound.
		 */
		snprintf(x->message, sizeof(x->message), "heap free space "
			 "grows at %s while live bytes %s: fragmentation; "
			 "malloc_trim(0) could give back at most %s, the "
			 "free-retained bytes now (how much exactly depends on "
			 "how many whole pages the free chunks span)", r,
			 fit[F_LIVE].grows ? "grow too" : "are flat",
			 hi_size_str((double)last->mi[HI_MI_FORDBLKS], 0, m,
				     sizeof(m)));
	}
	if (fit[F_OUTSIDE].have && fit[F_OUTSIDE].grows) {
		struct finding *x = &out[n++];

		rate_str(fit[F_OUTSIDE].slope, r, sizeof(r));
		x->kind = "outside-heap";
		x->fig = F_OUTSIDE;
		x->rate = fit[F_OUTSIDE].slope;
		snprintf(x->message, sizeof(x->message), "RSS grows outside "
			 "the malloc heap at %s (mmap of its own, thread "
			 "stacks, another allocator, ...)", r);
	}
	return n;
}

int hi_cmd_trend(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "min-growth", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t min_growth = DEFAULT_MIN_GROWTH;
	struct hi_series s = { 0 };
	const struct hi_sample **v = NULL;
	struct fit fit[F_N];
	struct finding fd[F_N];
	const char *path, *verdict = "steady";
	size_t n = 0, skipped = 0;
	int json = 0, c, rc = EXIT_FAILED, nf, dom = -1, have_rss = 1;
	double span;

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
	if (!v) {
		errmsg("out of memory");
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		if (!s.v[i].has_mi) {
			skipped++;
			continue;
		}
		if (n && s.v[i].t <= v[n - 1]->t) {
			errmsg("'%s' line %lu: the timestamp is not later than "
			       "the one before it", path, s.v[i].line);
			goto out;
		}
		v[n++] = &s.v[i];
		have_rss &= s.v[i].has_proc[HI_PROC_RSS];
	}
	if (skipped)
		errmsg("'%s': %zu snapshot%s not consistent (an arena busy "
		       "or corrupt): left out", path, skipped,
		       skipped == 1 ? " is" : "s are");
	if (n < 3) {
		errmsg("'%s' has %zu consistent snapshot%s: a trend needs at "
		       "least 3", path, n, n == 1 ? "" : "s");
		goto out;
	}
	for (int f = 0; f < F_N; f++)
		fit_line(v, n, f, min_growth, &fit[f]);
	if (!have_rss) {
		memset(&fit[F_OUTSIDE], 0, sizeof(fit[F_OUTSIDE]));
		errmsg("'%s': some snapshots have no RSS: RSS outside the "
		       "heap is left out", path);
	}
	nf = findings(fit, v[n - 1], fd);
	/* The dominant finding: the one that grows fastest. */
	for (int i = 0; i < nf; i++)
		if (dom < 0 || fd[i].rate > fd[dom].rate)
			dom = i;
	if (dom >= 0)
		verdict = fd[dom].kind;
	span = v[n - 1]->t - v[0]->t;

	if (json) {
		json_t *o = json_object(), *jf = json_array(),
		       *sl = json_object(), *ser = json_object();

		json_object_set_new(o, "schema",
				    json_string("heapinspect/trend/v1"));
		json_object_set_new(o, "file", json_string(path));
		json_object_set_new(o, "pid", json_integer(v[0]->pid));
		json_object_set_new(o, "comm", json_string(v[0]->comm));
		json_object_set_new(o, "samples", json_integer((json_int_t)n));
		json_object_set_new(o, "skipped",
				    json_integer((json_int_t)skipped));
		json_object_set_new(o, "first", json_string(v[0]->timestamp));
		json_object_set_new(o, "last",
				    json_string(v[n - 1]->timestamp));
		json_object_set_new(o, "span_seconds", json_real(span));
		json_object_set_new(o, "verdict", json_string(verdict));
		for (int i = 0; i < nf; i++)
			json_array_append_new(jf, json_pack(
				"{s:s,s:s,s:I,s:s}", "kind", fd[i].kind,
				"figure", fig_names[fd[i].fig],
				"bytes_per_hour",
				(json_int_t)llround(fd[i].rate), "message",
				fd[i].message));
		json_object_set_new(o, "findings", jf);
		for (int f = 0; f < F_N; f++) {
			json_int_t slope = (json_int_t)llround(fit[f].slope);

			json_object_set_new(sl, slope_names[f], fit[f].have ?
					    json_integer(slope) : json_null());
			json_object_set_new(ser, fig_names[f], !fit[f].have ?
				json_null() : json_pack(
				"{s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:b,s:b}",
				"first", (json_int_t)llround(fit[f].first),
				"last", (json_int_t)llround(fit[f].last),
				"bytes_per_hour",
				(json_int_t)llround(fit[f].slope),
				"r2", fit[f].r2,
				"intervals", (json_int_t)fit[f].intervals,
				"rose", (json_int_t)fit[f].rose,
				"fell", (json_int_t)fit[f].fell,
				"nearly_every_interval", fit[f].nearly_every,
				"grows", fit[f].grows));
		}
		json_object_set_new(o, "slopes", sl);
		json_object_set_new(o, "series", ser);
		json_object_set_new(o, "min_growth_bytes",
				    json_integer((json_int_t)min_growth));
		if (json_dumpf(o, stdout, JSON_INDENT(2) |
			       JSON_PRESERVE_ORDER) || putchar('\n') == EOF) {
			json_decref(o);
			goto write_error;
		}
		json_decref(o);
	} else {
		printf("'%s': %zu snapshots of pid %d (%s) over %.1f s (%.2f "
		       "h), %s to %s\n\n", path, n, v[0]->pid, v[0]->comm,
		       span, span / 3600, v[0]->timestamp,
		       v[n - 1]->timestamp);
		printf("%-20s %12s %12s %14s %6s %10s  %s\n", "figure",
		       "first", "last", "slope", "R^2", "rose in", "grows");
		for (int f = 0; f < F_N; f++) {
			char a[32], b[32], r[48], ri[32];

			if (!fit[f].have) {
				printf("%-20s %12s\n", fig_names[f],
				       "(no RSS)");
				continue;
			}
			rate_str(fit[f].slope, r, sizeof(r));
			snprintf(ri, sizeof(ri), "%lu/%lu", fit[f].rose,
				 fit[f].intervals);
			printf("%-20s %12s %12s %14s %6.3f %10s  %s\n",
			       fig_names[f],
			       hi_size_str(fit[f].first, 0, a, sizeof(a)),
			       hi_size_str(fit[f].last, 0, b, sizeof(b)), r,
			       fit[f].r2, ri, fit[f].grows ?
			       (fit[f].nearly_every ? "yes, in nearly every "
				"interval" : "yes") : "no");
		}
		printf("\nverdict: %s\n", verdict);
		if (dom >= 0)
			printf("  %s\n", fd[dom].message);
		for (int i = 0; i < nf; i++)
			if (i != dom)
				printf("  also: %s\n", fd[i].message);
		if (dom < 0) {
			char g[32];

			printf("  no figure grew by %s or more along a line: "
			       "steady\n", hi_size_str((double)min_growth, 0,
						       g, sizeof(g)));
		}
	}
	if (fflush(stdout) != 0)
		goto write_error;
	rc = dom >= 0 ? 1 : EXIT_OK;
	goto out;
write_error:
	errmsg("cannot write the report: %s", lower(strerror(errno)));
	rc = EXIT_FAILED;
out:
	free(v);
	hi_series_free(&s);
	return rc;
}
