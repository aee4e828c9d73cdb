/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Closing an epoch (see dt_stats.h), whole or in bounded steps.
 *
 * begin swaps the open sets (the VM's and each vCPU's) with empty ones, so
 * harvesting goes on into the next epoch while this one closes. Then, per
 * target (the VM, then each vCPU), chunk by chunk or container by container:
 *   build:   the sealed open set becomes a roaring set (dt_open_build_*);
 *   reserve: room in the target's last-dirty index (may fail: nothing
 *            counted has changed yet, and the next step starts over);
 *   update:  the index's counts move (cannot fail); from here on a query
 *            that walks an index completes the close first (settle);
 *   compact: the VM's set becomes runs where smaller, a share of its
 *            containers per step;
 *   done:    each index ends its epoch, the VM's set is kept, the record
 *            written, the epoch counted: all at once, so the O(1) figures
 *            (configured windows, records, epoch count) switch together.
 */
#include <errno.h>
#include <stdlib.h>

#include "dt_roaring.h"
#include "dt_stats_int.h"
#include "dt_util.h"

/* Budget units a chunk's build costs: 1024 words counted and converted. */
#define CHUNK_UNITS 256u

static struct dt_open *target_open(struct dt_stats *s, uint32_t t)
{
	return t ? &s->vcpus[t - 1].closing : s->closing;
}

static roaring_bitmap_t **target_set(struct dt_stats *s, uint32_t t)
{
	return t ? &s->vcpus[t - 1].set : &s->cl.set;
}

static struct dt_lastidx *target_ls(struct dt_stats *s, uint32_t t)
{
	return t ? s->vcpus[t - 1].ls : s->ls;
}

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

/* The epoch being closed, whole and on its own (may fail). */
static int closed_new(const struct dt_stats *s, struct dt_closed_epoch **ret)
{
	size_t total = 0, head = sizeof(struct dt_closed_epoch) +
				  (size_t)s->nvcpus * sizeof(struct dt_closed_vcpu);
	const roaring_bitmap_t *set = s->cl.set;
	uint64_t pages = s->cl.pages;
	struct dt_closed_epoch *e;
	uint32_t *arena;

	for (uint32_t v = 0; v < s->nvcpus; v++)
		total += roaring_bitmap_get_cardinality(s->vcpus[v].set);
	e = malloc(head + total * sizeof(uint32_t));
	if (!e)
		return -ENOMEM;
	e->rec = (struct dt_epoch_record){
		.epoch = s->epochs,
		.end_us = s->cl.end_us,
		.pages = pages,
		.entries = s->cl.entries,
	};
	e->set = NULL;
	if (pages) {
		e->set = roaring_bitmap_copy(set);
		if (!e->set) {
			free(e);
			return -ENOMEM;
		}
	}
	e->nvcpus = s->nvcpus;
	e->bytes = head + total * sizeof(uint32_t) +
		   (pages ? roaring_bitmap_size_in_bytes(e->set) : 0);
	arena = (uint32_t *)((uint8_t *)e + head);
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		const roaring_bitmap_t *vset = s->vcpus[v].set;
		uint32_t n = (uint32_t)roaring_bitmap_get_cardinality(vset);

		if (n)
			roaring_bitmap_to_uint32_array(vset, arena);
		e->vcpus[v] = (struct dt_closed_vcpu){
			.entries = s->vcpus[v].closing_entries,
			.n = n,
			.pages = arena,
		};
		arena += n;
	}
	*ret = e;
	return 0;
}

const struct dt_epoch_record *dt_closed_epoch_record(const struct dt_closed_epoch *e)
{
	return &e->rec;
}

size_t dt_closed_epoch_bytes(const struct dt_closed_epoch *e)
{
	return e->bytes;
}

struct dt_closed_epoch *dt_closed_epoch_free(struct dt_closed_epoch *e)
{
	if (e) {
		if (e->set)
			roaring_bitmap_free(e->set);
		free(e);
	}
	return NULL;
}

bool dt_stats_closing(const struct dt_stats *s)
{
	return s->cl.phase != DT_CLOSE_IDLE;
}

static void swap_open(struct dt_open *a, struct dt_open *b)
{
	struct dt_open t = *a;

	*a = *b;
	*b = t;
}

int dt_stats_close_begin(struct dt_stats *s, uint64_t now_us, bool want_closed)
{
	struct dt_open *o;
	int r;

	if (s->cl.phase != DT_CLOSE_IDLE)
		return -EBUSY;
	r = records_reserve(s);
	if (r < 0)
		return r;
	/* The empty buffers keep their spare bitsets from the close before. */
	o = s->open;
	s->open = s->closing;
	s->closing = o;
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		struct dt_vcpu_stats *vc = &s->vcpus[v];

		swap_open(&vc->open, &vc->closing);
		vc->closing_entries = vc->entries;
	}
	s->cl = (struct dt_close){
		.phase = DT_CLOSE_BUILD,
		.want = want_closed,
		.end_us = now_us,
		.entries = s->open_entries,
	};
	s->open_entries = 0;
	return 0;
}

