/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-VM dirty-page statistics (see dt_stats.h for the contract).
 *
 * Open epoch: the VM's pages, and each vCPU's ring pages, in chunk bitsets
 * (dt_open.c). Closing (dt_close.c, whole or in bounded steps) turns each
 * into a roaring set and feeds, per VM and per vCPU, a last-dirty index
 * (dt_lastidx.c) 64 pages at a time, whose cost is per dirty block of the
 * epoch: exact D(T). The VM's
 * set is kept exactly for recent_epochs and then coarsened into buckets
 * (dt_heatmap.c); a ring of per-epoch records covers the horizon.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dt_roaring.h"
#include "dt_stats_int.h"

/*
 * Pages a chunk sees in an epoch before it gets a bitset: the VM's at 64
 * (at most 128 B of bitset per dirty page); a vCPU's at 4096 (6 % of the
 * chunk, 2 B per page): several vCPUs each writing a little of many chunks
 * (8 over 16 Mi pages) would miss the cache on every bit store, where
 * their logs append.
 */
#define DT_VM_PROMOTE	64u
#define DT_VCPU_PROMOTE 4096u

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

/* For a dirtying `age` epochs old, the first configured window that still holds it. */
static int windows_init(struct dt_windows *win, const struct dt_stats_config *cfg)
{
	uint32_t i = 0;

	win->n = cfg->nwindows;
	memcpy(win->w, cfg->windows, sizeof(win->w));
	win->k = malloc((size_t)cfg->horizon_epochs + 1);
	if (!win->k)
		return -ENOMEM;
	for (uint64_t age = 0; age <= cfg->horizon_epochs; age++) {
		while (i < win->n && win->w[i] <= age)
			i++;
		win->k[age] = (uint8_t)i;
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

	r = windows_init(&s->win, cfg);
	if (r < 0)
		goto fail;
	s->open = malloc(sizeof(*s->open));
	s->closing = malloc(sizeof(*s->closing));
	if (!s->open || !s->closing) {
		free(s->open);
		free(s->closing);
		s->open = s->closing = NULL;
		goto enomem;
	}
	r = dt_open_init(s->open, DT_VM_PROMOTE);
	if (r >= 0)
		r = dt_open_init(s->closing, DT_VM_PROMOTE);
	if (r < 0)
		goto fail;
	r = dt_lastidx_new(s->horizon, &s->win, &s->ls);
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
		if (!s->vcpus)
			goto enomem;
		for (uint32_t v = 0; v < nvcpus; v++) {
			r = dt_open_init(&s->vcpus[v].open, DT_VCPU_PROMOTE);
			if (r >= 0)
				r = dt_open_init(&s->vcpus[v].closing, DT_VCPU_PROMOTE);
			if (r < 0)
				goto fail;
			r = dt_lastidx_new(s->horizon, &s->win, &s->vcpus[v].ls);
			if (r < 0)
				goto fail;
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
	if (s->open) {
		dt_open_fini(s->open);
		free(s->open);
	}
	if (s->closing) {
		dt_open_fini(s->closing);
		free(s->closing);
	}
	if (s->cl.set)
		roaring_bitmap_free(s->cl.set);
	dt_closed_epoch_free(s->cl.closed);
	dt_lastidx_free(s->ls);
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
		dt_lastidx_free(s->vcpus[v].ls);
		dt_open_fini(&s->vcpus[v].open);
		dt_open_fini(&s->vcpus[v].closing);
		if (s->vcpus[v].set)
			roaring_bitmap_free(s->vcpus[v].set);
	}
	free(s->vcpus);
	free(s->win.k);
	free(s);
	return NULL;
}

/* ---- open epoch: the hot path ------------------------------------------ */

void dt_stats_add(struct dt_stats *s, uint32_t page)
{
	s->open_entries++;
	dt_open_add(s->open, page);
}

void dt_stats_add_vcpu(struct dt_stats *s, uint32_t vcpu, uint32_t page)
{
	struct dt_vcpu_stats *vc;

	if (vcpu >= s->nvcpus) {
		dt_stats_add(s, page);
		return;
	}
	vc = &s->vcpus[vcpu];
	s->open_entries++;
	vc->entries++;
	dt_open_add(s->open, page);
	dt_open_add(&vc->open, page);
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
	/* Fully dirty words come in long stretches: merged into one range. */
	if (bits == UINT64_MAX) {
		dt_open_add_range(s->open, base, (uint64_t)base + 64);
		return;
	}
	dt_open_add_word(s->open, base, bits);
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
		return dt_lastidx_wss(s->ls, (uint32_t)i); /* O(1), moves at the close's end */
	return dt_lastidx_count(dt_stats_ls(s), window);
}

uint64_t dt_stats_wss_range(const struct dt_stats *s, uint32_t window, uint32_t lo, uint32_t hi)
{
	return dt_lastidx_count_range(dt_stats_ls(s), window, lo, hi);
}

int dt_stats_wss_range_at(const struct dt_stats *s, uint64_t lo, uint64_t hi,
			  const uint32_t *windows, uint32_t n, uint64_t *out)
{
	return dt_lastidx_count_range_at(dt_stats_ls(s), lo, hi, windows, n, out);
}

void dt_stats_wss_range_curve(const struct dt_stats *s, uint32_t lo, uint32_t hi, uint64_t *out)
{
	dt_lastidx_count_range_windows(dt_stats_ls(s), lo, hi, out);
}

uint64_t dt_stats_vcpu_wss(const struct dt_stats *s, uint32_t vcpu, uint32_t window)
{
	int i;

	if (vcpu >= s->nvcpus)
		return 0;
	i = window_index(s, window);
	if (i >= 0)
		return dt_lastidx_wss(s->vcpus[vcpu].ls, (uint32_t)i);
	return dt_lastidx_count(dt_stats_vcpu_ls(s, vcpu), window);
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

size_t dt_stats_memory(const struct dt_stats *s)
{
	size_t m = sizeof(*s) + sizeof(*s->open) + s->horizon + 1;

	m += dt_open_memory(s->open) + sizeof(*s->closing) + dt_open_memory(s->closing);
	m += dt_roaring_memory(s->cl.set);
	m += dt_lastidx_memory(s->ls);
	m += dt_stats_sets_memory(s);
	m += s->records_alloc * sizeof(*s->records);
	m += (size_t)s->nvcpus * sizeof(*s->vcpus);
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		m += dt_open_memory(&s->vcpus[v].open) + dt_open_memory(&s->vcpus[v].closing);
		m += dt_roaring_memory(s->vcpus[v].set);
		m += dt_lastidx_memory(s->vcpus[v].ls);
	}
	return m;
}
