/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "dt_fdcheck.h"

static int fd_is_kvm_vcpu(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	return strncmp(target, "anon_inode:kvm-vcpu:", 20) == 0;
}

int dt_fd_check_mappable(int fd, uint64_t len, unsigned accept, char reason[DT_REASON_LEN])
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0) {
		snprintf(reason, DT_REASON_LEN, "cannot stat fd: %s", strerror(errno));
		return -EBADF;
	}
	if ((accept & DT_FD_KVM_VCPU) && fd_is_kvm_vcpu(fd) > 0)
		return DT_FD_KVM_VCPU; /* the ring cannot shrink; its length is probed */

	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !S_ISREG(st.st_mode)) {
		snprintf(reason, DT_REASON_LEN, "fd is not a %smemfd",
			 (accept & DT_FD_KVM_VCPU) ? "KVM vCPU fd or a sealed " : "sealed ");
		return -EPERM;
	}
	if (!(seals & F_SEAL_SHRINK)) {
		snprintf(reason, DT_REASON_LEN, "memfd is not sealed against shrinking (F_SEAL_SHRINK)");
		return -EPERM;
	}
	if ((accept & DT_FD_MEMFD_NO_GROW) && !(seals & F_SEAL_GROW)) {
		snprintf(reason, DT_REASON_LEN, "memfd is not sealed against growing (F_SEAL_GROW)");
		return -EPERM;
	}
	if ((uint64_t)st.st_size < len) {
		snprintf(reason, DT_REASON_LEN, "memfd holds %lld bytes, %llu needed",
			 (long long)st.st_size, (unsigned long long)len);
		return -EINVAL;
	}
	return 0;
}

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

size_t dt_fd_map_granule(int fd)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct statfs sf;

	if (fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == HUGETLBFS_MAGIC &&
	    sf.f_bsize > 0 && (size_t)sf.f_bsize > page &&
	    ((size_t)sf.f_bsize & ((size_t)sf.f_bsize - 1)) == 0)
		return (size_t)sf.f_bsize;
	return page;
}

int dt_map_probe(const void *addr, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	char byte;

	for (size_t off = 0; off < len; off += (size_t)page) {
		struct iovec local = { .iov_base = &byte, .iov_len = 1 };
		struct iovec remote = { .iov_base = (char *)addr + off, .iov_len = 1 };

		if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 1)
			return -EFAULT;
	}
	return 0;
}

int dt_map_resident(void *addr, size_t len, unsigned char *vec)
{
	(void)madvise(addr, len, MADV_WILLNEED);
	return mincore(addr, len, vec) < 0 ? -errno : 0;
}
