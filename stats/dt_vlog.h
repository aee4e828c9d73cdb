/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Page log of the open epoch (dt_open's pages outside chunk bitsets):
 * pages are appended as they come and sorted and deduplicated in bulk,
 * when the log fills and at close. Sequential writes, where bitsets for
 * scattered pages would miss the cache on every page, and no per-page
 * roaring insertion into array containers (a memmove per page).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct dt_vlog {
	uint32_t *a;	  /* cap entries, then cap entries of sort scratch */
	uint32_t n;	  /* entries held */
	uint32_t nsorted; /* a[0, nsorted) sorted and distinct */
	uint32_t cap;
	uint32_t last; /* last page appended, to drop back-to-back repeats */
};

/* Make room: sort, deduplicate, grow if still half full. Full only without memory. */
void dt_vlog_compact(struct dt_vlog *l);

/* false: no room (out of memory), the caller keeps the page elsewhere. */
static inline bool dt_vlog_add(struct dt_vlog *l, uint32_t page)
{
	if (page == l->last && l->n)
		return true;
	if (__builtin_expect(l->n == l->cap, 0)) {
		dt_vlog_compact(l);
		if (l->n == l->cap)
			return false;
	}
	l->a[l->n++] = page;
	l->last = page;
	return true;
}

/* Sort and deduplicate everything; returns the distinct page count. */
uint32_t dt_vlog_finish(struct dt_vlog *l);
/* Empty the log after a close; gives back memory a quieter epoch does not need. */
void dt_vlog_reset(struct dt_vlog *l);
void dt_vlog_fini(struct dt_vlog *l);
size_t dt_vlog_memory(const struct dt_vlog *l);

/* Sort n keys ascending using tmp (n entries) as scratch. */
void dt_radix_sort(uint32_t *a, uint32_t *tmp, uint32_t n);
/* Remove adjacent duplicates of a sorted array; returns the new length. */
uint32_t dt_dedup(uint32_t *a, uint32_t n);
