/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Collectors: read a VM's dirty pages from shared memory into its
 * statistics. One ops table per collection mode (dirty ring, shared bitmap,
 * both); the daemon drives them and talks to the VMM. Library code: no
 * logging, no I/O besides mmap of the fds it is given; every refusal fills
 * a human-readable reason.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "dt_slots.h"
#include "dt_stats.h"

#define DT_REASON_LEN 112

/* One vCPU's dirty ring, mapped from a KVM vCPU fd or a sealed memfd. */
struct dt_ring {
	struct dt_ring_entry *entries;
	void *map;
	size_t map_len;
	uint32_t size; /* entries, power of two */
	uint32_t fetch; /* free-running index of the next entry to read */
	uint32_t vcpu;
	uint64_t harvested; /* valid entries taken */
	uint64_t invalid; /* entries dropped: unknown slot or offset out of range */
	uint64_t resyncs; /* times our index was found out of step with the producer */
	unsigned char *resident; /* memfd rings: which pages hold data, for a resync */
	uint32_t page_entries; /* entries per page of it */
};

/*
 * Map a ring. Accepts a KVM vCPU fd (anon inode "kvm-vcpu:N") or a memfd
 * sealed against shrinking that is large enough; refuses anything else
 * (a file that can shrink under our mapping would SIGBUS the daemon).
 */
int dt_ring_map(int fd, uint64_t offset, uint32_t entries, uint32_t fetch_index, uint32_t vcpu,
		struct dt_ring **ret, char reason[DT_REASON_LEN]);
struct dt_ring *dt_ring_unmap(struct dt_ring *r);
/*
 * Harvest every entry the producer has published since the last call (at
 * most one ring's worth): validate, add to stats, mark RESET. Returns the
 * number of entries consumed (valid + invalid).
 */
uint32_t dt_ring_harvest(struct dt_ring *r, struct dt_slot_table *slots, struct dt_stats *stats);
/*
 * After a harvest on RING_FULL: if published entries are left (our index
 * is not the producer's, e.g. a VMM that passed a stale fetch_index), take
 * every published entry of the producer's run, move our index to its end
 * (the producer's index) and return the entries consumed (valid +
 * invalid); 0 when in step. Costs a scan of the ring, once per RING_FULL.
 */
uint32_t dt_ring_resync(struct dt_ring *r, struct dt_slot_table *slots, struct dt_stats *stats);

/*
 * One slot's shared dirty bitmap, a memfd sealed against shrink and grow.
 * Only the pages of it that hold data are read (see dt_bitmap_consume).
 */
struct dt_bitmap {
	uint64_t *words;
	void *map;
	size_t map_len;
	uint64_t nwords;
	uint64_t page_words; /* words per page the kernel tells residency of; 0: read all */
	uint64_t pages;
	uint64_t last_mask; /* valid bits of the last word */
	uint32_t slot;
	uint32_t base; /* dense index of the slot's page 0 */
	uint64_t consumed; /* pages taken */
};
int dt_bitmap_map(int fd, uint64_t offset, const struct dt_slot *slot, struct dt_bitmap **ret,
		  char reason[DT_REASON_LEN]);
struct dt_bitmap *dt_bitmap_unmap(struct dt_bitmap *b);
/*
 * Take every set bit (atomic exchange per non-zero word). Returns pages taken.
 * Reads only the bitmap's pages that hold data (mincore): a hole, or a page
 * allocated and never written, is zero by definition, and reading it through
 * the shared mapping would allocate it, so a sparse bitmap costs what the
 * VMM spent, not what it declared.
 */
uint64_t dt_bitmap_consume(struct dt_bitmap *b, struct dt_stats *stats);
/* The same for words [w0, w1) only (clipped to the bitmap). */
uint64_t dt_bitmap_consume_range(struct dt_bitmap *b, uint64_t w0, uint64_t w1,
				 struct dt_stats *stats);

/* A VM's collection state. */
struct dt_collector {
	const struct dt_collector_ops *ops;
	struct dt_slot_table slots;
	struct dt_ring **rings; /* [nvcpus], NULL where none */
	uint32_t nvcpus;
	struct dt_bitmap **bitmaps; /* [nbitmaps] */
	uint32_t nbitmaps;
	struct dt_stats *stats; /* not owned */
	uint64_t ring_entries; /* counters for the API */
	uint64_t invalid_entries;
	uint64_t bitmap_pages;
	uint64_t ring_resyncs;
	/* A consume split in steps: the next word to take, of bitmap consume_map. */
	bool consuming;
	uint32_t consume_map;
	uint64_t consume_word;
};

struct dt_collector_ops {
	const char *name; /* "ring", "bitmap", "ring+bitmap" */
	uint32_t mode; /* enum dt_mode */
	/* Take a resource from the VMM; NULL when the mode has none (EOPNOTSUPP). */
	int (*add_ring)(struct dt_collector *c, int fd, const struct dt_msg_add_ring *m,
			char reason[DT_REASON_LEN]);
	int (*add_bitmap)(struct dt_collector *c, int fd, const struct dt_msg_add_bitmap *m,
			  char reason[DT_REASON_LEN]);
	/* Read what needs no help from the VMM (rings); NULL if nothing. */
	uint64_t (*harvest)(struct dt_collector *c);
	/* Read what the VMM synced on request (bitmaps); NULL: no sync needed. */
	uint64_t (*consume)(struct dt_collector *c);
};

/* The ops for a mode, or NULL. */
const struct dt_collector_ops *dt_collector_ops_for(uint32_t mode);

int dt_collector_init(struct dt_collector *c, uint32_t mode, uint32_t nvcpus,
		      struct dt_stats *stats);
/* Unmap everything and free the slot table. */
void dt_collector_done(struct dt_collector *c);
/* The VMM went away: final harvest, unmap rings and bitmaps, retire slots. */
void dt_collector_release(struct dt_collector *c);
/* Harvest one vCPU's ring at once (RING_FULL). Returns entries, or -errno. */
int dt_collector_harvest_vcpu(struct dt_collector *c, uint32_t vcpu);
/*
 * Consume the bitmaps in bounded steps, so a huge guest's bitmaps do not
 * hold the caller for one whole pass: begin starts a pass (from the first
 * word of the first bitmap), each step takes up to `words` words (a whole
 * page of the bitmap at least) and returns 1 while words are left, 0 when
 * the pass is complete (or none is in progress). A bit set before its word
 * is taken is in the pass; the words are read in order, each once. A
 * bitmap added during a pass is in it; consume, release and remove_slot
 * complete a pass in progress first.
 */
#define DT_COLLECTOR_CONSUME_STEP_WORDS (64u * 1024) /* the daemon's step: 512 KiB of bitmap */
void dt_collector_consume_begin(struct dt_collector *c);
int dt_collector_consume_step(struct dt_collector *c, uint64_t words);
/* Consume a slot's bitmap one last time, unmap it and remove the slot. */
int dt_collector_remove_slot(struct dt_collector *c, uint32_t slot);
