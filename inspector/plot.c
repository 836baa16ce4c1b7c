/* SPDX-License-Identifier: MIT */
/*
 * heapinspect plot: live, free-retained and mmapped bytes and RSS over
 * time, as one standalone SVG file (SVG 1.1, no script, no external
 * reference) that a browser or rsvg-convert opens, made to be read: small
 * figures on a scale of their own, the legend clear of the data, times of
 * day, and the events of the series marked.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fileio.h"
#include "series.h"

/*
 * The picture: a title, one panel for the large figures and, when some are
 * below a tenth of the largest (a few hundred KiB of mmapped bytes beside
 * tens of MiB live), a second panel with a scale of their own, so that
 * they do not lie flat on the axis; the legend in a column of its own on
 * the right, never over the data.
 */
#define W	960
#define H	600
#define ML	80	/* left: the byte labels */
#define LW	210	/* the legend's column */
#define PR	(W - LW - 16)	/* right edge of the panels */
#define MT	84	/* top: title, and two rows of event labels */
#define MB	58	/* bottom: the time labels and the axis title */
#define GAP	30	/* between the panels: the lower one's title */
#define SMALL	10	/* below 1/SMALL of the largest is small */

static void plot_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect plot FILE.jsonl -o FILE.svg\n"
"\n"
"Draw live bytes, free-retained bytes, mmapped bytes and RSS of a series\n"
"of snapshots (heapinspect watch) over time, as a standalone SVG file,\n"
"written atomically.  Figures below a tenth of the largest get a lower\n"
"panel with a scale of their own; the legend stands beside the panels;\n"
"the title and the axis give times of day (local time: TZ); the exits,\n"
"restarts (watch --unit, --pidfile, --name) and failed samples that the\n"
"series' event lines record are marked.  Snapshots without mallinfo2\n"
"figures (not consistent) are left out of the heap lines, and a line\n"
"breaks where the process changes.\n"
"\n"
"  -o, --output FILE.svg    the SVG file to write\n"
"\n"
"exit status: 0 drawn; 2 the series cannot be read, has fewer than 2\n"
"snapshots, or FILE.svg cannot be written; 64 wrong usage.\n");
}

/* Text for XML: markup escaped; bytes outside printable ASCII as '?'. */
static void put_xml(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c < 0x20 || c >= 0x7f)
			fputc('?', f);
		else
			fputc(c, f);
	}
}

