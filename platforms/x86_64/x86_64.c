/* SPDX-License-Identifier: MIT */
/*
 * x86_64: the registers of a stopped thread, and calls injected into it.
 * Only builds its ptrace code on an x86_64 host (elfutils backends/
 * x86_64_initreg.c does the same); on other hosts every operation says
 * -HI_E_UNSUPPORTED.
 *
 * An injected call returns through a signal frame.  Below the thread's red
 * zone we build what the kernel builds to run a signal handler (struct
 * rt_sigframe, arch/x86/include/asm/sigframe.h): the thread's complete
 * context (registers, the XSAVE image, the signal mask), and as the return
 * address the C library's own sa_restorer, glibc's __restore_rt, which makes
 * the rt_sigreturn system call.  The function runs as a signal handler
 * would, and returns into rt_sigreturn, which puts the thread back exactly
 * where it was.  No code is written into the target, and if heapinspect dies
 * at any moment, the kernel detaches and the thread still comes back by
 * itself.  While heapinspect lives, the rt_sigreturn is caught at its system
 * call entry stop and skipped, and the registers are put back with ptrace,
 * so that an interrupted system call restarts exactly as the kernel would
 * have restarted it (gdb's infcall does the same with a breakpoint it
 * writes; CRIU's compel uses a trap instruction it writes).
 */
#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

/* mov $15, %rax; syscall: glibc's __restore_rt (sysdeps/.../sigaction.c). */
static const unsigned char x86_64_restorer_code[] = {
	0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05,
};

#if defined(__x86_64__)
#include <cpuid.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <ucontext.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* The shadow stack pointer of a thread that has one (Linux 6.6 on). */
#ifndef NT_X86_SHSTK
#define NT_X86_SHSTK 0x204
#endif
#define X86_64_NR_RT_SIGRETURN 15
/* A signal's bit in the kernel's 64-bit sigset_t. */
#define SIGBIT(sig) (1ull << ((sig) - 1))
#define X86_64_NR_RESTART_SYSCALL 219

/*
 * The kernel's struct rt_sigframe on x86_64: pretcode, then struct ucontext
 * (uc_flags, uc_link, uc_stack, uc_mcontext = struct sigcontext, uc_sigmask
 * of the kernel's 8 bytes), then struct siginfo.  The fpstate lives apart,
 * 64-byte aligned, pointed to by sigcontext.fpstate.  glibc's ucontext_t
 * has the same head, which the asserts below hold us to.
 */
#define SF_UC 8
#define UC_FLAGS 0
#define UC_STACK 16
#define UC_MCONTEXT 40
#define UC_SIGMASK 296
#define SF_SIZE (SF_UC + 304 + 128)

_Static_assert(offsetof(ucontext_t, uc_stack) == UC_STACK, "uc_stack");
_Static_assert(offsetof(ucontext_t, uc_mcontext) == UC_MCONTEXT, "mcontext");
_Static_assert(offsetof(ucontext_t, uc_sigmask) == UC_SIGMASK, "sigmask");
_Static_assert(sizeof(mcontext_t) == 256, "struct sigcontext");

/* uapi asm/ucontext.h */
#define HI_UC_FP_XSTATE 0x1
#define HI_UC_SIGCONTEXT_SS 0x2
#define HI_UC_STRICT_RESTORE_SS 0x4

/* The kernel's restart codes (include/linux/errno.h). */
#define HI_ERESTARTSYS 512
#define HI_ERESTARTNOINTR 513
#define HI_ERESTARTNOHAND 514
#define HI_ERESTART_RESTARTBLOCK 516

#define RED_ZONE 128
/* Stack the called function may use below its frame. */
#define STACK_NEED (32 * 1024)
/* The largest XSAVE image we accept from the kernel (AMX: about 11 KB). */
#define XSTATE_MAX (64 * 1024)
/* Offsets in the XSAVE image (Intel SDM vol. 1, 13.4). */
#define XS_SW_RESERVED 464
#define XS_HEADER 512
#define XS_MIN 576
#define XFEATURE_TILEDATA 18

struct hi_call_state {
	pid_t tid;
	struct hi_call call;
	struct user_regs_struct regs;   /* as stopped */
	struct user_regs_struct resume; /* where rt_sigreturn resumes */
	unsigned char *xstate;          /* as the kernel gave it */
	size_t xsize;
	int have_xstate;                /* else the 512-byte FXSAVE image */
	uint64_t sigmask;
	hi_addr_t lo, hi;               /* the bytes the frame covers */
	hi_addr_t frame, fp, ret;
	unsigned char *saved;           /* their contents before */
	size_t sig_xsize;               /* XSAVE bytes in the frame */
	uint64_t sig_xfeatures;
};

static int x86_64_get_pc(pid_t tid, hi_addr_t *pc)
{
	struct user_regs_struct regs;
	struct iovec iov = { .iov_base = &regs, .iov_len = sizeof(regs) };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
		return -errno;
	*pc = regs.rip;
	return 0;
}

