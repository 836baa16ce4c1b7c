/* SPDX-License-Identifier: MIT */
/*
 * The layout cache: what the DWARF of a libc said (the layout, and where
 * main_arena and mp_ sit relative to the start of the libc), kept by
 * build-id so that the next run needs neither the debug file nor a
 * debuginfod server.  One text file per build-id, written to a temporary
 * file and renamed into place, so that a reader never sees half of one.
 * Loading checks everything (format, build-id, checksum, the layout's own
 * sanity); a file that fails is ignored, and what a valid one says is still
 * verified in the target's memory before it is used (ptm_verify).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptmalloc_priv.h"

/*
 * 3: fastbins may be absent (0,0,0: glibc 2.43 and later), and
 * tcache_entries was added.  A file of another format is ignored, and
 * written again in this one.
 */
#define MAGIC "heapinspect-layout-cache 3"

/* Every struct ptm_field of the layout, by name: the file's keys. */
static const struct {
	const char *name;
	size_t off;
} fields[] = {
#define F(x) { #x, offsetof(struct ptm_layout, x) }
	F(mutex), F(flags), F(fastbins), F(top), F(bins), F(next),
	F(attached_threads), F(system_mem), F(max_system_mem),
	F(trim_threshold), F(mmap_threshold), F(hp_pagesize), F(n_mmaps),
	F(n_mmaps_max), F(max_n_mmaps), F(mmapped_mem), F(max_mmapped_mem),
	F(sbrk_base), F(tcache_bins), F(tcache_max_bytes), F(tcache_count),
	F(tcache_entries),
	F(c_size), F(c_fd), F(c_bk), F(h_ar_ptr), F(h_prev), F(h_size),
#undef F
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* FNV-1a, 64 bits: catches a torn or edited file, not an attacker. */
static uint64_t fnv(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n < 8 || n > 128)
		return 0;
	return strspn(id, "0123456789abcdef") == n;
}

static int path_of(const char *dir, const char *id, char *buf, size_t n)
{
	if (!valid_id(id))
		return -EINVAL;
	if ((size_t)snprintf(buf, n, "%s/glibc-%s.layout", dir, id) >= n)
		return -ENAMETOOLONG;
	return 0;
}

int ptm_cache_load(const char *dir, const char *build_id,
		   struct ptm_cached *out, char *why, size_t whysize)
{
	char path[4096], buf[8192], *line, *save = NULL, *sum_at;
	unsigned seen[NFIELDS] = { 0 }, scalars = 0;
	uint64_t sum;
	ssize_t n;
	int fd, ret;

