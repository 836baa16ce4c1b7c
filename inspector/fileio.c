/* SPDX-License-Identifier: MIT */
/*
 * Files written so that a reader never sees half of one, and lines read
 * with a bound, so that a hostile file cannot make heapinspect allocate
 * without limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hi_write_atomic(const char *path, const void *data, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = path + dirlen;
	char *tmp;
	int fd = -1, ret;

	if (!*base)
		return -EISDIR;
	tmp = malloc(dirlen + strlen(base) + 64);
	if (!tmp)
		return -ENOMEM;
	/*
	 * A fresh, unpredictable name in the same directory (rename(2) is
	 * atomic only within one file system).  O_EXCL fails on anything
	 * already there, a symlink included, instead of following it.
	 */
	for (int tries = 0; tries < 100 && fd < 0; tries++) {
		uint64_t r = 0;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r ^= (uint64_t)getpid() << 32 ^ (uint64_t)tries;
		sprintf(tmp, "%.*s.%s.%016llx.tmp", (int)dirlen, path, base,
			(unsigned long long)r);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
			  O_NOFOLLOW, 0666);
		if (fd < 0 && errno != EEXIST) {
			ret = -errno;
			free(tmp);
			return ret;
		}
	}
	if (fd < 0) {
		free(tmp);
		return -EEXIST;
	}
	ret = write_all(fd, data, len);
	/* Durable before it is visible: rename after the data is on disk. */
	if (!ret && fsync(fd) != 0)
		ret = -errno;
	if (close(fd) != 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) != 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	free(tmp);
	return ret;
}

int hi_append_open(const char *path, size_t *cut)
{
	struct stat st;
	off_t end, pos;
	char buf[4096];
	int fd, ret;

	*cut = 0;
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return fd;
	/* Find the last '\n'; everything after it is an unfinished line. */
	end = st.st_size;
	pos = end;
	while (pos > 0) {
		size_t n = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
		ssize_t r = pread(fd, buf, n, pos - (off_t)n);

		if (r != (ssize_t)n) {
			errno = r < 0 ? errno : EIO;
			goto fail;
		}
		for (size_t i = n; i > 0; i--) {
			if (buf[i - 1] == '\n') {
				pos -= (off_t)(n - i);
				goto found;
			}
		}
		pos -= (off_t)n;
	}
found:
	if (pos < end) {
		if (ftruncate(fd, pos) != 0)
			goto fail;
		*cut = (size_t)(end - pos);
	}
	return fd;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

int hi_append_line(int fd, const char *data, size_t len)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) != 0)
		return -errno;
	ret = write_all(fd, data, len);
	if (ret && S_ISREG(st.st_mode)) {
		/* Keep only whole lines: drop what part of this one got in. */
		if (ftruncate(fd, st.st_size) != 0) {
			/* Nothing more to do; report the first error. */
		}
	}
	return ret;
}

int hi_lines_open(struct hi_lines *l, const char *path)
{
	struct stat st;

	memset(l, 0, sizeof(*l));
	l->f = fopen(path, "re");
	if (!l->f)
		return -errno;
	if (fstat(fileno(l->f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(l->f);
		l->f = NULL;
		return -EISDIR;
	}
	return 0;
}

int hi_lines_next(struct hi_lines *l)
{
	int c;

	l->len = 0;
	l->terminated = 0;
	c = getc_unlocked(l->f);
	if (c == EOF)
		return ferror(l->f) ? -EIO : 0;
	l->lineno++;
	for (; c != EOF; c = getc_unlocked(l->f)) {
		if (c == '\n') {
			l->terminated = 1;
			break;
		}
		if (l->len >= HI_LINE_MAX)
			return -E2BIG;
		if (l->len + 1 >= l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 4096;
			char *nb;

			if (ncap > HI_LINE_MAX + 1)
				ncap = HI_LINE_MAX + 1;
			nb = realloc(l->buf, ncap);
			if (!nb)
				return -ENOMEM;
			l->buf = nb;
			l->cap = ncap;
		}
		l->buf[l->len++] = (char)c;
	}
	if (c == EOF && ferror(l->f))
		return -EIO;
	if (!l->buf) {
		l->buf = malloc(1);
		if (!l->buf)
			return -ENOMEM;
		l->cap = 1;
	}
	l->buf[l->len] = '\0';
	return 1;
}

void hi_lines_close(struct hi_lines *l)
{
	if (l->f)
		fclose(l->f);
	free(l->buf);
	memset(l, 0, sizeof(*l));
}