static int get_regs(pid_t tid, struct user_regs_struct *regs)
{
	struct iovec iov = { .iov_base = regs, .iov_len = sizeof(*regs) };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
		return -errno;
	return 0;
}

static int set_regs(pid_t tid, const struct user_regs_struct *regs)
{
	struct iovec iov = { .iov_base = (void *)regs,
			     .iov_len = sizeof(*regs) };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
		return -errno;
	return 0;
}

static int set_xstate(const struct hi_call_state *st)
{
	struct iovec iov = { .iov_base = st->xstate, .iov_len = st->xsize };
	long type = st->have_xstate ? NT_X86_XSTATE : NT_PRFPREG;

	if (ptrace(PTRACE_SETREGSET, st->tid, (void *)type, &iov) != 0)
		return -errno;
	return 0;
}

static int set_sigmask(pid_t tid, uint64_t mask)
{
	/* The kernel's sigset_t: 8 bytes on x86_64. */
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) != 0)
		return -errno;
	return 0;
}

/*
 * The extended state the kernel itself puts in a signal frame: every user
 * feature enabled in XCR0 except AMX tile data, which is given to a process
 * only on request (arch_prctl ARCH_REQ_XCOMP_PERM) and is not in the default
 * frame (fpu_user_cfg.default_features, arch/x86/kernel/fpu/xstate.c), with
 * the non-compacted size those features need (CPUID leaf 0xd).  heapinspect
 * runs on the same CPU as the target, so its CPUID and XCR0 are the
 * target's.
 */
static void sig_xstate(size_t *size, uint64_t *features)
{
	unsigned a, b, c, d, lo, hi;
	uint64_t xcr0;
	size_t end = XS_MIN;

	__cpuid(1, a, b, c, d);
	if (!(c & bit_OSXSAVE)) {
		*size = 512;
		*features = 3;
		return;
	}
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	xcr0 = (uint64_t)hi << 32 | lo;
	xcr0 &= ~(1ull << XFEATURE_TILEDATA);
	for (int i = 2; i < 63; i++) {
		if (!(xcr0 & (1ull << i)))
			continue;
		__cpuid_count(0xd, i, a, b, c, d);
		if ((size_t)b + a > end)
			end = (size_t)b + a;
	}
	*size = end;
	*features = xcr0;
}

/*
 * System calls that wait with a temporary signal mask of the caller's
 * (set_user_sigmask): the thread's own mask waits in saved_sigmask, with
 * TIF_RESTORE_SIGMASK set, until the call returns (kernel/signal.c).
 */
static int saves_sigmask(uint64_t nr)
{
	switch (nr) {
	case 130: /* rt_sigsuspend */
	case 270: /* pselect6 */
	case 271: /* ppoll */
	case 281: /* epoll_pwait */
	case 333: /* io_pgetevents */
	case 441: /* epoll_pwait2 */
		return 1;
	}
	return 0;
}

/*
 * Whether the kernel shows a debugger the thread's own signal mask while it
 * waits with a temporary one: since Linux 5.1, PTRACE_GETSIGMASK returns
 * saved_sigmask when TIF_RESTORE_SIGMASK is set, and PTRACE_SETSIGMASK
 * clears that flag (kernel/ptrace.c, "ptrace: take into account
 * saved_sigmask in PTRACE{GET,SET}SIGMASK").  Then a call can be hosted
 * there as the kernel hosts a signal handler: the frame holds the thread's
 * own mask (sigmask_to_save), the wait is restarted afterwards, and it
 * sets its temporary mask again.  Before, the mask read would be the
 * temporary one, and the saved one would be put back under the call.
 */
static int kernel_shows_saved_sigmask(void)
{
	static int known = -1;
	struct utsname u;
	unsigned maj = 0, min = 0;

	if (known < 0) {
		known = uname(&u) == 0 &&
			sscanf(u.release, "%u.%u", &maj, &min) == 2 &&
			(maj > 5 || (maj == 5 && min >= 1));
	}
	return known;
}

/*
 * The system calls that an interruption turns into restart_syscall: their
 * rest is kept in the thread's restart_block (nanosleep, clock_nanosleep
 * and poll with a timeout, futex waits with a relative one).
 */
static int restarts_by_block(uint64_t nr)
{
	return nr == 7 || nr == 35 || nr == 202 || nr == 230;
}

/*
 * A thread in restart_syscall: the call it restarts is known only to the
 * kernel (restart_block), and rt_sigreturn resets that, so a thread that
 * returned through the call's frame by itself (heapinspect killed) could
 * not go back to it: it would see EINTR.  But the registers still hold that
 * call's arguments (the kernel changed only rax and rip to restart it), and
 * the instruction before the syscall instruction loaded its number: glibc
 * issues such calls as "mov $NR, %eax; syscall" (2.31 to 2.40), or, where
 * the number is an argument of a function of its own, as "mov D(%rsp),
 * %rax; syscall" (INTERNAL_SYSCALL_NCS, 2.41), the stack as it was then.
 * When those bytes say so, the thread can go back to NR itself, with its
 * arguments, as a thread stopped in NR would (a sleep may then last
 * longer, never shorter; the rest of a sleep that glibc's sleep() made is
 * what its request holds by then, since the kernel writes the time left
 * back at every interruption).  Return NR, or -1.
 */
