/* SPDX-License-Identifier: MIT */
/*
 * The memory reader behind platform code (struct hi_reader).  Reads are
 * served from a direct-mapped cache of page-sized blocks; misses are
 * fetched with process_vm_readv, which takes up to IOV_MAX ranges per
 * call, so that the walker can ask for the next chunk of every list it is
 * walking, and a stretch of read-ahead, in one system call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "memreader.h"

/* Blocks are pages: a block never straddles two mappings. */
#define BLOCK_SHIFT 12
#define BLOCK_SIZE (1u << BLOCK_SHIFT)
#define CACHE_SLOTS 8192 /* at most 32 MiB of copies per reader */
#define BULK_READ (64u << 10)

struct hi_block {
	hi_addr_t base;
	uint64_t generation;
	unsigned char *data;
};

void hi_mem_init(struct hi_mem *m, pid_t pid)
{
	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->mem_fd = -1;
	m->generation = 1;
	/*
	 * Kernels built without CONFIG_CROSS_MEMORY_ATTACH have no
	 * process_vm_readv; the tests force the /proc/PID/mem path with this
	 * to prove it gives the same figures.
	 */
#ifdef HI_TEST_HOOKS
	if (getenv("HEAPINSPECT_READ_PROC_MEM"))
		m->vm_readv_broken = 1;
#endif
}

void hi_mem_fini(struct hi_mem *m)
{
	if (m->mem_fd >= 0)
		close(m->mem_fd);
	m->mem_fd = -1;
	if (m->cache) {
		for (size_t i = 0; i < CACHE_SLOTS; i++)
			free(m->cache[i].data);
		free(m->cache);
	}
	m->cache = NULL;
}

void hi_mem_invalidate(struct hi_mem *m)
{
	m->generation++;
}

/* process_vm_readv of one range: 0, -EFAULT (not all mapped), or -errno. */
static int vm_read(pid_t pid, hi_addr_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr,
				.iov_len = len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	return n >= 0 || errno == EFAULT ? -EFAULT : -errno;
}

/* pread of /proc/PID/mem: 0, -EFAULT (not all mapped), or -errno. */
static int mem_read(int fd, hi_addr_t addr, void *buf, size_t len)
{
	ssize_t n;

	if (addr > INT64_MAX)
		return -EFAULT;
	n = pread(fd, buf, len, (off_t)addr);
	if (n == (ssize_t)len)
		return 0;
	return n >= 0 || errno == EIO ? -EFAULT : -errno;
}

/* One read straight from the target, no cache. */
static int raw_read(struct hi_mem *m, hi_addr_t addr, void *buf, size_t len)
{
	int ret;

	m->reads++;
	if (!m->vm_readv_broken) {
		ret = vm_read(m->pid, addr, buf, len);
		if (ret != -ENOSYS && ret != -EPERM)
			return ret;
		/* Kernels without CONFIG_CROSS_MEMORY_ATTACH. */
		m->vm_readv_broken = 1;
	}
	if (m->mem_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)m->pid);
		m->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (m->mem_fd < 0)
			return errno == ENOENT ? -ESRCH : -errno;
	}
	return mem_read(m->mem_fd, addr, buf, len);
}

static struct hi_block *block_of(struct hi_mem *m, hi_addr_t base)
{
	return &m->cache[(base >> BLOCK_SHIFT) % CACHE_SLOTS];
}

static int block_valid(const struct hi_mem *m, const struct hi_block *b,
		       hi_addr_t base)
{
	return b->data && b->base == base && b->generation == m->generation;
}

static int cached_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	struct hi_mem *m = arg;
	unsigned char *out = buf;

	if (addr + len < addr)
		return -EFAULT;
	/*
	 * A large read is a sweep over the heap (ptmalloc_sweep.c): it is
	 * read once, so it goes straight to the caller, in one system call.
	 */
	if (len >= BULK_READ)
		return raw_read(m, addr, buf, len);
	if (!m->cache) {
		m->cache = calloc(CACHE_SLOTS, sizeof(*m->cache));
		if (!m->cache)
			return raw_read(m, addr, buf, len);
	}
	while (len) {
		hi_addr_t base = addr & ~(hi_addr_t)(BLOCK_SIZE - 1);
		size_t off = addr - base, n = BLOCK_SIZE - off;
		struct hi_block *b;
		int ret;

		if (n > len)
			n = len;
		b = block_of(m, base);
		if (!block_valid(m, b, base)) {
			if (!b->data)
				b->data = malloc(BLOCK_SIZE);
			if (!b->data)
				return raw_read(m, addr, out, len);
			b->generation = 0;
			ret = raw_read(m, base, b->data, BLOCK_SIZE);
			if (ret == 0) {
				b->base = base;
				b->generation = m->generation;
			} else if (ret == -EFAULT) {
				/* Part of the page is not there: read less. */
				ret = raw_read(m, addr, out, n);
				if (ret)
					return ret;
				goto next;
			} else {
				return ret;
			}
		}
		memcpy(out, b->data + off, n);
next:
		out += n;
		addr += n;
		len -= n;
	}
	return 0;
}

