/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_open.h"
#include "dt_roaring.h"
#include "dt_vlog.h"

int dt_open_init(struct dt_open *o)
{
	memset(o, 0, offsetof(struct dt_open, buf));
	memset(o->slots, 0, sizeof(o->slots));
	o->fallback = roaring_bitmap_create();
	return o->fallback ? 0 : -ENOMEM;
}

void dt_open_fini(struct dt_open *o)
{
	for (uint32_t i = 0; i < DT_OPEN_SLOTS; i++)
		free(o->slots[i].bits);
	memset(o->slots, 0, sizeof(o->slots));
	if (o->fallback)
		roaring_bitmap_free(o->fallback);
	o->fallback = NULL;
}

/* Chunk ids are dense in a VM's index space: the identity spreads them best. */
static struct dt_open_slot *slot_find(struct dt_open *o, uint32_t key, bool insert)
{
	for (uint32_t i = key, n = 0; n < DT_OPEN_SLOTS; i++, n++) {
		struct dt_open_slot *sl = &o->slots[i & (DT_OPEN_SLOTS - 1)];

		if (sl->key == key)
			return sl;
		if (sl->key == 0) {
			/* Keep the table half empty so probes stay short. */
			if (!insert || o->nslots >= DT_OPEN_SLOTS / 2)
				return NULL;
			sl->key = key;
			o->nslots++;
			return sl;
		}
	}
	return NULL;
}

static void fallback_flush(struct dt_open *o)
{
	if (o->run_hi > o->run_lo) {
		roaring_bitmap_add_range(o->fallback, o->run_lo, o->run_hi);
		o->run_lo = o->run_hi = 0;
	}
	if (!o->nbuf)
		return;
	/* Sorted input lets libroaring append to each container once. */
	if (o->buf_unsorted)
		dt_radix_sort(o->buf, o->tmp, o->nbuf);
	roaring_bitmap_add_many(o->fallback, o->nbuf, o->buf);
	o->nbuf = 0;
	o->buf_unsorted = false;
}

static void fallback_add(struct dt_open *o, uint32_t page)
{
	uint32_t n = o->nbuf;

	if (n) {
		if (page == o->buf[n - 1])
			return;
		o->buf_unsorted |= page < o->buf[n - 1];
	}
	o->buf[n] = page;
	o->nbuf = n + 1;
	if (n + 1 == DT_OPEN_BUF)
		fallback_flush(o);
}

void dt_open_add_slow(struct dt_open *o, uint32_t page)
{
	uint32_t key = (page >> DT_OPEN_SHIFT) + 1, off = page & ((1u << DT_OPEN_SHIFT) - 1);
	struct dt_open_slot *sl = slot_find(o, key, true);

	if (sl && !sl->bits && ++sl->hits >= DT_OPEN_PROMOTE && o->nchunks < DT_OPEN_MAX_CHUNKS) {
		sl->bits = calloc(DT_OPEN_WORDS, sizeof(uint64_t));
		if (sl->bits)
			o->nchunks++;
	}
	if (!sl || !sl->bits) {
		fallback_add(o, page);
		return;
	}
	sl->touched = true;
	o->cache_key = key;
	o->cache_bits = sl->bits;
	sl->bits[off / 64] |= UINT64_C(1) << (off % 64);
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

/* Append one bitset's pages to r in ascending order, DT_OPEN_BUF at a time. */
static void chunk_to_roaring(roaring_bitmap_t *r, uint32_t chunk, const uint64_t *bits,
			     uint32_t *buf)
{
	uint32_t n = 0, base = chunk << DT_OPEN_SHIFT;

	for (uint32_t w = 0; w < DT_OPEN_WORDS; w++) {
		uint64_t x = bits[w];

		if (!x)
			continue;
		if (n + 64 > DT_OPEN_BUF) {
			roaring_bitmap_add_many(r, n, buf);
			n = 0;
		}
		do {
			buf[n++] = base + w * 64 + (uint32_t)__builtin_ctzll(x);
			x &= x - 1;
		} while (x);
	}
	if (n)
		roaring_bitmap_add_many(r, n, buf);
}

int dt_open_build(struct dt_open *o, roaring_bitmap_t **ret)
{
	roaring_bitmap_t *r;

	fallback_flush(o); /* same set, different representation */
	r = roaring_bitmap_copy(o->fallback);
	if (!r)
		return -ENOMEM;
	for (uint32_t i = 0; i < DT_OPEN_SLOTS; i++) {
		const struct dt_open_slot *sl = &o->slots[i];

		if (sl->bits && sl->touched)
			chunk_to_roaring(r, sl->key - 1, sl->bits, o->buf);
	}
	*ret = r;
	return 0;
}

void dt_open_reset(struct dt_open *o)
{
	struct dt_open_slot keep[DT_OPEN_MAX_CHUNKS];
	uint32_t nkeep = 0;

	/*
	 * Bitsets used in this epoch are likely used in the next: keep them
	 * (cleared); free the others, so a VM that went quiet holds none.
	 */
	for (uint32_t i = 0; i < DT_OPEN_SLOTS; i++) {
		struct dt_open_slot *sl = &o->slots[i];

		if (!sl->bits)
			continue;
		if (sl->touched && nkeep < DT_OPEN_MAX_CHUNKS) {
			memset(sl->bits, 0, DT_OPEN_WORDS * sizeof(uint64_t));
			keep[nkeep++] = (struct dt_open_slot){.key = sl->key, .bits = sl->bits};
		} else {
			free(sl->bits);
		}
	}
	memset(o->slots, 0, sizeof(o->slots));
	o->nslots = 0;
	o->nchunks = 0;
	for (uint32_t i = 0; i < nkeep; i++) {
		struct dt_open_slot *sl = slot_find(o, keep[i].key, true);

		/* Fewer than half the slots: every kept chunk finds one. */
		sl->bits = keep[i].bits;
		o->nchunks++;
	}
	o->cache_key = 0;
	o->cache_bits = NULL;
	roaring_bitmap_clear(o->fallback);
	o->nbuf = 0;
	o->buf_unsorted = false;
	o->run_lo = o->run_hi = 0;
}

size_t dt_open_memory(const struct dt_open *o)
{
	return (size_t)o->nchunks * DT_OPEN_WORDS * sizeof(uint64_t) +
	       dt_roaring_memory(o->fallback);
}