static long restarted_call(const struct hi_reader *r, hi_addr_t rip,
			   hi_addr_t rsp)
{
	unsigned char code[7];
	uint64_t nr = UINT64_MAX;
	uint32_t imm;

	if (rip < sizeof(code) || hi_read(r, rip - sizeof(code), code,
					  sizeof(code)) != 0)
		return -1;
	if (code[5] != 0x0f || code[6] != 0x05) /* syscall */
		return -1;
	if (code[0] == 0xb8) { /* b8 imm32: mov $imm32, %eax */
		memcpy(&imm, code + 1, 4);
		nr = imm;
	} else if (code[0] == 0x48 && code[1] == 0x8b && code[2] == 0x44 &&
		   code[3] == 0x24) { /* 48 8b 44 24 d8: mov d8(%rsp), %rax */
		if (hi_read(r, rsp + code[4], &nr, sizeof(nr)) != 0)
			return -1;
	}
	return restarts_by_block(nr) ? (long)nr : -1;
}

static const char *const x86_64_syscalls[] = {
	[0] = "read", [1] = "write", [2] = "open", [3] = "close",
	[4] = "stat", [5] = "fstat", [6] = "lstat", [7] = "poll",
	[8] = "lseek", [9] = "mmap", [10] = "mprotect", [11] = "munmap",
	[12] = "brk", [13] = "rt_sigaction", [14] = "rt_sigprocmask",
	[15] = "rt_sigreturn", [16] = "ioctl", [17] = "pread64",
	[18] = "pwrite64", [19] = "readv", [20] = "writev", [21] = "access",
	[22] = "pipe", [23] = "select", [24] = "sched_yield", [25] = "mremap",
	[26] = "msync", [27] = "mincore", [28] = "madvise", [29] = "shmget",
	[30] = "shmat", [31] = "shmctl", [32] = "dup", [33] = "dup2",
	[34] = "pause", [35] = "nanosleep", [36] = "getitimer",
	[37] = "alarm", [38] = "setitimer", [39] = "getpid",
	[40] = "sendfile", [41] = "socket", [42] = "connect", [43] = "accept",
	[44] = "sendto", [45] = "recvfrom", [46] = "sendmsg",
	[47] = "recvmsg", [48] = "shutdown", [49] = "bind", [50] = "listen",
	[51] = "getsockname", [52] = "getpeername", [53] = "socketpair",
	[54] = "setsockopt", [55] = "getsockopt", [56] = "clone",
	[57] = "fork", [58] = "vfork", [59] = "execve", [60] = "exit",
	[61] = "wait4", [62] = "kill", [63] = "uname", [64] = "semget",
	[65] = "semop", [66] = "semctl", [67] = "shmdt", [68] = "msgget",
	[69] = "msgsnd", [70] = "msgrcv", [71] = "msgctl", [72] = "fcntl",
	[73] = "flock", [74] = "fsync", [75] = "fdatasync", [76] = "truncate",
	[77] = "ftruncate", [78] = "getdents", [79] = "getcwd",
	[80] = "chdir", [81] = "fchdir", [82] = "rename", [83] = "mkdir",
	[84] = "rmdir", [85] = "creat", [86] = "link", [87] = "unlink",
	[88] = "symlink", [89] = "readlink", [90] = "chmod", [91] = "fchmod",
	[92] = "chown", [93] = "fchown", [94] = "lchown", [95] = "umask",
	[96] = "gettimeofday", [97] = "getrlimit", [98] = "getrusage",
	[99] = "sysinfo", [100] = "times", [101] = "ptrace", [102] = "getuid",
	[103] = "syslog", [104] = "getgid", [105] = "setuid",
	[106] = "setgid", [107] = "geteuid", [108] = "getegid",
	[109] = "setpgid", [110] = "getppid", [111] = "getpgrp",
	[112] = "setsid", [113] = "setreuid", [114] = "setregid",
	[115] = "getgroups", [116] = "setgroups", [117] = "setresuid",
	[118] = "getresuid", [119] = "setresgid", [120] = "getresgid",
	[121] = "getpgid", [122] = "setfsuid", [123] = "setfsgid",
	[124] = "getsid", [125] = "capget", [126] = "capset",
	[127] = "rt_sigpending", [128] = "rt_sigtimedwait",
	[129] = "rt_sigqueueinfo", [130] = "rt_sigsuspend",
	[131] = "sigaltstack", [132] = "utime", [133] = "mknod",
	[134] = "uselib", [135] = "personality", [136] = "ustat",
	[137] = "statfs", [138] = "fstatfs", [139] = "sysfs",
	[140] = "getpriority", [141] = "setpriority",
	[142] = "sched_setparam", [143] = "sched_getparam",
	[144] = "sched_setscheduler", [145] = "sched_getscheduler",
	[146] = "sched_get_priority_max", [147] = "sched_get_priority_min",
	[148] = "sched_rr_get_interval", [149] = "mlock", [150] = "munlock",
	[151] = "mlockall", [152] = "munlockall", [153] = "vhangup",
	[154] = "modify_ldt", [155] = "pivot_root", [156] = "_sysctl",
	[157] = "prctl", [158] = "arch_prctl", [159] = "adjtimex",
	[160] = "setrlimit", [161] = "chroot", [162] = "sync", [163] = "acct",
	[164] = "settimeofday", [165] = "mount", [166] = "umount2",
	[167] = "swapon", [168] = "swapoff", [169] = "reboot",
	[170] = "sethostname", [171] = "setdomainname", [172] = "iopl",
	[173] = "ioperm", [174] = "create_module", [175] = "init_module",
	[176] = "delete_module", [177] = "get_kernel_syms",
	[178] = "query_module", [179] = "quotactl", [180] = "nfsservctl",
	[181] = "getpmsg", [182] = "putpmsg", [183] = "afs_syscall",
	[184] = "tuxcall", [185] = "security", [186] = "gettid",
	[187] = "readahead", [188] = "setxattr", [189] = "lsetxattr",
	[190] = "fsetxattr", [191] = "getxattr", [192] = "lgetxattr",
	[193] = "fgetxattr", [194] = "listxattr", [195] = "llistxattr",
	[196] = "flistxattr", [197] = "removexattr", [198] = "lremovexattr",
	[199] = "fremovexattr", [200] = "tkill", [201] = "time",
	[202] = "futex", [203] = "sched_setaffinity",
	[204] = "sched_getaffinity", [205] = "set_thread_area",
	[206] = "io_setup", [207] = "io_destroy", [208] = "io_getevents",
	[209] = "io_submit", [210] = "io_cancel", [211] = "get_thread_area",
	[212] = "lookup_dcookie", [213] = "epoll_create",
	[214] = "epoll_ctl_old", [215] = "epoll_wait_old",
	[216] = "remap_file_pages", [217] = "getdents64",
	[218] = "set_tid_address", [219] = "restart_syscall",
	[220] = "semtimedop", [221] = "fadvise64", [222] = "timer_create",
	[223] = "timer_settime", [224] = "timer_gettime",
	[225] = "timer_getoverrun", [226] = "timer_delete",
	[227] = "clock_settime", [228] = "clock_gettime",
	[229] = "clock_getres", [230] = "clock_nanosleep",
	[231] = "exit_group", [232] = "epoll_wait", [233] = "epoll_ctl",
	[234] = "tgkill", [235] = "utimes", [236] = "vserver",
	[237] = "mbind", [238] = "set_mempolicy", [239] = "get_mempolicy",
	[240] = "mq_open", [241] = "mq_unlink", [242] = "mq_timedsend",
	[243] = "mq_timedreceive", [244] = "mq_notify",
	[245] = "mq_getsetattr", [246] = "kexec_load", [247] = "waitid",
	[248] = "add_key", [249] = "request_key", [250] = "keyctl",
	[251] = "ioprio_set", [252] = "ioprio_get", [253] = "inotify_init",
	[254] = "inotify_add_watch", [255] = "inotify_rm_watch",
	[256] = "migrate_pages", [257] = "openat", [258] = "mkdirat",
	[259] = "mknodat", [260] = "fchownat", [261] = "futimesat",
	[262] = "newfstatat", [263] = "unlinkat", [264] = "renameat",
	[265] = "linkat", [266] = "symlinkat", [267] = "readlinkat",
	[268] = "fchmodat", [269] = "faccessat", [270] = "pselect6",
	[271] = "ppoll", [272] = "unshare", [273] = "set_robust_list",
	[274] = "get_robust_list", [275] = "splice", [276] = "tee",
	[277] = "sync_file_range", [278] = "vmsplice", [279] = "move_pages",
	[280] = "utimensat", [281] = "epoll_pwait", [282] = "signalfd",
	[283] = "timerfd_create", [284] = "eventfd", [285] = "fallocate",
	[286] = "timerfd_settime", [287] = "timerfd_gettime",
	[288] = "accept4", [289] = "signalfd4", [290] = "eventfd2",
	[291] = "epoll_create1", [292] = "dup3", [293] = "pipe2",
	[294] = "inotify_init1", [295] = "preadv", [296] = "pwritev",
	[297] = "rt_tgsigqueueinfo", [298] = "perf_event_open",
	[299] = "recvmmsg", [300] = "fanotify_init", [301] = "fanotify_mark",
	[302] = "prlimit64", [303] = "name_to_handle_at",
	[304] = "open_by_handle_at", [305] = "clock_adjtime",
	[306] = "syncfs", [307] = "sendmmsg", [308] = "setns",
	[309] = "getcpu", [310] = "process_vm_readv",
	[311] = "process_vm_writev", [312] = "kcmp", [313] = "finit_module",
	[314] = "sched_setattr", [315] = "sched_getattr", [316] = "renameat2",
	[317] = "seccomp", [318] = "getrandom", [319] = "memfd_create",
	[320] = "kexec_file_load", [321] = "bpf", [322] = "execveat",
	[323] = "userfaultfd", [324] = "membarrier", [325] = "mlock2",
	[326] = "copy_file_range", [327] = "preadv2", [328] = "pwritev2",
	[329] = "pkey_mprotect", [330] = "pkey_alloc", [331] = "pkey_free",
	[332] = "statx", [333] = "io_pgetevents", [334] = "rseq",
	[424] = "pidfd_send_signal", [425] = "io_uring_setup",
	[426] = "io_uring_enter", [427] = "io_uring_register",
	[428] = "open_tree", [429] = "move_mount", [430] = "fsopen",
	[431] = "fsconfig", [432] = "fsmount", [433] = "fspick",
	[434] = "pidfd_open", [435] = "clone3", [436] = "close_range",
	[437] = "openat2", [438] = "pidfd_getfd", [439] = "faccessat2",
	[440] = "process_madvise", [441] = "epoll_pwait2",
	[442] = "mount_setattr", [443] = "quotactl_fd",
	[444] = "landlock_create_ruleset", [445] = "landlock_add_rule",
	[446] = "landlock_restrict_self", [447] = "memfd_secret",
	[448] = "process_mrelease", [449] = "futex_waitv",
	[450] = "set_mempolicy_home_node", [451] = "cachestat",
	[452] = "fchmodat2", [453] = "map_shadow_stack", [454] = "futex_wake",
	[455] = "futex_wait", [456] = "futex_requeue", [457] = "statmount",
	[458] = "listmount", [459] = "lsm_get_self_attr",
	[460] = "lsm_set_self_attr", [461] = "lsm_list_modules",
	[462] = "mseal",
};

