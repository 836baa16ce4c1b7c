/* SPDX-License-Identifier: MIT */
/*
 * heapinspect snapshot -o FILE and heapinspect watch: snapshots written to
 * files, so that a reader never sees half of one.  Each snapshot is taken
 * by hi_snapshot_take(), which holds the target only while it reads it and
 * always lets it run again.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "fileio.h"
#include "openmetrics.h"
#include "output.h"
#include "series.h"

/* What the default command says about arenas it could not read. */
static void note_incomplete(const struct hi_snapshot *s)
{
	for (size_t i = 0; i < s->heap.narenas; i++) {
		const struct hi_arena *a = &s->heap.arenas[i];

		if (a->status == -HI_E_CORRUPT)
			errmsg("arena 0x%" PRIx64 " is corrupt at 0x%" PRIx64
			       ": %s", a->addr, a->bad_addr, a->why);
		else if (a->status == -HI_E_BUSY)
			errmsg("arena 0x%" PRIx64 " was busy (locked by the "
			       "target) in all %u attempts: its lists were "
			       "not read", a->addr, s->attempts);
		else if (a->status)
			errmsg("arena 0x%" PRIx64 " could not be read: %s",
			       a->addr, hi_strerror(a->status));
	}
}

static void snapshot_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect snapshot -p PID -o FILE [--debuginfo-path PATH]\n"
"                            [--attempts N] [--stop-timeout MS]\n"
"\n"
"Take one snapshot of PID and write its JSON (as --json prints it, schema\n"
"heapinspect/snapshot/v1) to FILE, atomically: into a new file next to it,\n"
"then renamed over FILE, so that a reader never sees half a snapshot.\n"
"\n"
"exit status: 0 written, complete; 1 written, but an arena was busy or\n"
"corrupt; 2 no snapshot, or FILE could not be written; 64 wrong usage.\n");
}

int hi_cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		HI_SNAPSHOT_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hi_snapshot_opts o;
	struct hi_snapshot s;
	struct hi_snapshot_err err;
	const char *path = NULL;
	char *text;
	json_t *j;
	int c, ret;
	char cache_dir[4096];

	hi_snapshot_opts_default(&o, 0, cache_dir, sizeof(cache_dir));

	while ((c = getopt_long(argc, argv, "p:o:h", longopts, NULL)) != -1) {
		ret = hi_snapshot_opt(c, optarg, &o);
		if (ret < 0)
			return hi_usage_hint("snapshot");
		if (ret == 0)
			continue;
		switch (c) {
		case 'o':
			path = optarg;
			break;
		case 'h':
			snapshot_usage(stdout);
			return EXIT_OK;
		default:
			return hi_usage_hint("snapshot");
		}
	}
	if (optind < argc) {
		errmsg("unexpected argument '%s'", argv[optind]);
		return hi_usage_hint("snapshot");
	}
	ret = hi_snapshot_opts_check(&o, "snapshot");
	if (ret)
		return ret;
	if (!path) {
		errmsg("where to? give the file with -o FILE");
		return hi_usage_hint("snapshot");
	}
	ret = hi_snapshot_take(&o, &s, &err);
	if (ret)
		return report_error(&o, &err, &s);
	j = hi_snapshot_json(&s);
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text) {
		errmsg("out of memory");
		hi_snapshot_free(&s);
		return EXIT_FAILED;
	}
	/* The same bytes as --json prints: the text and a newline. */
	{
		size_t n = strlen(text);
		char *nl = realloc(text, n + 2);

		if (nl) {
			text = nl;
			memcpy(text + n, "\n", 2);
		}
	}
	ret = hi_write_atomic(path, text, strlen(text));
	free(text);
	if (ret) {
		errmsg("cannot write '%s': %s", path, lower(strerror(-ret)));
		hi_snapshot_free(&s);
		return EXIT_FAILED;
	}
	if (!s.heap.complete)
		note_incomplete(&s);
	ret = s.heap.complete ? EXIT_OK : EXIT_PARTIAL;
	hi_snapshot_free(&s);
	return ret;
}

/* ---------------------------------------------------------------- */

/* Failed samples in a row after which a watch gives up (EXIT_FAILING). */
#define HI_WATCH_MAX_FAILED 10