	ret = path_of(dir, build_id, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	memset(out, 0, sizeof(*out));
	ret = -HI_E_CORRUPT;
#define BAD(...)                                          \
	do {                                              \
		snprintf(why, whysize, __VA_ARGS__);      \
		return -HI_E_CORRUPT;                     \
	} while (0)
	if ((size_t)n == sizeof(buf) - 1)
		BAD("%s is too long", path);
	sum_at = strstr(buf, "\nchecksum ");
	if (!sum_at || sscanf(sum_at + 10, "%" SCNx64, &sum) != 1 ||
	    fnv(buf, sum_at + 1 - buf) != sum)
		BAD("%s: the checksum does not match", path);
	*sum_at = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[32], val[160];
		uint64_t a, b, c;
		size_t i;

		if (line == buf) {
			if (strcmp(line, MAGIC))
				BAD("%s is not a layout cache file", path);
			continue;
		}
		if (sscanf(line, "%31s %159s", key, val) != 2)
			BAD("%s: bad line '%.40s'", path, line);
		if (!strcmp(key, "build_id")) {
			if (strcmp(val, build_id))
				BAD("%s is for build-id %.40s", path, val);
			scalars |= 1;
		} else if (!strcmp(key, "located_by")) {
			if (strcmp(val, "dwarf") && strcmp(val, "debuginfod"))
				BAD("%s: located_by '%.20s'", path, val);
			snprintf(out->located_by, sizeof(out->located_by),
				 "%.15s", val);
			scalars |= 2;
		} else if (sscanf(line, "%*s %" SCNu64 ",%" SCNu64 ",%"
				  SCNu64, &a, &b, &c) == 3) {
			for (i = 0; i < NFIELDS; i++) {
				if (!strcmp(key, fields[i].name))
					break;
			}
			if (i == NFIELDS || seen[i]++)
				BAD("%s: key '%.31s'", path, key);
			*(struct ptm_field *)((char *)&out->l +
					      fields[i].off) =
				(struct ptm_field){ a, b, c };
		} else if (sscanf(line, "%*s %" SCNu64, &a) == 1) {
			static const char *const names[] = {
				"state_size", "par_size", "ptr_size",
				"safe_linking", "main_arena", "mp",
				"hinfo_size",
			};

			for (i = 0; i < 7 && strcmp(key, names[i]); i++)
				;
			if (i == 7 || (scalars & (4u << i)))
				BAD("%s: key '%.31s'", path, key);
			scalars |= 4u << i;
			if (a > UINT32_MAX)
				BAD("%s: %s out of range", path, key);
			switch (i) {
			case 0: out->l.state_size = a; break;
			case 1: out->l.par_size = a; break;
			case 2: out->l.ptr_size = (unsigned)a; break;
			case 3: out->l.safe_linking = a != 0; break;
			case 4: out->arena_off = a; break;
			case 5: out->mp_off = a; break;
			default: out->l.hinfo_size = a; break;
			}
		} else {
			BAD("%s: bad line '%.40s'", path, line);
		}
	}
	if (scalars != 0x1ff)
		BAD("%s lacks some keys", path);
	for (size_t i = 0; i < NFIELDS; i++) {
		if (!seen[i])
			BAD("%s lacks %s", path, fields[i].name);
	}
	if (ptm_layout_check(&out->l))
		BAD("%s: the layout is not one heapinspect can use", path);
#undef BAD
	return 0;
}

/* mkdir -p, private: the cache dir and any missing parent (~/.cache). */
static int mkdir_p(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			return -errno;
		p[i] = i < n ? '/' : '\0';
	}
	return 0;
}

int ptm_cache_store(const char *dir, const char *build_id,
		    const struct ptm_cached *in)
{
	char path[4096], tmp[4096 + 32], buf[8192];
	size_t len = 0;
	int fd, ret;

	ret = path_of(dir, build_id, path, sizeof(path));
	if (ret)
		return ret;
	ret = mkdir_p(dir);
	if (ret)
		return ret;
#define P(...) \
	(len += snprintf(buf + len, sizeof(buf) - len, __VA_ARGS__))
	P("%s\nbuild_id %s\nlocated_by %s\n", MAGIC, build_id,
	  in->located_by);
	P("state_size %" PRIu64 "\npar_size %" PRIu64 "\nptr_size %u\n"
	  "safe_linking %d\nmain_arena %" PRIu64 "\nmp %" PRIu64 "\n"
	  "hinfo_size %" PRIu64 "\n",
	  in->l.state_size, in->l.par_size, in->l.ptr_size,
	  in->l.safe_linking, in->arena_off, in->mp_off, in->l.hinfo_size);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct ptm_field *f = (const void *)((const char *)&in->l +
							   fields[i].off);

		P("%s %" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", fields[i].name,
		  f->off, f->size, f->count);
	}
	if (len >= sizeof(buf) - 32)
		return -ENAMETOOLONG;
	P("checksum %016" PRIx64 "\n", fnv(buf, len));
#undef P
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd)) {
		ret = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		return ret;
	}
	close(fd);
	if (rename(tmp, path)) {
		ret = -errno;
		unlink(tmp);
		return ret;
	}
	return 0;
}

int ptm_cache_remove(const char *dir, const char *build_id)
{
	char path[4096];
	int ret = path_of(dir, build_id, path, sizeof(path));

	if (ret)
		return ret;
	return unlink(path) ? -errno : 0;
}