static const char *x86_64_syscall_name(uint64_t nr)
{
	if (nr < sizeof(x86_64_syscalls) / sizeof(x86_64_syscalls[0]))
		return x86_64_syscalls[nr];
	return NULL;
}

static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void x86_64_call_free(struct hi_call_state *st)
{
	if (!st)
		return;
	free(st->xstate);
	free(st->saved);
	free(st);
}

static int x86_64_call_prepare(pid_t tid, const struct hi_call *call,
			       const struct hi_reader *r,
			       const struct hi_maps *maps,
			       struct hi_call_state **out, int *rank,
			       char *why, size_t why_size)
{
	unsigned char code[sizeof(x86_64_restorer_code)];
	struct hi_call_state *st;
	const struct hi_map *m;
	struct iovec iov;
	hi_addr_t top;
	uint64_t ssp;
	long ax, restarts = -1;
	int ret;

	*rank = HI_HOST_NO;
	why[0] = '\0';
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->tid = tid;
	st->call = *call;
	if (call->nargs + (call->ret_size > 0) > 6) {
		ret = -EINVAL;
		goto err;
	}
	ret = get_regs(tid, &st->regs);
	if (ret)
		goto err;

	/* The full extended state, as big as the kernel says it is. */
	st->xstate = calloc(1, XSTATE_MAX);
	if (!st->xstate) {
		ret = -ENOMEM;
		goto err;
	}
	iov.iov_base = st->xstate;
	iov.iov_len = XSTATE_MAX;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0 &&
	    iov.iov_len >= XS_MIN) {
		st->have_xstate = 1;
		st->xsize = iov.iov_len;
		sig_xstate(&st->sig_xsize, &st->sig_xfeatures);
		if (st->sig_xsize > st->xsize)
			st->sig_xsize = st->xsize;
	} else {
		iov.iov_len = 512;
		if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRFPREG, &iov) ||
		    iov.iov_len != 512) {
			ret = -errno ? -errno : -EIO;
			goto err;
		}
		st->xsize = 512;
		st->sig_xsize = 512;
	}
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(st->sigmask),
		   &st->sigmask) != 0) {
		ret = -errno;
		goto err;
	}

	/*
	 * Where the thread resumes after rt_sigreturn, which does not restart
	 * system calls (it sets orig_ax to -1): so restart an interrupted one
	 * here, as arch_do_signal_or_restart would, by going back to the
	 * syscall instruction with the call's number.  A call that restarts
	 * through restart_block (nanosleep, ...) cannot: rt_sigreturn resets
	 * restart_block, so it is issued again from the start (a sleep may
	 * last longer, never shorter, and no EINTR).
	 */
	st->resume = st->regs;
	ax = (long)st->regs.rax;
	if ((long)st->regs.orig_rax >= 0 &&
	    (ax == -HI_ERESTARTSYS || ax == -HI_ERESTARTNOINTR ||
	     ax == -HI_ERESTARTNOHAND || ax == -HI_ERESTART_RESTARTBLOCK)) {
		st->resume.rax = st->regs.orig_rax;
		st->resume.rip -= 2;
	}
	if (st->regs.orig_rax == X86_64_NR_RESTART_SYSCALL &&
	    ax == -HI_ERESTART_RESTARTBLOCK)
		restarts = restarted_call(r, st->regs.rip, st->regs.rsp);
	if (restarts >= 0)
		st->resume.rax = (uint64_t)restarts;

	/* The frame: fpstate, result, rt_sigframe, below the red zone. */
	top = st->regs.rsp - RED_ZONE;
	st->fp = (top - st->sig_xsize - 4) & ~(hi_addr_t)63;
	st->ret = (st->fp - call->ret_size) & ~(hi_addr_t)15;
	/* At entry (rsp + 8) is 16-byte aligned, as after a call. */
	st->frame = ((st->ret - SF_SIZE) & ~(hi_addr_t)15) - 8;
	st->lo = st->frame;
	st->hi = top;

	*out = st;
	/*
	 * A thread with a CET shadow stack: the kernel pushes a token on it
	 * for every signal frame it builds, and rt_sigreturn takes it off;
	 * a frame built from outside has none, so the return would fault.
	 * The regset reads only where the shadow stack is on (ssp_get).
	 */
	iov.iov_base = &ssp;
	iov.iov_len = sizeof(ssp);
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_SHSTK, &iov) == 0) {
		snprintf(why, why_size, "runs with a CET shadow stack, which "
			 "a call made from outside would break");
		return 0;
	}
	m = hi_maps_find(maps, st->regs.rsp - 1);
	if (!m || (m->prot & (HI_PROT_R | HI_PROT_W)) !=
			  (HI_PROT_R | HI_PROT_W) ||
	    st->lo < m->start + STACK_NEED || st->lo > st->hi) {
		snprintf(why, why_size, "too little stack below 0x%llx",
			 (unsigned long long)st->regs.rsp);
		return 0;
	}
	/*
	 * In restart_syscall, unless the call it restarts can be told (see
	 * restarted_call): that thread would see EINTR if heapinspect died
	 * during the call.  Only while heapinspect lives is restart_block
	 * kept (it skips rt_sigreturn).
	 */
	if (st->regs.orig_rax == X86_64_NR_RESTART_SYSCALL && restarts < 0) {
		snprintf(why, why_size, "sleeps in restart_syscall, the rest "
			 "of a wait that an earlier stop interrupted, and its "
			 "system call cannot be told from its code");
		return 0;
	}
	if ((long)st->regs.orig_rax >= 0 && saves_sigmask(st->regs.orig_rax) &&
	    !kernel_shows_saved_sigmask()) {
		snprintf(why, why_size, "waits in %s with a temporary signal "
			 "mask, which this kernel (before Linux 5.1) hides "
			 "from a debugger",
			 x86_64_syscall_name(st->regs.orig_rax));
		return 0;
	}
	/* Check that the restorer is what we think it is, in memory. */
	ret = hi_read(r, call->restorer, code, sizeof(code));
	if (ret)
		return ret;
	if (memcmp(code, x86_64_restorer_code, sizeof(code)) != 0) {
		snprintf(why, why_size, "no rt_sigreturn code at 0x%llx",
			 (unsigned long long)call->restorer);
		return -HI_E_NOSYM;
	}
	st->saved = malloc(st->hi - st->lo);
	if (!st->saved)
		return -ENOMEM;
	ret = hi_read(r, st->lo, st->saved, st->hi - st->lo);
	if (ret)
		return ret;
	if (ax == -HI_ERESTART_RESTARTBLOCK && (long)st->regs.orig_rax >= 0)
		*rank = HI_HOST_RESTARTBLOCK;
	else if ((long)st->regs.orig_rax >= 0)
		*rank = HI_HOST_SYSCALL;
	else
		*rank = HI_HOST_USER;
	return 0;