/* Drop what the build and reserve phases made: the next step starts over. */
static void close_restart(struct dt_stats *s)
{
	for (uint32_t t = 0; t <= s->nvcpus; t++) {
		roaring_bitmap_t **set = target_set(s, t);

		if (*set)
			roaring_bitmap_free(*set);
		*set = NULL;
	}
	s->cl.phase = DT_CLOSE_BUILD;
	s->cl.t = s->cl.pos = 0;
}

/* Undo begin (nothing was added since): the sealed pages are open again. */
static void close_abort(struct dt_stats *s)
{
	struct dt_open *o = s->open;

	close_restart(s);
	s->open = s->closing;
	s->closing = o;
	for (uint32_t v = 0; v < s->nvcpus; v++)
		swap_open(&s->vcpus[v].open, &s->vcpus[v].closing);
	s->open_entries += s->cl.entries;
	s->cl = (struct dt_close){ .phase = DT_CLOSE_IDLE };
}

static int step_build(struct dt_stats *s, uint64_t *left)
{
	struct dt_open *o = target_open(s, s->cl.t);
	roaring_bitmap_t **set = target_set(s, s->cl.t);
	uint64_t chunks = *left / CHUNK_UNITS + 1;
	uint32_t before;
	int r;

	if (!*set) {
		r = dt_open_build_begin(o, set);
		if (r < 0)
			return r;
	}
	before = s->cl.pos;
	r = dt_open_build_chunks(o, *set, &s->cl.pos, chunks > UINT32_MAX ? UINT32_MAX :
						       (uint32_t)chunks);
	*left -= DT_MIN(*left, (uint64_t)(s->cl.pos - before) * CHUNK_UNITS);
	if (r != 0)
		return r; /* more chunks, or -ENOMEM */
	r = dt_open_build_end(o, set);
	if (r < 0)
		return r;
	*left -= DT_MIN(*left, (uint64_t)o->log.n / 64);
	s->cl.pos = 0;
	return 0;
}

/* Container by container from cl.pos: reserve (may fail) or update. */
static int step_index(struct dt_stats *s, uint64_t *left, bool update)
{
	const roaring_bitmap_t *set = *target_set(s, s->cl.t);
	struct dt_lastidx *ls = target_ls(s, s->cl.t);
	uint32_t nc = dt_roaring_ncontainers(set);

	while (s->cl.pos < nc) {
		uint32_t nb;

		if (!*left)
			return 1;
		nb = dt_roaring_container_blocks(set, s->cl.pos, s->blk);
		if (update) {
			dt_lastidx_update_blocks(ls, s->blk, nb);
		} else {
			int r = dt_lastidx_reserve_blocks(ls, s->blk, nb);

			if (r < 0)
				return r;
		}
		s->cl.pos++;
		*left -= DT_MIN(*left, (uint64_t)nb + 1);
	}
	s->cl.pos = 0;
	return 0;
}

/* The VM's set compacted (sequential sweeps collapse to a few runs), a share at a time. */
static int step_compact(struct dt_stats *s, uint64_t *left)
{
	uint64_t max = *left / CHUNK_UNITS + 1;
	uint32_t before = s->cl.pos;
	int r;

	if (s->cl.t || !s->cl.pages)
		return 0;
	r = dt_roaring_run_optimize_step(s->cl.set, &s->cl.pos,
					 max > UINT32_MAX ? UINT32_MAX : (uint32_t)max);
	*left -= DT_MIN(*left, (uint64_t)(s->cl.pos - before) * CHUNK_UNITS);
	if (r)
		return 1;
	roaring_bitmap_shrink_to_fit(s->cl.set); /* nothing left to convert: headers only */
	s->cl.pos = 0;
	return 0;
}

/* The epoch applied, all at once. */
static void close_apply(struct dt_stats *s)
{
	roaring_bitmap_t *set = s->cl.set;
	uint64_t now = s->epochs, pages = s->cl.pages;

	dt_lastidx_end(s->ls, pages);
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		struct dt_vcpu_stats *vc = &s->vcpus[v];

		dt_lastidx_end(vc->ls, roaring_bitmap_get_cardinality(vc->set));
		roaring_bitmap_free(vc->set);
		vc->set = NULL;
	}
	if (!pages) {
		roaring_bitmap_free(set);
		set = NULL;
	}
	s->cl.set = NULL;
	dt_stats_keep_set(s, now, set);
	s->records[now % s->horizon] = (struct dt_epoch_record){
		.epoch = now,
		.end_us = s->cl.end_us,
		.pages = pages,
		.entries = s->cl.entries,
	};
	s->total_entries += s->cl.entries;
	s->total_pages += pages;
	s->epochs++;
	s->cl.phase = DT_CLOSE_RESET;
	s->cl.t = s->cl.pos = 0;
}