static int is_cached(void *arg, hi_addr_t addr, size_t len)
{
	struct hi_mem *m = arg;
	hi_addr_t base = addr & ~(hi_addr_t)(BLOCK_SIZE - 1);

	if (!m->cache || addr + len - base > BLOCK_SIZE)
		return 0;
	return block_valid(m, block_of(m, base), base);
}

/*
 * Fetch the blocks around addrs that are not cached yet, up to IOV_MAX of
 * them in one process_vm_readv, and, when a direction is given, READAHEAD
 * more blocks from addrs[0] on that way, within its mapping.  A range that
 * fails ends the call early: the blocks after it are just not cached, and
 * their reads go one by one and report the error.
 */
#define PREFETCH_MAX 1024 /* UIO_MAXIOV */
#define READAHEAD 15

static void prefetch(void *arg, const hi_addr_t *addrs, size_t n, int dir)
{
	struct hi_mem *m = arg;
	struct iovec local[PREFETCH_MAX], remote[PREFETCH_MAX];
	struct hi_block *blk[PREFETCH_MAX];
	hi_addr_t bases[PREFETCH_MAX];
	size_t k = 0, nb = 0;
	ssize_t got;

	if (!m->cache || m->vm_readv_broken || !n)
		return;
	for (size_t i = 0; i < n && nb < PREFETCH_MAX; i++)
		bases[nb++] = addrs[i] & ~(hi_addr_t)(BLOCK_SIZE - 1);
	if (dir && m->maps) {
		const struct hi_map *map = hi_maps_find(m->maps, addrs[0]);
		hi_addr_t b = bases[0];

		for (int i = 0; map && i < READAHEAD && nb < PREFETCH_MAX;
		     i++) {
			if (dir > 0 ? b + 2 * BLOCK_SIZE > map->end
				    : b < map->start + BLOCK_SIZE)
				break;
			b = dir > 0 ? b + BLOCK_SIZE : b - BLOCK_SIZE;
			bases[nb++] = b;
		}
	}
	for (size_t i = 0; i < nb; i++) {
		hi_addr_t base = bases[i];
		struct hi_block *b = block_of(m, base);

		if (block_valid(m, b, base))
			continue;
		/* Two addresses in one block, or two blocks on one slot. */
		for (size_t j = 0; j < k; j++) {
			if (blk[j] == b)
				goto next;
		}
		if (!b->data && !(b->data = malloc(BLOCK_SIZE)))
			return;
		b->generation = 0;
		b->base = base;
		blk[k] = b;
		local[k].iov_base = b->data;
		local[k].iov_len = BLOCK_SIZE;
		remote[k].iov_base = (void *)(uintptr_t)base;
		remote[k].iov_len = BLOCK_SIZE;
		k++;
next:;
	}
	if (!k)
		return;
	m->reads++;
	got = process_vm_readv(m->pid, local, k, remote, k, 0);
	for (size_t j = 0; got > 0 && j < k; j++) {
		if ((size_t)got < BLOCK_SIZE)
			break;
		blk[j]->generation = m->generation;
		got -= BLOCK_SIZE;
	}
}

/*
 * raw_read without changing m, so that several threads may call it: the
 * first read of a stop has found out which way works and opened
 * /proc/PID/mem if needed, or this says -ENOSYS.
 */
static int direct_read(void *arg, hi_addr_t addr, void *buf, size_t len)
{
	struct hi_mem *m = arg;
	int ret;

	__atomic_fetch_add(&m->reads, 1, __ATOMIC_RELAXED);
	if (addr + len < addr)
		return -EFAULT;
	if (!m->vm_readv_broken) {
		ret = vm_read(m->pid, addr, buf, len);
		return ret == -EPERM ? -ENOSYS : ret;
	}
	return m->mem_fd < 0 ? -ENOSYS : mem_read(m->mem_fd, addr, buf, len);
}

struct hi_reader hi_mem_reader(struct hi_mem *m)
{
	struct hi_reader r = {
		.read = cached_read,
		.cached = is_cached,
		.prefetch = prefetch,
		.read_direct = direct_read,
		.arg = m,
	};

	return r;
}
