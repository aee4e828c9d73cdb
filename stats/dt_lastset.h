/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Last-dirty sets: exact D(T) for every T up to a horizon, in memory bounded
 * by the distinct pages dirtied within the horizon.
 *
 * L[e] holds the pages whose most recent dirtying was in epoch e. The sets are
 * disjoint, so their total size is D(horizon), and D(T) is the sum of |L[e]|
 * over the last T epochs. Closing epoch `now` with dirty set S removes S from
 * every older L set and makes S the new L[now]. Only non-empty sets are kept,
 * oldest first, so idle epochs cost nothing.
 *
 * Used once per VM and once per vCPU by dt_stats. Pure code, no I/O.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

struct dt_lastset;

int dt_lastset_new(uint32_t horizon, struct dt_lastset **ret);
struct dt_lastset *dt_lastset_free(struct dt_lastset *ls); /* NULL-safe, returns NULL */

/*
 * Closing is split in two so a caller that closes several sets can fail
 * before changing any of them: reserve may fail with -ENOMEM, commit cannot
 * (beyond what libroaring itself does not report).
 */
int dt_lastset_reserve(struct dt_lastset *ls);
/*
 * Seal the next epoch with dirty set `set` (ownership taken; NULL or empty
 * for an idle epoch). Must follow a successful dt_lastset_reserve().
 */
void dt_lastset_commit(struct dt_lastset *ls, roaring_bitmap_t *set);

uint64_t dt_lastset_epochs(const struct dt_lastset *ls);
/* D(window); windows longer than the history count the whole history. */
uint64_t dt_lastset_count(const struct dt_lastset *ls, uint32_t window);
/* D(window) for n ascending windows in one pass over the sets. */
void dt_lastset_counts(const struct dt_lastset *ls, const uint32_t *windows, size_t n,
		       uint64_t *out);
/* D(window) restricted to pages [lo, hi). */
uint64_t dt_lastset_count_range(const struct dt_lastset *ls, uint32_t window, uint64_t lo,
				uint64_t hi);
/* The distinct pages of the last `window` epochs as a new bitmap; NULL on -ENOMEM. */
roaring_bitmap_t *dt_lastset_union(const struct dt_lastset *ls, uint32_t window);
/* Number of non-empty L sets held. */
size_t dt_lastset_nsets(const struct dt_lastset *ls);
size_t dt_lastset_memory(const struct dt_lastset *ls);

/*
 * Heap bytes held by a roaring bitmap (estimate). libroaring 0.2.66 exposes no
 * heap figure; its statistics give container payload bytes, to which we add
 * the per-container bookkeeping and allocator overhead (checked against
 * mallinfo2() in bench/bench_stats.c).
 */
size_t dt_roaring_memory(const roaring_bitmap_t *r);
