/* SPDX-License-Identifier: MIT */
/*
 * Naming the process to inspect: a systemd unit, a pid file, a process name.
 *
 * A name is turned into a pid at one moment and the pid is used later, and
 * the kernel hands a freed pid to the next process that asks: every answer
 * carries the process's start time (struct hi_proc_id, procid.h), which a
 * later process with the same pid cannot have, and each source is checked
 * for the way it can point at the wrong process (a pid file left behind
 * by a process that died, one written by another user, a unit whose main
 * process exited just after systemd named it).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "resolve.h"
#include "target.h"

extern char **environ;

/* How long systemctl may take to answer (its own D-Bus timeout is 25 s). */
#define SYSTEMCTL_TIMEOUT_MS 10000

static void why_set(struct hi_resolved *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void why_set(struct hi_resolved *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
}

/* One process found: its identity, or 0 matches when it is gone. */
static int found(struct hi_resolved *out, pid_t pid)
{
	int ret;

	if (pid == getpid()) {
		why_set(out, "it names pid %d, heapinspect itself", (int)pid);
		return 0;
	}
	ret = hi_proc_id_read(pid, &out->id);
	if (ret == -ESRCH) {
		why_set(out, "pid %d does not run", (int)pid);
		return 0;
	}
	if (ret)
		return ret;
	out->n = 1;
	out->pids[0] = pid;
	return 1;
}

/* A decimal pid, with blanks around it allowed.  0 when it is not one. */
static pid_t parse_pid(const char *s)
{
	unsigned long v = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return 0;
	for (; isdigit((unsigned char)*s); s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 0x3fffffff)
			return 0;
	}
	while (isspace((unsigned char)*s))
		s++;
	return *s ? 0 : (pid_t)v;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_size == b->st_size;
}

static int by_pidfile(const char *path, const struct hi_resolved *stale,
		      struct hi_resolved *out)
{
	struct hi_procinfo info;
	char buf[64];
	ssize_t n;
	pid_t pid;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT) {
			why_set(out, "there is no '%s'", path);
			return 0;
		}
		ret = -errno;
		why_set(out, "cannot open '%s': %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &out->file) != 0 || !S_ISREG(out->file.st_mode)) {
		ret = S_ISREG(out->file.st_mode) ? -errno : -EINVAL;
		close(fd);
		why_set(out, "'%s' is not a regular file", path);
		return ret;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (n < 0) {
		why_set(out, "cannot read '%s': %s", path, strerror(-ret));
		return ret;
	}
	buf[n] = '\0';
	/* Being written now (truncated, not yet filled): none yet. */
	if (n == 0) {
		why_set(out, "'%s' is empty", path);
		return 0;
	}
	pid = parse_pid(buf);
	if (!pid) {
		why_set(out, "'%s' does not hold a pid", path);
		return -EINVAL;
	}
	/*
	 * The file that named the process that has gone, unchanged since:
	 * left behind by a service that died without removing it, and its
	 * pid may be another process's by now.
	 */
	if (stale && stale->n == 1 && same_file(&out->file, &stale->file)) {
		why_set(out, "'%s' still names pid %d, which exited", path,
			(int)stale->id.pid);
		return 0;
	}
	ret = found(out, pid);
	if (ret != 1)
		return ret;
	/*
	 * Whoever may write the file chooses the process: only root, or the
	 * process's own user, may (systemd asks the same of PIDFile=).
	 */
	if (hi_proc_info(pid, &info) == 0 && out->file.st_uid != 0 &&
	    out->file.st_uid != info.uid) {
		why_set(out, "'%s' belongs to uid %u, but pid %d to uid %u: "
			"a pid file may only name a process of its owner",
			path, (unsigned)out->file.st_uid, (int)pid,
			(unsigned)info.uid);
		out->n = 0;
		return -EPERM;
	}
	return 1;
}

/*
 * Run argv with its output (stdout and stderr) into buf, for at most
 * SYSTEMCTL_TIMEOUT_MS.  Return its exit status, or -errno (-ENOENT: no
 * such program, -ETIMEDOUT).
 */
static int run_capture(char *const argv[], char *buf, size_t size)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	struct timespec t0, t;
	size_t len = 0;
	int p[2], status, ret;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	/* watch blocks its stop signals: the child must not inherit that. */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (ret) {
		close(p[0]);
		return -ret;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		long left;
		ssize_t n;
		char sink[256];

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = SYSTEMCTL_TIMEOUT_MS -
		       ((t.tv_sec - t0.tv_sec) * 1000 +
			(t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			kill(pid, SIGKILL);
			ret = -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			ret = -errno;
			kill(pid, SIGKILL);
			break;
		}
		if (!pfd.revents)
			continue;
		/* Keep the first size - 1 bytes, drain the rest. */
		if (len + 1 < size)
			n = read(p[0], buf + len, size - 1 - len);
		else
			n = read(p[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + 1 < size)
			len += (size_t)n;
	}
	close(p[0]);
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return ret ? ret : -errno;
	}
	if (ret)
		return ret;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -EIO;
}

