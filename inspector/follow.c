/* SPDX-License-Identifier: MIT */
/*
 * watch --unit, --pidfile, --name: the process to watch named the way an
 * operator names it, found again when it is restarted.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "follow.h"

int hi_follow_opt(struct hi_follow *f, int c, const char *arg)
{
	int by = c == 'U' ? HI_BY_UNIT : c == 'F' ? HI_BY_PIDFILE :
		 c == 'N' ? HI_BY_NAME : -1;

	if (by < 0)
		return 1;
	if (f->by != HI_BY_PID && f->by != by) {
		errmsg("--unit, --pidfile and --name cannot be used together");
		return -1;
	}
	if (!arg[0]) {
		errmsg("invalid --%s '': expected a %s",
		       by == HI_BY_UNIT ? "unit" : by == HI_BY_PIDFILE ?
		       "pidfile" : "name", by == HI_BY_UNIT ? "unit name" :
		       by == HI_BY_PIDFILE ? "file" : "process name");
		return -1;
	}
	f->by = by;
	f->what = arg;
	return 0;
}

const char *hi_follow_source(const struct hi_follow *f, char *buf,
			     size_t size)
{
	switch (f->by) {
	case HI_BY_UNIT:
		snprintf(buf, size, "unit %s", f->last.unit[0] ?
			 f->last.unit : f->what);
		break;
	case HI_BY_PIDFILE:
		snprintf(buf, size, "pid file %s", f->path[0] ? f->path :
			 f->what);
		break;
	case HI_BY_NAME:
		snprintf(buf, size, "name '%s'", f->what);
		break;
	default:
		buf[0] = '\0';
	}
	return buf;
}

/* "123, 456, 789, ..." */
static void pid_list(const struct hi_resolved *r, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->n && i < HI_RESOLVE_MAX && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%d",
					i ? ", " : "", (int)r->pids[i]);
	if (r->n > HI_RESOLVE_MAX && len < size)
		snprintf(buf + len, size - len, ", ...");
}

/*
 * path made absolute through its directory (/var/run/x.pid and
 * /run/x.pid are one file); its own name is kept, not followed, as a pid
 * file is replaced by a rename.  path itself when that fails.
 */
static void absolute(const char *path, char *buf, size_t size)
{
	char dir[4096], real[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t lr, lb = strlen(base);

	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path + 1),
			 path);
	else
		snprintf(dir, sizeof(dir), ".");
	if (!*base || !realpath(dir, real)) {
		snprintf(buf, size, "%s", path);
		return;
	}
	lr = strcmp(real, "/") ? strlen(real) : 0;
	if (lr + 1 + lb + 1 > size) {
		snprintf(buf, size, "%s", path);
		return;
	}
	memcpy(buf, real, lr);
	buf[lr] = '/';
	memcpy(buf + lr + 1, base, lb + 1);
}

int hi_follow_start(struct hi_follow *f, struct hi_snapshot_opts *o,
		    const char *cmd)
{
	struct hi_proc_id id;
	char src[320], pids[128];
	int n;

	if (f->by == HI_BY_PID) {
		/* -p: that process, and not one that takes its pid later. */
		if (o->pid && hi_proc_id_read(o->pid, &id) == 0)
			o->only = id;
		return 0;
	}
	if (o->pid) {
		errmsg("-p and --%s cannot be used together: give the process "
		       "one way", f->by == HI_BY_UNIT ? "unit" :
		       f->by == HI_BY_PIDFILE ? "pidfile" : "name");
		return hi_usage_hint(cmd);
	}
	n = hi_resolve_find(f->by, f->what, NULL, &f->last);
	hi_follow_source(f, src, sizeof(src));
	if (n < 0) {
		errmsg("cannot find the process of %s: %s", src, f->last.why);
		return EXIT_FAILED;
	}
	if (n == 0) {
		errmsg("no process to watch: %s", f->last.why);
		return EXIT_FAILED;
	}
	if (n > 1) {
		pid_list(&f->last, pids, sizeof(pids));
		errmsg("%d processes are named '%s' (pids %s): give one with "
		       "-p PID, or name it with --unit or --pidfile", n,
		       f->what, pids);
		return EXIT_FAILED;
	}
	o->pid = f->last.id.pid;
	o->only = f->last.id;
	if (f->by == HI_BY_PIDFILE)
		absolute(f->what, f->path, sizeof(f->path));
	return 0;
}

/* Say why there is no process yet, once for each new reason. */
static void say_waiting(struct hi_follow *f, const char *why)
{
	if (strcmp(f->said, why) == 0)
		return;
	snprintf(f->said, sizeof(f->said), "%s", why);
	errmsg("waiting: %s", why);
}

int hi_follow_next(struct hi_follow *f, struct hi_snapshot_opts *o, char *msg,
		   size_t size)
{
	struct hi_resolved r;
	char src[320], pids[128], why[640];
	int n;

	if (f->by == HI_BY_PID)
		return -1;
	f->waiting = 1;
	n = hi_resolve_find(f->by, f->what, &f->last, &r);
	hi_follow_source(f, src, sizeof(src));
	if (n > 1) {
		pid_list(&r, pids, sizeof(pids));
		snprintf(why, sizeof(why), "%d processes are named '%s' "
			 "(pids %s): none is taken", n, f->what, pids);
		say_waiting(f, why);
		return 0;
	}
	/* The same process: what made it look gone passes (a zombie). */
	if (n == 1 && hi_proc_id_cmp(&r.id, &f->last.id) == HI_ID_SAME)
		return 0;
	if (n != 1) {
		say_waiting(f, r.why);
		return 0;
	}
	snprintf(msg, size, "pid %d exited; %s now names pid %d",
		 (int)f->last.id.pid, src, (int)r.id.pid);
	f->last = r;
	f->waiting = 0;
	f->said[0] = '\0';
	o->pid = r.id.pid;
	o->only = r.id;
	return 1;
}
