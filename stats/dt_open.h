/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM's dirty set of the open epoch.
 *
 * Pages land as single bit stores in plain 8 KiB bitsets, one per 64k-page
 * chunk (a roaring container's span), found through a small hash of chunk
 * ids with a one-entry cache in front. A chunk gets a bitset only once it
 * has seen DT_OPEN_PROMOTE pages and while fewer than DT_OPEN_MAX_CHUNKS
 * exist; pages elsewhere (scattered over the index space) go through a
 * sorted buffer into a roaring bitmap, as before. dt_open_build() turns
 * both into the epoch's roaring set at close without changing the open set,
 * so a failed close loses nothing; dt_open_reset() then empties it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#define DT_OPEN_SHIFT	   16u
#define DT_OPEN_WORDS	   ((1u << DT_OPEN_SHIFT) / 64)
#define DT_OPEN_SLOTS	   1024u /* chunk-id hash, power of two, 16 KiB */
#define DT_OPEN_MAX_CHUNKS 256u	 /* 2 MiB of bitsets: 16M pages of dense dirtying */
#define DT_OPEN_PROMOTE	   64u	 /* pages a chunk sees before it gets a bitset */
#define DT_OPEN_BUF	   2048u

struct dt_open_slot {
	uint32_t key;  /* chunk id + 1; 0 = empty */
	uint16_t hits;	/* pages seen through the fallback, until promoted */
	bool touched;	/* bitset used in this epoch */
	uint64_t *bits;
};

struct dt_open {
	uint32_t cache_key; /* chunk id + 1 of cache_bits */
	uint64_t *cache_bits;
	uint32_t nchunks, nslots;
	uint64_t run_lo, run_hi; /* pending range of full bitmap words */
	roaring_bitmap_t *fallback;
	uint32_t nbuf;
	bool buf_unsorted;
	uint32_t buf[DT_OPEN_BUF];
	uint32_t tmp[DT_OPEN_BUF];
	struct dt_open_slot slots[DT_OPEN_SLOTS];
};

int dt_open_init(struct dt_open *o);
void dt_open_fini(struct dt_open *o);

void dt_open_add_slow(struct dt_open *o, uint32_t page);

static inline void dt_open_add(struct dt_open *o, uint32_t page)
{
	if (__builtin_expect((page >> DT_OPEN_SHIFT) + 1 == o->cache_key, 1)) {
		uint32_t off = page & ((1u << DT_OPEN_SHIFT) - 1);

		o->cache_bits[off / 64] |= UINT64_C(1) << (off % 64);
		return;
	}
	dt_open_add_slow(o, page);
}

/*
 * The set bits of a bitmap word, page base + i for bit i. A 64-aligned word
 * in the cached chunk is one OR (the bitmap collector's words are aligned).
 */
static inline void dt_open_add_word(struct dt_open *o, uint32_t base, uint64_t bits)
{
	if (!(base & 63) && (base >> DT_OPEN_SHIFT) + 1 == o->cache_key) {
		o->cache_bits[(base & ((1u << DT_OPEN_SHIFT) - 1)) / 64] |= bits;
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
/* Empty the open set after a successful close. */
void dt_open_reset(struct dt_open *o);
size_t dt_open_memory(const struct dt_open *o);
