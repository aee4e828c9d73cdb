/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading files the daemon does not control (configuration, drop-ins, state
 * files, secrets): a FIFO, a device or a directory where a file is expected
 * must be an error, not a read that blocks the event loop forever, and a
 * file must not be larger than the caller can hold. Every such read goes
 * through dt_file_open(): opened O_NONBLOCK (an open of a FIFO does not
 * wait for a writer), fstat'd, refused unless a regular file, size checked.
 * No logging: callers name the path with dt_file_strerror().
 *
 * Writing the daemon's own files (the state directory) goes through the
 * write side below, so there is one way to write one: opened O_NONBLOCK |
 * O_CLOEXEC | O_NOFOLLOW, refused unless a regular file (a FIFO planted
 * where a journal goes neither blocks nor takes the data), written whole,
 * synced; a snapshot replaces its file atomically (temporary file, fsync,
 * rename, fsync of the directory).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

enum {
	DT_FILE_NOFOLLOW = 1 << 0, /* a symlink is refused (ELOOP) */
	DT_FILE_DEVNULL = 1 << 1, /* /dev/null reads as an empty file (a mask, systemd style) */
	DT_FILE_APPEND = 1 << 2,  /* dt_file_open_write: O_APPEND */
	DT_FILE_TRUNC = 1 << 3,	  /* dt_file_open_write: O_TRUNC */
};

/* Not a regular file (FIFO, socket, device, directory). */
#define DT_FILE_ENOTREG EBADFD

/*
 * Open path for reading: -DT_FILE_ENOTREG if it is not a regular file,
 * -EFBIG if larger than max_bytes, else -errno of open/fstat. The fd is
 * CLOEXEC and blocking again once checked. ret_st may be NULL.
 */
int dt_file_open(const char *path, unsigned flags, uint64_t max_bytes, struct stat *ret_st);
/* The same as a stdio stream ("re"). */
int dt_file_fopen(const char *path, unsigned flags, uint64_t max_bytes, FILE **ret);
/*
 * The whole file, NUL-terminated, at most max_bytes (-EFBIG beyond, also
 * when it grows while read). *ret_len (may be NULL) excludes the NUL.
 */
int dt_file_read(const char *path, unsigned flags, size_t max_bytes, char **ret,
		 size_t *ret_len);
/* strerror(-r), with "not a regular file" and "file too large" for the above. */
const char *dt_file_strerror(int r);

/*
 * Open path for writing, created 0600 if missing, never through a symlink
 * (-ELOOP): -DT_FILE_ENOTREG if it is not a regular file, else -errno.
 * flags: DT_FILE_APPEND, DT_FILE_TRUNC. The fd is CLOEXEC and blocking.
 */
int dt_file_open_write(const char *path, unsigned flags);
/* All n bytes (EINTR and short writes retried), or -errno. */
int dt_file_write_all(int fd, const void *p, size_t n);
/*
 * Append n bytes to path and fdatasync: -EDQUOT (nothing written) when the
 * file would grow beyond max_bytes; a failed write may leave a torn tail.
 */
int dt_file_append(const char *path, const void *p, size_t n, uint64_t max_bytes);
/*
 * Replace path by n bytes atomically: path.tmp written, fsync'd, renamed
 * over path, the directory fsync'd. A crash leaves the old file or the new
 * one; a failure removes path.tmp and leaves path as it was.
 */
int dt_file_replace(const char *path, const void *p, size_t n);
/* Empty path (created if missing). */
int dt_file_truncate(const char *path);
/* fsync the directory path is in. */
int dt_file_fsync_dir(const char *path);
/* The size of path (lstat), 0 when it does not exist, or -errno. */
int64_t dt_file_size(const char *path);
