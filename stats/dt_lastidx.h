/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Exact D(T) for every T up to a horizon, with work per close proportional
 * to the pages dirtied in the epoch, and memory to the pages retained.
 *
 * An index maps each retained page to the last epoch it was dirtied in
 * (64-page blocks in an open-addressing hash; a block keeps one 32-bit
 * epoch per present page, ranked by a presence mask). cnt[e], the number
 * of pages whose last dirtying was epoch e, is a ring over the horizon,
 * allocated 256 epochs at a time so idle stretches cost nothing. Closing
 * epoch `now` with dirty set S moves each page of S from cnt[last] to
 * cnt[now]; D(T) = sum of cnt over the last T epochs. The configured
 * windows are kept as running sums: each page of S lowers the windows that
 * held its previous dirtying, found through a table age -> first window
 * longer than the age.
 *
 * Pages that left the horizon are dead for every count at once (their age
 * says so); a sweep over a slice of the hash at each close frees them, a
 * whole pass every horizon/4 epochs. The hash grows and shrinks by an
 * incremental rehash: a bounded number of slots move per insertion and per
 * close, and lookups look in both tables until the old one is empty, so no
 * call pays for a whole table.
 *
 * Closing goes in two phases so that a caller closing several indexes can
 * fail before changing any: reserve (may return -ENOMEM, leaves every
 * count as it was), then begin/update/end (cannot fail).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "dt_roaring.h"
#include "dt_stats.h"

struct dt_windows {
	uint32_t n;
	uint32_t w[DT_STATS_MAX_WINDOWS]; /* ascending */
	uint8_t *k; /* [age], 0 <= age <= horizon: first window longer than age */
};

struct dt_lastidx;

int dt_lastidx_new(uint32_t horizon, const struct dt_windows *win, struct dt_lastidx **ret);
struct dt_lastidx *dt_lastidx_free(struct dt_lastidx *ls); /* NULL-safe, returns NULL */

/* Room for these pages (sorted, distinct; call per batch of the epoch's pages). */
int dt_lastidx_reserve(struct dt_lastidx *ls, const uint32_t *pages, size_t n);
/* The same for 64-page blocks (ascending; a block may come again in a later batch). */
int dt_lastidx_reserve_blocks(struct dt_lastidx *ls, const struct dt_block *b, size_t n);
/* Room for the epoch's count, npages being its distinct pages; ends reserving. */
int dt_lastidx_reserve_epoch(struct dt_lastidx *ls, uint64_t npages);

void dt_lastidx_begin(struct dt_lastidx *ls);
/* Sorted, distinct, all previously reserved. */
void dt_lastidx_update(struct dt_lastidx *ls, const uint32_t *pages, size_t n);
void dt_lastidx_update_blocks(struct dt_lastidx *ls, const struct dt_block *b, size_t n);
void dt_lastidx_end(struct dt_lastidx *ls, uint64_t npages);

uint64_t dt_lastidx_epochs(const struct dt_lastidx *ls);
/* D of configured window i, O(1). */
uint64_t dt_lastidx_wss(const struct dt_lastidx *ls, uint32_t i);
/* D(window) for any window; longer than the history counts the whole history. */
uint64_t dt_lastidx_count(const struct dt_lastidx *ls, uint32_t window);
/*
 * D at each of `n` (<= DT_LASTIDX_MAX_AT) ascending windows, restricted to
 * pages [lo, hi), in one pass; -EINVAL on too many or unsorted windows.
 */
#define DT_LASTIDX_MAX_AT 64
int dt_lastidx_count_range_at(const struct dt_lastidx *ls, uint64_t lo, uint64_t hi,
			      const uint32_t *windows, uint32_t n, uint64_t *out);
/*
 * The same for each of nparts ranges [bounds[p], bounds[p + 1]) (ascending
 * bounds) into out[p * n + i], in one scan of the index, not a lookup per
 * block of each range; -ENOMEM, -EINVAL.
 */
int dt_lastidx_count_parts_at(const struct dt_lastidx *ls, const uint64_t *bounds,
			      uint32_t nparts, const uint32_t *windows, uint32_t n, uint64_t *out);
/* D at every configured window, restricted to pages [lo, hi), in one pass. */
void dt_lastidx_count_range_windows(const struct dt_lastidx *ls, uint64_t lo, uint64_t hi,
				    uint64_t *out);
/* D(window) restricted to pages [lo, hi). */
uint64_t dt_lastidx_count_range(const struct dt_lastidx *ls, uint32_t window, uint64_t lo,
				uint64_t hi);
/*
 * The pages at ranks card * i / n (i < n) of the distinct pages of the last
 * `window` epochs, ascending (card: how many; the ranks of the union's
 * roaring_bitmap_select), in one pass over the index and a probe of at
 * most 1024 blocks per rank: no set is built. Returns card, or -ENOMEM.
 */
int64_t dt_lastidx_quantiles(const struct dt_lastidx *ls, uint32_t window, uint32_t n,
			     uint64_t *out);
/* The distinct pages of the last `window` epochs as a new bitmap; NULL on -ENOMEM. */
roaring_bitmap_t *dt_lastidx_union(const struct dt_lastidx *ls, uint32_t window);
/* A rehash of the block hash is in progress (its old table still holds blocks). */
bool dt_lastidx_rehashing(const struct dt_lastidx *ls);
/* Pages held by the index, live or not yet swept. */
uint64_t dt_lastidx_held(const struct dt_lastidx *ls);
size_t dt_lastidx_memory(const struct dt_lastidx *ls);

/*
 * Persistence (dt_persist.c). dt_lastidx_walk() calls fn once per block
 * holding pages dirtied within the horizon, with the block's live pages and,
 * in rank order, their ages (epochs since the dirtying, 1 = the last closed
 * epoch); fn may stop the walk by returning < 0. Restoring: an index fresh
 * from dt_lastidx_new(), restore_begin with the closed epoch count, every
 * block once, then restore_end. -EBADMSG for a block that cannot be (a
 * duplicate, an empty mask, an age outside [1, min(epochs, horizon)]).
 */
int dt_lastidx_walk(const struct dt_lastidx *ls,
		    int (*fn)(uint32_t block, uint64_t mask, const uint32_t *ages, void *ud),
		    void *ud);
void dt_lastidx_restore_begin(struct dt_lastidx *ls, uint64_t epochs);
int dt_lastidx_restore_block(struct dt_lastidx *ls, uint32_t block, uint64_t mask,
			     const uint32_t *ages);
void dt_lastidx_restore_end(struct dt_lastidx *ls);
