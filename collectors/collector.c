/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM's collection state and the per-mode ops tables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "dt_collector.h"
#include "dt_plant.h"

static int collector_add_ring(struct dt_collector *c, int fd, const struct dt_msg_add_ring *m,
			      char reason[DT_REASON_LEN])
{
	if (m->vcpu >= c->nvcpus) {
		snprintf(reason, DT_REASON_LEN, "vCPU %u out of range (the VM has %u)", m->vcpu,
			 c->nvcpus);
		return -EINVAL;
	}
	if (c->rings[m->vcpu]) {
		snprintf(reason, DT_REASON_LEN, "vCPU %u already has a ring", m->vcpu);
		return -EEXIST;
	}
	return dt_ring_map(fd, m->offset, m->entries, m->fetch_index, m->vcpu,
			   &c->rings[m->vcpu], reason);
}

static int collector_add_bitmap(struct dt_collector *c, int fd, const struct dt_msg_add_bitmap *m,
				char reason[DT_REASON_LEN])
{
	const struct dt_slot *s = dt_slots_find(&c->slots, m->slot);
	struct dt_bitmap **n;
	int r;

	if (!s) {
		snprintf(reason, DT_REASON_LEN, "slot 0x%x was not added", m->slot);
		return -ENOENT;
	}
	for (uint32_t i = 0; i < c->nbitmaps; i++)
		if (c->bitmaps[i]->slot == m->slot) {
			snprintf(reason, DT_REASON_LEN, "slot 0x%x already has a bitmap", m->slot);
			return -EEXIST;
		}
	n = realloc(c->bitmaps, (c->nbitmaps + 1) * sizeof(*n));
	if (!n) {
		snprintf(reason, DT_REASON_LEN, "out of memory");
		return -ENOMEM;
	}
	c->bitmaps = n;
	r = dt_bitmap_map(fd, m->offset, s, &c->bitmaps[c->nbitmaps], reason);
	if (r < 0)
		return r;
	c->nbitmaps++;
	return 0;
}

static uint64_t harvest_ring(struct dt_collector *c, struct dt_ring *r, bool resync)
{
	uint64_t before = r->invalid, resyncs = r->resyncs;
	uint32_t n = dt_ring_harvest(r, &c->slots, c->stats);

	/* A full ring with entries left where we do not read: the VMM gave a stale index. */
	if (resync) {
		n += dt_ring_resync(r, &c->slots, c->stats);
		c->ring_resyncs += r->resyncs - resyncs;
	}

	c->invalid_entries += r->invalid - before;
	c->ring_entries += n - (r->invalid - before);
	return n;
}

static uint64_t collector_harvest_rings(struct dt_collector *c)
{
	uint64_t n = 0;

	for (uint32_t v = 0; v < c->nvcpus; v++)
		if (c->rings[v])
			n += harvest_ring(c, c->rings[v], false);
	return n;
}

void dt_collector_consume_begin(struct dt_collector *c)
{
	c->consuming = true;
	c->consume_map = 0;
	c->consume_word = 0;
}

/* Words per page of a bitmap: a step takes at least one (mincore's unit). */
#define CONSUME_MIN_WORDS 512u

int dt_collector_consume_step(struct dt_collector *c, uint64_t words)
{
	uint64_t n = 0;

	if (words < CONSUME_MIN_WORDS)
		words = CONSUME_MIN_WORDS;
	while (c->consuming && c->consume_map < c->nbitmaps) {
		struct dt_bitmap *b = c->bitmaps[c->consume_map];
		uint64_t end = words < b->nwords - c->consume_word ? c->consume_word + words
								   : b->nwords;

		if (!words)
			break;
		n += dt_bitmap_consume_range(b, c->consume_word, end, c->stats);
		words -= end - c->consume_word;
		c->consume_word = end;
		if (end == b->nwords) {
			c->consume_map++;
			c->consume_word = 0;
		}
	}
	c->bitmap_pages += n;
	if (c->consuming && c->consume_map < c->nbitmaps)
		return 1;
	c->consuming = false;
	return 0;
}