/* Clear the sealed open sets for the next close, a share of chunks at a time. */
static int step_reset(struct dt_stats *s, uint64_t *left)
{
	uint64_t chunks = *left / CHUNK_UNITS + 1;
	uint32_t before = s->cl.pos;
	int r;

	struct dt_open *dst = s->cl.t ? &s->vcpus[s->cl.t - 1].open : s->open;

	r = dt_open_reset_step(target_open(s, s->cl.t), dst, &s->cl.pos,
			       chunks > UINT32_MAX ? UINT32_MAX : (uint32_t)chunks);
	*left -= DT_MIN(*left, (uint64_t)(s->cl.pos - before) * CHUNK_UNITS + 1);
	if (r == 0)
		s->cl.pos = 0;
	return r;
}

static int close_run(struct dt_stats *s, uint64_t left)
{
	bool bounded = left != UINT64_MAX;
	int r;

	while (s->cl.phase != DT_CLOSE_DONE) {
		if (!left)
			return 1;
		switch (s->cl.phase) {
		case DT_CLOSE_BUILD:
			r = step_build(s, &left);
			break;
		case DT_CLOSE_RESERVE:
			r = step_index(s, &left, false);
			if (r == 0)
				r = dt_lastidx_reserve_epoch(
				    target_ls(s, s->cl.t),
				    roaring_bitmap_get_cardinality(*target_set(s, s->cl.t)));
			break;
		case DT_CLOSE_UPDATE:
			if (s->cl.pos == 0)
				dt_lastidx_begin(target_ls(s, s->cl.t));
			r = step_index(s, &left, true);
			break;
		case DT_CLOSE_COMPACT:
			r = step_compact(s, &left);
			break;
		case DT_CLOSE_APPLY:
			close_apply(s);
			left -= DT_MIN(left, (uint64_t)CHUNK_UNITS);
			continue;
		case DT_CLOSE_RESET:
			r = step_reset(s, &left);
			break;
		default:
			return -EINVAL; /* not reached */
		}
		if (r < 0) {
			close_restart(s);
			return r;
		}
		if (r > 0)
			continue; /* out of budget in the middle of a target */
		if (++s->cl.t <= s->nvcpus)
			continue;
		/* Every target through this phase. */
		s->cl.t = 0;
		if (s->cl.phase == DT_CLOSE_BUILD) {
			s->cl.pages = roaring_bitmap_get_cardinality(s->cl.set);
			s->cl.phase = DT_CLOSE_RESERVE;
		} else if (s->cl.phase == DT_CLOSE_RESERVE) {
			if (s->cl.want) {
				r = closed_new(s, &s->cl.closed);
				if (r < 0) {
					close_restart(s);
					return r;
				}
			}
			s->cl.phase = DT_CLOSE_UPDATE;
		} else if (s->cl.phase == DT_CLOSE_UPDATE) {
			s->cl.phase = DT_CLOSE_COMPACT;
		} else if (s->cl.phase == DT_CLOSE_COMPACT) {
			s->cl.phase = DT_CLOSE_APPLY;
			/* A bounded step ends here: applying walks each index's sweep and the buckets. */
			if (bounded)
				left = 0;
		} else {
			s->cl.phase = DT_CLOSE_DONE;
		}
	}
	return 0;
}

int dt_stats_close_step(struct dt_stats *s, uint64_t budget, struct dt_closed_epoch **ret)
{
	int r;

	if (s->cl.phase == DT_CLOSE_IDLE)
		return -EINVAL;
	r = close_run(s, budget ? budget : 1);
	if (r != 0)
		return r;
	if (ret)
		*ret = s->cl.closed;
	else
		dt_closed_epoch_free(s->cl.closed);
	s->cl = (struct dt_close){ .phase = DT_CLOSE_IDLE };
	return 0;
}

void dt_stats_settle(const struct dt_stats *cs)
{
	/* See dt_stats_int.h: the one write through a const pointer. */
	struct dt_stats *s = (struct dt_stats *)cs;

	/* Counts that moved cannot move back: finish (nothing below fails). */
	if (s->cl.phase == DT_CLOSE_UPDATE || s->cl.phase == DT_CLOSE_COMPACT ||
	    s->cl.phase == DT_CLOSE_APPLY)
		close_run(s, UINT64_MAX);
}

int dt_stats_close_epoch(struct dt_stats *s, uint64_t now_us, struct dt_closed_epoch **ret)
{
	int r;

	r = dt_stats_close_begin(s, now_us, ret != NULL);
	if (r < 0)
		return r;
	r = dt_stats_close_step(s, UINT64_MAX, ret);
	if (r < 0)
		close_abort(s); /* -ENOMEM: the pages wait in the open epoch */
	return r;
}
