/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/dt_file's write side on a real directory: a FIFO, a symlink or a
 * directory where a state file goes is refused without blocking (a regular
 * file is the control that works), an append beyond its bound writes
 * nothing, and a replace is whole or not at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dt_file.h"
#include "dt_test.h"
#include "dt_util.h"

static char dir[] = "/tmp/dt-test-file.XXXXXX";

static char *path_of(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static void test_open_write_refuses(void)
{
	char fifo[256], link[256], reg[256];
	int fd;

	snprintf(fifo, sizeof(fifo), "%s", path_of("fifo"));
	snprintf(link, sizeof(link), "%s", path_of("link"));
	snprintf(reg, sizeof(reg), "%s", path_of("reg"));
	CHECK_EQ(mkfifo(fifo, 0600), 0);
	CHECK_EQ(symlink(reg, link), 0);
	/* The alarm fails the test instead of hanging it if an open blocks. */
	alarm(10);
	CHECK_EQ(dt_file_open_write(fifo, DT_FILE_APPEND), -DT_FILE_ENOTREG);
	CHECK_EQ(dt_file_append(fifo, "x", 1, UINT64_MAX), -DT_FILE_ENOTREG);
	CHECK_EQ(dt_file_truncate(fifo), -DT_FILE_ENOTREG);
	CHECK_EQ(dt_file_open_write(link, 0), -ELOOP);
	CHECK_EQ(dt_file_open_write(dir, 0), -EISDIR);
	alarm(0);
	/* The control: a regular file opens, CLOEXEC and blocking. */
	fd = dt_file_open_write(reg, DT_FILE_APPEND);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
		close(fd);
	}
	CHECK_EQ(access(link, F_OK), 0); /* the link is still there, its target created */
	unlink(fifo);
	unlink(link);
	unlink(reg);
}

static void test_append_bound(void)
{
	char *p = path_of("journal");

	CHECK_EQ(dt_file_append(p, "abcd", 4, 8), 0);
	CHECK_EQ(dt_file_append(p, "efgh", 4, 8), 0);
	CHECK_EQ(dt_file_size(p), 8);
	CHECK_EQ(dt_file_append(p, "i", 1, 8), -EDQUOT);
	CHECK_EQ(dt_file_size(p), 8); /* nothing written */
	CHECK_EQ(dt_file_truncate(p), 0);
	CHECK_EQ(dt_file_size(p), 0);
	CHECK_EQ(dt_file_size(path_of("none")), 0);
	unlink(p);
}

static void test_replace(void)
{
	char p[256], tmp[300], *data = NULL;
	size_t len = 0;

	snprintf(p, sizeof(p), "%s", path_of("state"));
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	CHECK_EQ(dt_file_replace(p, "old", 3), 0);
	CHECK_EQ(dt_file_replace(p, "newer", 5), 0);
	CHECK_EQ(dt_file_read(p, DT_FILE_NOFOLLOW, 100, &data, &len), 0);
	CHECK_EQ(len, 5);
	CHECK(data && memcmp(data, "newer", 5) == 0);
	free(data);
	CHECK_EQ(access(tmp, F_OK), -1);
	/* A FIFO where the temporary file goes: refused, the old file stands. */
	CHECK_EQ(mkfifo(tmp, 0600), 0);
	alarm(10);
	CHECK_EQ(dt_file_replace(p, "lost", 4), -DT_FILE_ENOTREG);
	alarm(0);
	CHECK_EQ(dt_file_size(p), 5);
	unlink(tmp);
	unlink(p);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_open_write_refuses);
	RUN(test_append_bound);
	RUN(test_replace);
	rmdir(dir);
	TEST_EXIT();
}
