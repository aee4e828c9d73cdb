/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-VM dirty-page statistics (see dt_stats.h for the contract).
 *
 * Open epoch: pages are buffered in a fixed array and flushed in sorted
 * batches into the epoch's roaring bitmap (and the vCPU's, for ring pages).
 * Closed epochs feed three structures:
 *  - last-dirty sets (dt_lastset.c), per VM and per vCPU: exact D(T);
 *  - the last recent_epochs dirty sets exactly, older ones OR-ed into
 *    buckets of coarse_epochs epochs, up to the horizon: the heatmap;
 *  - a ring of per-epoch records over the horizon: the history.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dt_lastset.h"
#include "dt_stats.h"

#define DT_STATS_BUF 4096
#define DT_NO_VCPU   UINT32_MAX

/* Insertion strategies, measured with bench/bench_stats.c (see add_batch). */
#ifndef DT_STATS_MERGE_VM
#define DT_STATS_MERGE_VM false
#endif
#ifndef DT_STATS_MERGE_VCPU
#define DT_STATS_MERGE_VCPU true
#endif

struct dt_vcpu_stats {
	roaring_bitmap_t *open; /* this vCPU's pages in the open epoch */
	roaring_bitmap_t *next; /* preallocated replacement, see close */
	struct dt_lastset *ls;
	uint64_t entries;
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

	/* Open epoch. */
	roaring_bitmap_t *open;
	uint64_t open_entries;
	uint64_t run_lo, run_hi; /* pending range of full bitmap words */
	uint32_t buf_vcpu;	 /* vCPU whose pages fill buf, or DT_NO_VCPU */
	uint32_t nbuf;
	bool buf_unsorted;

	/* Closed epochs. */
	struct dt_lastset *ls;
	uint64_t wss[DT_STATS_MAX_WINDOWS];
	uint64_t *vcpu_wss;		 /* [vcpu * nwindows + w] */
	roaring_bitmap_t **recent_sets;	 /* epoch e at e % recent; NULL = idle */
	struct dt_bucket *buckets;	 /* bucket b at b % nbuckets */
	struct dt_epoch_record *records; /* epoch e at e % horizon */
	size_t records_alloc;
	uint64_t total_entries, total_pages;
	struct dt_vcpu_stats *vcpus;

	uint32_t buf[DT_STATS_BUF];
	uint32_t tmp[DT_STATS_BUF];
};

static int config_check(const struct dt_stats_config *cfg)
{
	if (cfg->horizon_epochs == 0 || cfg->coarse_epochs == 0 || cfg->region_pages == 0)
		return -EINVAL;
	if (cfg->nwindows > DT_STATS_MAX_WINDOWS)
		return -EINVAL;
	for (uint32_t i = 0; i < cfg->nwindows; i++) {
		if (cfg->windows[i] == 0 || cfg->windows[i] > cfg->horizon_epochs)
			return -EINVAL;
		if (i > 0 && cfg->windows[i] <= cfg->windows[i - 1])
			return -EINVAL;
	}
	return 0;
}

