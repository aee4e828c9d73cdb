/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM model's read-only queries for the front ends (api/): a VM's
 * working-set curve as they show it, D(T) at every window the statistics
 * precompute, in pages, bytes and bytes per second, and its heat map. One
 * place, so REST, D-Bus and /metrics give the same figures; none of these
 * changes the VM.
 */
#pragma once

#include "manager.h"

enum dt_curve_kind {
	DT_CURVE_VM,
	DT_CURVE_VCPU, /* pages a vCPU's ring reported */
	DT_CURVE_SLOT, /* pages of one memory slot */
	_DT_CURVE_KIND_MAX,
};

struct dt_curve_point {
	uint32_t window_epochs;
	double window_seconds;
	uint64_t pages;
	uint64_t bytes;
	/*
	 * How much of the window the history covers: min(window, epochs
	 * closed). A window is complete when all of it was observed; until
	 * then D(T) counts only the observed part, and the rate divides by
	 * that, never by time nobody watched.
	 */
	uint32_t observed_epochs;
	double observed_seconds;
	bool complete;
	double rate; /* bytes per second: bytes / observed_seconds; 0 when nothing is observed */
};

struct dt_curve {
	uint32_t n;
	struct dt_curve_point p[DT_STATS_MAX_WINDOWS];
};

/* vcpu is used by DT_CURVE_VCPU, slot by DT_CURVE_SLOT. */
void dt_vm_curve(const struct dt_vm *vm, enum dt_curve_kind kind, uint32_t vcpu,
		 const struct dt_slot *slot, struct dt_curve *ret);
double dt_vm_epoch_seconds(const struct dt_vm *vm);
/* Epochs of the last `window` the history covers (<= window). */
uint32_t dt_vm_window_observed(const struct dt_vm *vm, uint32_t window);
/*
 * Heatmap regions with dirtyings over the last window epochs, from region
 * `from` on, at most max of them (caller frees *ret); -ENOMEM.
 */
int dt_vm_heat(const struct dt_vm *vm, uint32_t window, uint32_t from, size_t max,
	       struct dt_heat **ret, size_t *ret_n);
/* Guest-physical address of the first mapped page of dense pages [idx, idx + len). */
bool dt_vm_region_gpa(const struct dt_vm *vm, uint64_t idx, uint64_t len, uint64_t *ret);
/* Size of the VM's dense page index space (end of the highest slot). */
uint64_t dt_vm_index_pages(const struct dt_vm *vm);
