/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_lastset.h"

struct dt_lastentry {
	roaring_bitmap_t *set;
	uint64_t epoch;
	uint64_t card;	      /* cached: roaring's cardinality walks every container */
	uint64_t shrunk_card; /* card at the last shrink_to_fit */
	uint32_t min, max;    /* cached bounds, to skip sets S cannot touch */
};

struct dt_lastset {
	uint32_t horizon;
	uint64_t epochs;	   /* closed epochs */
	uint64_t total;		   /* sum of card over live = D(horizon) */
	struct dt_lastentry *live; /* non-empty L sets, oldest first */
	size_t nlive, alloc;
};

int dt_lastset_new(uint32_t horizon, struct dt_lastset **ret)
{
	struct dt_lastset *ls;

	if (horizon == 0)
		return -EINVAL;
	ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->horizon = horizon;
	*ret = ls;
	return 0;
}

struct dt_lastset *dt_lastset_free(struct dt_lastset *ls)
{
	if (!ls)
		return NULL;
	for (size_t i = 0; i < ls->nlive; i++)
		roaring_bitmap_free(ls->live[i].set);
	free(ls->live);
	free(ls);
	return NULL;
}

int dt_lastset_reserve(struct dt_lastset *ls)
{
	struct dt_lastentry *n;
	size_t alloc;

	if (ls->nlive < ls->alloc)
		return 0;
	alloc = ls->alloc ? ls->alloc * 2 : 8;
	n = realloc(ls->live, alloc * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ls->live = n;
	ls->alloc = alloc;
	return 0;
}

/* Give back the array when most of it went idle, so a quiet VM costs little. */
static void lastset_trim(struct dt_lastset *ls)
{
	struct dt_lastentry *n;
	size_t alloc;

	if (ls->alloc <= 16 || ls->nlive * 4 > ls->alloc)
		return;
	alloc = ls->alloc / 2;
	if (ls->nlive == 0) {
		free(ls->live);
		ls->live = NULL;
		ls->alloc = 0;
		return;
	}
	n = realloc(ls->live, alloc * sizeof(*n));
	if (n) {
		ls->live = n;
		ls->alloc = alloc;
	}
}

void dt_lastset_commit(struct dt_lastset *ls, roaring_bitmap_t *set)
{
	uint64_t now = ls->epochs++;
	uint64_t card = set ? roaring_bitmap_get_cardinality(set) : 0;
	size_t j = 0, drop = 0;

	if (set && card == 0) {
		roaring_bitmap_free(set);
		set = NULL;
	}

	if (set) {
		uint32_t smin = roaring_bitmap_minimum(set), smax = roaring_bitmap_maximum(set);

		for (size_t i = 0; i < ls->nlive; i++) {
			struct dt_lastentry *x = &ls->live[i];

			if (x->max >= smin && x->min <= smax) {
				uint64_t c;

				roaring_bitmap_andnot_inplace(x->set, set);
				c = roaring_bitmap_get_cardinality(x->set);
				ls->total -= x->card - c;
				if (c == 0) {
					roaring_bitmap_free(x->set);
					continue;
				}
				if (c != x->card) {
					x->card = c;
					x->min = roaring_bitmap_minimum(x->set);
					x->max = roaring_bitmap_maximum(x->set);
					/*
					 * andnot leaves containers at their old
					 * capacity; shrink once the set has halved
					 * rather than after every small removal.
					 */
					if (c * 2 <= x->shrunk_card) {
						roaring_bitmap_shrink_to_fit(x->set);
						x->shrunk_card = c;
					}
				}
			}
			ls->live[j++] = *x;
		}
		ls->nlive = j;

		/* Sequential sweeps collapse to a few runs; random sets stay as they are. */
		roaring_bitmap_run_optimize(set);
		roaring_bitmap_shrink_to_fit(set);
		/* dt_lastset_reserve() guaranteed the slot. */
		ls->live[ls->nlive++] = (struct dt_lastentry){
		    .set = set,
		    .epoch = now,
		    .card = card,
		    .shrunk_card = card,
		    .min = smin,
		    .max = smax,
		};
		ls->total += card;
	}

	/* After this close the horizon covers epochs [now + 1 - horizon, now]. */
	while (drop < ls->nlive && ls->live[drop].epoch + ls->horizon <= now) {
		ls->total -= ls->live[drop].card;
		roaring_bitmap_free(ls->live[drop].set);
		drop++;
	}
	if (drop) {
		ls->nlive -= drop;
		memmove(ls->live, ls->live + drop, ls->nlive * sizeof(*ls->live));
	}
	lastset_trim(ls);
}

uint64_t dt_lastset_epochs(const struct dt_lastset *ls) { return ls->epochs; }

size_t dt_lastset_nsets(const struct dt_lastset *ls) { return ls->nlive; }

/* First epoch inside the last `window` epochs (0 if the window covers all). */
static uint64_t window_first(const struct dt_lastset *ls, uint32_t window)
{
	return window >= ls->epochs ? 0 : ls->epochs - window;
}

uint64_t dt_lastset_count(const struct dt_lastset *ls, uint32_t window)
{
	uint64_t first, sum = 0;

	if (window == 0)
		return 0;
	if (window >= ls->horizon || window >= ls->epochs)
		return ls->total;
	first = window_first(ls, window);
	for (size_t i = ls->nlive; i-- > 0 && ls->live[i].epoch >= first;)
		sum += ls->live[i].card;
	return sum;
}

void dt_lastset_counts(const struct dt_lastset *ls, const uint32_t *windows, size_t n,
		       uint64_t *out)
{
	size_t i = ls->nlive;
	uint64_t sum = 0;

	for (size_t w = 0; w < n; w++) {
		uint64_t first;

		if (windows[w] == 0) {
			out[w] = 0;
			continue;
		}
		if (windows[w] >= ls->horizon || windows[w] >= ls->epochs) {
			out[w] = ls->total;
			continue;
		}
		/* Windows ascend, so keep walking back from where the last one stopped. */
		first = window_first(ls, windows[w]);
		while (i > 0 && ls->live[i - 1].epoch >= first)
			sum += ls->live[--i].card;
		out[w] = sum;
	}
}

uint64_t dt_lastset_count_range(const struct dt_lastset *ls, uint32_t window, uint64_t lo,
				uint64_t hi)
{
	uint64_t first, sum = 0;

	if (window == 0 || lo >= hi)
		return 0;
	first = window_first(ls, window);
	for (size_t i = ls->nlive; i-- > 0 && ls->live[i].epoch >= first;) {
		const struct dt_lastentry *x = &ls->live[i];

		if (x->max < lo || x->min >= hi)
			continue;
		if (x->min >= lo && x->max < hi)
			sum += x->card;
		else
			sum += roaring_bitmap_range_cardinality(x->set, lo, hi);
	}
	return sum;
}

roaring_bitmap_t *dt_lastset_union(const struct dt_lastset *ls, uint32_t window)
{
	const roaring_bitmap_t **sets;
	roaring_bitmap_t *u;
	uint64_t first;
	size_t n = 0;

	if (window == 0 || ls->nlive == 0)
		return roaring_bitmap_create();
	first = window_first(ls, window);
	sets = malloc(ls->nlive * sizeof(*sets));
	if (!sets)
		return NULL;
	for (size_t i = ls->nlive; i-- > 0 && ls->live[i].epoch >= first;)
		sets[n++] = ls->live[i].set;
	u = n ? roaring_bitmap_or_many(n, sets) : roaring_bitmap_create();
	free(sets);
	return u;
}

size_t dt_roaring_memory(const roaring_bitmap_t *r)
{
	roaring_statistics_t st;

	if (!r)
		return 0;
	roaring_bitmap_statistics(r, &st);
	/*
	 * Per container: a 16-byte container struct and its payload, two
	 * malloc headers, and a key, a typecode and a pointer in the top-level
	 * arrays. Plus the bitmap struct itself and its top-level arrays.
	 */
	return sizeof(*r) + 32 + (size_t)st.n_bytes_array_containers + st.n_bytes_run_containers +
	       st.n_bytes_bitset_containers + (size_t)st.n_containers * (16 + 2 * 16 + 2 + 1 + 8);
}

size_t dt_lastset_memory(const struct dt_lastset *ls)
{
	size_t m = sizeof(*ls) + ls->alloc * sizeof(*ls->live);

	for (size_t i = 0; i < ls->nlive; i++)
		m += dt_roaring_memory(ls->live[i].set);
	return m;
}