int dt_stats_new(const struct dt_stats_config *cfg, uint32_t nvcpus, struct dt_stats **ret)
{
	struct dt_stats *s;
	int r;

	if (!cfg || !ret)
		return -EINVAL;
	r = config_check(cfg);
	if (r < 0)
		return r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->horizon = cfg->horizon_epochs;
	/* recent_epochs 0 is allowed: every closed set goes straight into a bucket. */
	s->recent = cfg->recent_epochs < s->horizon ? cfg->recent_epochs : s->horizon;
	s->coarse = cfg->coarse_epochs;
	/* Buckets overlapping the horizon, plus the one being filled. */
	s->nbuckets = s->horizon / s->coarse + 2;
	s->nvcpus = nvcpus;
	s->buf_vcpu = DT_NO_VCPU;

	s->open = roaring_bitmap_create();
	if (!s->open)
		goto enomem;
	r = dt_lastset_new(s->horizon, &s->ls);
	if (r < 0)
		goto fail;
	if (s->recent) {
		s->recent_sets = calloc(s->recent, sizeof(*s->recent_sets));
		if (!s->recent_sets)
			goto enomem;
	}
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets)
		goto enomem;
	if (nvcpus) {
		s->vcpus = calloc(nvcpus, sizeof(*s->vcpus));
		s->vcpu_wss = calloc((size_t)nvcpus * (cfg->nwindows ? cfg->nwindows : 1),
				     sizeof(*s->vcpu_wss));
		if (!s->vcpus || !s->vcpu_wss)
			goto enomem;
		for (uint32_t v = 0; v < nvcpus; v++) {
			r = dt_lastset_new(s->horizon, &s->vcpus[v].ls);
			if (r < 0)
				goto fail;
			s->vcpus[v].open = roaring_bitmap_create();
			if (!s->vcpus[v].open)
				goto enomem;
		}
	}
	*ret = s;
	return 0;

enomem:
	r = -ENOMEM;
fail:
	dt_stats_free(s);
	return r;
}

struct dt_stats *dt_stats_free(struct dt_stats *s)
{
	if (!s)
		return NULL;
	if (s->open)
		roaring_bitmap_free(s->open);
	dt_lastset_free(s->ls);
	for (uint32_t i = 0; s->recent_sets && i < s->recent; i++)
		if (s->recent_sets[i])
			roaring_bitmap_free(s->recent_sets[i]);
	free(s->recent_sets);
	for (uint32_t i = 0; s->buckets && i < s->nbuckets; i++)
		if (s->buckets[i].set)
			roaring_bitmap_free(s->buckets[i].set);
	free(s->buckets);
	free(s->records);
	for (uint32_t v = 0; s->vcpus && v < s->nvcpus; v++) {
		dt_lastset_free(s->vcpus[v].ls);
		if (s->vcpus[v].open)
			roaring_bitmap_free(s->vcpus[v].open);
		if (s->vcpus[v].next)
			roaring_bitmap_free(s->vcpus[v].next);
	}
	free(s->vcpus);
	free(s->vcpu_wss);
	free(s);
	return NULL;
}

/* ---- open epoch: the hot path ------------------------------------------ */

/*
 * LSD radix sort, 8 bits per pass; a pass whose byte is the same for every
 * key is skipped (the top byte usually is, in a VM's dense index space).
 */