err:
	x86_64_call_free(st);
	return ret;
}

/* The sigcontext registers, in struct sigcontext's order (REG_*). */
static void put_mcontext(unsigned char *mc, const struct user_regs_struct *r,
			 hi_addr_t fpstate)
{
	const uint64_t g[NGREG] = {
		[REG_R8] = r->r8, [REG_R9] = r->r9, [REG_R10] = r->r10,
		[REG_R11] = r->r11, [REG_R12] = r->r12, [REG_R13] = r->r13,
		[REG_R14] = r->r14, [REG_R15] = r->r15, [REG_RDI] = r->rdi,
		[REG_RSI] = r->rsi, [REG_RBP] = r->rbp, [REG_RBX] = r->rbx,
		[REG_RDX] = r->rdx, [REG_RAX] = r->rax, [REG_RCX] = r->rcx,
		[REG_RSP] = r->rsp, [REG_RIP] = r->rip, [REG_EFL] = r->eflags,
		/* cs, gs, fs, ss: 16 bits each, ss in the top ones */
		[REG_CSGSFS] = (r->cs & 0xffff) | (r->ss & 0xffff) << 48,
	};

	for (int i = 0; i < NGREG; i++)
		put64(mc + 8 * i, g[i]);
	put64(mc + 8 * NGREG, fpstate);
}

