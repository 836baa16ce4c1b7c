/* SPDX-License-Identifier: MIT */
/*
 * A process's identity from /proc: proc(5) describes every field read here.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procid.h"

/* The whole of a small /proc file, NUL-terminated.  Length or -errno. */
static ssize_t read_proc(const char *path, char *buf, size_t size)
{
	ssize_t n, len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)len + 1 < size &&
	       (n = read(fd, buf + len, size - 1 - (size_t)len)) > 0)
		len += n;
	if (n < 0)
		len = errno == ESRCH ? -ESRCH : -errno;
	close(fd);
	if (len >= 0)
		buf[len] = '\0';
	return len;
}

int hi_proc_tgid(pid_t id, pid_t *tgid)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)id);
	n = read_proc(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	p = strstr(buf, "\nTgid:");
	if (!p)
		return -EINVAL;
	v = strtol(p + strlen("\nTgid:"), NULL, 10);
	if (v <= 0)
		return -EINVAL;
	*tgid = (pid_t)v;
	return 0;
}

int hi_proc_id(pid_t pid, struct hi_procid *id)
{
	char path[64], buf[4096], *p;
	unsigned long long start;
	ssize_t n;

	memset(id, 0, sizeof(*id));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_proc(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/*
	 * comm may hold spaces and parentheses: the fields follow the last
	 * ')'; starttime is field 22, the 20th after it.
	 */
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	if (sscanf(p, " %llu", &start) != 1)
		return -EINVAL;
	id->start_ticks = start;
	n = read_proc("/proc/sys/kernel/random/boot_id", buf, sizeof(buf));
	if (n > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(id->boot_id, sizeof(id->boot_id), "%.36s", buf);
	}
	return 0;
}
