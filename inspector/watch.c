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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "fileio.h"
#include "follow.h"
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
"  -p, --pid PID            the process\n"
"  -o, --output FILE        the file to write\n"
"      --debuginfo-path P   --attempts N  --stop-timeout MS: as for\n"
"                           heapinspect -p\n"
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
"usage: heapinspect watch (-p PID | --unit UNIT | --pidfile FILE |\n"
"                         --name NAME) --interval DURATION\n"
"                         [--count N | --duration DURATION] -o FILE\n"
"                         [--format jsonl|openmetrics] [--debuginfo-path P]\n"
"                         [--attempts N] [--stop-timeout MS]\n"
"\n"
"Take a snapshot of the process every DURATION (500ms, 10s, 5m, 1h) until\n"
"N snapshots are taken, DURATION has passed, heapinspect gets SIGINT,\n"
"SIGTERM or SIGHUP, or (with -p) the process exits.\n"
"\n"
"  -p, --pid PID         the process, until it exits\n"
"  --unit UNIT           the main process of a systemd unit (its MainPID)\n"
"  --pidfile FILE        the process whose pid FILE holds; FILE must\n"
"                        belong to root or to the process's user\n"
"  --name NAME           the one process named NAME (as ps -e and pgrep\n"
"                        show it); refused when several are\n"
"  -o, --output FILE     where to write\n"
"  --format jsonl        (default) append one snapshot per line to FILE\n"
"                        (JSON Lines, schema heapinspect/snapshot/v1),\n"
"                        flushed after each: a crash or a full disk loses\n"
"                        at most the line being written; a FILE of\n"
"                        another process (pid, start time, program) is\n"
"                        refused, left as it was\n"
"  --format openmetrics  replace FILE atomically with the latest snapshot\n"
"                        in the Prometheus / OpenMetrics text format, for\n"
"                        node_exporter's textfile collector\n"
"\n"
"With --unit, --pidfile or --name the watch follows the service across\n"
"restarts: a \"resolved\" event line records the process found (and what\n"
"named it: the source); when it exits, an \"exited\" event line is\n"
"written, the unit, file or name is asked again at every interval, and\n"
"the next process is recorded by another \"resolved\" line.  A FILE of\n"
"the same source whose process has exited is continued the same way; a\n"
"FILE whose process still runs but is not the one named now, or that\n"
"follows another source or none (-p), is refused.  A pid is only ever\n"
"read as the process it was found to be: one that another process took\n"
"over after it exited is not.\n"
"\n"
"On a terminal, stderr shows one status line: time, samples, live bytes,\n"
"free bytes and RSS, each with its change since the first sample.\n"
"\n"
"Each sample reads the process's memory, as heapinspect -p does.  Where\n"
"heapinspect knows no layout for its glibc (a version without a built-in\n"
"layout, and no usable debug information), every sample is instead a call\n"
"of the process's own mallinfo2() (see heapinspect --help, --method auto),\n"
"recorded as allocator.method \"call\" with its method_reason.\n"
"\n"
"A sample that fails (another tracer holds the process, a thread does not\n"
"stop, ...) is recorded in FILE as an error line and counts toward --count;\n"
"the watch goes on, and gives up after %d failed samples in a row.\n"
"\n"
"exit status: 0 stopped at --count or --duration or by SIGINT, SIGTERM or\n"
"SIGHUP; 2 the first sample failed for a reason that does not pass (no\n"
"such process, no permission, not glibc's malloc, ...), no process to\n"
"watch, FILE could not be written (a new FILE is then removed) or holds\n"
"another process's snapshots (or another service's); 3 the process given\n"
"with -p exited, or its pid became another process's (after at least one\n"
"sample; recorded in FILE); 4 it gave up: %d samples in a row failed\n"
"(recorded in FILE); 64 wrong usage.\n",
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
	int created;            /* the file did not exist before */
	int status;             /* stderr is a terminal */
	int status_shown;       /* a status line is on the screen */
	unsigned long samples;    /* taken, failed ones included */
	unsigned long failed_run; /* failed in a row */
	int have_first;
	uint64_t first_live, first_free, first_rss;
	pid_t pid;
	char comm[64];
	struct hi_sample me;     /* who the process was at the start */
	char why[512];           /* why a sample was not of it */
	char source[320];        /* what it follows: "unit nginx.service";
				    "" for -p */
	/*
	 * Event lines due before this watch's first line: the exit of the
	 * file's last process, found gone (pend_exited), and the process a
	 * followed unit, pid file or name names now (pend_resolved).
	 */
	int pend_exited, pend_resolved;
	struct hi_proc_id gone;
	char gone_msg[256], resolved_msg[512];
	char pend_when[64];      /* when they were found: the watch's start */
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

