/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals shared by the files of stats/ (not for the daemon). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "dt_lastidx.h"
#include "dt_open.h"
#include "dt_roaring.h"
#include "dt_stats.h"

struct dt_vcpu_stats {
	struct dt_open open;	/* this vCPU's pages in the open epoch */
	struct dt_open closing; /* and in the epoch being closed */
	roaring_bitmap_t *set;	/* close in progress: the same as a set */
	struct dt_lastidx *ls;
	uint64_t entries, closing_entries;
};

/* A close in progress (dt_close.c), in this order. */
enum dt_close_phase {
	DT_CLOSE_IDLE,
	DT_CLOSE_BUILD,	  /* the sealed open sets become roaring sets */
	DT_CLOSE_RESERVE, /* room in each index (no count changes) */
	DT_CLOSE_UPDATE,  /* counts move: index queries complete the close first */
	DT_CLOSE_COMPACT, /* the VM's set to runs where smaller, containers a share at a time */
	DT_CLOSE_APPLY,	  /* the set compacted; next step applies the epoch at once */
	DT_CLOSE_RESET,	  /* applied; the sealed buffers are cleared for reuse */
	DT_CLOSE_DONE,	  /* the closed epoch waits for the caller */
};

struct dt_close {
	enum dt_close_phase phase;
	bool want;	 /* hand back the closed epoch */
	uint32_t t, pos; /* target (0 = the VM, v + 1 = vCPU v) and where in it */
	uint64_t end_us, entries, pages;
	roaring_bitmap_t *set; /* the VM's */
	struct dt_closed_epoch *closed;
};

struct dt_bucket {
	roaring_bitmap_t *set; /* union of the bucket's evicted epoch sets */
	uint64_t id;	       /* epochs [id * coarse, (id + 1) * coarse) */
};

struct dt_stats {
	struct dt_stats_config cfg;
	uint32_t horizon, recent, coarse, nbuckets;
	uint32_t nvcpus;
	uint64_t epochs;
	struct dt_windows win; /* cfg's windows and their age table, shared by every index */

	/* Open epoch, and the one being closed. */
	struct dt_open *open, *closing;
	uint64_t open_entries;
	struct dt_close cl;

	/* Closed epochs. */
	struct dt_lastidx *ls;
	roaring_bitmap_t **recent_sets;	 /* epoch e at e % recent; NULL = idle */
	struct dt_bucket *buckets;	 /* bucket b at b % nbuckets */
	struct dt_epoch_record *records; /* epoch e at e % horizon */
	size_t records_alloc;
	uint64_t total_entries, total_pages;
	struct dt_vcpu_stats *vcpus;

	uint32_t iter[4096]; /* journal replay: pages, a batch at a time */
	struct dt_block blk[DT_ROARING_BLOCKS]; /* close: one container's blocks */
};

/*
 * The last-dirty indexes for a query (dt_close.c): a close whose counts
 * have started to move is completed first. The object is never defined
 * const: completing the close is the one write a const query makes.
 */
void dt_stats_settle(const struct dt_stats *s);

static inline const struct dt_lastidx *dt_stats_ls(const struct dt_stats *s)
{
	dt_stats_settle(s);
	return s->ls;
}

static inline const struct dt_lastidx *dt_stats_vcpu_ls(const struct dt_stats *s, uint32_t v)
{
	dt_stats_settle(s);
	return s->vcpus[v].ls;
}

/* dt_heatmap.c: the exact recent sets and the coarse buckets. */
void dt_stats_keep_set(struct dt_stats *s, uint64_t now, roaring_bitmap_t *set);
size_t dt_stats_sets_memory(const struct dt_stats *s);

/* A closed epoch handed back (dt_stats.h); the vCPUs' pages follow the array. */
struct dt_closed_vcpu {
	uint64_t entries; /* since creation, this epoch's included */
	uint32_t n;	  /* distinct pages this epoch, ascending */
	const uint32_t *pages;
};

struct dt_closed_epoch {
	struct dt_epoch_record rec;
	roaring_bitmap_t *set; /* NULL: idle */
	size_t bytes;
	uint32_t nvcpus;
	struct dt_closed_vcpu vcpus[];
};