static int x86_64_call_start(struct hi_call_state *st,
			     const struct hi_writer *w)
{
	size_t size = st->hi - st->lo;
	unsigned char *img, *uc, *fx;
	struct user_regs_struct r;
	uint64_t *argreg[6];
	unsigned n = 0;
	int ret;

	img = calloc(1, size);
	if (!img)
		return -ENOMEM;
	put64(img, st->call.restorer);
	uc = img + SF_UC;
	put64(uc + UC_FLAGS, (st->have_xstate ? HI_UC_FP_XSTATE : 0) |
				     HI_UC_SIGCONTEXT_SS |
				     HI_UC_STRICT_RESTORE_SS);
	/*
	 * uc_stack with invalid flags: rt_sigreturn's restore_altstack hands
	 * it to do_sigaltstack, which refuses it (-EINVAL, squashed), so the
	 * thread's alternate signal stack stays as it is (kernel/signal.c).
	 */
	put32(uc + UC_STACK + 8, 3);
	put_mcontext(uc + UC_MCONTEXT, &st->resume, st->fp);
	put64(uc + UC_SIGMASK, st->sigmask);

	/* The XSAVE image, with the software bytes the kernel checks. */
	fx = img + (st->fp - st->lo);
	memcpy(fx, st->xstate, st->sig_xsize);
	if (st->have_xstate) {
		uint64_t bv;

		put32(fx + XS_SW_RESERVED, FP_XSTATE_MAGIC1);
		put32(fx + XS_SW_RESERVED + 4, st->sig_xsize + 4);
		put64(fx + XS_SW_RESERVED + 8, st->sig_xfeatures);
		put32(fx + XS_SW_RESERVED + 16, st->sig_xsize);
		memset(fx + XS_SW_RESERVED + 20, 0, 28);
		memcpy(&bv, fx + XS_HEADER, 8);
		put64(fx + XS_HEADER, bv & st->sig_xfeatures);
		put32(fx + st->sig_xsize, FP_XSTATE_MAGIC2);
	} else {
		memset(fx + XS_SW_RESERVED, 0, 48);
	}
	ret = w->write(w->arg, st->lo, img, size);
	free(img);
	if (ret)
		return ret;

	r = st->regs;
	argreg[0] = (uint64_t *)&r.rdi;
	argreg[1] = (uint64_t *)&r.rsi;
	argreg[2] = (uint64_t *)&r.rdx;
	argreg[3] = (uint64_t *)&r.rcx;
	argreg[4] = (uint64_t *)&r.r8;
	argreg[5] = (uint64_t *)&r.r9;
	/* A struct returned in memory: its address is the hidden first. */
	if (st->call.ret_size)
		*argreg[n++] = st->ret;
	for (unsigned i = 0; i < st->call.nargs; i++)
		*argreg[n++] = st->call.args[i];
	r.rip = st->call.fn;
	r.rsp = st->frame;
	r.rax = 0;
	/* Not in a system call: nothing is restarted into the function. */
	r.orig_rax = (unsigned long long)-1;
	/* The ABI's direction flag clear; no single-step, no AC. */
	r.eflags &= ~(0x400ull | 0x100ull | 0x40000ull);
	ret = set_regs(st->tid, &r);
	if (ret)
		return ret;
	/*
	 * Signals wait until the thread is back: the frame's uc_sigmask (or
	 * call_returned) puts the mask back, and they are delivered then.
	 * All but those a fault of the function's own raises: the kernel
	 * forces a blocked one through by resetting the process's handler
	 * to the default (force_sig_info_to_task), which could not be put
	 * back; unblocked, it stops the thread for heapinspect before any
	 * handler runs, and the call is undone.
	 */
	return set_sigmask(st->tid, ~(SIGBIT(SIGSEGV) | SIGBIT(SIGBUS) |
				      SIGBIT(SIGILL) | SIGBIT(SIGFPE) |
				      SIGBIT(SIGTRAP) | SIGBIT(SIGSYS)));
}

