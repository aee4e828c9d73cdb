/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
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

int dt_file_open_write(const char *path, unsigned flags)
{
	int oflags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int fl;

	if (flags & DT_FILE_APPEND)
		oflags |= O_APPEND;
	/* Checked before it is truncated: O_TRUNC on a device is not harmless. */
	fd = open(path, oflags, 0600);
	if (fd < 0)
		return errno == ENXIO ? -DT_FILE_ENOTREG : -errno; /* ENXIO: a FIFO, no reader */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -DT_FILE_ENOTREG;
	if ((flags & DT_FILE_TRUNC) && ftruncate(fd, 0) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int dt_file_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, b + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		done += (size_t)w;
	}
	return 0;
}

int dt_file_append(const char *path, const void *p, size_t n, uint64_t max_bytes)
{
	_cleanup_close_ int fd = dt_file_open_write(path, DT_FILE_APPEND);
	struct stat st;
	int r;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max_bytes || n > max_bytes - (uint64_t)st.st_size)
		return -EDQUOT;
	r = dt_file_write_all(fd, p, n);
	if (r >= 0 && fdatasync(fd) < 0)
		r = -errno;
	return r;
}

int dt_file_fsync_dir(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	fd = open(slash ? (slash == dir ? "/" : dir) : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

int dt_file_replace(const char *path, const void *p, size_t n)
{
	_cleanup_free_ char *tmp = NULL;
	int fd, r;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	fd = dt_file_open_write(tmp, DT_FILE_TRUNC);
	if (fd < 0)
		return fd; /* a non-regular tmp is left: not ours to remove */
	r = dt_file_write_all(fd, p, n);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	(void)dt_file_fsync_dir(path);
	return 0;
}

int dt_file_truncate(const char *path)
{
	int fd = dt_file_open_write(path, DT_FILE_TRUNC);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int64_t dt_file_size(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return st.st_size;
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
