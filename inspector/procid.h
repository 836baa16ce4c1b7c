/* SPDX-License-Identifier: MIT */
/*
 * Who a process is, beyond its pid, which the kernel reuses: the thread
 * group a thread id belongs to, when the process started, and which boot
 * that time counts from.  The kernel never gives a (pid, start time) pair
 * to a second process of one boot.  Snapshots record it so that a file of
 * snapshots of one process cannot silently take in another's; watch
 * checks it so that a pid another process took over is never read; the
 * event lines of a followed service record it for each process.
 */
#ifndef HEAPINSPECT_PROCID_H
#define HEAPINSPECT_PROCID_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* /proc/sys/kernel/random/boot_id: 36 characters and a NUL. */
#define HI_BOOT_ID_SIZE 40

struct hi_proc_id {
	pid_t pid;
	int known;                     /* start_ticks was read (or recorded) */
	uint64_t start_ticks;          /* clock ticks after boot: /proc/PID/
					  stat field 22 (starttime, proc(5)) */
	char boot_id[HI_BOOT_ID_SIZE]; /* the boot it counts from; "" when
					  unknown */
};

/*
 * The process id (Tgid, /proc/ID/status) of id, which may be a thread's.
 * Return 0 with *tgid set, -ESRCH when there is no such task, or -errno.
 */
int hi_proc_tgid(pid_t id, pid_t *tgid);

/*
 * The identity of pid now: its start time and the boot's id (id->boot_id
 * "" when /proc/sys/kernel/random/boot_id cannot be read).  Return 0 with
 * id->known set, -ESRCH when there is no such process, or -errno.
 */
int hi_proc_id_read(pid_t pid, struct hi_proc_id *id);

/* What tells two identities apart, in the order they are compared. */
enum hi_proc_id_diff {
	HI_ID_SAME = 0, /* one process, as far as both say */
	HI_ID_PID,      /* another pid */
	HI_ID_BOOT,     /* both give a boot id, and they differ */
	HI_ID_START,    /* both give a start time, and they differ */
};

/*
 * Whether a and b are one process: the same pid and, where both say, the
 * same boot and start time.  Return HI_ID_SAME or the first difference
 * (enum hi_proc_id_diff).
 */
int hi_proc_id_cmp(const struct hi_proc_id *a, const struct hi_proc_id *b);

/*
 * Whether id's process still runs: 1; 0 when it is gone (its pid free, or
 * taken by another process: another start time); or -errno.  An id whose
 * start time is not known runs while its pid does.  A zombie still runs
 * (its pid is not free yet): hi_proc_info() tells.
 */
int hi_proc_id_alive(const struct hi_proc_id *id);

#endif
