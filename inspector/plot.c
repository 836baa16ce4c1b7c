/* SPDX-License-Identifier: MIT */
/*
 * heapinspect plot: live, free-retained and mmapped bytes and RSS over
 * time, as one standalone SVG file (SVG 1.1, no script, no external
 * reference) that a browser or rsvg-convert opens.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "series.h"

#define W	960
#define H	540
#define ML	90	/* margins: left, right, top, bottom */
#define MR	24
#define MT	56
#define MB	64

static void plot_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect plot FILE.jsonl -o FILE.svg\n"
"\n"
"Draw live bytes, free-retained bytes, mmapped bytes and RSS of a series\n"
"of snapshots (heapinspect watch) over time, as a standalone SVG file,\n"
"written atomically.  Snapshots without mallinfo2 figures (not\n"
"consistent) are left out of the heap lines.\n"
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

static char *draw(const char *path, const struct hi_series *s, size_t *len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	double t0 = s->v[0].t, span = s->v[s->n - 1].t - t0, ymax = 0;
	double tdiv, ydiv = 1, step, v;
	const char *tunit;
	char *buf = NULL;
	size_t size = 0;
	int u = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		for (int k = 0; k < S_N; k++)
			if (value(&s->v[i], k, &v) && v > ymax)
				ymax = v;
	if (ymax < 1024)
		ymax = 1024;
	while (ymax / ydiv >= 1024 && u < 5) {
		ydiv *= 1024;
		u++;
	}
	if (span <= 0)
		span = 1;
	if (span < 180) {
		tdiv = 1;
		tunit = "s";
	} else if (span < 3 * 3600) {
		tdiv = 60;
		tunit = "min";
	} else {
		tdiv = 3600;
		tunit = "h";
	}
	/* Round the top of the axis up to a tick. */
	step = nice_step(ymax / ydiv, 5);
	ymax = ceil(ymax / ydiv / step) * step * ydiv;

#define X(t) (ML + ((t) - t0) / span * (W - ML - MR))
#define Y(b) (H - MB - (b) / ymax * (H - MT - MB))
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
	fprintf(f, "<title>heapinspect: pid %d (", s->v[0].pid);
	put_xml(f, s->v[0].comm);
	fprintf(f, ")</title>\n<rect width=\"%d\" height=\"%d\" "
		"fill=\"#ffffff\"/>\n", W, H);
	fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"15\">pid %d (", ML,
		s->v[0].pid);
	put_xml(f, s->v[0].comm);
	fprintf(f, "): %zu snapshots, ", s->n);
	put_xml(f, s->v[0].timestamp);
	fprintf(f, " to ");
	put_xml(f, s->v[s->n - 1].timestamp);
	fprintf(f, "</text>\n<text x=\"%d\" y=\"42\" fill=\"#666666\">", ML);
	put_xml(f, path);
	fprintf(f, "</text>\n");

	/* Grid and axes. */
	for (double y = 0; y <= ymax / ydiv + step / 2; y += step) {
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#e0e0e0\"/>\n<text x=\"%d\" y=\"%.1f\" "
			"text-anchor=\"end\">%g %s</text>\n", ML, W - MR,
			Y(y * ydiv), Y(y * ydiv), ML - 6, Y(y * ydiv) + 4, y,
			units[u]);
	}
	step = nice_step(span / tdiv, 8);
	for (double t = 0; t <= span / tdiv + step / 1000; t += step) {
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
			"stroke=\"#e0e0e0\"/>\n<text x=\"%.1f\" y=\"%d\" "
			"text-anchor=\"middle\">%g</text>\n",
			X(t0 + t * tdiv), X(t0 + t * tdiv), MT, H - MB,
			X(t0 + t * tdiv), H - MB + 18, t);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time "
		"since the first snapshot (%s)</text>\n", (W + ML - MR) / 2,
		H - 20, tunit);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"none\" stroke=\"#000000\"/>\n", ML, MT, W - ML - MR,
		H - MT - MB);

	for (int k = 0; k < S_N; k++) {
		int n = 0;

		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
			"stroke-width=\"2\"%s points=\"", lines[k].color,
			lines[k].dash);
		for (size_t i = 0; i < s->n; i++) {
			if (!value(&s->v[i], k, &v))
				continue;
			fprintf(f, "%s%.1f,%.1f", n++ ? " " : "",
				X(s->v[i].t), Y(v));
		}
		fprintf(f, "\"/>\n");
		/* Legend, top left inside the frame. */
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" "
			"stroke=\"%s\" stroke-width=\"3\"%s/>\n<text x=\"%d\" "
			"y=\"%d\">%s</text>\n", ML + 12, ML + 40,
			MT + 16 + 18 * k, MT + 16 + 18 * k, lines[k].color,
			lines[k].dash, ML + 46, MT + 20 + 18 * k,
			lines[k].name);
	}
#undef X
#undef Y
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