static uint64_t collector_consume_bitmaps(struct dt_collector *c)
{
	uint64_t before = c->bitmap_pages;

	/* A pass in progress completes (its words in order), then one whole pass. */
	dt_collector_consume_step(c, UINT64_MAX);
	dt_collector_consume_begin(c);
	dt_collector_consume_step(c, UINT64_MAX);
	return c->bitmap_pages - before;
}

static const struct dt_collector_ops ring_ops = {
	.name = "ring",
	.mode = DT_MODE_RING,
	.add_ring = collector_add_ring,
	.harvest = collector_harvest_rings,
};

static const struct dt_collector_ops bitmap_ops = {
	.name = "bitmap",
	.mode = DT_MODE_BITMAP,
	.add_bitmap = collector_add_bitmap,
	.consume = collector_consume_bitmaps,
};

static const struct dt_collector_ops ring_bitmap_ops = {
	.name = "ring+bitmap",
	.mode = DT_MODE_RING_BITMAP,
	.add_ring = collector_add_ring,
	.add_bitmap = collector_add_bitmap,
	.harvest = collector_harvest_rings,
	.consume = collector_consume_bitmaps,
};

const struct dt_collector_ops *dt_collector_ops_for(uint32_t mode)
{
	switch (mode) {
	case DT_MODE_RING:
		return &ring_ops;
	case DT_MODE_BITMAP:
		return &bitmap_ops;
	case DT_MODE_RING_BITMAP:
		return &ring_bitmap_ops;
	default:
		return NULL;
	}
}

int dt_collector_init(struct dt_collector *c, uint32_t mode, uint32_t nvcpus,
		      struct dt_stats *stats)
{
	const struct dt_collector_ops *ops = dt_collector_ops_for(mode);

	if (!ops || nvcpus == 0)
		return -EINVAL;
	*c = (struct dt_collector){ .ops = ops, .nvcpus = nvcpus, .stats = stats };
	c->rings = calloc(nvcpus, sizeof(*c->rings));
	if (!c->rings)
		return -ENOMEM;
	return 0;
}

static void collector_unmap(struct dt_collector *c)
{
	for (uint32_t v = 0; c->rings && v < c->nvcpus; v++)
		c->rings[v] = dt_ring_unmap(c->rings[v]);
	for (uint32_t i = 0; i < c->nbitmaps; i++)
		dt_bitmap_unmap(c->bitmaps[i]);
	free(c->bitmaps);
	c->bitmaps = NULL;
	c->nbitmaps = 0;
}

void dt_collector_release(struct dt_collector *c)
{
	/* What the VMM published before it went away still counts. */
	if (c->ops->harvest)
		c->ops->harvest(c);
	if (c->ops->consume)
		c->ops->consume(c);
	collector_unmap(c);
	dt_slots_retire_all(&c->slots);
}

void dt_collector_done(struct dt_collector *c)
{
	collector_unmap(c);
	free(c->rings);
	c->rings = NULL;
	dt_slots_free(&c->slots);
}

int dt_collector_harvest_vcpu(struct dt_collector *c, uint32_t vcpu)
{
	struct dt_ring *r;
	uint64_t n;

	if (vcpu >= c->nvcpus || !c->rings[vcpu])
		return -ENOENT;
	r = c->rings[vcpu];
	n = harvest_ring(c, r, true);
	return (int)n;
}

int dt_collector_remove_slot(struct dt_collector *c, uint32_t slot)
{
	/* Entries already published for this slot still count. */
	if (c->ops->harvest)
		c->ops->harvest(c);
	dt_collector_consume_step(c, UINT64_MAX); /* a pass in progress: its order stays */
	for (uint32_t i = 0; i < c->nbitmaps; i++) {
		if (c->bitmaps[i]->slot != slot)
			continue;
		c->bitmap_pages += dt_bitmap_consume(c->bitmaps[i], c->stats);
		dt_bitmap_unmap(c->bitmaps[i]);
		if (dt_plant("remove-slot-stale"))
			break;
		c->bitmaps[i] = c->bitmaps[--c->nbitmaps];
		break;
	}
	return dt_slots_remove(&c->slots, slot);
}
