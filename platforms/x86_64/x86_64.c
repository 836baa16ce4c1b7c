/* SPDX-License-Identifier: MIT */
/*
 * x86_64: the registers of a stopped thread.  Only builds its ptrace code on
 * an x86_64 host (elfutils backends/x86_64_initreg.c does the same); on
 * other hosts every operation says -HI_E_UNSUPPORTED.
 */
#include <elf.h>
#include <errno.h>

#include "platform.h"

#if defined(__x86_64__)
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

static int x86_64_get_pc(pid_t tid, hi_addr_t *pc)
{
	struct user_regs_struct regs;
	struct iovec iov = { .iov_base = &regs, .iov_len = sizeof(regs) };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
		return -errno;
	*pc = regs.rip;
	return 0;
}
#else
static int x86_64_get_pc(pid_t tid, hi_addr_t *pc)
{
	(void)tid;
	(void)pc;
	return -HI_E_UNSUPPORTED;
}
#endif

const struct hi_arch_ops x86_64_ops = {
	.name = "x86_64",
	.e_machine = EM_X86_64,
	.ptr_size = 8,
	.get_pc = x86_64_get_pc,
};
