/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The order that empties a host soonest (pure code, no I/O): every VM's
 * migration takes a known time (its plan's), at most `parallel` run at
 * once, each with an equal share of the bandwidth (the plans are made at
 * bandwidth / parallel, as an operator caps each migration: libvirt's
 * --bandwidth, KubeVirt's bandwidthPerMigration, Nova's
 * live_migration_bandwidth), and a slot that frees takes the next VM.
 *
 * One at a time the host is empty after the sum of the times whatever the
 * order: shortest first then frees the most VMs soonest. In parallel the
 * longest go first (LPT: the drain time is within 4/3 of the best order's)
 * and each VM starts on the slot that frees first.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_EVACUATE_MAX_PARALLEL 16

struct dt_evacuate_item {
	double duration_s; /* in: the migration's predicted time; < 0 or not finite: not planned */
	/* out, for planned items: */
	uint32_t order;	   /* 0-based position in the drain */
	uint32_t slot;	   /* which of the parallel migrations carries it */
	double start_s;	   /* from the start of the drain */
};

/*
 * Order the items (which stay in place; see .order) and set their start
 * and slot. Returns the number planned and *ret_total (the drain time:
 * the last end), -EINVAL for parallel outside 1 .. DT_EVACUATE_MAX_PARALLEL.
 */
int dt_evacuate_schedule(struct dt_evacuate_item *items, size_t n, uint32_t parallel,
			 double *ret_total);
