/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A VM's declared memory slots and their place in the dense page index
 * space the statistics use. Slots keep their index range after removal
 * (retired), so a slot re-added with the same geometry (a VMM reattaching)
 * gets the same page indexes and its history continues.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct dt_slot {
	uint32_t slot; /* (as_id << 16) | id */
	bool active;
	uint64_t gpa;
	uint64_t pages;
	uint32_t base; /* first dense page index */
};

struct dt_slot_table {
	struct dt_slot *slots;
	uint32_t n; /* entries, active and retired */
	uint32_t cap;
	uint32_t nactive;
	uint64_t next_base; /* first unused dense index */
	uint32_t last; /* lookup cache: index of the last hit */
};

#define DT_PAGE_INDEX_MAX 0xffffffffull /* dense indexes are 32-bit */
#define DT_SLOT_ALIGN 512 /* dense ranges start on a 512-page boundary */

void dt_slots_free(struct dt_slot_table *t);
/*
 * Add a slot. -EEXIST (already active, or overlaps an active slot in the same
 * address space), -EINVAL (no pages, gpa overflow), -ENOSPC (more than
 * max_slots active), -E2BIG (the index space or max_pages would overflow).
 * page_shift converts pages to bytes for the overlap test.
 */
int dt_slots_add(struct dt_slot_table *t, uint32_t slot, uint64_t gpa, uint64_t pages,
		 unsigned page_shift, uint32_t max_slots, uint64_t max_pages);
int dt_slots_remove(struct dt_slot_table *t, uint32_t slot); /* -ENOENT */
/* Active slot by id, or NULL. */
struct dt_slot *dt_slots_find(struct dt_slot_table *t, uint32_t slot);
/* Deactivate every slot (the VMM went away); bases are kept. */
void dt_slots_retire_all(struct dt_slot_table *t);
uint64_t dt_slots_active_pages(const struct dt_slot_table *t);

/* Hot path: active slot for a ring entry's slot id, cached. */
static inline const struct dt_slot *dt_slots_lookup(struct dt_slot_table *t, uint32_t slot)
{
	if (t->last < t->n && t->slots[t->last].slot == slot && t->slots[t->last].active)
		return &t->slots[t->last];
	return dt_slots_find(t, slot);
}
