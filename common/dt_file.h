/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading files the daemon does not control (configuration, drop-ins, state
 * files, secrets): a FIFO, a device or a directory where a file is expected
 * must be an error, not a read that blocks the event loop forever, and a
 * file must not be larger than the caller can hold. Every such read goes
 * through dt_file_open(): opened O_NONBLOCK (an open of a FIFO does not
 * wait for a writer), fstat'd, refused unless a regular file, size checked.
 * No logging: callers name the path with dt_file_strerror().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

enum {
	DT_FILE_NOFOLLOW = 1 << 0, /* a symlink is refused (ELOOP) */
	DT_FILE_DEVNULL = 1 << 1, /* /dev/null reads as an empty file (a mask, systemd style) */
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
