/* SPDX-License-Identifier: MIT */
/*
 * What the subcommands share: exit codes, messages in git's style, the
 * options of a snapshot, sizes and durations on the command line.
 * Everything here prints or exits; nothing below inspector/ may use it.
 */
#ifndef HEAPINSPECT_CLI_H
#define HEAPINSPECT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "snapshot.h"

#define PROG "heapinspect"

/* Exit codes, as in eu-stack: documented in --help and the README. */
enum {
	EXIT_OK = 0,
	EXIT_PARTIAL = 1, /* printed, but some arena could not be read */
	EXIT_FAILED = 2,  /* nothing could be read */
	EXIT_EXITED = 3,  /* watch: the target exited */
	EXIT_FAILING = 4, /* watch: samples kept failing */
	EXIT_REFUSED = 5, /* --method call, trim: the heap is corrupt where
			     the call would walk: refused, nothing called */
	EXIT_USAGE = 64,
};

/* main.c */
void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lower(const char *msg);
int report_error(const struct hi_snapshot_opts *o,
		 const struct hi_snapshot_err *err,
		 const struct hi_snapshot *s);
int parse_uint(const char *s, unsigned long max, unsigned long *out);

/*
 * The message for a failed injected call (-HI_E_UNSAFE, -HI_E_NOHOST,
 * -HI_E_CALLFAULT, -HI_E_CALLSTUCK, -HI_E_RESTORE), with what it left
 * behind.  Return 1 when code was one of them (the message is printed),
 * else 0.
 */
int hi_call_error(pid_t pid, int code, const struct hi_call_report *rep,
		  unsigned timeout_ms);

/*
 * Say why the process pid could not be held (code -EPERM, -EACCES or
 * -ETIMEDOUT; why from hi_target_last_why, or NULL): which thread, which
 * tracer holds it (another heapinspect named as such), or what forbids
 * ptrace and what to do.  method_call: the stop was for an injected call.
 */
void hi_report_stop_error(pid_t pid, int code, const struct hi_stop_why *why,
			  unsigned stop_timeout_ms, int method_call);

/* The first line of that, without "heapinspect: ", into buf. */
const char *hi_stop_error_line(pid_t pid, int code,
			       const struct hi_stop_why *why,
			       unsigned stop_timeout_ms, char *buf,
			       size_t size);

/* cli.c */

/* "try 'heapinspect CMD --help'" after a usage error; returns EXIT_USAGE. */
int hi_usage_hint(const char *cmd);

/*
 * Parse a duration: a whole number and a unit, ms, s, m or h ("500ms",
 * "10s", "5m", "1h").  Return 0 with *ms set, or -1.
 */
int hi_parse_duration(const char *s, uint64_t *ms);

/* Parse a size: bytes, or a number with KiB, MiB, GiB.  0 or -1. */
int hi_parse_size(const char *s, uint64_t *bytes);

/* 1536 -> "1.5 KiB"; sign: "+1.5 KiB" / "-2 B" for changes. */
const char *hi_size_str(double v, int sign, char *buf, size_t size);

/* A size in a report: "1.5 KiB", "512 B", or "1536" with exact (--bytes). */
const char *hi_bytes_str(uint64_t v, int exact, char *buf, size_t size);

/*
 * -p names a process; a thread id (which ps -L, top -H and gettid() show)
 * is turned into its process's id, with a note on stderr.  A pid that
 * does not exist is left as it is, for the snapshot to say so.
 */
void hi_pid_resolve(pid_t *pid);

/*
 * Options of a snapshot that snapshot and watch share with the default
 * command: -p, --debuginfo-path, --attempts, --stop-timeout.  Return 0 when
 * c was one of them, 1 when it was not, -1 after a usage message.
 */
int hi_snapshot_opt(int c, const char *arg, struct hi_snapshot_opts *o);

/* getopt_long entries for hi_snapshot_opt. */
#define HI_SNAPSHOT_LONGOPTS                                         \
	{ "pid", required_argument, NULL, 'p' },                     \
	{ "debuginfo-path", required_argument, NULL, 'd' },          \
	{ "attempts", required_argument, NULL, 'a' },                \
	{ "stop-timeout", required_argument, NULL, 't' }

/* Check -p after parsing: 0, or EXIT_USAGE / EXIT_FAILED after a message. */
int hi_snapshot_opts_check(const struct hi_snapshot_opts *o, const char *cmd);

struct hi_series;

/*
 * Read a file of snapshots (series.h), saying on stderr what is wrong with
 * it, file and line named: "heapinspect: cannot read 'x.jsonl' line 3:
 * ...".  Return 0 or EXIT_FAILED.
 */
int hi_series_load(const char *path, int keep_arenas, struct hi_series *s);

int hi_cmd_snapshot(int argc, char **argv);
int hi_cmd_watch(int argc, char **argv);
int hi_cmd_diff(int argc, char **argv);
int hi_cmd_trend(int argc, char **argv);
int hi_cmd_plot(int argc, char **argv);

#endif
