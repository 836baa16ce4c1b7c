/* SPDX-License-Identifier: MIT */
/*
 * Command-line pieces the subcommands share.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "series.h"

int hi_usage_hint(const char *cmd)
{
	fprintf(stderr, "try 'heapinspect%s%s --help'\n", cmd ? " " : "",
		cmd ? cmd : "");
	return EXIT_USAGE;
}

/* A whole number followed by one of the units; the number must fit. */
static int parse_scaled(const char *s, const char *const *units,
			const uint64_t *scale, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!(s[0] >= '0' && s[0] <= '9'))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	for (int i = 0; units[i]; i++) {
		if (strcmp(end, units[i]) == 0) {
			if (v > UINT64_MAX / scale[i])
				return -1;
			*out = v * scale[i];
			return 0;
		}
	}
	return -1;
}

int hi_parse_duration(const char *s, uint64_t *ms)
{
	static const char *const units[] = { "ms", "s", "m", "h", NULL };
	static const uint64_t scale[] = { 1, 1000, 60000, 3600000 };

	return parse_scaled(s, units, scale, ms);
}

int hi_parse_size(const char *s, uint64_t *bytes)
{
	static const char *const units[] = { "", "B", "KiB", "MiB", "GiB",
					     NULL };
	static const uint64_t scale[] = { 1, 1, 1 << 10, 1 << 20, 1 << 30 };

	return parse_scaled(s, units, scale, bytes);
}

const char *hi_size_str(double v, int sign, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB" };
	const char *sg = v < 0 ? "-" : sign ? "+" : "";
	double d = v < 0 ? -v : v;
	unsigned u = 0;

	if (d < 0.5) {
		snprintf(buf, size, "0");
		return buf;
	}
	if (d < 1024) {
		snprintf(buf, size, "%s%.0f B", sg, d);
		return buf;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, size, "%s%.1f %s", sg, d, unit[u]);
	return buf;
}

const char *hi_bytes_str(uint64_t v, int exact, char *buf, size_t size)
{
	if (exact || v < 1024) {
		snprintf(buf, size, "%" PRIu64 "%s", v, exact ? "" : " B");
		return buf;
	}
	return hi_size_str((double)v, 0, buf, size);
}

void hi_pid_resolve(pid_t *pid)
{
	struct hi_procinfo info;
	pid_t tgid;
	char comm[256];

	if (hi_proc_tgid(*pid, &tgid) != 0 || tgid == *pid)
		return;
	if (hi_proc_info(tgid, &info) != 0)
		info.comm[0] = '\0';
	errmsg("note: %d is a thread of pid %d (%s): reading the process, "
	       "pid %d", (int)*pid, (int)tgid,
	       hi_safe_str(info.comm, comm, sizeof(comm)), (int)tgid);
	*pid = tgid;
}

int hi_snapshot_opt(int c, const char *arg, struct hi_snapshot_opts *o)
{
	unsigned long v;

	switch (c) {
	case 'p':
		if (parse_uint(arg, 0x3fffffff, &v) || v == 0) {
			errmsg("invalid pid '%s': expected a positive number",
			       arg);
			return -1;
		}
		o->pid = (pid_t)v;
		hi_pid_resolve(&o->pid);
		return 0;
	case 'd':
		o->debuginfo_path = arg;
		return 0;
	case 'a':
		if (parse_uint(arg, 1000, &v) || v == 0) {
			errmsg("invalid --attempts '%s': expected 1 to 1000",
			       arg);
			return -1;
		}
		o->attempts = (unsigned)v;
		return 0;
	case 't':
		if (parse_uint(arg, 600000, &v) || v == 0) {
			errmsg("invalid --stop-timeout '%s': expected 1 to "
			       "600000 ms", arg);
			return -1;
		}
		o->stop_timeout_ms = (unsigned)v;
		return 0;
	default:
		return 1;
	}
}

int hi_snapshot_opts_check(const struct hi_snapshot_opts *o, const char *cmd)
{
	if (!o->pid) {
		errmsg("which process? give its pid with -p PID");
		return hi_usage_hint(cmd);
	}
	if (o->pid == getpid()) {
		errmsg("pid %d is heapinspect itself", (int)o->pid);
		return EXIT_FAILED;
	}
	return 0;
}

int hi_series_load(const char *path, int keep_arenas, struct hi_series *s)
{
	struct hi_series_err err;
	int ret = hi_series_read(path, keep_arenas, s, &err);

	if (ret) {
		if (err.line)
			errmsg("cannot read '%s' line %lu: %s", path, err.line,
			       err.msg);
		else
			errmsg("cannot read '%s': %s", path, lower(err.msg));
		return EXIT_FAILED;
	}
	if (s->cut_last)
		errmsg("'%s' line %lu: an unfinished last line (its writer was "
		       "stopped in the middle of it): left out", path,
		       s->cut_line);
	return 0;
}
