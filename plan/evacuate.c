/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The drain order of a host (dt_evacuate.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "dt_evacuate.h"

static bool planned(const struct dt_evacuate_item *it)
{
	return isfinite(it->duration_s) && it->duration_s >= 0;
}

int dt_evacuate_schedule(struct dt_evacuate_item *items, size_t n, uint32_t parallel,
			 double *ret_total)
{
	double free_at[DT_EVACUATE_MAX_PARALLEL] = { 0 }, total = 0;
	bool *done;
	uint32_t order = 0;

	if (parallel < 1 || parallel > DT_EVACUATE_MAX_PARALLEL || (n && !items))
		return -EINVAL;
	done = calloc(n ? n : 1, sizeof(*done));
	if (!done)
		return -ENOMEM;
	for (;;) {
		size_t pick = n;
		uint32_t slot = 0;

		/* the next VM: shortest first one at a time, longest first in parallel */
		for (size_t i = 0; i < n; i++) {
			if (done[i] || !planned(&items[i]))
				continue;
			if (pick == n || (parallel == 1 ? items[i].duration_s < items[pick].duration_s
							: items[i].duration_s > items[pick].duration_s))
				pick = i;
		}
		if (pick == n)
			break;
		for (uint32_t s = 1; s < parallel; s++)
			if (free_at[s] < free_at[slot])
				slot = s;
		done[pick] = true;
		items[pick].order = order++;
		items[pick].slot = slot;
		items[pick].start_s = free_at[slot];
		free_at[slot] += items[pick].duration_s;
		if (free_at[slot] > total)
			total = free_at[slot];
	}
	free(done);
	*ret_total = total;
	return (int)order;
}
