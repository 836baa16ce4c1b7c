/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the file parsers of diff, trend and plot: a
 * snapshot (one JSON document) or a series (JSON Lines) read by
 * hi_series_read, with and without the per-arena figures.  The file comes
 * from a memfd, so that the same path code (line caps, the unfinished last
 * line) runs as for a file on disk.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "series.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hi_series s;
	struct hi_series_err err;
	char path[64];
	int fd;

	fd = memfd_create("fuzz_series", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (int keep = 0; keep <= 1; keep++) {
		if (hi_series_read(path, keep, &s, &err) == 0)
			hi_series_free(&s);
	}
	close(fd);
	return 0;
}
