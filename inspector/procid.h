/* SPDX-License-Identifier: MIT */
/*
 * Who a process is, beyond its pid, which the kernel reuses: the thread
 * group a thread id belongs to, when the process started, and which boot
 * that time counts from.  Snapshots record it so that a file of snapshots
 * of one process cannot silently take in another's.
 */
#ifndef HEAPINSPECT_PROCID_H
#define HEAPINSPECT_PROCID_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* /proc/sys/kernel/random/boot_id: 36 characters and a NUL. */
#define HI_BOOT_ID_SIZE 40

struct hi_procid {
	uint64_t start_ticks;          /* /proc/PID/stat field 22 */
	char boot_id[HI_BOOT_ID_SIZE]; /* "" when unreadable */
};

/*
 * The process id (Tgid, /proc/ID/status) of id, which may be a thread's.
 * Return 0 with *tgid set, -ESRCH when there is no such task, or -errno.
 */
int hi_proc_tgid(pid_t id, pid_t *tgid);

/*
 * When pid started, in clock ticks after boot, and the boot's id.  Return
 * 0, -ESRCH when there is no such process, or -errno.
 */
int hi_proc_id(pid_t pid, struct hi_procid *id);

#endif