/*
 * An event line about process id: it exited, a sample failed, or it is
 * the one the followed unit, pid file or name names ("resolved", with the
 * source).  The process's start time and boot go with its pid, so that a
 * reader can tell which process the line is about (series.c).
 */
static int write_pending(struct watch *w);

static int write_event_at(struct watch *w, const char *event,
			  const struct hi_proc_id *id, const char *msg,
			  const char *when)
{
	char ts[64];
	json_t *o;
	size_t len;
	char *text;
	int ret = write_pending(w);

	if (ret)
		return ret;
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
	if (when)
		snprintf(ts, sizeof(ts), "%s", when);
	else
		rfc3339_now(ts, sizeof(ts));
	o = json_pack("{s:s,s:i,s:s,s:s,s:I}", "schema", HI_EVENT_SCHEMA,
		      "pid", (int)id->pid, "timestamp", ts, "event", event,
		      "samples", (json_int_t)w->samples);
	if (!o)
		return -ENOMEM;
	if (id->known && id->boot_id[0]) {
		json_object_set_new(o, "start_ticks",
				    json_integer((json_int_t)id->start_ticks));
		json_object_set_new(o, "boot_id", json_string(id->boot_id));
	}
	if (strcmp(event, "resolved") == 0 && w->source[0])
		json_object_set_new(o, "source", json_string(w->source));
	if (msg)
		json_object_set_new(o, "message", json_string(msg));
	return write_jsonl(w, o);
}

static int write_event(struct watch *w, const char *event,
		       const struct hi_proc_id *id, const char *msg)
{
	return write_event_at(w, event, id, msg, NULL);
}

/*
 * The event lines due before this watch's first line (struct watch), so
 * that a watch that writes nothing leaves the file as it was.
 */
static int write_pending(struct watch *w)
{
	int ex = w->pend_exited, rs = w->pend_resolved, ret = 0;

	/* Cleared first: write_event_at() asks for them again. */
	w->pend_exited = w->pend_resolved = 0;
	if (ex)
		ret = write_event_at(w, "exited", &w->gone, w->gone_msg,
				     w->pend_when);
	if (!ret && rs)
		ret = write_event_at(w, "resolved", &w->me.id, w->resolved_msg,
				     w->pend_when);
	return ret;
}

