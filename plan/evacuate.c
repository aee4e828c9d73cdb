/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The drain order of a host (dt_evacuate.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "dt_evacuate.h"

static bool valid(double d)
{
	return isfinite(d) && d >= 0;
}

/*
 * How many migrations run from time t on when the next one starts there:
 * those still busy, and every slot free at t takes a VM while VMs remain.
 */
static uint32_t running_at(const double *free_at, uint32_t parallel, double t, size_t remaining)
{
	uint32_t busy = 0, idle = 0;

	for (uint32_t s = 0; s < parallel; s++)
		if (free_at[s] > t)
			busy++;
		else
			idle++;
	return busy + (uint32_t)(remaining < idle ? remaining : idle);
}

int dt_evacuate_schedule(struct dt_evacuate_item *items, size_t n, uint32_t parallel,
			 dt_evacuate_duration_fn duration, void *userdata, double *ret_total)
{
	double free_at[DT_EVACUATE_MAX_PARALLEL] = { 0 }, total = 0;
	size_t remaining = 0;
	bool *done;
	uint32_t order = 0;

	if (parallel < 1 || parallel > DT_EVACUATE_MAX_PARALLEL || (n && !items))
		return -EINVAL;
	done = calloc(n ? n : 1, sizeof(*done));
	if (!done)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (valid(items[i].duration_s))
			remaining++;
	for (;;) {
		size_t pick = n;
		uint32_t slot = 0;
		double d;

		/* the next VM: shortest first one at a time, longest first in parallel */
		for (size_t i = 0; i < n; i++) {
			if (done[i] || !valid(items[i].duration_s))
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
		items[pick].running = running_at(free_at, parallel, free_at[slot], remaining--);
		/* its time at its share; a re-plan that fails keeps the one it was ranked with */
		d = duration ? duration(userdata, pick, items[pick].running) : items[pick].duration_s;
		if (valid(d))
			items[pick].duration_s = d;
		else
			items[pick].running = 0;
		free_at[slot] += items[pick].duration_s;
		if (free_at[slot] > total)
			total = free_at[slot];
	}
	free(done);
	*ret_total = total;
	return (int)order;
}