/* The value of "KEY=value" lines in text, cut at the line's end. */
static const char *prop(const char *text, const char *key, char *buf,
			size_t size)
{
	size_t klen = strlen(key);

	for (const char *l = text; *l; l += strcspn(l, "\n"), l += !!*l) {
		if (strncmp(l, key, klen) == 0 && l[klen] == '=') {
			size_t n = strcspn(l + klen + 1, "\n");

			snprintf(buf, size, "%.*s", (int)n, l + klen + 1);
			return buf;
		}
	}
	buf[0] = '\0';
	return NULL;
}

/* Whether pid's control group, in any hierarchy, ends in unit. */
static int in_unit_cgroup(pid_t pid, const char *unit)
{
	char path[64], buf[8192];
	size_t ulen = strlen(unit);

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (hi_proc_read(path, buf, sizeof(buf)) < 0)
		return 0;
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
		char *cg = strchr(l, ':');

		cg = cg ? strchr(cg + 1, ':') : NULL;
		if (!cg)
			continue;
		/* ".../nginx.service" or ".../nginx.service/child" */
		for (char *p = strstr(cg, unit); p; p = strstr(p + 1, unit)) {
			if (p[-1] == '/' && (p[ulen] == '\0' || p[ulen] == '/'))
				return 1;
		}
	}
	return 0;
}

static int by_unit(const char *unit, struct hi_resolved *out)
{
	char text[4096], v[256];
	char *argv[] = { "systemctl", "show", "--property=Id,LoadState,"
			 "ActiveState,MainPID", "--", (char *)unit, NULL };
	pid_t pid;
	int ret;

	ret = run_capture(argv, text, sizeof(text));
	if (ret < 0) {
		why_set(out, "cannot run systemctl: %s", ret == -ENOENT ?
			"not found (--unit needs systemd)" : strerror(-ret));
		return ret;
	}
	if (ret > 0 || !prop(text, "MainPID", v, sizeof(v))) {
		/* Its first line says why: "System has not been booted..." */
		why_set(out, "systemctl show %s: %.*s", unit,
			(int)strcspn(text, "\n"), text[0] ? text :
			"no MainPID in its answer");
		return -EIO;
	}
	pid = parse_pid(v);
	prop(text, "Id", out->unit, sizeof(out->unit));
	if (!out->unit[0])
		snprintf(out->unit, sizeof(out->unit), "%s", unit);
	if (!pid) {
		char load[64], active[64];

		prop(text, "LoadState", load, sizeof(load));
		prop(text, "ActiveState", active, sizeof(active));
		if (strcmp(load, "loaded") != 0)
			why_set(out, "unit %s is %s", out->unit,
				load[0] ? load : "unknown");
		else
			why_set(out, "unit %s has no main process (it is %s)",
				out->unit, active[0] ? active : "not active");
		return 0;
	}
	ret = found(out, pid);
	if (ret != 1)
		return ret;
	/*
	 * Between systemd's answer and now the process may have exited and
	 * its pid gone to another: where systemd runs (sd_booted()), the
	 * unit's processes are in its control group.
	 */
	if (access("/run/systemd/system", F_OK) == 0 &&
	    !in_unit_cgroup(pid, out->unit)) {
		why_set(out, "systemd named pid %d, which is not in the "
			"control group of %s (it has just exited?)",
			(int)pid, out->unit);
		out->n = 0;
		return 0;
	}
	return 1;
}

/*
 * The name as ps -e and pgrep show it: /proc/PID/comm, which the kernel
 * cuts to 15 bytes; a longer name must also be the basename of the
 * process's executable.
 */
static int name_matches(pid_t pid, const char *comm, const char *name)
{
	char path[64], exe[4096], *base;
	ssize_t n;

	if (strlen(name) <= 15)
		return strcmp(comm, name) == 0;
	if (strncmp(comm, name, 15) != 0 || comm[15] != '\0')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	base = strrchr(exe, '/');
	return strcmp(base ? base + 1 : exe, name) == 0;
}

static int by_name(const char *name, struct hi_resolved *out)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();

	if (!d) {
		int ret = -errno;

		why_set(out, "cannot list /proc: %s", strerror(-ret));
		return ret;
	}
	while ((e = readdir(d))) {
		struct hi_procinfo info;
		pid_t pid = parse_pid(e->d_name);

		if (!pid || pid == self || hi_proc_info(pid, &info) != 0 ||
		    info.kthread || info.state == 'Z' || info.state == 'X' ||
		    !name_matches(pid, info.comm, name))
			continue;
		if (out->n < HI_RESOLVE_MAX)
			out->pids[out->n] = pid;
		out->n++;
	}
	closedir(d);
	if (out->n == 0) {
		why_set(out, "no process is named '%s'", name);
		return 0;
	}
	if (out->n > 1)
		return (int)(out->n > 0x7fffffff ? 0x7fffffff : out->n);
	return found(out, out->pids[0]);
}

int hi_resolve_find(int by, const char *what, const struct hi_resolved *stale,
		    struct hi_resolved *out)
{
	memset(out, 0, sizeof(*out));
	switch (by) {
	case HI_BY_UNIT:
		return by_unit(what, out);
	case HI_BY_PIDFILE:
		return by_pidfile(what, stale, out);
	case HI_BY_NAME:
		return by_name(what, out);
	default:
		return found(out, parse_pid(what));
	}
}
