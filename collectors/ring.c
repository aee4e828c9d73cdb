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
	int kind, r_;

	if (entries == 0 || (entries & (entries - 1))) {
		snprintf(reason, DT_REASON_LEN, "ring entries %u is not a power of two", entries);
		return -EINVAL;
	}
	granule = dt_fd_map_granule(fd);
	if (offset % granule) {
		snprintf(reason, DT_REASON_LEN,
			 "ring offset %llu is not aligned to the fd's %zu-byte pages",
			 (unsigned long long)offset, granule);
		return -EINVAL;
	}
	/* mmap takes a signed off_t: offset + len must not wrap it either. */
	if (offset > (uint64_t)INT64_MAX - len) {
		snprintf(reason, DT_REASON_LEN, "ring offset %llu overflows",
			 (unsigned long long)offset);
		return -EINVAL;
	}
	kind = dt_fd_check_mappable(fd, offset + len, DT_FD_KVM_VCPU | DT_FD_MEMFD_NO_SHRINK,
				    reason);
	if (kind < 0)
		return kind;
	map_len = dt_map_length(len, granule);
	map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		r_ = -errno;
		snprintf(reason, DT_REASON_LEN, "cannot map ring of vCPU %u: %s", vcpu,
			 strerror(errno));
		return r_;
	}
	if (kind == DT_FD_KVM_VCPU && dt_map_probe(map, len) < 0) {
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
	/*
	 * A memfd ring may be sparse: a resync, which reads the whole ring,
	 * skips the pages the VMM never wrote (all-zero entries) instead of
	 * faulting them in. vCPU fds and hugetlbfs: mincore() sees only our
	 * page tables there; the whole ring is read.
	 */
	if (kind != DT_FD_KVM_VCPU && granule == (size_t)sysconf(_SC_PAGESIZE)) {
		r->page_entries = (uint32_t)(granule / sizeof(struct dt_ring_entry));
		r->resident = calloc((entries + r->page_entries - 1) / r->page_entries, 1);
		if (!r->resident) {
			free(r);
			munmap(map, map_len);
			snprintf(reason, DT_REASON_LEN, "out of memory");
			return -ENOMEM;
		}
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
		free(r->resident);
		free(r);
	}
	return NULL;
}

/* Take one published entry: validate, count, hand it back (RESET). */
static void take(struct dt_ring *r, struct dt_ring_entry *e, struct dt_slot_table *slots,
		 struct dt_stats *stats)
{
	/* Read each field once: the VMM may rewrite them under us. */
	uint32_t slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
	uint64_t offset = __atomic_load_n(&e->offset, __ATOMIC_RELAXED);
	const struct dt_slot *s = dt_slots_lookup(slots, slot);

	if (s && offset < s->pages) {
		dt_stats_add_vcpu(stats, r->vcpu, s->base + (uint32_t)offset);
		r->harvested++;
	} else {
		r->invalid++;
	}
	__atomic_store_n(&e->flags, DT_RING_RESET, __ATOMIC_RELEASE);
}

static uint32_t flags_at(const struct dt_ring *r, uint32_t i)
{
	return __atomic_load_n(&r->entries[i & (r->size - 1)].flags, __ATOMIC_ACQUIRE) &
	       (DT_RING_DIRTY | DT_RING_RESET);
}

uint32_t dt_ring_harvest(struct dt_ring *r, struct dt_slot_table *slots, struct dt_stats *stats)
{
	uint32_t n;

	/* Bounded: a producer that keeps publishing cannot keep us here. */
	for (n = 0; n < r->size; n++) {
		if (flags_at(r, r->fetch + n) != DT_RING_DIRTY)
			break;
		take(r, &r->entries[(r->fetch + n) & (r->size - 1)], slots, stats);
	}
	r->fetch += n;
	return n;
}

/* flags_at for a resync: an entry in a page that holds no data is 0, unread. */
static uint32_t resync_flags(const struct dt_ring *r, uint32_t i)
{
	if (r->resident && !(r->resident[(i & (r->size - 1)) / r->page_entries] & 1))
		return 0;
	return flags_at(r, i);
}

uint32_t dt_ring_resync(struct dt_ring *r, struct dt_slot_table *slots, struct dt_stats *stats)
{
	const uint32_t mask = r->size - 1;
	uint32_t start = UINT32_MAX, i, n = 0, end;
	bool left = false;

	if (r->resident &&
	    dt_map_resident(r->map, (size_t)r->size * sizeof(struct dt_ring_entry), r->resident) < 0)
		memset(r->resident, 1, (r->size + r->page_entries - 1) / r->page_entries);
	/* In step when no published entry is left after the harvest. */
	for (i = 0; i < r->size && !left; i++)
		left = resync_flags(r, i) == DT_RING_DIRTY;
	if (!left)
		return 0;
	/*
	 * KVM keeps the entries from its reset index to its dirty index
	 * non-zero (DIRTY, or RESET once harvested) and every other one 0, and
	 * never fills the ring: the producer's run starts at the non-zero
	 * entry after a zero one. Take every DIRTY entry of the run, skip the
	 * ones we took before (RESET), and continue where the run ends, which
	 * is the producer's index: the VMM's reset then frees the whole run
	 * and the next entry it publishes is the one we read next.
	 */
	for (i = 0; i < r->size; i++)
		if (resync_flags(r, i) != 0 && resync_flags(r, i - 1) == 0) {
			start = i;
			break;
		}
	if (start == UINT32_MAX)
		return 0; /* no zero entry: not a ring KVM keeps; leave it to the tick */
	for (end = start; end - start < r->size && resync_flags(r, end) != 0; end++) {
		if (resync_flags(r, end) == DT_RING_DIRTY) {
			take(r, &r->entries[end & mask], slots, stats);
			n++;
		}
	}
	r->fetch += ((end & mask) - (r->fetch & mask)) & mask;
	r->resyncs++;
	return n;
}
