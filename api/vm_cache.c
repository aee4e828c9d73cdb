/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The API's state of each VM (render cache, reference-link plans), kept
 * here and not in the VM model: the registry's observer makes an entry on
 * ADDED and drops it on REMOVED (the VM is unlinked by then), and tells
 * the long-polls and the reference-link planner of every change.
 */
#include <errno.h>
#include <stdlib.h>

#include "http.h"
#include "manager.h"

static struct dt_api_vm **bucket(struct dt_api *a, uint32_t id)
{
	return &a->vms[id % DT_API_VM_BUCKETS];
}

struct dt_api_vm *dt_api_vm_find(const struct dt_api *a, uint32_t id)
{
	for (struct dt_api_vm *e = a->vms[id % DT_API_VM_BUCKETS]; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

static int entry_add(struct dt_api *a, const struct dt_vm *vm)
{
	struct dt_api_vm *e, **b = bucket(a, vm->id);

	if (dt_api_vm_find(a, vm->id))
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->api = a;
	e->vm = vm;
	e->id = vm->id;
	e->next = *b;
	*b = e;
	return 0;
}

static void entry_free(struct dt_api_vm *e)
{
	dt_ref_plans_drop(e);
	free(e->view);
	free(e);
}

static void entry_remove(struct dt_api *a, uint32_t id)
{
	for (struct dt_api_vm **p = bucket(a, id); *p; p = &(*p)->next)
		if ((*p)->id == id) {
			struct dt_api_vm *e = *p;

			*p = e->next;
			entry_free(e);
			return;
		}
}

static void on_vm_changed(void *userdata, struct dt_vm *vm, enum dt_change what)
{
	struct dt_api *a = userdata;
	struct dt_api_vm *e;

	if (what == DT_CHANGE_REMOVED)
		entry_remove(a, vm->id);
	else if (what == DT_CHANGE_ADDED)
		(void)entry_add(a, vm); /* out of memory: served uncached, no gauges */
	e = dt_api_vm_find(a, vm->id);
	if (e)
		dt_ref_plans_changed(e);
	dt_longpoll_changed(a, vm);
}

int dt_api_vms_start(struct dt_api *a)
{
	const struct dt_observer o = {.vm_changed = on_vm_changed, .userdata = a};
	int r;

	for (const struct dt_vm *vm = a->m->vms; vm; vm = vm->next) {
		r = entry_add(a, vm);
		if (r < 0)
			return r;
		dt_ref_plans_changed(dt_api_vm_find(a, vm->id));
	}
	r = dt_manager_observe(a->m, &o);
	if (r < 0)
		return r;
	a->observing = true;
	return 0;
}

void dt_api_vms_stop(struct dt_api *a)
{
	if (a->observing)
		dt_manager_unobserve(a->m, a);
	a->observing = false;
	for (unsigned i = 0; i < DT_API_VM_BUCKETS; i++)
		while (a->vms[i]) {
			struct dt_api_vm *e = a->vms[i];

			a->vms[i] = e->next;
			entry_free(e);
		}
}
