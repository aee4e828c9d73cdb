/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM's closed dirty sets: the last recent_epochs exactly (for the
 * per-epoch page lists and the heatmap), older ones OR-ed into buckets of
 * coarse_epochs epochs up to the horizon (the heatmap's long windows).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dt_roaring.h"
#include "dt_stats_int.h"

/* Move an epoch set that left the exact ring into its coarse bucket. */
static void bucket_add(struct dt_stats *s, uint64_t epoch, roaring_bitmap_t *set)
{
	uint64_t id = epoch / s->coarse;
	struct dt_bucket *b = &s->buckets[id % s->nbuckets];

	if (b->set && b->id == id) {
		if (set) {
			roaring_bitmap_or_inplace(b->set, set);
			roaring_bitmap_free(set);
		}
	} else {
		if (b->set)
			roaring_bitmap_free(b->set);
		b->set = set;
		b->id = id;
	}
	/* A completed bucket will not change again: compact it once. */
	if (b->set && epoch % s->coarse == s->coarse - 1) {
		roaring_bitmap_run_optimize(b->set);
		roaring_bitmap_shrink_to_fit(b->set);
	}
}

/* Free the bucket whose last epoch just left the horizon. */
static void bucket_expire(struct dt_stats *s, uint64_t now)
{
	uint64_t gone, id;
	struct dt_bucket *b;

	if (now < s->horizon)
		return;
	gone = now - s->horizon; /* the epoch that just left the horizon */
	if (gone % s->coarse != s->coarse - 1)
		return;
	id = gone / s->coarse;
	b = &s->buckets[id % s->nbuckets];
	if (b->set && b->id == id) {
		roaring_bitmap_free(b->set);
		b->set = NULL;
	}
}

void dt_stats_keep_set(struct dt_stats *s, uint64_t now, roaring_bitmap_t *set)
{
	if (s->recent) {
		roaring_bitmap_t **slot = &s->recent_sets[now % s->recent];

		if (now >= s->recent && now - s->recent + s->horizon > now)
			bucket_add(s, now - s->recent, *slot);
		else if (*slot)
			roaring_bitmap_free(*slot);
		*slot = set;
	} else {
		bucket_add(s, now, set);
	}
	bucket_expire(s, now);
}

size_t dt_stats_sets_memory(const struct dt_stats *s)
{
	size_t m = s->recent * sizeof(*s->recent_sets) + s->nbuckets * sizeof(*s->buckets);

	for (uint32_t i = 0; i < s->recent; i++)
		m += dt_roaring_memory(s->recent_sets[i]);
	for (uint32_t i = 0; i < s->nbuckets; i++)
		m += dt_roaring_memory(s->buckets[i].set);
	return m;
}

#define ITER_CHUNK 256

/*
 * Add every page of `set` in [start, limit) to the dirtyings of its region.
 * Every such page is in the window's union, so its region is in out[].
 */
static void heat_bin(const roaring_bitmap_t *set, struct dt_heat *out, size_t n, uint32_t rp,
		     uint64_t start, uint64_t limit)
{
	roaring_uint32_iterator_t it;
	uint32_t vals[ITER_CHUNK], got;
	size_t j = 0;

	roaring_init_iterator(set, &it);
	if (!roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)start))
		return;
	while ((got = roaring_read_uint32_iterator(&it, vals, ITER_CHUNK)) > 0) {
		for (uint32_t i = 0; i < got; i++) {
			uint32_t region = vals[i] / rp;

			if (vals[i] >= limit)
				return;
			while (j < n && out[j].region < region)
				j++;
			if (j < n && out[j].region == region)
				out[j].dirtyings++;
		}
	}
}

int dt_stats_heatmap(const struct dt_stats *s, uint32_t window, struct dt_heat *out, size_t max)
{
	return dt_stats_heatmap_from(s, window, 0, out, max);
}

int dt_stats_heatmap_from(const struct dt_stats *s, uint32_t window, uint32_t from,
			  struct dt_heat *out, size_t max)
{
	roaring_uint32_iterator_t it;
	uint32_t vals[ITER_CHUNK], got, rp = s->cfg.region_pages;
	roaring_bitmap_t *u;
	uint64_t first, limit = (uint64_t)UINT32_MAX + 1, exact_first, last_bucket, id;
	uint64_t start = (uint64_t)from * rp;
	size_t n = 0;
	bool full = false;

	dt_stats_settle(s); /* before s->epochs is read */

	if (window == 0 || max == 0 || s->epochs == 0 || start > UINT32_MAX)
		return 0;
	if (window > s->horizon)
		window = s->horizon;
	if (window > s->epochs)
		window = (uint32_t)s->epochs;
	first = s->epochs - window;