static void watch_usage(FILE *out)
{
	fprintf(out,
"usage: heapinspect watch -p PID --interval DURATION [--count N |\n"
"                         --duration DURATION] -o FILE\n"
"                         [--format jsonl|openmetrics] [--debuginfo-path P]\n"
"                         [--attempts N] [--stop-timeout MS]\n"
"\n"
"Take a snapshot of PID every DURATION (500ms, 10s, 5m, 1h) until N\n"
"snapshots are taken, DURATION has passed, heapinspect gets SIGINT,\n"
"SIGTERM or SIGHUP, or the process exits.\n"
"\n"
"  --format jsonl        (default) append one snapshot per line to FILE\n"
"                        (JSON Lines, schema heapinspect/snapshot/v1),\n"
"                        flushed after each: a crash or a full disk loses\n"
"                        at most the line being written\n"
"  --format openmetrics  replace FILE atomically with the latest snapshot\n"
"                        in the Prometheus / OpenMetrics text format, for\n"
"                        node_exporter's textfile collector\n"
"\n"
"On a terminal, stderr shows one status line: time, samples, live bytes,\n"
"free bytes and RSS, each with its change since the first sample.\n"
"\n"
"A sample that fails (another tracer holds the process, a thread does not\n"
"stop, ...) is recorded in FILE as an error line and counts toward --count;\n"
"the watch goes on, and gives up after %d failed samples in a row.\n"
"\n"
"exit status: 0 stopped at --count or --duration or by a signal; 2 the\n"
"first sample failed for a reason that does not pass (no such process, no\n"
"permission, not glibc's malloc, ...), or FILE could not be written; 3 the\n"
"process exited (after at least one sample; recorded in FILE); 4 it gave\n"
"up: %d samples in a row failed (recorded in FILE); 64 wrong usage.\n",
		HI_WATCH_MAX_FAILED, HI_WATCH_MAX_FAILED);
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct watch {
	const char *path;
	int openmetrics;
	int fd;                 /* jsonl */
	int status;             /* stderr is a terminal */
	int status_shown;       /* a status line is on the screen */
	unsigned long samples;    /* taken, failed ones included */
	unsigned long failed_run; /* failed in a row */
	int have_first;
	uint64_t first_live, first_free, first_rss;
	pid_t pid;
	char comm[64];
};

static void status_clear(struct watch *w)
{
	if (w->status_shown) {
		fputs("\r\033[K", stderr);
		w->status_shown = 0;
	}
}

static void status_show(struct watch *w, const struct hi_snapshot *s)
{
	const struct hi_mallinfo *m = &s->heap.mi;
	char a[32], b[32], c[32], d[32], e[32], tbuf[16];
	struct tm tm;
	time_t now = time(NULL);
	uint64_t live = m->uordblks + m->hblkhd;

	if (!w->status)
		return;
	localtime_r(&now, &tm);
	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
	fprintf(stderr, "\r\033[K%s  %lu sample%s", tbuf, w->samples,
		w->samples == 1 ? "" : "s");
	if (s->heap.complete && w->have_first)
		fprintf(stderr, "  live %s (%s)  free %s (%s)",
			hi_size_str((double)live, 0, a, sizeof(a)),
			hi_size_str((double)live - (double)w->first_live, 1, d,
				    sizeof(d)),
			hi_size_str((double)m->fordblks, 0, b, sizeof(b)),
			hi_size_str((double)m->fordblks -
				    (double)w->first_free, 1, e, sizeof(e)));
	else
		fprintf(stderr, "  (not consistent: an arena busy or corrupt)");
	if (s->mem.valid)
		fprintf(stderr, "  rss %s (%s)",
			hi_size_str((double)s->mem.rss, 0, c, sizeof(c)),
			hi_size_str((double)s->mem.rss - (double)w->first_rss,
				    1, a, sizeof(a)));
	fflush(stderr);
	w->status_shown = 1;
}

/* One line of JSON Lines; the object is consumed. */
static int write_jsonl(struct watch *w, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t n;
	int ret;

	json_decref(o);
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	{
		char *nl = realloc(text, n + 2);

		if (!nl) {
			free(text);
			return -ENOMEM;
		}
		text = nl;
	}
	memcpy(text + n, "\n", 2);
	ret = hi_append_line(w->fd, text, n + 1);
	free(text);
	return ret;
}

static void rfc3339_now(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

/* An event line: the target exited, or a sample failed. */
static int write_event(struct watch *w, const char *event, const char *msg)
{
	char ts[64];
	json_t *o;
	size_t len;
	char *text;
	int ret;

	if (w->openmetrics) {
		if (strcmp(event, "exited") != 0)
			return 0;
		text = hi_openmetrics_gone((int)w->pid, w->comm, &len);
		if (!text)
			return -ENOMEM;
		ret = hi_write_atomic(w->path, text, len);
		free(text);
		return ret;
	}
	rfc3339_now(ts, sizeof(ts));
	o = json_pack("{s:s,s:i,s:s,s:s,s:I}", "schema", HI_EVENT_SCHEMA,
		      "pid", (int)w->pid, "timestamp", ts, "event", event,
		      "samples", (json_int_t)w->samples);
	if (!o)
		return -ENOMEM;
	if (msg)
		json_object_set_new(o, "message", json_string(msg));
	return write_jsonl(w, o);
}

static int write_sample(struct watch *w, const struct hi_snapshot *s)
{
	json_t *o;
	size_t len;
	char *text;
	int ret;

	if (w->openmetrics) {
		text = hi_openmetrics(s, &len);
		if (!text)
			return -ENOMEM;
		ret = hi_write_atomic(w->path, text, len);
		free(text);
		return ret;
	}
	o = hi_snapshot_json(s);
	if (!o)
		return -ENOMEM;
	return write_jsonl(w, o);
}

static int target_gone(int code)
{
	return code == -HI_E_EXITED || code == -ESRCH || code == -HI_E_ZOMBIE;
}

/*
 * Whether a failed sample may succeed later: another tracer held the
 * process, a thread did not stop in time, the process executed a program.
 */
static int passing(const struct hi_snapshot_err *err)
{
	switch (err->code) {
	case -EPERM:
		return err->stop.code == err->code && err->stop.tracer != 0;
	case -ETIMEDOUT:
	case -EAGAIN:
	case -HI_E_EXECED:
		return 1;
	default:
		return 0;
	}
}

/* The event line's message for a failed sample. */
static const char *failure_text(const struct hi_snapshot_opts *o,
				const struct hi_snapshot_err *err, char *buf,
				size_t size)
{
	if (err->code == -EPERM || err->code == -EACCES ||
	    err->code == -ETIMEDOUT)
		return hi_stop_error_line(o->pid, err->code, &err->stop,
					  o->stop_timeout_ms, buf, size);
	snprintf(buf, size, "%s", hi_strerror(err->code));
	return buf;
}

int hi_cmd_watch(int argc, char **argv)
{
	static const struct option longopts[] = {
		HI_SNAPSHOT_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'D' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hi_snapshot_opts o;
	struct watch w = { .fd = -1 };
	uint64_t interval = 0, duration = 0, start, next;
	unsigned long count = 0, v;
	struct sigaction sa;
	sigset_t block, waitmask;
	int c, ret, rc = EXIT_OK;
	char cache_dir[4096];

	hi_snapshot_opts_default(&o, 0, cache_dir, sizeof(cache_dir));

	while ((c = getopt_long(argc, argv, "p:o:n:h", longopts, NULL)) !=
	       -1) {
		ret = hi_snapshot_opt(c, optarg, &o);
		if (ret < 0)
			return hi_usage_hint("watch");
		if (ret == 0)
			continue;
		switch (c) {
		case 'o':
			w.path = optarg;
			break;
		case 'i':
			if (hi_parse_duration(optarg, &interval) ||
			    interval < 10 || interval > 86400000) {
				errmsg("invalid --interval '%s': expected "
				       "10ms to 24h, as 500ms, 10s, 5m, 1h",
				       optarg);
				return hi_usage_hint("watch");
			}
			break;
		case 'n':
			if (parse_uint(optarg, 100000000, &v) || v == 0) {
				errmsg("invalid --count '%s': expected a "
				       "positive number", optarg);
				return hi_usage_hint("watch");
			}
			count = v;
			break;
		case 'D':
			if (hi_parse_duration(optarg, &duration) ||
			    duration == 0 || duration > 366ull * 86400000) {
				errmsg("invalid --duration '%s': expected "
				       "500ms, 10s, 5m, 1h, ...", optarg);
				return hi_usage_hint("watch");
			}
			break;
		case 'f':
			if (strcmp(optarg, "openmetrics") == 0) {
				w.openmetrics = 1;
			} else if (strcmp(optarg, "jsonl") == 0) {
				w.openmetrics = 0;
			} else {
				errmsg("invalid --format '%s': expected jsonl "
				       "or openmetrics", optarg);
				return hi_usage_hint("watch");
			}
			break;
		case 'h':
			watch_usage(stdout);
			return EXIT_OK;
		default:
			return hi_usage_hint("watch");
		}
	}
	if (optind < argc) {
		errmsg("unexpected argument '%s'", argv[optind]);
		return hi_usage_hint("watch");
	}
	ret = hi_snapshot_opts_check(&o, "watch");
	if (ret)
		return ret;
	if (!interval) {
		errmsg("how often? give --interval DURATION (500ms, 10s, 5m, "
		       "1h)");
		return hi_usage_hint("watch");
	}
	if (count && duration) {
		errmsg("--count and --duration cannot be used together");
		return hi_usage_hint("watch");
	}
	if (!w.path) {
		errmsg("where to? give the file with -o FILE");
		return hi_usage_hint("watch");
	}
	w.pid = o.pid;
	w.status = isatty(2);
	if (!w.openmetrics) {
		size_t cut;

		w.fd = hi_append_open(w.path, &cut);
		if (w.fd < 0) {
			errmsg("cannot open '%s': %s", w.path,
			       lower(strerror(-w.fd)));
			return EXIT_FAILED;
		}
		if (cut)
			errmsg("'%s': removed an unfinished last line (%zu "
			       "bytes) left by an earlier writer", w.path,
			       cut);
	}

	/*
	 * SIGINT, SIGTERM and SIGHUP stop the watch between two samples.
	 * They stay blocked except while waiting for the next sample (ppoll
	 * unblocks them atomically), so that a signal can neither cut a
	 * snapshot or a line short nor slip in between the check of the flag
	 * and the wait.  hi_target_stop() blocks them too while the target
	 * is held, and restores this mask.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the wait must return */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGHUP);

	start = now_ms();
	next = start;
	for (;;) {
		struct hi_snapshot s;
		struct hi_snapshot_err err;
		uint64_t now;

		ret = hi_snapshot_take(&o, &s, &err);
		if (ret) {
			char text[1024];

			if (w.samples == 0 && !passing(&err)) {
				/* Nothing was read at all: say why, as -p. */
				status_clear(&w);
				rc = report_error(&o, &err, &s);
				break;
			}
			if (target_gone(ret)) {
				status_clear(&w);
				errmsg("pid %d exited after %lu sample%s",
				       (int)o.pid, w.samples,
				       w.samples == 1 ? "" : "s");
				ret = write_event(&w, "exited", NULL);
				rc = EXIT_EXITED;
				if (ret) {
					errmsg("cannot write '%s': %s", w.path,
					       lower(strerror(-ret)));
					rc = EXIT_FAILED;
				}
				break;
			}
			status_clear(&w);
			report_error(&o, &err, &s);
			ret = write_event(&w, "error", failure_text(&o, &err,
						text, sizeof(text)));
			/* A failed sample is a sample: --count ends it. */
			w.samples++;
			if (!ret && ++w.failed_run >= HI_WATCH_MAX_FAILED) {
				errmsg("%lu samples in a row failed: giving up",
				       w.failed_run);
				rc = EXIT_FAILING;
				break;
			}
		} else {
			snprintf(w.comm, sizeof(w.comm), "%s", s.comm);
			ret = write_sample(&w, &s);
			if (!ret) {
				w.samples++;
				w.failed_run = 0;
				if (!w.have_first && s.heap.complete) {
					w.have_first = 1;
					w.first_live = s.heap.mi.uordblks +
						       s.heap.mi.hblkhd;
					w.first_free = s.heap.mi.fordblks;
					w.first_rss = s.mem.rss;
				}
				status_show(&w, &s);
			}
			hi_snapshot_free(&s);
		}
		if (ret) {
			status_clear(&w);
			errmsg("cannot write '%s': %s", w.path,
			       lower(strerror(-ret)));
			rc = EXIT_FAILED;
			break;
		}
		if (count && w.samples >= count)
			break;
		/*
		 * A fixed rate: sample k is due at start + k * interval; a
		 * sample that took longer than the interval skips the ticks
		 * it missed rather than sampling back to back.
		 */
		now = now_ms();
		next += interval;
		if (next < now)
			next = now + interval - (now - start) % interval;
		if (duration && next - start > duration)
			break;
		while (!stop_signal && (now = now_ms()) < next) {
			struct timespec ts = {
				.tv_sec = (time_t)((next - now) / 1000),
				.tv_nsec = (long)((next - now) % 1000) *
					   1000000L,
			};

			ppoll(NULL, 0, &ts, &waitmask);
		}
		if (stop_signal)
			break;
	}
	if (w.status_shown) {
		fputc('\n', stderr);
		w.status_shown = 0;
	}
	if (stop_signal && rc == EXIT_OK && w.status)
		fprintf(stderr, "stopped by signal %d after %lu samples\n",
			(int)stop_signal, w.samples);
	if (w.fd >= 0 && close(w.fd) != 0 && rc == EXIT_OK) {
		errmsg("cannot write '%s': %s", w.path, lower(strerror(errno)));
		rc = EXIT_FAILED;
	}
	return rc;
}
