/* SPDX-License-Identifier: MIT */
/*
 * Which process to inspect when it is named rather than numbered: the main
 * process of a systemd unit, the pid in a pid file, or the one process of
 * a name, each answer with the process's identity (procid.h).  Nothing
 * here prints: the front (follow.c) says what went wrong.
 */
#ifndef HEAPINSPECT_RESOLVE_H
#define HEAPINSPECT_RESOLVE_H

#include <sys/stat.h>
#include <sys/types.h>

#include "procid.h"

enum hi_resolve_by {
	HI_BY_PID,     /* -p: the number given, nothing to resolve */
	HI_BY_UNIT,    /* --unit: systemd's MainPID of the unit */
	HI_BY_PIDFILE, /* --pidfile: the number in the file */
	HI_BY_NAME,    /* --name: the one process of that name */
};

#define HI_RESOLVE_MAX 8

/* What a resolution found. */
struct hi_resolved {
	struct hi_proc_id id;       /* the process, when exactly one matched */
	size_t n;                   /* how many processes matched */
	pid_t pids[HI_RESOLVE_MAX]; /* the first of them */
	char unit[256];             /* --unit: the unit's full name */
	char why[512];              /* none matched or it failed: what was
				       seen (systemctl's answer, the file) */
	struct stat file;           /* --pidfile: the file it came from */
};

/*
 * Find the process that what names now, by (enum hi_resolve_by) and never
 * heapinspect itself.  A pid file must be owned by root or by the user of
 * the process it names, and after the process it named is gone (stale
 * set to that earlier answer) a file that has not changed since is taken
 * as left behind, not as naming a new process.  A unit's main process must
 * be in the unit's control group where systemd runs.  Return how many
 * processes match (out->id is the one when 1; 0: none now, out->why says
 * what was seen), or -errno with out->why filled: -ENOENT no systemctl,
 * -EINVAL a file that does not hold a pid, -EPERM a file that may not name
 * that process, -EIO systemctl failed.
 */
int hi_resolve_find(int by, const char *what, const struct hi_resolved *stale,
		    struct hi_resolved *out);

#endif