/* A step of 1, 2 or 5 times a power of ten giving about n ticks. */
static double nice_step(double range, int n)
{
	double raw = range / n, p = pow(10, floor(log10(raw))), m = raw / p;

	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

enum { S_LIVE, S_FREE, S_MMAP, S_RSS, S_N };

static const struct {
	const char *name;
	const char *color;
	const char *dash;
} lines[S_N] = {
	{ "live (uordblks + hblkhd)", "#d62728", "" },
	{ "free, retained (fordblks)", "#1f77b4", "" },
	{ "mmapped (hblkhd)", "#2ca02c", "" },
	{ "RSS", "#555555", " stroke-dasharray=\"6 4\"" },
};

/* Event lines of the series, as marked on the picture. */
static const struct {
	const char *event;
	const char *name;
	const char *color;
} marks[] = {
	{ "exited", "the process exited", "#9467bd" },
	{ "resolved", "next process (restart)", "#17becf" },
	{ "error", "a sample failed", "#ff7f0e" },
};

#define N_MARKS (sizeof(marks) / sizeof(marks[0]))

static int value(const struct hi_sample *s, int k, double *v)
{
	if (k == S_RSS) {
		*v = (double)s->proc[HI_PROC_RSS];
		return s->has_proc[HI_PROC_RSS];
	}
	if (!s->has_mi)
		return 0;
	*v = k == S_LIVE ? (double)hi_live_bytes(s) :
	     k == S_FREE ? (double)s->mi[HI_MI_FORDBLKS] :
			   (double)s->mi[HI_MI_HBLKHD];
	return 1;
}

/* One panel: where it is on the picture and its byte scale. */
struct panel {
	double top, bottom;     /* y of its frame */
	double ymax;            /* bytes at the top */
	double ydiv;            /* bytes per unit */
	double step;            /* of the grid, in units */
	int unit;
};

static void panel_scale(struct panel *p, double max, int ticks)
{
	p->unit = 0;
	p->ydiv = 1;
	if (max < 1024)
		max = 1024;
	while (max / p->ydiv >= 1024 && p->unit < 5) {
		p->ydiv *= 1024;
		p->unit++;
	}
	/* Round the top of the axis up to a tick. */
	p->step = nice_step(max / p->ydiv, ticks);
	p->ymax = ceil(max / p->ydiv / p->step) * p->step * p->ydiv;
}

static double panel_y(const struct panel *p, double b)
{
	return p->bottom - b / p->ymax * (p->bottom - p->top);
}

/* 2.0 s, 4 min 10 s, 3 h 5 min, 2 d 4 h */
static void human_span(double s, char *buf, size_t size)
{
	long v = lround(s);

	if (s < 60)
		snprintf(buf, size, "%.1f s", s);
	else if (v < 3600)
		snprintf(buf, size, "%ld min %ld s", v / 60, v % 60);
	else if (v < 86400)
		snprintf(buf, size, "%ld h %ld min", v / 3600, v % 3600 / 60);
	else
		snprintf(buf, size, "%ld d %ld h", v / 86400, v % 86400 / 3600);
}

/* A moment in local time; all zero when out of range. */
static struct tm local_tm(double t)
{
	time_t tt = (time_t)floor(t);
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	return tm;
}

/*
 * Ticks of the time axis at round moments of local time: a step from
 * 0.1 s to a week giving at most 8 ticks over span.
 */
/* strftime of a moment in local time. */
#define LT(t, fmt, buf, size)                                         \
	do {                                                          \
		struct tm tm_ = local_tm(t);                          \
		if (!strftime(buf, size, fmt, &tm_))                  \
			snprintf(buf, size, "?");                     \
	} while (0)

static double time_step(double span)
{
	static const double steps[] = {
		0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
		1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
	};
	size_t i;

	for (i = 0; i + 1 < sizeof(steps) / sizeof(steps[0]); i++)
		if (span / steps[i] <= 8)
			break;
	return steps[i];
}

static void axis_time(FILE *f, double t0, double span, double x0, double x1,
		      double y)
{
	double step = time_step(span), off, first;
	char day_prev[32] = "", day[32], clock[32];
	time_t tt = (time_t)t0;
	struct tm tm;

	localtime_r(&tt, &tm);
	off = (double)tm.tm_gmtoff;
	first = ceil((t0 + off) / step - 1e-9) * step - off;
	for (int i = 0; i < 64; i++) {
		double t = first + i * step, x;

		if (t > t0 + span + step * 1e-6)
			break;
		x = x0 + (t - t0) / span * (x1 - x0);
		if (step < 1) {
			LT(t, "%H:%M:%S", clock, sizeof(clock));
			snprintf(clock + strlen(clock),
				 sizeof(clock) - strlen(clock), ".%d",
				 (int)lround((t - floor(t)) * 10) % 10);
		} else {
			LT(t, step < 60 ? "%H:%M:%S" : step < 86400 ?
				   "%H:%M" : "%d %b", clock, sizeof(clock));
		}
		LT(t, "%d %b", day, sizeof(day));
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
			"%s</text>\n", x, y + 16, clock);
		/* The date under the first tick and where it changes. */
		if (step < 86400 && strcmp(day, day_prev) != 0)
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor="
				"\"middle\" fill=\"#666666\">%s</text>\n", x,
				y + 30, day);
		snprintf(day_prev, sizeof(day_prev), "%s", day);
		fprintf(f, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" "
			"y1=\"%d\" y2=\"%.1f\" stroke=\"#e8e8e8\"/>\n", x, x,
			MT, y);
	}
}

static void axis_bytes(FILE *f, const struct panel *p)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
					     "PiB" };

	for (double y = 0; y <= p->ymax / p->ydiv + p->step / 2;
	     y += p->step) {
		double py = panel_y(p, y * p->ydiv);

		fprintf(f, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" "
			"y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e8e8e8\"/>\n"
			"<text x=\"%d\" "
			"y=\"%.1f\" text-anchor=\"end\">%g %s</text>\n", ML, PR,
			py, py, ML - 6, py + 4, y, units[p->unit]);
	}
}

/* The pids of the series, for the title: "pid 42" or "pids 42, 57". */
static void pid_list(const struct hi_series *s, char *buf, size_t size)
{
	int seen[4], n = 0, more = 0;
	size_t len;

	for (size_t i = 0; i < s->n; i++) {
		int j;

		for (j = 0; j < n && seen[j] != s->v[i].id.pid; j++)
			;
		if (j < n)
			continue;
		if (n == 4) {
			more = 1;
			break;
		}
		seen[n++] = s->v[i].id.pid;
	}
	len = (size_t)snprintf(buf, size, "pid%s", n > 1 ? "s" : "");
	for (int j = 0; j < n && len < size; j++)
		len += (size_t)snprintf(buf + len, size - len, "%s%d",
					j ? ", " : " ", seen[j]);
	if (more && len < size)
		snprintf(buf + len, size - len, ", ...");
}

