/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dt_file.h"
#include "dt_util.h"

static bool is_dev_null(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3);
}

int dt_file_open(const char *path, unsigned flags, uint64_t max_bytes, struct stat *ret_st)
{
	int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int fl;

	if (flags & DT_FILE_NOFOLLOW)
		oflags |= O_NOFOLLOW;
	fd = open(path, oflags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !((flags & DT_FILE_DEVNULL) && is_dev_null(&st)))
		return -DT_FILE_ENOTREG;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes)
		return -EFBIG;
	/* Regular files ignore O_NONBLOCK; cleared all the same for the reader. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	if (ret_st)
		*ret_st = st;
	return TAKE_FD(fd);
}

int dt_file_fopen(const char *path, unsigned flags, uint64_t max_bytes, FILE **ret)
{
	int fd = dt_file_open(path, flags, max_bytes, NULL);
	FILE *f;

	if (fd < 0)
		return fd;
	f = fdopen(fd, "re");
	if (!f) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret = f;
	return 0;
}

int dt_file_read(const char *path, unsigned flags, size_t max_bytes, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0, cap;

	if (max_bytes >= SIZE_MAX - 1)
		return -EINVAL;
	fd = dt_file_open(path, flags, max_bytes, &st);
	if (fd < 0)
		return fd;
	/* The size as of the fstat, plus room to notice that it grew. */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 1;
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap > max_bytes)
				return -EFBIG;
			cap = DT_MIN(cap * 2 + 4096, max_bytes + 1);
			nb = realloc(buf, cap + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max_bytes)
		return -EFBIG;
	buf[len] = 0;
	if (ret_len)
		*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

const char *dt_file_strerror(int r)
{
	if (r == -DT_FILE_ENOTREG)
		return "not a regular file";
	if (r == -EFBIG)
		return "file too large";
	if (r == -ELOOP)
		return "a symbolic link (not followed)";
	return strerror(r < 0 ? -r : r);
}
