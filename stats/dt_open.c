/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_open.h"
#include "dt_roaring.h"

int dt_open_init(struct dt_open *o, uint32_t promote)
{
	*o = (struct dt_open){ .promote = promote };
	o->fallback = roaring_bitmap_create();
	return o->fallback ? 0 : -ENOMEM;
}

void dt_open_fini(struct dt_open *o)
{
	for (uint32_t i = 0; i < o->nkept; i++) {
		free(o->dir[o->kept[i]].bits);
		free(o->dir[o->kept[i]].spare);
	}
	free(o->dir);
	free(o->touched);
	free(o->kept);
	dt_vlog_fini(&o->log);
	if (o->fallback)
		roaring_bitmap_free(o->fallback);
	*o = (struct dt_open){ 0 };
}

/* Cover chunk ids below `need` (doubling, at most the whole index space). */
static int dir_grow(struct dt_open *o, uint32_t need)
{
	uint32_t n = o->ndir ? o->ndir : 16;
	struct dt_open_chunk *d;
	uint32_t *t, *k;

	while (n < need)
		n *= 2;
	if (n > DT_OPEN_NCHUNK)
		n = DT_OPEN_NCHUNK;
	/* touched gets twice the room: its second half is the sort's scratch. */
	t = realloc(o->touched, (size_t)n * 2 * sizeof(*t));
	if (!t)
		return -ENOMEM;
	o->touched = t;
	k = realloc(o->kept, (size_t)n * sizeof(*k));
	if (!k)
		return -ENOMEM;
	o->kept = k;
	d = realloc(o->dir, (size_t)n * sizeof(*d));
	if (!d)
		return -ENOMEM;
	memset(d + o->ndir, 0, (size_t)(n - o->ndir) * sizeof(*d));
	o->dir = d;
	o->ndir = n;
	return 0;
}

static void ranges_flush(struct dt_open *o)
{
	if (o->run_hi > o->run_lo) {
		roaring_bitmap_add_range(o->fallback, o->run_lo, o->run_hi);
		o->run_lo = o->run_hi = 0;
	}
}

static void fallback_add(struct dt_open *o, uint32_t page)
{
	if (!dt_vlog_add(&o->log, page))
		roaring_bitmap_add(o->fallback, page); /* slower, nothing lost */
}

void dt_open_add_slow(struct dt_open *o, uint32_t page)
{
	uint32_t c = page >> DT_OPEN_SHIFT, off = page & ((1u << DT_OPEN_SHIFT) - 1);
	struct dt_open_chunk *ch;

	if (c >= o->ndir && dir_grow(o, c + 1) < 0) {
		fallback_add(o, page);
		return;
	}
	ch = &o->dir[c]; /* no bitset in use: the fast path would have taken it */
	if (!ch->hits)
		o->touched[o->ntouched++] = c; /* first page of the chunk this epoch */
	ch->hits++;
	if (ch->spare) {
		/* Used last epoch: likely used again, at once. */
		ch->bits = ch->spare;
		ch->spare = NULL;
	} else if (ch->hits >= o->promote) {
		ch->bits = calloc(DT_OPEN_WORDS, sizeof(uint64_t));
		if (ch->bits) {
			o->kept[o->nkept++] = c;
			o->nchunks++;
		}
	}
	if (!ch->bits) {
		fallback_add(o, page);
		return;
	}
	ch->bits[off / 64] |= UINT64_C(1) << (off % 64);
}

void dt_open_add_range(struct dt_open *o, uint64_t lo, uint64_t hi)
{
	if (o->run_hi == lo && o->run_hi > o->run_lo) {
		o->run_hi = hi;
		return;
	}
	if (o->run_hi > o->run_lo)
		roaring_bitmap_add_range(o->fallback, o->run_lo, o->run_hi);
	o->run_lo = lo;
	o->run_hi = hi;
}

int dt_open_build_begin(struct dt_open *o, roaring_bitmap_t **ret)
{
	roaring_bitmap_t *chunks;

	/* Same set, different representation. */
	ranges_flush(o);
	dt_vlog_finish(&o->log);
	chunks = roaring_bitmap_create();
	if (!chunks)
		return -ENOMEM;
	/* Containers go in by ascending key (none touched: no directory, touched is NULL). */
	if (o->ntouched)
		dt_radix_sort(o->touched, o->touched + o->ndir, o->ntouched);
	*ret = chunks;
	return 0;
}

