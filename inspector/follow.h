/* SPDX-License-Identifier: MIT */
/*
 * watch's target named by a systemd unit, a pid file or a process name
 * (resolve.h), followed from one process to the next: the options and
 * what is said about them.  Part of the command line: it prints.
 */
#ifndef HEAPINSPECT_FOLLOW_H
#define HEAPINSPECT_FOLLOW_H

#include <getopt.h>
#include <stddef.h>

#include "resolve.h"
#include "snapshot.h"

struct hi_follow {
	int by;                  /* enum hi_resolve_by */
	const char *what;        /* the unit, pid file or name */
	struct hi_resolved last; /* the answer that named the process */
	int waiting;             /* it exited; none has been found since */
	char said[640];          /* the last reason given for waiting */
	char path[4096];         /* --pidfile: its absolute path, for the
				    source ("" until hi_follow_start) */
};

/* getopt_long entries for hi_follow_opt. */
#define HI_FOLLOW_LONGOPTS                                           \
	{ "unit", required_argument, NULL, 'U' },                    \
	{ "pidfile", required_argument, NULL, 'F' },                 \
	{ "name", required_argument, NULL, 'N' }

/*
 * --unit, --pidfile, --name.  Return 0 when c was one of them, 1 when it
 * was not, -1 after a usage message.
 */
int hi_follow_opt(struct hi_follow *f, int c, const char *arg);

/*
 * After the options: find the process (or take -p's) and set o->pid and
 * o->only, so that no later process with the same pid is taken for it.
 * Return 0, or an exit code after a message.
 */
int hi_follow_start(struct hi_follow *f, struct hi_snapshot_opts *o,
		    const char *cmd);

/*
 * What f follows, as event lines record it and as a later watch into the
 * same file compares it: "unit nginx.service" (systemd's name of the unit
 * once found), "pid file /run/x.pid" (its absolute path once found),
 * "name 'x'"; "" for -p.
 */
const char *hi_follow_source(const struct hi_follow *f, char *buf,
			     size_t size);

/*
 * The process watched has exited: look for the next one the unit, pid file
 * or name gives.  Return 1 with o->pid, o->only set and msg saying the
 * change; 0 when there is none yet (ask again later); -1 when f follows
 * nothing (-p).
 */
int hi_follow_next(struct hi_follow *f, struct hi_snapshot_opts *o, char *msg,
		   size_t size);

#endif