static int x86_64_call_skip_syscall(struct hi_call_state *st)
{
	struct user_regs_struct r;
	int ret;

	/* orig_rax -1 at the entry stop: the kernel skips the call
	 * (syscall_trace_enter), rax says -ENOSYS at its exit. */
	ret = get_regs(st->tid, &r);
	if (ret)
		return ret;
	r.orig_rax = (unsigned long long)-1;
	return set_regs(st->tid, &r);
}

static int x86_64_call_is_return(const struct hi_call_state *st, uint64_t nr,
				 hi_addr_t ip, hi_addr_t sp)
{
	return nr == X86_64_NR_RT_SIGRETURN &&
	       ip == st->call.restorer + sizeof(x86_64_restorer_code) &&
	       sp == st->frame + 8;
}

static int x86_64_call_returned(struct hi_call_state *st,
				const struct hi_reader *r, void *result)
{
	struct user_regs_struct regs;
	int ret;

	if (st->call.ret_size) {
		ret = hi_read(r, st->ret, result, st->call.ret_size);
		if (ret)
			return ret;
	}
	/*
	 * Put the state back before the registers, so that at every moment
	 * either rt_sigreturn still runs and restores all from the frame, or
	 * all is restored already.  Skipping rt_sigreturn (orig_rax -1) keeps
	 * restart_block, which it would reset.
	 */
	ret = set_xstate(st);
	if (!ret)
		ret = set_sigmask(st->tid, st->sigmask);
	if (ret)
		return ret;
	regs = st->resume;
	regs.orig_rax = (unsigned long long)-1;
	return set_regs(st->tid, &regs);
}