int dt_open_build_chunks(struct dt_open *o, roaring_bitmap_t *r, uint32_t *pos, uint32_t max)
{
	uint32_t i = *pos, end = o->ntouched - i < max ? o->ntouched : i + max;

	for (; i < end; i++) {
		const struct dt_open_chunk *ch = &o->dir[o->touched[i]];
		int e;

		if (!ch->bits)
			continue;
		e = dt_roaring_append_words(r, (uint16_t)o->touched[i], ch->bits);
		if (e < 0) {
			*pos = i;
			return e;
		}
	}
	*pos = i;
	return i < o->ntouched;
}

int dt_open_build_end(struct dt_open *o, roaring_bitmap_t **r)
{
	/*
	 * In place: the work is per container of the fallback and page of the
	 * log, where a new union would copy every chunk (32 MiB at 1 TiB).
	 */
	if (!roaring_bitmap_is_empty(o->fallback))
		roaring_bitmap_or_inplace(*r, o->fallback);
	/* Sorted: libroaring appends to each container once. */
	if (o->log.n)
		roaring_bitmap_add_many(*r, o->log.n, o->log.a);
	return 0;
}

int dt_open_build(struct dt_open *o, roaring_bitmap_t **ret)
{
	roaring_bitmap_t *r;
	uint32_t pos = 0;
	int e;

	e = dt_open_build_begin(o, &r);
	if (e < 0)
		return e;
	e = dt_open_build_chunks(o, r, &pos, UINT32_MAX);
	if (e >= 0)
		e = dt_open_build_end(o, &r);
	if (e < 0) {
		roaring_bitmap_free(r);
		return e;
	}
	*ret = r;
	return 0;
}

/* Bitsets used in this epoch are likely used in the next: keep those, free the others. */
static void reset_kept(struct dt_open *o)
{
	uint32_t n = 0;

	/* Before the chunks are cleared: bits says which were used. */
	for (uint32_t i = 0; i < o->nkept; i++) {
		struct dt_open_chunk *ch = &o->dir[o->kept[i]];

		if (ch->bits) {
			o->kept[n++] = o->kept[i];
			continue;
		}
		free(ch->spare);
		ch->spare = NULL;
		o->nchunks--;
	}
	o->nkept = n;
}

/* A cleared bitset of o's chunk c becomes dst's spare there, if dst has none. */
static void spare_to(struct dt_open *o, struct dt_open *dst, uint32_t c, uint64_t *bits)
{
	struct dt_open_chunk *d;

	o->nchunks--;
	if (c >= dst->ndir && dir_grow(dst, c + 1) < 0) {
		free(bits);
		return;
	}
	d = &dst->dir[c];
	if (d->bits || d->spare) {
		free(bits);
		return;
	}
	/* Not listed in kept: a chunk is there exactly while it has bits or a spare. */
	d->spare = bits;
	dst->kept[dst->nkept++] = c;
	dst->nchunks++;
}

int dt_open_reset_step(struct dt_open *o, struct dt_open *dst, uint32_t *pos, uint32_t max)
{
	uint32_t i = *pos, end = o->ntouched - i < max ? o->ntouched : i + max;

	if (i == 0)
		reset_kept(o);
	for (; i < end; i++) {
		struct dt_open_chunk *ch = &o->dir[o->touched[i]];

		ch->hits = 0;
		if (ch->bits) {
			memset(ch->bits, 0, DT_OPEN_WORDS * sizeof(uint64_t));
			if (dst)
				spare_to(o, dst, o->touched[i], ch->bits);
			else
				ch->spare = ch->bits;
			ch->bits = NULL;
		}
	}
	*pos = i;
	if (i < o->ntouched)
		return 1;
	if (dst)
		o->nkept = 0; /* every bitset went to dst or was freed */
	/*
	 * Without bitsets the directory only counted hits: give it back (a
	 * VM scattering pages over a huge index space would hold up to 2 MiB
	 * per vCPU for nothing).
	 */
	if (!o->nkept) {
		free(o->dir);
		free(o->touched);
		free(o->kept);
		o->dir = NULL;
		o->touched = o->kept = NULL;
		o->ndir = 0;
	}
	o->ntouched = 0;
	roaring_bitmap_clear(o->fallback);
	dt_vlog_reset(&o->log);
	o->run_lo = o->run_hi = 0;
	return 0;
}

void dt_open_reset(struct dt_open *o)
{
	uint32_t pos = 0;

	dt_open_reset_step(o, NULL, &pos, UINT32_MAX);
}

size_t dt_open_memory(const struct dt_open *o)
{
	return dt_vlog_memory(&o->log) + (size_t)o->nchunks * DT_OPEN_WORDS * sizeof(uint64_t) +
	       (size_t)o->ndir * (sizeof(*o->dir) + 3 * sizeof(uint32_t)) +
	       dt_roaring_memory(o->fallback);
}