	/* Distinct pages per region are exact: the index's pages within the window. */
	u = dt_lastidx_union(s->ls, window);
	if (!u)
		return -ENOMEM;
	roaring_init_iterator(u, &it);
	if (!roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)start))
		full = true; /* nothing at or past the start */
	while (!full && (got = roaring_read_uint32_iterator(&it, vals, ITER_CHUNK)) > 0) {
		for (uint32_t i = 0; i < got; i++) {
			uint32_t region = vals[i] / rp;

			if (n == 0 || out[n - 1].region != region) {
				if (n == max) {
					/* Only the first max regions are reported. */
					limit = (uint64_t)out[n - 1].region * rp + rp;
					full = true;
					break;
				}
				out[n++] = (struct dt_heat){.region = region};
			}
			out[n - 1].pages++;
		}
	}

	/* Dirtyings: each exact epoch set in the window... */
	exact_first = s->epochs > s->recent ? s->epochs - s->recent : 0;
	for (uint64_t e = first > exact_first ? first : exact_first; e < s->epochs; e++) {
		const roaring_bitmap_t *set = s->recent_sets[e % s->recent];

		if (set)
			heat_bin(set, out, n, rp, start, limit);
	}
	/*
	 * ...then each coarse bucket overlapping the rest of the window, once
	 * per page, restricted to the window's pages so that a bucket straddling
	 * the window's start adds no region the window did not dirty.
	 */
	if (first < exact_first) {
		last_bucket = (exact_first - 1) / s->coarse;
		for (id = first / s->coarse; id <= last_bucket; id++) {
			const struct dt_bucket *b = &s->buckets[id % s->nbuckets];
			roaring_bitmap_t *x;

			if (!b->set || b->id != id)
				continue;
			x = roaring_bitmap_and(b->set, u);
			if (!x) {
				roaring_bitmap_free(u);
				return -ENOMEM;
			}
			heat_bin(x, out, n, rp, start, limit);
			roaring_bitmap_free(x);
		}
	}
	roaring_bitmap_free(u);
	return (int)n;
}

int dt_stats_epoch_pages(const struct dt_stats *s, uint64_t epoch,
			 int (*fn)(uint32_t first, uint32_t count, void *ud), void *ud)
{
	return dt_stats_epoch_pages_from(s, epoch, 0, fn, ud);
}

int dt_stats_epoch_pages_from(const struct dt_stats *s, uint64_t epoch, uint32_t from,
			      int (*fn)(uint32_t first, uint32_t count, void *ud), void *ud)
{
	const roaring_bitmap_t *set;
	roaring_uint32_iterator_t it;
	uint32_t first = 0, count = 0;
	int r;

	if (!s->recent || epoch >= s->epochs || s->epochs - epoch > s->recent)
		return -ENOENT;
	set = s->recent_sets[epoch % s->recent];
	if (!set)
		return 0; /* an idle epoch */
	roaring_init_iterator(set, &it);
	if (from)
		roaring_move_uint32_iterator_equalorlarger(&it, from);
	for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
		if (count && it.current_value == first + count) {
			count++;
			continue;
		}
		if (count && (r = fn(first, count, ud)) < 0)
			return r;
		first = it.current_value;
		count = 1;
	}
	if (count && (r = fn(first, count, ud)) < 0)
		return r;
	return 0;
}

int dt_stats_page_quantiles(const struct dt_stats *s, uint32_t window, uint32_t n, uint64_t *out)
{
	int64_t card;

	dt_stats_settle(s); /* before s->epochs is read */

	if (n == 0 || !out)
		return -EINVAL;
	if (window == 0 || s->epochs == 0)
		return -ENODATA;
	if (window > s->horizon)
		window = s->horizon;
	if (window > s->epochs)
		window = (uint32_t)s->epochs;
	card = dt_lastidx_quantiles(s->ls, window, n, out);
	if (card < 0)
		return (int)card;
	return card ? 0 : -ENODATA;
}

int dt_stats_layout(const struct dt_stats *s, const uint32_t *windows, uint32_t n, uint64_t memory,
		    uint32_t nparts, uint64_t *bounds, uint64_t *parts)
{
	int r;

	if (n == 0 || nparts == 0 || memory < nparts || !windows || !bounds || !parts)
		return -EINVAL;
	r = dt_stats_page_quantiles(s, windows[n - 1], nparts, bounds);
	if (r < 0)
		return r;
	bounds[0] = 0;
	bounds[nparts] = memory;
	/* -EINVAL for bounds out of order: a page beyond memory, not this VM's statistics */
	return dt_lastidx_count_parts_at(dt_stats_ls(s), bounds, nparts, windows, n, parts);
}
