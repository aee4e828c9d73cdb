/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "dt_util.h"
#include "vm_query.h"

double dt_vm_epoch_seconds(const struct dt_vm *vm)
{
	return (double)vm->epoch_us / 1e6;
}

uint32_t dt_vm_window_observed(const struct dt_vm *vm, uint32_t window)
{
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	uint64_t n = DT_MIN(dt_stats_epochs(vm->stats), (uint64_t)sc->horizon_epochs);

	return (uint32_t)DT_MIN(n, (uint64_t)window);
}

void dt_vm_curve(const struct dt_vm *vm, enum dt_curve_kind kind, uint32_t vcpu,
		 const struct dt_slot *slot, struct dt_curve *ret)
{
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	uint64_t range[DT_STATS_MAX_WINDOWS];

	/* A slot's curve is one pass over the index, not one per window. */
	if (kind == DT_CURVE_SLOT)
		dt_stats_wss_range_curve(vm->stats, slot->base, slot->base + (uint32_t)slot->pages,
					 range);
	ret->n = sc->nwindows;
	for (uint32_t i = 0; i < sc->nwindows; i++) {
		struct dt_curve_point *p = &ret->p[i];
		uint32_t w = sc->windows[i];

		switch (kind) {
		case DT_CURVE_VCPU:
			p->pages = dt_stats_vcpu_wss(vm->stats, vcpu, w);
			break;
		case DT_CURVE_SLOT:
			p->pages = range[i];
			break;
		default:
			p->pages = dt_stats_wss(vm->stats, w);
		}
		p->window_epochs = w;
		p->window_seconds = w * dt_vm_epoch_seconds(vm);
		p->bytes = p->pages << vm->page_shift;
		p->observed_epochs = dt_vm_window_observed(vm, w);
		p->observed_seconds = p->observed_epochs * dt_vm_epoch_seconds(vm);
		p->complete = p->observed_epochs == w;
		p->rate = p->observed_epochs ? (double)p->bytes / p->observed_seconds : 0;
	}
}

uint64_t dt_vm_index_pages(const struct dt_vm *vm)
{
	uint64_t end = 0;

	for (uint32_t i = 0; i < vm->collector.slots.n; i++) {
		const struct dt_slot *s = &vm->collector.slots.slots[i];
		end = DT_MAX(end, (uint64_t)s->base + s->pages);
	}
	return end;
}

int dt_vm_heat(const struct dt_vm *vm, uint32_t window, uint32_t from, size_t max,
	       struct dt_heat **ret, size_t *ret_n)
{
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	uint64_t regions = dt_vm_index_pages(vm) / sc->region_pages + 1;
	struct dt_heat *h;
	int n;

	max = (size_t)DT_MIN((uint64_t)max, regions > from ? regions - from : 1);
	h = calloc(max, sizeof(*h));
	if (!h)
		return -ENOMEM;
	n = dt_stats_heatmap_from(vm->stats, window, from, h, max);
	if (n < 0) {
		free(h);
		return n;
	}
	*ret = h;
	*ret_n = (size_t)n;
	return 0;
}

/* Guest-physical address of the first page of a heatmap region, if mapped. */
bool dt_vm_region_gpa(const struct dt_vm *vm, uint64_t idx, uint64_t len, uint64_t *ret)
{
	const struct dt_slot_table *t = &vm->collector.slots;
	bool found = false;

	for (uint32_t i = 0; i < t->n; i++) {
		const struct dt_slot *s = &t->slots[i];
		uint64_t lo = DT_MAX(idx, (uint64_t)s->base);

		if (lo >= idx + len || lo >= (uint64_t)s->base + s->pages)
			continue;
		uint64_t gpa = s->gpa + ((lo - s->base) << vm->page_shift);
		if (!found || gpa < *ret)
			*ret = gpa;
		found = true;
	}
	return found;
}
