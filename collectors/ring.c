/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVM dirty ring collector. The ring lives in the VMM's vCPU fd (or a
 * simulated VMM's memfd); we map it and follow KVM's state machine: an
 * entry is published by a store-release of DIRTY into its flags; we read
 * flags with load-acquire, take slot and offset, and hand the entry back
 * with a store-release of RESET. The VMM's KVM_RESET_DIRTY_RINGS then
 * re-protects exactly the entries we marked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dt_collector.h"
#include "dt_fdcheck.h"

int dt_ring_map(int fd, uint64_t offset, uint32_t entries, uint32_t fetch_index, uint32_t vcpu,
		struct dt_ring **ret, char reason[DT_REASON_LEN])
{
	uint64_t len = (uint64_t)entries * sizeof(struct dt_ring_entry);
	size_t granule, map_len;
	struct dt_ring *r;
	void *map;
	int r_;

	if (entries == 0 || (entries & (entries - 1))) {
		snprintf(reason, DT_REASON_LEN, "ring entries %u is not a power of two", entries);
		return -EINVAL;
	}
	granule = dt_fd_map_granule(fd);
	if (offset % granule) {
		snprintf(reason, DT_REASON_LEN, "ring offset %llu is not aligned to the fd's %zu-byte pages",
			 (unsigned long long)offset, granule);
		return -EINVAL;
	}
	/* mmap takes a signed off_t: offset + len must not wrap it either. */
	if (offset > (uint64_t)INT64_MAX - len) {
		snprintf(reason, DT_REASON_LEN, "ring offset %llu overflows",
			 (unsigned long long)offset);
		return -EINVAL;
	}
	r_ = dt_fd_check_mappable(fd, offset + len, DT_FD_KVM_VCPU | DT_FD_MEMFD_NO_SHRINK, reason);
	if (r_ < 0)
		return r_;
	map_len = dt_map_length(len, granule);
	map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		r_ = -errno;
		snprintf(reason, DT_REASON_LEN, "cannot map ring of vCPU %u: %s", vcpu,
			 strerror(errno));
		return r_;
	}
	r_ = dt_map_probe(map, len);
	if (r_ < 0) {
		munmap(map, map_len);
		snprintf(reason, DT_REASON_LEN,
			 "ring of vCPU %u: %u entries at offset %llu are not all backed by the fd",
			 vcpu, entries, (unsigned long long)offset);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		munmap(map, map_len);
		snprintf(reason, DT_REASON_LEN, "out of memory");
		return -ENOMEM;
	}
	r->map = map;
	r->map_len = map_len;
	r->entries = map;
	r->size = entries;
	r->fetch = fetch_index;
	r->vcpu = vcpu;
	*ret = r;
	return 0;
}

struct dt_ring *dt_ring_unmap(struct dt_ring *r)
{
	if (r) {
		munmap(r->map, r->map_len);
		free(r);
	}
	return NULL;
}

uint32_t dt_ring_harvest(struct dt_ring *r, struct dt_slot_table *slots, struct dt_stats *stats)
{
	const uint32_t mask = r->size - 1;
	uint32_t n;

	/* Bounded: a producer that keeps publishing cannot keep us here. */
	for (n = 0; n < r->size; n++) {
		struct dt_ring_entry *e = &r->entries[(r->fetch + n) & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		const struct dt_slot *s;
		uint64_t offset;

		if ((flags & (DT_RING_DIRTY | DT_RING_RESET)) != DT_RING_DIRTY)
			break;
		/* Read each field once: the VMM may rewrite them under us. */
		uint32_t slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
		offset = __atomic_load_n(&e->offset, __ATOMIC_RELAXED);
		s = dt_slots_lookup(slots, slot);
		if (s && offset < s->pages) {
			dt_stats_add_vcpu(stats, r->vcpu, s->base + (uint32_t)offset);
			r->harvested++;
		} else {
			r->invalid++;
		}
		__atomic_store_n(&e->flags, DT_RING_RESET, __ATOMIC_RELEASE);
	}
	r->fetch += n;
	return n;
}

bool dt_ring_resync(struct dt_ring *r)
{
	const uint32_t mask = r->size - 1;
	uint32_t at = r->fetch & mask;
	bool prev_dirty;

	if ((__atomic_load_n(&r->entries[at].flags, __ATOMIC_ACQUIRE) &
	     (DT_RING_DIRTY | DT_RING_RESET)) == DT_RING_DIRTY)
		return false;
	/*
	 * Entries are published strictly in order, so the oldest unharvested
	 * one is the first DIRTY entry whose predecessor is not DIRTY. If the
	 * entry at our index is not DIRTY while such an entry exists, our
	 * index is not the producer's (a VMM that passed a stale fetch_index).
	 */
	prev_dirty = (__atomic_load_n(&r->entries[mask].flags, __ATOMIC_ACQUIRE) &
		      (DT_RING_DIRTY | DT_RING_RESET)) == DT_RING_DIRTY;
	for (uint32_t i = 0; i < r->size; i++) {
		bool dirty = (__atomic_load_n(&r->entries[i].flags, __ATOMIC_ACQUIRE) &
			      (DT_RING_DIRTY | DT_RING_RESET)) == DT_RING_DIRTY;

		if (dirty && !prev_dirty) {
			r->fetch += (i - at) & mask;
			r->resyncs++;
			return true;
		}
		prev_dirty = dirty;
	}
	return false;
}
