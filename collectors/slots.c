/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "dt_slots.h"

void dt_slots_free(struct dt_slot_table *t)
{
	free(t->slots);
	*t = (struct dt_slot_table){ 0 };
}

struct dt_slot *dt_slots_find(struct dt_slot_table *t, uint32_t slot)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->slots[i].slot == slot && t->slots[i].active) {
			t->last = i;
			return &t->slots[i];
		}
	return NULL;
}

uint64_t dt_slots_active_pages(const struct dt_slot_table *t)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < t->n; i++)
		if (t->slots[i].active)
			sum += t->slots[i].pages;
	return sum;
}

int dt_slots_add(struct dt_slot_table *t, uint32_t slot, uint64_t gpa, uint64_t pages,
		 unsigned page_shift, uint32_t max_slots, uint64_t max_pages)
{
	struct dt_slot *reuse = NULL;
	uint64_t end;

	if (pages == 0 || pages > (UINT64_MAX >> page_shift))
		return -EINVAL;
	if (__builtin_add_overflow(gpa, pages << page_shift, &end))
		return -EINVAL;
	for (uint32_t i = 0; i < t->n; i++) {
		struct dt_slot *s = &t->slots[i];
		uint64_t s_end = s->gpa + (s->pages << page_shift);

		if (!s->active) {
			if (s->slot == slot && s->gpa == gpa && s->pages == pages)
				reuse = s;
			continue;
		}
		if (s->slot == slot)
			return -EEXIST;
		if ((s->slot >> 16) == (slot >> 16) && gpa < s_end && s->gpa < end)
			return -EEXIST;
	}
	if (t->nactive >= max_slots)
		return -ENOSPC;
	if (dt_slots_active_pages(t) + pages > max_pages)
		return -E2BIG;
	if (reuse) {
		reuse->active = true;
		t->nactive++;
		return 0;
	}
	/* Retired ranges are never reused by other geometry: bound the table. */
	if (t->n >= 4 * (uint64_t)max_slots)
		return -ENOSPC;
	/* Align ranges to heatmap regions (2 MiB of 4 KiB pages) so a region
	 * never straddles two slots. */
	uint64_t base = (t->next_base + DT_SLOT_ALIGN - 1) & ~(uint64_t)(DT_SLOT_ALIGN - 1);
	if (base + pages > DT_PAGE_INDEX_MAX)
		return -E2BIG;
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 8;
		struct dt_slot *n = realloc(t->slots, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->slots = n;
		t->cap = cap;
	}
	t->slots[t->n++] = (struct dt_slot){
		.slot = slot,
		.active = true,
		.gpa = gpa,
		.pages = pages,
		.base = (uint32_t)base,
	};
	t->nactive++;
	t->next_base = base + pages;
	return 0;
}

int dt_slots_remove(struct dt_slot_table *t, uint32_t slot)
{
	struct dt_slot *s = dt_slots_find(t, slot);

	if (!s)
		return -ENOENT;
	s->active = false;
	t->nactive--;
	return 0;
}

void dt_slots_retire_all(struct dt_slot_table *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		t->slots[i].active = false;
	t->nactive = 0;
}