static char *draw(const char *path, const struct hi_series *s, size_t *len)
{
	double t0 = s->v[0].t, t1 = s->v[s->n - 1].t, span, v;
	double max[S_N] = { 0 }, top = 0;
	int have[S_N] = { 0 }, small[S_N] = { 0 }, nsmall = 0, nbig = 0;
	size_t count[N_MARKS] = { 0 };
	struct panel pn[2];
	int npanels;
	char *buf = NULL, a[64], b[64], when[48], pids[64];
	size_t size = 0;
	double ly, last_x;
	int row;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	/* The time range covers the samples and the events beside them. */
	for (size_t i = 0; i < s->events; i++) {
		if (s->ev[i].t < 0)
			continue;
		if (s->ev[i].t < t0)
			t0 = s->ev[i].t;
		if (s->ev[i].t > t1)
			t1 = s->ev[i].t;
	}
	span = t1 - t0 > 0 ? t1 - t0 : 1;
	for (size_t i = 0; i < s->n; i++) {
		for (int k = 0; k < S_N; k++) {
			if (!value(&s->v[i], k, &v))
				continue;
			have[k] = 1;
			if (v > max[k])
				max[k] = v;
		}
	}
	for (int k = 0; k < S_N; k++)
		if (have[k] && max[k] > top)
			top = max[k];
	for (int k = 0; k < S_N; k++) {
		if (!have[k])
			continue;
		small[k] = max[k] * SMALL < top;
		nsmall += small[k];
		nbig += !small[k];
	}
	npanels = nsmall && nbig ? 2 : 1;
	if (npanels == 1)
		memset(small, 0, sizeof(small));
	pn[0].top = MT;
	pn[0].bottom = npanels == 2 ? MT + (H - MT - MB - GAP) * 0.62 : H - MB;
	pn[1].top = pn[0].bottom + GAP;
	pn[1].bottom = H - MB;
	for (int p = 0; p < npanels; p++) {
		double m = 0;

		for (int k = 0; k < S_N; k++)
			if (have[k] && small[k] == p && max[k] > m)
				m = max[k];
		/* A grid line every 50 pixels or so. */
		panel_scale(&pn[p], m, (int)((pn[p].bottom - pn[p].top) / 50));
	}

#define X(t) (ML + ((t) - t0) / span * (PR - ML))
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
	pid_list(s, pids, sizeof(pids));
	fprintf(f, "<title>heapinspect: %s (", pids);
	put_xml(f, s->v[0].comm);
	fprintf(f, ")</title>\n<rect width=\"%d\" height=\"%d\" "
		"fill=\"#ffffff\"/>\n", W, H);

	/* Title: who, how many, from when to when in local time. */
	human_span(s->v[s->n - 1].t - s->v[0].t, when, sizeof(when));
	LT(s->v[0].t, "%a %d %b %Y %H:%M:%S", a, sizeof(a));
	LT(s->v[s->n - 1].t, (time_t)s->v[0].t / 86400 ==
		   (time_t)s->v[s->n - 1].t / 86400 ? "%H:%M:%S %Z" :
		   "%a %d %b %Y %H:%M:%S %Z", b, sizeof(b));
	fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"15\">%s (", ML, pids);
	put_xml(f, s->v[0].comm);
	fprintf(f, "): %zu snapshots over %s, %s to %s</text>\n", s->n, when,
		a, b);
	fprintf(f, "<text x=\"%d\" y=\"42\" fill=\"#666666\">", ML);
	put_xml(f, path);
	fprintf(f, "</text>\n");

	axis_time(f, t0, span, ML, PR, H - MB);
	LT(t0, "%Z", a, sizeof(a));
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time of "
		"day (%s)</text>\n", (ML + PR) / 2, H - 8, a);
	for (int p = 0; p < npanels; p++) {
		axis_bytes(f, &pn[p]);
		fprintf(f, "<rect class=\"panel\" x=\"%d\" y=\"%.1f\" "
			"width=\"%d\" height=\"%.1f\" fill=\"none\" "
			"stroke=\"#000000\"/>\n", ML, pn[p].top, PR - ML,
			pn[p].bottom - pn[p].top);
	}
	if (npanels == 2)
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"#444444\">the "
			"small figures, on a scale of their own</text>\n", ML,
			pn[1].top - 8);

	/* Events: a line across the panels, a word above them. */
	last_x = -1e9;
	row = 0;
	for (size_t i = 0; i < s->events; i++) {
		const struct hi_series_event *e = &s->ev[i];
		size_t m;

		for (m = 0; m < N_MARKS; m++)
			if (strcmp(e->event, marks[m].event) == 0)
				break;
		/*
		 * A "resolved" line marks a restart only where it begins the
		 * next process's segment; at the start of a watch it only
		 * records how the process was found.
		 */
		if (m == N_MARKS || e->t < 0 ||
		    (strcmp(e->event, "resolved") == 0 && !e->restart))
			continue;
		count[m]++;
		fprintf(f, "<line class=\"event\" x1=\"%.1f\" x2=\"%.1f\" "
			"y1=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width="
			"\"2\" stroke-dasharray=\"3 3\"/>\n", X(e->t), X(e->t),
			MT - 8, pn[npanels - 1].bottom, marks[m].color);
		if (m >= 2)
			continue;
		/* Two rows of labels, so that close ones do not overlap. */
		row = X(e->t) - last_x < 80 ? !row : 0;
		last_x = X(e->t);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
			"font-size=\"11\" fill=\"%s\">%s %d</text>\n",
			X(e->t), MT - 14 - 13 * row, marks[m].color,
			m == 0 ? "exit of" : "now", (int)e->id.pid);
	}

	/* The series; a line breaks at a restart (the next segment). */
	for (int k = 0; k < S_N; k++) {
		const struct panel *p = &pn[small[k]];
		unsigned seg = 0;
		int n = 0;

		if (!have[k])
			continue;
		for (size_t i = 0; i < s->n; i++) {
			if (!value(&s->v[i], k, &v))
				continue;
			if (n && s->v[i].seg != seg) {
				fprintf(f, "\"/>\n");
				n = 0;
			}
			if (!n)
				fprintf(f, "<polyline class=\"series\" fill="
					"\"none\" stroke=\"%s\" stroke-width="
					"\"2\"%s points=\"", lines[k].color,
					lines[k].dash);
			fprintf(f, "%s%.1f,%.1f", n++ ? " " : "",
				X(s->v[i].t), panel_y(p, v));
			seg = s->v[i].seg;
		}
		if (n)
			fprintf(f, "\"/>\n");
	}

	/* The legend, in its own column. */
	ly = MT + 4;
	fprintf(f, "<g class=\"legend\">\n");
	for (int p = 0; p < npanels; p++) {
		if (npanels == 2) {
			fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"#444444\">"
				"%s</text>\n", PR + 16, ly, p ? "lower panel "
				"(own scale)" : "upper panel");
			ly += 18;
		}
		for (int k = 0; k < S_N; k++) {
			if (!have[k] || small[k] != p)
				continue;
			fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
				"y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\""
				"%s/>\n<text x=\"%d\" y=\"%.1f\">%s%s</text>\n",
				PR + 16, PR + 40, ly - 4, ly - 4,
				lines[k].color, lines[k].dash, PR + 46, ly,
				lines[k].name, max[k] > 0 ? "" : ": 0");
			ly += 18;
		}
		ly += 8;
	}
	for (size_t m = 0; m < N_MARKS; m++) {
		if (!count[m])
			continue;
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"%s\" stroke-width=\"2\" stroke-dasharray="
			"\"3 3\"/>\n<text x=\"%d\" y=\"%.1f\">%s (%zu)"
			"</text>\n",
			PR + 28, PR + 28, ly - 12, ly + 2, marks[m].color,
			PR + 46, ly, marks[m].name, count[m]);
		ly += 18;
	}
	fprintf(f, "</g>\n");
