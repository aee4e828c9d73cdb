/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The page-level write trace (--trace FILE), input for a pre-copy simulator.
 *
 * Format: no header, no footer; a flat sequence of 16-byte records, one per
 * write (vCPU and DMA writes alike, whether or not the write was logged by
 * dirty tracking), in the order dtsim made them:
 *
 *	struct { uint64_t monotonic_us; uint64_t gpa_page; }   little-endian
 *
 * monotonic_us is CLOCK_MONOTONIC in microseconds when the write was made
 * (writes made in the same loop tick share a timestamp; the sequence is
 * non-decreasing). gpa_page is the guest-physical address divided by the
 * page size (the truth file has "page_size" and the slot layout). The file
 * size is 16 × the truth file's "writes" once dtsim has exited cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "dt_util.h"
#include "dtsim.h"

#define TRACE_BUF_RECS 65536 /* 1 MiB */

int dtsim_trace_open(const char *path, struct dtsim_trace **ret)
{
	struct dtsim_trace *t;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	t = calloc(1, sizeof(*t));
	if (t)
		t->buf = calloc(TRACE_BUF_RECS, sizeof(*t->buf));
	if (!t || !t->buf) {
		free(t);
		close(fd);
		return -ENOMEM;
	}
	t->fd = fd;
	t->cap = TRACE_BUF_RECS;
	*ret = t;
	return 0;
}

int dtsim_trace_flush(struct dtsim_trace *t)
{
	const char *p = (const char *)t->buf;
	size_t len = t->n * sizeof(*t->buf);

	t->n = 0;
	while (len > 0 && !t->error) {
		ssize_t n = write(t->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			t->error = -errno; /* keep running; reported at exit */
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	return t->error;
}

int dtsim_trace_close(struct dtsim_trace *t)
{
	int r;

	if (!t)
		return 0;
	r = dtsim_trace_flush(t);
	if (close(t->fd) < 0 && r == 0)
		r = -errno;
	free(t->buf);
	free(t);
	return r;
}
