/* SPDX-License-Identifier: MIT */
/*
 * What every layer of heapinspect shares: the remote address type, the one
 * error channel, the memory-reader interface and the target's mappings.
 * Keep this small; anything that only one layer needs lives in that layer.
 */
#ifndef HEAPINSPECT_HI_H
#define HEAPINSPECT_HI_H

#include <stddef.h>
#include <stdint.h>

/*
 * An address in the target.  Never a pointer type, so that remote and local
 * memory cannot be confused.
 */
typedef uint64_t hi_addr_t;

#define HI_PRIxADDR "0x%" PRIx64

/*
 * Our own error codes.  Functions below inspector/ return 0 (or a count), a
 * negative errno for system failures, or a negative HI_E_* code.  The codes
 * start above 4095 so that they never collide with an errno (elfutils keeps
 * its DWFL_ERRORS table the same way).
 */
#define HI_ERRORS                                                            \
	HI_ERROR(NOLIBC, "no glibc libc.so is mapped in the target")         \
	HI_ERROR(STATIC, "the target is statically linked")                  \
	HI_ERROR(OTHERALLOC, "the target uses another allocator")            \
	HI_ERROR(NODEBUG, "no debug information for the target's libc")      \
	HI_ERROR(NOSYM, "the debug information lacks an allocator symbol")   \
	HI_ERROR(NOVERSION, "no built-in layout for this glibc version")     \
	HI_ERROR(VERIFY, "no candidate for the allocator's state verified")  \
	HI_ERROR(LAYOUT, "unexpected layout of the allocator's structures")  \
	HI_ERROR(DWARF, "cannot read the debug information")                 \
	HI_ERROR(CORRUPT, "the heap is corrupt")                             \
	HI_ERROR(BUSY, "the allocator was busy in every attempt")            \
	HI_ERROR(EXITED, "the target exited")                                \
	HI_ERROR(ZOMBIE, "the target is a zombie")                           \
	HI_ERROR(KTHREAD, "the target is a kernel thread")                   \
	HI_ERROR(UNSUPPORTED, "unsupported target architecture")             \
	HI_ERROR(TOOBIG, "a bound was exceeded")                             \
	HI_ERROR(UNSAFE, "the allocator stayed busy until the deadline")     \
	HI_ERROR(NOHOST, "no thread of the target can host a call")          \
	HI_ERROR(CALLFAULT, "the called function faulted")                   \
	HI_ERROR(UNSOUND, "the heap is corrupt where the call would walk")   \
	HI_ERROR(CALLSTUCK, "the called function did not return in time")    \
	HI_ERROR(RESTORE, "a register was not restored exactly")   \
	HI_ERROR(EXECED, "the target executed a new program")

enum hi_error {
	HI_E_BASE = 4096,
#define HI_ERROR(name, text) HI_E_##name,
	HI_ERRORS
#undef HI_ERROR
	HI_E_END
};

/* The message for a negative return code: an HI_E_* code or -errno. */
const char *hi_strerror(int err);

/*
 * How platform code reads the target: the caller supplies the function, as
 * libdwfl's memory_read and libunwind's access_mem do.  read() copies len
 * bytes from the target's address addr to buf and returns 0, or -EFAULT when
 * any part is not mapped, or another -errno (-ESRCH when the target is gone).
 * It never returns a partial read as success.
 */
struct hi_reader {
	int (*read)(void *arg, hi_addr_t addr, void *buf, size_t len);
	/*
	 * Optional, both or neither.  cached() says whether [addr, addr +
	 * len) is at hand without a system call.  prefetch() is a hint that
	 * the bytes around these addresses will be read soon, so that they
	 * can be fetched together, and that reading goes on from addrs[0]
	 * upwards (dir 1) or downwards (dir -1); it may ignore any of them
	 * and reports no error (a later read does).
	 */
	int (*cached)(void *arg, hi_addr_t addr, size_t len);
	void (*prefetch)(void *arg, const hi_addr_t *addrs, size_t n,
			 int dir);
	/*
	 * Optional: read as read() does but past any cache, and safe to call
	 * from several threads at once (and only then: no other member runs
	 * meanwhile).  For reads that are made once, such as a sweep over a
	 * heap, which may then be shared out between threads.  -ENOSYS when
	 * the reader cannot do it now: read() can.
	 */
	int (*read_direct)(void *arg, hi_addr_t addr, void *buf, size_t len);
	void *arg;
};

static inline int hi_read(const struct hi_reader *r, hi_addr_t addr,
			  void *buf, size_t len)
{
	return r->read(r->arg, addr, buf, len);
}

/* One line of /proc/PID/maps, as far as the walkers care. */
enum {
	HI_PROT_R = 1,
	HI_PROT_W = 2,
	HI_PROT_X = 4,
};

struct hi_map {
	hi_addr_t start;
	hi_addr_t end;
	unsigned prot;
	int is_heap; /* a [heap] line: the brk area */
	/*
	 * What memory object the mapping shows, for telling pieces of one
	 * apart: 0 for a file or a special mapping ([stack], [vdso], ...),
	 * never joined to another; else the same non-zero value for every
	 * piece of one kind of anonymous memory (HI_BACKING_ANON, or a value
	 * of its own per name given with PR_SET_VMA_ANON_NAME).
	 */
	uint32_t backing;
};

#define HI_BACKING_ANON 1u

/* Mappings sorted by start, not overlapping. */
struct hi_maps {
	struct hi_map *v;
	size_t n;
};

/* The mapping that contains addr, or NULL. */
const struct hi_map *hi_maps_find(const struct hi_maps *maps, hi_addr_t addr);

/*
 * Whether [addr, addr + len) lies inside one memory object whose every
 * page has at least the permissions prot (HI_PROT_*): one mapping, or
 * adjacent mappings of the same object.  The kernel shows one heap in
 * several mappings where part of it differs in a way malloc does not
 * see: pages a forked child added next to those it inherited, advice
 * (MADV_DONTDUMP, MADV_HUGEPAGE, glibc.malloc.hugetlb), mlock, or other
 * permissions (a page made read-only, or executable, inside a block).
 * Adjacent pieces are one object when both are [heap], or both
 * anonymous with the same backing.
 */
int hi_maps_range(const struct hi_maps *maps, hi_addr_t addr, uint64_t len,
		  unsigned prot);

/*
 * Whether [addr, addr + len) lies inside one readable and writable object
 * (hi_maps_range): malloc's state and chunks always do.
 */
int hi_maps_rw_range(const struct hi_maps *maps, hi_addr_t addr,
		     uint64_t len);

/*
 * The extent [*start, *end) of the object that holds addr: its mapping
 * and every adjacent piece of the same object, whatever their
 * permissions.  0, or -EFAULT when addr is not mapped.
 */
int hi_maps_extent(const struct hi_maps *maps, hi_addr_t addr,
		   hi_addr_t *start, hi_addr_t *end);

#endif