#undef X
	fprintf(f, "</svg>\n");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

int hi_cmd_plot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hi_series s = { 0 };
	const char *out = NULL, *path;
	char *svg;
	size_t len;
	int c, ret;

	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'h':
			plot_usage(stdout);
			return EXIT_OK;
		default:
			return hi_usage_hint("plot");
		}
	}
	if (argc - optind != 1) {
		errmsg(argc - optind < 1 ? "which series? give a JSON Lines "
		       "file of heapinspect watch" : "plot draws one file");
		return hi_usage_hint("plot");
	}
	if (!out) {
		errmsg("where to? give the SVG file with -o FILE.svg");
		return hi_usage_hint("plot");
	}
	path = argv[optind];
	if (hi_series_load(path, 0, &s))
		return EXIT_FAILED;
	if (s.n < 2) {
		errmsg("'%s' has %zu snapshot%s: a plot needs at least 2",
		       path, s.n, s.n == 1 ? "" : "s");
		hi_series_free(&s);
		return EXIT_FAILED;
	}
	svg = draw(path, &s, &len);
	hi_series_free(&s);
	if (!svg) {
		errmsg("out of memory");
		return EXIT_FAILED;
	}
	ret = hi_write_atomic(out, svg, len);
	free(svg);
	if (ret) {
		errmsg("cannot write '%s': %s", out, lower(strerror(-ret)));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}
