/* SPDX-License-Identifier: MIT */
/*
 * A process's identity from /proc: proc(5) describes every field read here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procid.h"
#include "target.h"

int hi_proc_tgid(pid_t id, pid_t *tgid)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)id);
	n = hi_proc_read(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	p = strstr(buf, "\nTgid:");
	if (!p)
		return -EINVAL;
	v = strtol(p + strlen("\nTgid:"), NULL, 10);
	if (v <= 0)
		return -EINVAL;
	*tgid = (pid_t)v;
	return 0;
}

/*
 * The boot's id, read once: it cannot change while heapinspect runs, and
 * hi_proc_id_alive() is called while the target is held.
 */
static const char *boot_id(void)
{
	static char id[HI_BOOT_ID_SIZE];
	static int done;
	char buf[128];

	if (!done &&
	    hi_proc_read("/proc/sys/kernel/random/boot_id", buf,
			 sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(id, sizeof(id), "%.36s", buf);
		done = 1;
	}
	return id;
}

int hi_proc_id_read(pid_t pid, struct hi_proc_id *id)
{
	char path[64], buf[4096], *p;
	unsigned long long start;
	ssize_t n;

	memset(id, 0, sizeof(*id));
	id->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = hi_proc_read(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
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
	id->known = 1;
	snprintf(id->boot_id, sizeof(id->boot_id), "%s", boot_id());
	return 0;
}

int hi_proc_id_cmp(const struct hi_proc_id *a, const struct hi_proc_id *b)
{
	if (a->pid != b->pid)
		return HI_ID_PID;
	if (a->known && b->known && a->boot_id[0] && b->boot_id[0] &&
	    strcmp(a->boot_id, b->boot_id) != 0)
		return HI_ID_BOOT;
	if (a->known && b->known && a->start_ticks != b->start_ticks)
		return HI_ID_START;
	return HI_ID_SAME;
}

int hi_proc_id_alive(const struct hi_proc_id *id)
{
	struct hi_proc_id now;
	int ret = hi_proc_id_read(id->pid, &now);

	if (ret == -ESRCH)
		return 0;
	if (ret)
		return ret;
	return hi_proc_id_cmp(id, &now) == HI_ID_SAME;
}
