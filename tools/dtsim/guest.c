/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated guest: memory layout (memslots), KVM-like write protection,
 * the writes themselves, and the two VMM duties the daemon asks for:
 * KVM_RESET_DIRTY_RINGS and KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG.
 *
 * No guest memory exists: a page is just a bit in its slot's write-protect
 * bitmap (1 = protected, so the next vCPU write faults and is logged), plus
 * a bit in the private "KVM" dirty bitmap in bitmap mode.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "dtsim.h"

#define LOOKUP_MAX_CHUNKS 65536

static uint64_t *bits_new(uint64_t nbits, bool set)
{
	size_t words = (nbits + 63) / 64;
	uint64_t *b = calloc(words ? words : 1, sizeof(uint64_t));

	if (!b || !set)
		return b;
	memset(b, 0xff, words * sizeof(uint64_t));
	if (nbits % 64)
		b[words - 1] = (1ull << (nbits % 64)) - 1;
	return b;
}

struct region {
	uint64_t gpa, pages;
};

/*
 * Guest-physical layout. A guest above 4 GiB is laid out like a PC: RAM
 * below the PCI hole up to 3 GiB, the rest from 4 GiB, so at least one slot
 * lives above 4 GiB and guest-physical addresses are not contiguous. The
 * requested slots are shared between the two regions by size.
 */
static int layout(struct dtsim_guest *g, const struct dtsim_opts *o)
{
	struct region reg[2];
	uint32_t nreg = 1, nslots = o->slots, per[2];
	uint64_t first = 0, lpages;
	uint32_t s = 0;

	if (o->memory_bytes > DTSIM_HIGH_MEM_BASE) {
		reg[0] = (struct region){0, DTSIM_LOW_MEM_TOP / g->page_size};
		reg[1] = (struct region){DTSIM_HIGH_MEM_BASE, g->pages - reg[0].pages};
		nreg = 2;
		if (nslots < 2)
			nslots = 2;
		per[0] =
		    (uint32_t)llround((double)nslots * (double)reg[0].pages / (double)g->pages);
		per[0] = DT_MAX(1u, DT_MIN(per[0], nslots - 1));
		per[1] = nslots - per[0];
	} else {
		reg[0] = (struct region){0, g->pages};
		per[0] = nslots;
	}

	g->slots = calloc(nslots, sizeof(*g->slots));
	if (!g->slots)
		return -ENOMEM;
	g->nslots = nslots;
	for (uint32_t r = 0; r < nreg; r++) {
		if (reg[r].pages < per[r])
			return -EINVAL;
		uint64_t gpa = reg[r].gpa;
		for (uint32_t i = 0; i < per[r]; i++, s++) {
			struct dtsim_slot *sl = &g->slots[s];

			sl->id = s; /* address space 0 */
			sl->gpa = gpa;
			sl->pages = reg[r].pages / per[r] + (i < reg[r].pages % per[r] ? 1 : 0);
			sl->first = first;
			first += sl->pages;
			gpa += sl->pages * g->page_size;
		}
	}

	/* O(1) page -> slot: a coarse table, then at most a few steps forward */
	g->lookup_shift = 0;
	while (((g->pages - 1) >> g->lookup_shift) >= LOOKUP_MAX_CHUNKS)
		g->lookup_shift++;
	lpages = ((g->pages - 1) >> g->lookup_shift) + 1;
	g->lookup = calloc(lpages, sizeof(*g->lookup));
	if (!g->lookup)
		return -ENOMEM;
	s = 0;
	for (uint64_t c = 0; c < lpages; c++) {
		uint64_t page = c << g->lookup_shift;

		while (s + 1 < g->nslots && page >= g->slots[s + 1].first)
			s++;
		g->lookup[c] = s;
	}
	return 0;
}

int dtsim_guest_new(const struct dtsim_opts *o, struct dtsim_guest **ret)
{
	struct dtsim_guest *g;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->page_size = o->page_size;
	g->mode = o->mode;
	g->pages = o->memory_bytes / o->page_size;
	r = layout(g, o);
	if (r < 0)
		goto fail;
	for (uint32_t i = 0; i < g->nslots; i++) {
		struct dtsim_slot *s = &g->slots[i];

		/* tracking starts armed: every page write-protected (initially-set) */
		s->wp = bits_new(s->pages, true);
		if (!s->wp) {
			r = -ENOMEM;
			goto fail;
		}
		if (o->mode == DT_MODE_BITMAP) {
			s->log = bits_new(s->pages, false);
			if (!s->log) {
				r = -ENOMEM;
				goto fail;
			}
		}
		if (o->mode == DT_MODE_BITMAP || o->mode == DT_MODE_RING_BITMAP) {
			r = dt_shared_bitmap_new(s->pages, &s->shared);
			if (r < 0)
				goto fail;
		}
	}
	*ret = g;
	return 0;
fail:
	dtsim_guest_free(g);
	return r;
}