static int write_sample(struct watch *w, const struct hi_snapshot *s)
{
	json_t *o;
	size_t len;
	char *text;
	int ret = write_pending(w);

	if (ret)
		return ret;
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

/*
 * Remove the file a watch created when it holds nothing, and is still the
 * file at path (not one renamed or put there meanwhile).
 */
static void unlink_if_empty(int fd, const char *path)
{
	struct stat a, b;

	if (fstat(fd, &a) == 0 && a.st_size == 0 && stat(path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(path);
}

/* The process being watched, as a sample of the file would say it. */
static void target_identity(pid_t pid, struct hi_sample *me)
{
	char path[64];
	struct hi_procinfo info;
	ssize_t n;

	memset(me, 0, sizeof(*me));
	if (hi_proc_id_read(pid, &me->id) != 0 || !me->id.boot_id[0])
		me->id.known = 0;
	if (hi_proc_info(pid, &info) == 0)
		snprintf(me->comm, sizeof(me->comm), "%s", info.comm);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, me->exe, sizeof(me->exe) - 1);
	me->exe[n > 0 ? n : 0] = '\0';
}

/*
 * The watch is on o's process now: w->pid, and w->me, who it is, with the
 * identity it was found with (o->only) rather than a second reading.
 */
static void watching(struct watch *w, const struct hi_snapshot_opts *o)
{
	w->pid = o->pid;
	target_identity(o->pid, &w->me);
	if (o->only.known && o->only.pid == o->pid && o->only.boot_id[0])
		w->me.id = o->only;
}

/*
 * Whether the process of a sample of a file still runs: 1, 0 (a zombie
 * has exited), -errno.
 */
static int sample_alive(const struct hi_sample *last)
{
	struct hi_procinfo info;
	struct hi_sample now;
	char why[512];
	int ret;

	/* Start time and boot tell; without them, the pid and program. */
	if (last->id.known) {
		ret = hi_proc_id_alive(&last->id);
	} else {
		target_identity(last->id.pid, &now);
		ret = (now.comm[0] || now.exe[0]) &&
		      hi_sample_same_process(last, &now, why, sizeof(why));
	}
	if (ret == 1 && hi_proc_info(last->id.pid, &info) == 0 &&
	    (info.state == 'Z' || info.state == 'X'))
		ret = 0;
	return ret;
}

/* The source the file's last "resolved" event line records; NULL. */
static const char *file_source(const struct hi_series *s)
{
	for (size_t i = s->events; i-- > 0;)
		if (strcmp(s->ev[i].event, "resolved") == 0 &&
		    s->ev[i].source[0])
			return s->ev[i].source;
	return NULL;
}

/* Whether the file records the exit of its last process already. */
static int exit_recorded(const struct hi_series *s)
{
	const struct hi_sample *last = &s->v[s->n - 1];

	for (size_t i = 0; i < s->events; i++)
		if (s->ev[i].line > last->line &&
		    strcmp(s->ev[i].event, "exited") == 0 &&
		    hi_proc_id_cmp(&s->ev[i].id, &last->id) == HI_ID_SAME)
			return 1;
	return 0;
}

/*
 * A watch that follows a unit, pid file or name (w->source) appending to
 * a file whose last snapshot is of another process than w->me: that is
 * the same service restarted while no watch ran when the file follows the
 * same source and its process is gone; the watch then records the exit
 * (unless the file did) and the restart before its first line, as it
 * does for a restart it sees (series.h).  Refused when that process still
 * runs (another watch may be writing the file) or the file follows
 * something else, or nothing (watch -p).  0, or EXIT_FAILED after a
 * message.
 */
static int check_follow(struct watch *w, const struct hi_series *s)
{
	const struct hi_sample *last = &s->v[s->n - 1];
	const char *src = file_source(s);
	char safe[1024], safe2[1024], comm[256];
	int alive = sample_alive(last);

	hi_safe_str(last->comm, comm, sizeof(comm));
	hi_safe_str(w->source, safe, sizeof(safe));
	if (alive) {
		errmsg("cannot append to '%s': its last snapshot (line %lu) is "
		       "of pid %d (%s), which %s and is not the process %s "
		       "names now (pid %d): another watch may be writing it; "
		       "give -o a new file", w->path, last->line,
		       (int)last->id.pid, comm, alive > 0 ? "still runs" :
		       "may still run", safe, (int)w->pid);
		return EXIT_FAILED;
	}
	if (!src) {
		errmsg("cannot append to '%s': it records no unit, pid file or "
		       "name that it follows (a file of watch -p), and its "
		       "process, pid %d (%s) of line %lu, has exited: a series "
		       "holds one process, or one service's; give -o a new "
		       "file", w->path, (int)last->id.pid, comm, last->line);
		return EXIT_FAILED;
	}
	if (strcmp(src, w->source) != 0) {
		errmsg("cannot append to '%s': it is a series of %s, not of "
		       "%s; give -o a new file", w->path,
		       hi_safe_str(src, safe, sizeof(safe)),
		       hi_safe_str(w->source, safe2, sizeof(safe2)));
		return EXIT_FAILED;
	}
	if (!exit_recorded(s)) {
		w->pend_exited = 1;
		w->gone = last->id;
		snprintf(w->gone_msg, sizeof(w->gone_msg), "pid %d had exited "
			 "when the watch started again (after line %lu)",
			 (int)last->id.pid, last->line);
	}
	snprintf(w->resolved_msg, sizeof(w->resolved_msg), "pid %d exited; "
		 "%s now names pid %d", (int)last->id.pid, w->source,
		 (int)w->pid);
	errmsg("note: '%s' ends with pid %d (%s), which has exited; %s now "
	       "names pid %d: the series goes on with it, after a restart",
	       w->path, (int)last->id.pid, comm, safe, (int)w->pid);
	return 0;
}

/*
 * watch -o appends: never to a file that holds another process's
 * snapshots (another pid, or the same pid reused by another process or
 * running another program), which diff, trend and plot would refuse,
 * except for the restart of a followed service (check_follow).  A file
 * that is not a series at all is refused too.  0, or EXIT_FAILED after a
 * message.
 */
static int check_append(struct watch *w)
{
	struct hi_series s;
	struct hi_series_err err;
	struct stat st;
	const char *path = w->path;
	char why[512];
	int rc = 0;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		return 0;
	if (hi_series_read(path, 0, &s, &err)) {
		if (err.line)
			errmsg("cannot append to '%s': line %lu: %s; give -o a "
			       "new file or a series of this process", path,
			       err.line, err.msg);
		else
			errmsg("cannot append to '%s': %s", path,
			       lower(err.msg));
		return EXIT_FAILED;
	}
	if (s.single) {
		errmsg("cannot append to '%s': it is one JSON document (from "
		       "snapshot -o or --json), not JSON Lines; give -o a new "
		       "file or a series of this process", path);
		rc = EXIT_FAILED;
	} else if (s.n) {
		const struct hi_sample *last = &s.v[s.n - 1];

		if (hi_sample_same_process(last, &w->me, why, sizeof(why))) {
			rc = 0;
		} else if (w->source[0]) {
			rc = check_follow(w, &s);
		} else {
			char safe[1024];

			errmsg("cannot append to '%s': it holds snapshots of "
			       "another process (line %lu): this is %s; a "
			       "series holds one process: give -o a new file",
			       path, last->line,
			       hi_safe_str(why, safe, sizeof(safe)));
			rc = EXIT_FAILED;
		}
	}
	hi_series_free(&s);
	return rc;
}

/*
 * Whether snapshot s is of the process the watch started on: the kernel
 * may give its pid to another process once it has exited, and an execve
 * keeps the pid for another program.  0 with w->why filled when not.
 */
static int same_target(struct watch *w, const struct hi_snapshot *s)
{
	struct hi_sample now;

	memset(&now, 0, sizeof(now));
	now.id = s->id;
	now.id.pid = s->pid;
	/* As the file records it: start time and boot, or neither. */
	if (!now.id.boot_id[0])
		now.id.known = 0;
	snprintf(now.comm, sizeof(now.comm), "%.63s", s->comm);
	snprintf(now.exe, sizeof(now.exe), "%.511s", s->exe);
	return hi_sample_same_process(&w->me, &now, w->why, sizeof(w->why));
}

static int target_gone(int code)
{
	return code == -HI_E_EXITED || code == -ESRCH || code == -HI_E_ZOMBIE;
}

/*
 * The process watched is gone: record it, and with --unit, --pidfile or
 * --name look for the next one.  Return 1 to watch on, 0 to stop with *rc.
 */
static int on_gone(struct watch *w, struct hi_follow *f,
		   struct hi_snapshot_opts *o, int *rc)
{
	char src[320], msg[512];
	int ret = 0;

	if (!f->waiting) {
		errmsg("pid %d exited after %lu sample%s%s%s", (int)o->pid,
		       w->samples, w->samples == 1 ? "" : "s",
		       f->by == HI_BY_PID ? "" : "; following ",
		       hi_follow_source(f, src, sizeof(src)));
		ret = write_event(w, "exited", &w->me.id, NULL);
	}
	if (!ret && hi_follow_next(f, o, msg, sizeof(msg)) >= 0) {
		if (!f->waiting) {
			errmsg("%s", msg);
			watching(w, o);
			w->have_first = 0;
			ret = write_event(w, "resolved", &w->me.id, msg);
		}
		if (!ret)
			return 1;
	}
	*rc = EXIT_EXITED;
	if (ret) {
		errmsg("cannot write '%s': %s", w->path, lower(strerror(-ret)));
		*rc = EXIT_FAILED;
	}
	return 0;
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
		HI_FOLLOW_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'D' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hi_snapshot_opts o;
	struct hi_follow f = { .by = HI_BY_PID };
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
		if (ret == 1)
			ret = hi_follow_opt(&f, c, optarg);
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
	ret = hi_follow_start(&f, &o, "watch");
	if (ret)
		return ret;
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
	watching(&w, &o);
	hi_follow_source(&f, w.source, sizeof(w.source));
	w.status = isatty(2);
	if (!w.openmetrics) {
		size_t cut;
		struct stat st;

		w.created = stat(w.path, &st) != 0 && errno == ENOENT;
		ret = check_append(&w);
		if (ret)
			return ret;
		/* A followed process: how it was found, before its samples. */
		if (w.source[0]) {
			rfc3339_now(w.pend_when, sizeof(w.pend_when));
			w.pend_resolved = 1;
			if (!w.resolved_msg[0])
				snprintf(w.resolved_msg,
					 sizeof(w.resolved_msg),
					 "%s names pid %d", w.source,
					 (int)w.pid);
		}
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
				if (on_gone(&w, &f, &o, &rc))
					goto next;
				break;
			}
			status_clear(&w);
			report_error(&o, &err, &s);
			ret = write_event(&w, "error", &w.me.id,
					  failure_text(&o, &err, text,
						       sizeof(text)));
			/* A failed sample is a sample: --count ends it. */
			w.samples++;
			if (!ret && ++w.failed_run >= HI_WATCH_MAX_FAILED) {
				errmsg("%lu samples in a row failed: giving up",
				       w.failed_run);
				rc = EXIT_FAILING;
				break;
			}
		} else if (!same_target(&w, &s)) {
			char safe[1024];

			/*
			 * The pid is another process's now, or another
			 * program's: what was watched has gone.
			 */
			hi_snapshot_free(&s);
			status_clear(&w);
			errmsg("pid %d is not the process watched any more (%s): "
			       "it exited after %lu sample%s", (int)o.pid,
			       hi_safe_str(w.why, safe, sizeof(safe)),
			       w.samples, w.samples == 1 ? "" : "s");
			ret = write_event(&w, "exited", &w.me.id, w.why);
			rc = EXIT_EXITED;
			if (ret) {
				errmsg("cannot write '%s': %s", w.path,
				       lower(strerror(-ret)));
				rc = EXIT_FAILED;
			}
			break;
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
next:
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
		fprintf(stderr, "stopped by SIG%s after %lu sample%s\n",
			sigabbrev_np((int)stop_signal), w.samples,
			w.samples == 1 ? "" : "s");
	/* A watch that wrote nothing leaves no file behind it. */
	if (w.fd >= 0 && w.created)
		unlink_if_empty(w.fd, w.path);
	if (w.fd >= 0 && close(w.fd) != 0 && rc == EXIT_OK) {
		errmsg("cannot write '%s': %s", w.path, lower(strerror(errno)));
		rc = EXIT_FAILED;
	}
	return rc;
}