static int restore_all(struct hi_call_state *st, const struct hi_writer *w,
		       int with_state)
{
	struct user_regs_struct now;
	int ret;

	if (with_state) {
		ret = set_xstate(st);
		if (!ret)
			ret = set_sigmask(st->tid, st->sigmask);
		if (ret)
			return ret;
	}
	/*
	 * The registers as they were, orig_rax and rax included: when the
	 * thread is released, the kernel restarts its interrupted system
	 * call exactly as it would have (detaching a stopped tracee sets
	 * TIF_SIGPENDING, so arch_do_signal_or_restart runs).
	 */
	ret = set_regs(st->tid, &st->regs);
	if (ret)
		return ret;
	ret = w->write(w->arg, st->lo, st->saved, st->hi - st->lo);
	if (ret)
		return ret;
	ret = get_regs(st->tid, &now);
	if (ret)
		return ret;
	if (memcmp(&now, &st->regs, sizeof(now)) != 0)
		return -HI_E_RESTORE;
	if (st->have_xstate) {
		unsigned char *x = malloc(XSTATE_MAX);
		struct iovec iov = { .iov_base = x, .iov_len = XSTATE_MAX };

		if (!x)
			return -ENOMEM;
		if (ptrace(PTRACE_GETREGSET, st->tid, (void *)NT_X86_XSTATE,
			   &iov) != 0) {
			ret = -errno;
		} else if (iov.iov_len != st->xsize ||
			   memcmp(x, st->xstate, st->xsize) != 0) {
			ret = -HI_E_RESTORE;
		}
		free(x);
	}
	return ret;
}

static int x86_64_call_finish(struct hi_call_state *st,
			      const struct hi_writer *w)
{
	return restore_all(st, w, 0);
}

static int x86_64_call_abandon(struct hi_call_state *st,
			       const struct hi_writer *w)
{
	return restore_all(st, w, 1);
}

#else
static int x86_64_get_pc(pid_t tid, hi_addr_t *pc)
{
	(void)tid;
	(void)pc;
	return -HI_E_UNSUPPORTED;
}

static int x86_64_call_prepare(pid_t tid, const struct hi_call *call,
			       const struct hi_reader *r,
			       const struct hi_maps *maps,
			       struct hi_call_state **out, int *rank,
			       char *why, size_t why_size)
{
	(void)tid, (void)call, (void)r, (void)maps, (void)out, (void)why;
	(void)why_size;
	*rank = HI_HOST_NO;
	return -HI_E_UNSUPPORTED;
}

static int x86_64_call_start(struct hi_call_state *st,
			     const struct hi_writer *w)
{
	(void)st, (void)w;
	return -HI_E_UNSUPPORTED;
}

static int x86_64_call_is_return(const struct hi_call_state *st, uint64_t nr,
				 hi_addr_t ip, hi_addr_t sp)
{
	(void)st, (void)nr, (void)ip, (void)sp;
	return 0;
}

static int x86_64_call_returned(struct hi_call_state *st,
				const struct hi_reader *r, void *result)
{
	(void)st, (void)r, (void)result;
	return -HI_E_UNSUPPORTED;
}

static int x86_64_call_finish(struct hi_call_state *st,
			      const struct hi_writer *w)
{
	(void)st, (void)w;
	return -HI_E_UNSUPPORTED;
}

static int x86_64_call_abandon(struct hi_call_state *st,
			       const struct hi_writer *w)
{
	(void)st, (void)w;
	return -HI_E_UNSUPPORTED;
}

static int x86_64_call_skip_syscall(struct hi_call_state *st)
{
	(void)st;
	return -HI_E_UNSUPPORTED;
}

static void x86_64_call_free(struct hi_call_state *st)
{
	(void)st;
}

static const char *x86_64_syscall_name(uint64_t nr)
{
	(void)nr;
	return NULL;
}
#endif

const struct hi_arch_ops x86_64_ops = {
	.name = "x86_64",
	.e_machine = EM_X86_64,
	.ptr_size = 8,
	.get_pc = x86_64_get_pc,
	.restorer_code = x86_64_restorer_code,
	.restorer_len = sizeof(x86_64_restorer_code),
	.call_prepare = x86_64_call_prepare,
	.call_start = x86_64_call_start,
	.call_is_return = x86_64_call_is_return,
	.call_returned = x86_64_call_returned,
	.call_finish = x86_64_call_finish,
	.call_abandon = x86_64_call_abandon,
	.call_skip_syscall = x86_64_call_skip_syscall,
	.call_free = x86_64_call_free,
	.syscall_name = x86_64_syscall_name,
};