struct dtsim_guest *dtsim_guest_free(struct dtsim_guest *g)
{
	if (!g)
		return NULL;
	for (uint32_t i = 0; g->slots && i < g->nslots; i++) {
		free(g->slots[i].wp);
		free(g->slots[i].log);
		dt_shared_bitmap_free(g->slots[i].shared);
	}
	free(g->slots);
	free(g->lookup);
	free(g);
	return NULL;
}

/*
 * KVM_RESET_DIRTY_RINGS: from the reset index, every entry the daemon has
 * flagged RESET is made free again and its page re-protected; the first
 * entry not flagged RESET ends the walk. Like KVM, slot and offset are read
 * back from the shared ring and checked before use. The walk never passes
 * dirty_index, whatever the flags say.
 */
uint64_t dtsim_guest_reset_ring(struct dtsim_guest *g, struct dtsim_ring *r)
{
	uint64_t n = 0;

	while (r->reset_index != r->dirty_index) {
		struct dt_ring_entry *e = &r->gfns[r->reset_index & (r->entries - 1)];
		uint32_t slot;
		uint64_t offset;

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DT_RING_RESET))
			break;
		slot = e->slot;
		offset = e->offset;
		__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
		if (slot < g->nslots && offset < g->slots[slot].pages)
			dtsim_test_and_set(g->slots[slot].wp, offset);
		else
			g->bugs++;
		r->reset_index++;
		n++;
	}
	return n;
}

/*
 * KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protect): every non-zero
 * word of the private log goes into the shared bitmap, is cleared, and
 * exactly its pages are write-protected again.
 */
uint64_t dtsim_guest_sync_bitmap(struct dtsim_guest *g)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < g->nslots; i++) {
		struct dtsim_slot *s = &g->slots[i];
		uint64_t words = (s->pages + 63) / 64;

		if (!s->log)
			continue;
		for (uint64_t w = 0; w < words; w++) {
			uint64_t bits = s->log[w];

			if (!bits)
				continue;
			dt_shared_bitmap_or_word(s->shared, w, bits);
			s->log[w] = 0;
			s->wp[w] |= bits;
			n++;
		}
	}
	return n;
}

/*
 * Make up to n writes by one writer at time `now`; returns writes made. A
 * vCPU write to a protected page faults: the page is logged (ring entry or
 * private bitmap bit) and unprotected. A vCPU whose ring reaches soft-full
 * stops, as KVM exits with KVM_EXIT_DIRTY_RING_FULL and the VMM does not
 * re-enter the guest until a reset made room. The DMA device bypasses
 * protection and marks the shared bitmap on every write.
 */
uint64_t dtsim_guest_write(struct dtsim *sim, struct dtsim_writer *w, uint64_t n, uint64_t now)
{
	struct dtsim_guest *g = sim->guest;
	struct dtsim_truth *t = &sim->truth;
	struct dtsim_writer_truth *wt = &t->w[w->index];
	struct dtsim_ring *ring = w->ring;
	uint64_t i;

	if (!n)
		return 0;
	if (ring && dtsim_ring_soft_full(ring)) {
		w->stalled = true;
		return 0;
	}
	dtsim_truth_begin(t, now);
	for (i = 0; i < n;) {
		uint64_t page = dtsim_pattern_next(&sim->pattern, &w->rng, &w->cursor);
		struct dtsim_slot *s = dtsim_guest_slot(g, page);
		uint64_t off = page - s->first;

		i++;
		dtsim_truth_record(t, w->index, page, now);
		if (sim->trace)
			dtsim_trace_add(sim->trace, now, s->gpa / g->page_size + off);
		if (w->dma) {
			dt_shared_bitmap_mark(s->shared, off);
			wt->logged++;
			continue;
		}
		if (!dtsim_test_and_clear(s->wp, off))
			continue;
		wt->logged++;
		if (!ring) {
			dtsim_test_and_set(s->log, off);
			continue;
		}
		dtsim_ring_push(ring, s->id, off);
		if (dtsim_ring_soft_full(ring)) {
			w->stalled = true;
			break;
		}
	}
	return i;
}
