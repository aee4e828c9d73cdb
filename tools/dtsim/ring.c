/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A simulated KVM dirty ring: an array of struct kvm_dirty_gfn in a memfd,
 * exactly as KVM exposes it through the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET.
 * The VMM side owns dirty_index (push) and reset_index (reset); the daemon
 * owns the fetch index and only ever turns DIRTY into DIRTY|RESET.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dt_util.h"
#include "dtsim.h"

int dtsim_ring_new(uint32_t vcpu, uint32_t entries, struct dtsim_ring **ret)
{
	_cleanup_close_ int fd = -1;
	size_t bytes = (size_t)entries * sizeof(struct dt_ring_entry);
	struct dtsim_ring *r;
	char name[32];
	void *p;

	if (entries < 64 || (entries & (entries - 1)))
		return -EINVAL;
	snprintf(name, sizeof(name), "dtsim-ring-%u", vcpu);
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0)
		return -errno;
	/* the daemon refuses a ring it could lose under its feet */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r = calloc(1, sizeof(*r));
	if (!r) {
		munmap(p, bytes);
		return -ENOMEM;
	}
	r->gfns = p;
	r->entries = entries;
	r->fd = TAKE_FD(fd);
	*ret = r;
	return 0;
}

struct dtsim_ring *dtsim_ring_free(struct dtsim_ring *r)
{
	if (!r)
		return NULL;
	munmap(r->gfns, (size_t)r->entries * sizeof(struct dt_ring_entry));
	if (r->fd >= 0)
		close(r->fd);
	free(r);
	return NULL;
}

void dtsim_ring_bug(const struct dtsim_ring *r, const char *what)
{
	fprintf(stderr, "dtsim: BUG: ring of %u entries (dirty %u, reset %u): %s\n", r->entries,
		r->dirty_index, r->reset_index, what);
	abort();
}

uint32_t dtsim_ring_fetch_index(const struct dtsim_ring *r)
{
	uint32_t i = r->reset_index;

	while (i != r->dirty_index) {
		const struct dt_ring_entry *e = &r->gfns[i & (r->entries - 1)];

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DT_RING_RESET))
			break;
		i++;
	}
	return i;
}
