/* SPDX-License-Identifier: MIT */
/*
 * Files heapinspect writes and reads: whole files replaced atomically,
 * JSON Lines appended one complete line at a time, and lines read back with
 * a bound on their length.
 */
#ifndef HEAPINSPECT_FILEIO_H
#define HEAPINSPECT_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* The longest line (or whole JSON file) heapinspect reads: 16 MiB. */
#define HI_LINE_MAX ((size_t)16 << 20)

/*
 * Replace path with data: write a fresh file next to it (same directory,
 * O_CREAT | O_EXCL, so a symlink planted at that name is never followed),
 * fsync it and rename it over path.  The mode is 0666 less the umask.
 * Return 0 or -errno; on failure path is untouched and the temporary file
 * removed.
 */
int hi_write_atomic(const char *path, const void *data, size_t len);

/*
 * Open path for appending lines (created 0666 less the umask).  An
 * unterminated last line, left by a writer killed in the middle of it, is
 * cut off; *cut says how many bytes.  Return the fd or -errno.
 */
int hi_append_open(const char *path, size_t *cut);

/*
 * Append one line (data must end with '\n') with one write, and undo a
 * partial write (a full disk) by truncating the file back, so that the
 * file only ever holds whole lines.  Return 0 or -errno.
 */
int hi_append_line(int fd, const char *data, size_t len);

/* A reader of lines with a bound on their length. */
struct hi_lines {
	FILE *f;
	char *buf;
	size_t cap;             /* allocated */
	size_t len;             /* of the current line, without '\n' */
	unsigned long lineno;   /* 1-based number of the current line */
	int terminated;         /* the current line ended with '\n' */
};

/* Return 0 or -errno. */
int hi_lines_open(struct hi_lines *l, const char *path);

/*
 * The next line in l->buf (NUL-terminated, without its '\n'; it may hold
 * NUL bytes: use l->len).  Return 1, 0 at the end of the file, -E2BIG when
 * the line is longer than HI_LINE_MAX (reading stops there: the rest of the
 * line is not read), or -errno.
 */
int hi_lines_next(struct hi_lines *l);

void hi_lines_close(struct hi_lines *l);

#endif
