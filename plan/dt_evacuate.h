/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The order that empties a host soonest (pure code, no I/O): every VM's
 * migration takes a known time (its plan's), at most `parallel` run at
 * once, and a slot that frees takes the next VM. The bandwidth is shared
 * equally by the migrations running when one starts (an operator caps
 * each migration: libvirt's --bandwidth, KubeVirt's bandwidthPerMigration,
 * Nova's live_migration_bandwidth): bandwidth / min(parallel, VMs left to
 * start + those running), so 2 VMs with parallel 4 go at half each, not a
 * quarter. A migration keeps its share to its end (the cap is set when it
 * starts), so the shares running never add up to more than the bandwidth.
 *
 * One at a time the host is empty after the sum of the times whatever the
 * order: shortest first then frees the most VMs soonest. In parallel the
 * longest go first (LPT: the drain time is within 4/3 of the best order's)
 * and each VM starts on the slot that frees first. The order is by the
 * times given (each VM's at the share of the first migrations); each VM's
 * time is then its time at the share it starts with.
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
	uint32_t running;  /* migrations sharing the bandwidth from its start, itself included;
			      0: its re-plan failed, duration_s is the one it was ranked with */
};

/*
 * Item i's migration time when `running` migrations share the bandwidth
 * (1 .. parallel), e.g. its plan made again at bandwidth / running; not a
 * valid time (< 0, not finite): keep the one it was ranked with.
 */
typedef double (*dt_evacuate_duration_fn)(void *userdata, size_t i, uint32_t running);

/*
 * Order the items (which stay in place; see .order) and set their start,
 * slot, share (.running) and, with `duration`, their time at that share.
 * duration NULL: the times given hold at any share. Returns the number
 * planned and *ret_total (the drain time: the last end), -EINVAL for
 * parallel outside 1 .. DT_EVACUATE_MAX_PARALLEL, -ENOMEM.
 */
int dt_evacuate_schedule(struct dt_evacuate_item *items, size_t n, uint32_t parallel,
			 dt_evacuate_duration_fn duration, void *userdata, double *ret_total);