static void radix_sort(uint32_t *a, uint32_t *tmp, uint32_t n)
{
	uint32_t cnt[4][256];
	uint32_t *src = a, *dst = tmp;

	memset(cnt, 0, sizeof(cnt));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t v = a[i];

		cnt[0][v & 0xff]++;
		cnt[1][(v >> 8) & 0xff]++;
		cnt[2][(v >> 16) & 0xff]++;
		cnt[3][v >> 24]++;
	}
	for (unsigned int p = 0; p < 4; p++) {
		unsigned int shift = p * 8;
		uint32_t *c = cnt[p], sum = 0, *t;

		if (c[(src[0] >> shift) & 0xff] == n)
			continue;
		for (unsigned int b = 0; b < 256; b++) {
			uint32_t k = c[b];

			c[b] = sum;
			sum += k;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[c[(src[i] >> shift) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

/*
 * The VM's open set fills up quickly (bitset containers), where add_many
 * is cheapest. A vCPU's set holds a fraction of the pages and stays in
 * array containers for long, where add_many pays a memmove per page; a
 * sorted batch merged in with one OR per container is cheaper there.
 */
static void add_batch(roaring_bitmap_t *r, const uint32_t *pages, uint32_t n, bool merge)
{
	if (merge) {
		roaring_bitmap_t *b = roaring_bitmap_of_ptr(n, pages);

		if (b) {
			roaring_bitmap_or_inplace(r, b);
			roaring_bitmap_free(b);
			return;
		}
	}
	roaring_bitmap_add_many(r, n, pages);
}

static void stats_flush(struct dt_stats *s)
{
	if (s->run_hi > s->run_lo) {
		roaring_bitmap_add_range(s->open, s->run_lo, s->run_hi);
		s->run_lo = s->run_hi = 0;
	}
	if (s->nbuf == 0)
		return;
	/*
	 * Sorted input lets libroaring find each container once and append to
	 * array containers instead of inserting into their middle.
	 */
	if (s->buf_unsorted)
		radix_sort(s->buf, s->tmp, s->nbuf);
	add_batch(s->open, s->buf, s->nbuf, DT_STATS_MERGE_VM);
	if (s->buf_vcpu != DT_NO_VCPU)
		add_batch(s->vcpus[s->buf_vcpu].open, s->buf, s->nbuf, DT_STATS_MERGE_VCPU);
	s->nbuf = 0;
	s->buf_unsorted = false;
	s->buf_vcpu = DT_NO_VCPU;
}

static inline void buf_push(struct dt_stats *s, uint32_t page)
{
	uint32_t n = s->nbuf;

	if (n) {
		uint32_t last = s->buf[n - 1];

		/* A ring often reports the same page back to back. */
		if (page == last)
			return;
		s->buf_unsorted |= page < last;
	}
	s->buf[n] = page;
	s->nbuf = n + 1;
	if (n + 1 == DT_STATS_BUF)
		stats_flush(s);
}

void dt_stats_add(struct dt_stats *s, uint32_t page)
{
	s->open_entries++;
	if (__builtin_expect(s->buf_vcpu != DT_NO_VCPU, 0))
		stats_flush(s);
	buf_push(s, page);
}

void dt_stats_add_vcpu(struct dt_stats *s, uint32_t vcpu, uint32_t page)
{
	if (vcpu >= s->nvcpus) {
		dt_stats_add(s, page);
		return;
	}
	s->open_entries++;
	s->vcpus[vcpu].entries++;
	/* The buffer holds one vCPU's pages at a time; harvest goes ring by ring. */
	if (__builtin_expect(s->buf_vcpu != vcpu, 0)) {
		stats_flush(s);
		s->buf_vcpu = vcpu;
	}
	buf_push(s, page);
}

void dt_stats_add_word(struct dt_stats *s, uint32_t base, uint64_t bits)
{
	uint64_t room = (uint64_t)UINT32_MAX - base + 1;

	/* Bits past page index 2^32 - 1 do not name a page. */
	if (room < 64)
		bits &= (UINT64_C(1) << room) - 1;
	if (!bits)
		return;
	s->open_entries += (uint64_t)__builtin_popcountll(bits);

	if (bits == UINT64_MAX) {
		/* Fully dirty words come in long stretches: merge them into one range. */
		if (s->run_hi == base && s->run_hi > s->run_lo) {
			s->run_hi += 64;
		} else {
			if (s->run_hi > s->run_lo)
				roaring_bitmap_add_range(s->open, s->run_lo, s->run_hi);
			s->run_lo = base;
			s->run_hi = (uint64_t)base + 64;
		}
		return;
	}
	if (s->buf_vcpu != DT_NO_VCPU)
		stats_flush(s);
	do {
		buf_push(s, base + (uint32_t)__builtin_ctzll(bits));
		bits &= bits - 1;
	} while (bits);
}

/* ---- closing an epoch ---------------------------------------------------- */

static int records_reserve(struct dt_stats *s)
{
	struct dt_epoch_record *n;
	size_t alloc;

	/* Grow with the history so a young VM does not pay for the whole horizon. */
	if (s->epochs < s->records_alloc || s->records_alloc == s->horizon)
		return 0;
	alloc = s->records_alloc ? s->records_alloc * 2 : 64;
	if (alloc > s->horizon)
		alloc = s->horizon;
	n = realloc(s->records, alloc * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->records = n;
	s->records_alloc = alloc;
	return 0;
}

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

int dt_stats_close_epoch(struct dt_stats *s, uint64_t now_us)
{
	roaring_bitmap_t *next = NULL, *lcopy = NULL, *set;
	uint64_t now = s->epochs, pages;
	int r;

	stats_flush(s);
	pages = roaring_bitmap_get_cardinality(s->open);

	/*
	 * Prepare everything that can fail before changing anything, so an
	 * -ENOMEM leaves the open epoch intact for the next attempt.
	 */
	r = records_reserve(s);
	if (r < 0)
		return r;
	r = dt_lastset_reserve(s->ls);
	if (r < 0)
		return r;
	if (pages) {
		roaring_bitmap_run_optimize(s->open);
		roaring_bitmap_shrink_to_fit(s->open);
		next = roaring_bitmap_create();
		/* L[now] is eaten away by later epochs; the exact ring keeps S intact. */
		lcopy = roaring_bitmap_copy(s->open);
		if (!next || !lcopy)
			goto enomem;
	}
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		struct dt_vcpu_stats *vc = &s->vcpus[v];

		if (roaring_bitmap_is_empty(vc->open))
			continue;
		r = dt_lastset_reserve(vc->ls);
		if (r < 0)
			goto fail;
		if (!vc->next) {
			vc->next = roaring_bitmap_create();
			if (!vc->next)
				goto enomem;
		}
	}

	/* Commit: nothing below fails. */
	dt_lastset_commit(s->ls, lcopy);
	dt_lastset_counts(s->ls, s->cfg.windows, s->cfg.nwindows, s->wss);

	if (pages) {
		set = s->open;
		s->open = next;
	} else {
		set = NULL;
	}
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

	s->records[now % s->horizon] = (struct dt_epoch_record){
	    .epoch = now,
	    .end_us = now_us,
	    .pages = pages,
	    .entries = s->open_entries,
	};
	s->total_entries += s->open_entries;
	s->total_pages += pages;
	s->open_entries = 0;

	for (uint32_t v = 0; v < s->nvcpus; v++) {
		struct dt_vcpu_stats *vc = &s->vcpus[v];

		if (roaring_bitmap_is_empty(vc->open)) {
			dt_lastset_commit(vc->ls, NULL);
		} else {
			dt_lastset_commit(vc->ls, vc->open);
			vc->open = vc->next;
			vc->next = NULL;
		}
		dt_lastset_counts(vc->ls, s->cfg.windows, s->cfg.nwindows,
				  &s->vcpu_wss[(size_t)v * s->cfg.nwindows]);
	}
	s->epochs++;
	return 0;

enomem:
	r = -ENOMEM;
fail:
	if (next)
		roaring_bitmap_free(next);
	if (lcopy)
		roaring_bitmap_free(lcopy);
	return r;
}

/* ---- queries -------------------------------------------------------------- */

uint64_t dt_stats_epochs(const struct dt_stats *s) { return s->epochs; }

const struct dt_stats_config *dt_stats_config(const struct dt_stats *s) { return &s->cfg; }

static int window_index(const struct dt_stats *s, uint32_t window)
{
	for (uint32_t i = 0; i < s->cfg.nwindows; i++)
		if (s->cfg.windows[i] == window)
			return (int)i;
	return -1;
}

uint64_t dt_stats_wss(const struct dt_stats *s, uint32_t window)
{
	int i = window_index(s, window);

	if (i >= 0)
		return s->wss[i];
	return dt_lastset_count(s->ls, window);
}

uint64_t dt_stats_wss_range(const struct dt_stats *s, uint32_t window, uint32_t lo, uint32_t hi)
{
	return dt_lastset_count_range(s->ls, window, lo, hi);
}

uint64_t dt_stats_vcpu_wss(const struct dt_stats *s, uint32_t vcpu, uint32_t window)
{
	int i;

	if (vcpu >= s->nvcpus)
		return 0;
	i = window_index(s, window);
	if (i >= 0)
		return s->vcpu_wss[(size_t)vcpu * s->cfg.nwindows + (size_t)i];
	return dt_lastset_count(s->vcpus[vcpu].ls, window);
}

uint64_t dt_stats_vcpu_entries(const struct dt_stats *s, uint32_t vcpu)
{
	return vcpu < s->nvcpus ? s->vcpus[vcpu].entries : 0;
}

uint64_t dt_stats_total_entries(const struct dt_stats *s) { return s->total_entries; }

uint64_t dt_stats_total_pages(const struct dt_stats *s) { return s->total_pages; }

size_t dt_stats_history(const struct dt_stats *s, uint64_t since, struct dt_epoch_record *out,
			size_t max)
{
	uint64_t e = s->epochs > s->horizon ? s->epochs - s->horizon : 0;
	size_t n = 0;

	if (since > e)
		e = since;
	for (; e < s->epochs && n < max; e++)
		out[n++] = s->records[e % s->horizon];
	return n;
}

/* ---- heatmap -------------------------------------------------------------- */

#define ITER_CHUNK 256

/*
 * Add every page of `set` below `limit` to the dirtyings of its region.
 * Every such page is in the window's union, so its region is in out[].
 */
static void heat_bin(const roaring_bitmap_t *set, struct dt_heat *out, size_t n, uint32_t rp,
		     uint64_t limit)
{
	roaring_uint32_iterator_t it;
	uint32_t vals[ITER_CHUNK], got;
	size_t j = 0;

	roaring_init_iterator(set, &it);
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
	roaring_uint32_iterator_t it;
	uint32_t vals[ITER_CHUNK], got, rp = s->cfg.region_pages;
	roaring_bitmap_t *u;
	uint64_t first, limit = (uint64_t)UINT32_MAX + 1, exact_first, last_bucket, id;
	size_t n = 0;
	bool full = false;

	if (window == 0 || max == 0 || s->epochs == 0)
		return 0;
	if (window > s->horizon)
		window = s->horizon;
	if (window > s->epochs)
		window = (uint32_t)s->epochs;
	first = s->epochs - window;

	/* Distinct pages per region are exact: the union of the window's L sets. */
	u = dt_lastset_union(s->ls, window);
	if (!u)
		return -ENOMEM;
	roaring_init_iterator(u, &it);
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
			heat_bin(set, out, n, rp, limit);
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
			heat_bin(x, out, n, rp, limit);
			roaring_bitmap_free(x);
		}
	}
	roaring_bitmap_free(u);
	return (int)n;
}

/* ---- memory ------------------------------------------------------------- */

size_t dt_stats_memory(const struct dt_stats *s)
{
	size_t m = sizeof(*s);

	m += dt_roaring_memory(s->open);
	m += dt_lastset_memory(s->ls);
	m += s->recent * sizeof(*s->recent_sets);
	for (uint32_t i = 0; i < s->recent; i++)
		m += dt_roaring_memory(s->recent_sets[i]);
	m += s->nbuckets * sizeof(*s->buckets);
	for (uint32_t i = 0; i < s->nbuckets; i++)
		m += dt_roaring_memory(s->buckets[i].set);
	m += s->records_alloc * sizeof(*s->records);
	m += (size_t)s->nvcpus *
	     (sizeof(*s->vcpus) + (s->cfg.nwindows ? s->cfg.nwindows : 1) * sizeof(*s->vcpu_wss));
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		m += dt_roaring_memory(s->vcpus[v].open);
		m += dt_roaring_memory(s->vcpus[v].next);
		m += dt_lastset_memory(s->vcpus[v].ls);
	}
	return m;
}

int dt_stats_epoch_pages(const struct dt_stats *s, uint64_t epoch,
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
