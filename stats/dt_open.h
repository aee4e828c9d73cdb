/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM's dirty set of the open epoch.
 *
 * Pages land as single bit stores (bitmap words as one OR) in plain 8 KiB
 * bitsets, one per 64k-page chunk (a roaring container's span), found by
 * chunk id in a directory that grows with the highest chunk touched (at
 * most 64 Ki entries, 1 MiB, for the whole 32-bit index space). A chunk
 * gets a bitset once it has seen `promote` pages in an epoch (a bitset costs
 * at most 8 KiB / promote per dirty page); other pages go to a log sorted
 * in bulk (dt_vlog.c),
 * full bitmap words as ranges into a roaring bitmap. Work at close and reset is
 * per chunk touched, not per chunk of the guest. dt_open_build() turns both
 * into the epoch's roaring set (bitsets become containers as they are)
 * without changing the open set, so a failed close loses nothing;
 * dt_open_reset() then empties it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "dt_vlog.h"

#define DT_OPEN_SHIFT	16u
#define DT_OPEN_WORDS	((1u << DT_OPEN_SHIFT) / 64)
#define DT_OPEN_NCHUNK	(1u << (32 - DT_OPEN_SHIFT)) /* chunks of the index space */

struct dt_open_chunk {
	uint64_t *bits;	 /* in use this epoch (non-NULL = listed in touched) */
	uint64_t *spare; /* cleared bitset kept from the last epoch */
	uint32_t hits;	 /* pages seen through the fallback this epoch */
};

struct dt_open {
	struct dt_open_chunk *dir; /* by chunk id, [0, ndir) */
	uint32_t ndir;
	uint32_t *touched, ntouched; /* chunks with bits or hits this epoch */
	uint32_t *kept, nkept;	     /* chunks that hold a spare */
	uint32_t listcap;	     /* of touched and kept */
	uint32_t nchunks; /* bitsets allocated (bits or spare) */
	uint32_t promote; /* pages a chunk sees in an epoch before it gets a bitset */
	uint64_t run_lo, run_hi;     /* pending range of full bitmap words */
	roaring_bitmap_t *fallback;  /* ranges, and pages the log had no room for */
	struct dt_vlog log;	     /* pages outside bitsets */
};

/*
 * A higher promote keeps sparser chunks in the log: their bit stores would
 * spread over many bitsets and miss the cache, where the log appends.
 */
int dt_open_init(struct dt_open *o, uint32_t promote);
void dt_open_fini(struct dt_open *o);

void dt_open_add_slow(struct dt_open *o, uint32_t page);

static inline uint64_t *dt_open_bits(const struct dt_open *o, uint32_t page)
{
	uint32_t c = page >> DT_OPEN_SHIFT;

	return __builtin_expect(c < o->ndir, 1) ? o->dir[c].bits : NULL;
}

static inline void dt_open_add(struct dt_open *o, uint32_t page)
{
	uint64_t *b = dt_open_bits(o, page);

	if (__builtin_expect(b != NULL, 1)) {
		uint32_t off = page & ((1u << DT_OPEN_SHIFT) - 1);

		b[off / 64] |= UINT64_C(1) << (off % 64);
		return;
	}
	dt_open_add_slow(o, page);
}

/*
 * The set bits of a bitmap word, page base + i for bit i. A 64-aligned word
 * in a chunk with a bitset is one OR (the bitmap collector's words are aligned).
 */
static inline void dt_open_add_word(struct dt_open *o, uint32_t base, uint64_t bits)
{
	uint64_t *b = dt_open_bits(o, base);

	if (b && !(base & 63)) {
		b[(base & ((1u << DT_OPEN_SHIFT) - 1)) / 64] |= bits;
		return;
	}
	do {
		dt_open_add(o, base + (uint32_t)__builtin_ctzll(bits));
		bits &= bits - 1;
	} while (bits);
}

/* Pages [lo, hi) (full bitmap words): merged into runs, kept in the fallback. */
void dt_open_add_range(struct dt_open *o, uint64_t lo, uint64_t hi);

/* The open set as a new roaring bitmap; the open set is unchanged. -ENOMEM. */
int dt_open_build(struct dt_open *o, roaring_bitmap_t **ret);
/*
 * The same in steps, for a close split over several calls: begin makes
 * *ret (empty); chunks appends the bitsets of up to max touched chunks from
 * *pos on (1: more to do, 0: all in, -ENOMEM); end adds the log and the
 * fallback, replacing *r. On an error the caller frees *r and starts over;
 * the open set is unchanged by any of them.
 */
int dt_open_build_begin(struct dt_open *o, roaring_bitmap_t **ret);
int dt_open_build_chunks(struct dt_open *o, roaring_bitmap_t *r, uint32_t *pos, uint32_t max);
int dt_open_build_end(struct dt_open *o, roaring_bitmap_t **r);
/* Empty the open set after a successful close. */
void dt_open_reset(struct dt_open *o);
/*
 * The same in steps of up to max touched chunks from *pos (0 first): 1
 * while more remain. With dst (the open set that took over from o), o's
 * cleared bitsets become dst's spares where dst has none, and o keeps none:
 * the two buffers of a split close hold one set of spares between them.
 */
int dt_open_reset_step(struct dt_open *o, struct dt_open *dst, uint32_t *pos, uint32_t max);
size_t dt_open_memory(const struct dt_open *o);
