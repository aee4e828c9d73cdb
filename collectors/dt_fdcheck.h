/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Is an fd from an untrusted VMM safe to mmap for `len` bytes? */
#pragma once

#include <stdint.h>

#include "dt_collector.h"

enum {
	DT_FD_KVM_VCPU = 1 << 0, /* anon inode kvm-vcpu:N (cannot shrink) */
	DT_FD_MEMFD_NO_SHRINK = 1 << 1, /* memfd sealed F_SEAL_SHRINK */
	DT_FD_MEMFD_NO_GROW = 1 << 2, /* ... and F_SEAL_GROW */
};

/*
 * >= 0 if fd is one of the accepted kinds: DT_FD_KVM_VCPU for a vCPU fd
 * (whose length only a probe of the mapping tells), 0 for a memfd that
 * covers len bytes; otherwise -EPERM (wrong kind or missing seal) or
 * -EINVAL (too small) with a reason.
 */
int dt_fd_check_mappable(int fd, uint64_t len, unsigned accept, char reason[DT_REASON_LEN]);

/*
 * Touch every page of a fresh mapping through the kernel (process_vm_readv
 * on ourselves): a page the fd cannot back returns -EFAULT here instead of
 * a SIGBUS later on the harvest path (a vCPU fd mapped past its ring).
 * Only for vCPU fds: a sealed memfd's size is checked by fstat, and probing
 * it would allocate every page the VMM left a hole (a shared read faults
 * shmem pages in).
 */
int dt_map_probe(const void *addr, size_t len);

/*
 * Which pages of a shared memfd mapping hold data: vec[i] bit 0 for page i
 * of [addr, addr + len), addr page aligned. A hole, or a page only
 * fallocated, reads as zero and is reported absent, so the caller can skip
 * it instead of reading it (a read through a shared mapping allocates
 * it). Swapped-out pages are asked back first (MADV_WILLNEED, which for
 * shmem allocates no hole) and are present once in. Not for hugetlbfs or
 * vCPU fds: mincore() there sees only our page tables. 0 or -errno.
 */
int dt_map_resident(void *addr, size_t len, unsigned char *vec);

/*
 * The unit fd's mappings come in: the page size, or for a hugetlbfs file (a
 * MFD_HUGETLB memfd) its huge page size. The kernel rounds such a mapping's
 * length up to it and munmap() of a shorter length fails (EINVAL), so a
 * mapping is made and unmapped with the rounded length, at an offset aligned
 * to it.
 */
size_t dt_fd_map_granule(int fd);

/* len rounded up to the granule (a power of two). */
static inline size_t dt_map_length(uint64_t len, size_t granule)
{
	return (size_t)((len + granule - 1) & ~((uint64_t)granule - 1));
}
