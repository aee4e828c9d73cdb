/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "dt_util.h"
#include "vm_query.h"
#include "json_libvirt.h"
#include "json_view.h"

static struct json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

/*
 * Every key is a string literal added once per object: json-c need neither
 * copy it nor look for an old value (the VM view adds hundreds of keys).
 */
static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add_ex(o, k, v,
				  JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}


static struct json_object *wss_point(const struct dt_curve_point *p)
{
	struct json_object *o = json_object_new_object();

	add(o, "window_seconds", json_object_new_double(p->window_seconds));
	add(o, "window_epochs", u64(p->window_epochs));
	add(o, "pages", u64(p->pages));
	add(o, "bytes", u64(p->bytes));
	add(o, "dirty_rate_bytes_per_second", json_object_new_double(p->rate));
	add(o, "observed_seconds", json_object_new_double(p->observed_seconds));
	add(o, "observed_epochs", u64(p->observed_epochs));
	add(o, "complete", json_object_new_boolean(p->complete));
	return o;
}

static struct json_object *wss_curve(const struct dt_vm *vm, enum dt_curve_kind kind,
				     uint32_t vcpu, const struct dt_slot *slot)
{
	struct json_object *a = json_object_new_array();
	struct dt_curve c;

	dt_vm_curve(vm, kind, vcpu, slot, &c);
	for (uint32_t i = 0; i < c.n; i++)
		json_object_array_add(a, wss_point(&c.p[i]));
	return a;
}

struct json_object *dt_json_vm_summary(const struct dt_vm *vm)
{
	struct json_object *o = json_object_new_object();
	char uuid[37];

	dt_uuid_format(vm->uuid, uuid);
	add(o, "id", u64(vm->id));
	add(o, "name", json_object_new_string(vm->name));
	add(o, "uuid", dt_uuid_is_null(vm->uuid) ? NULL : json_object_new_string(uuid));
	add(o, "vmm", json_object_new_string(vm->vmm));
	if (vm->state != DT_VM_OBSERVED)
		add(o, "owner_uid", u64(vm->owner_uid));
	add(o, "state", json_object_new_string(dt_vm_state_name(vm->state)));
	add(o, "mode", json_object_new_string(vm->collector.ops->name));
	add(o, "page_size", u64(vm->page_size));
	add(o, "memory_bytes", u64(dt_vm_memory_pages(vm) << vm->page_shift));
	add(o, "vcpus", u64(vm->vcpus));
	add(o, "epoch_seconds", json_object_new_double(dt_vm_epoch_seconds(vm)));
	add(o, "epochs_harvested", u64(dt_stats_epochs(vm->stats)));
	add(o, "generation", u64(vm->generation));
	if (vm->state == DT_VM_DETACHED)
		add(o, "detach_reason", json_object_new_string(vm->detach_reason));
	if (vm->m->state && vm->state != DT_VM_OBSERVED && !dt_uuid_is_null(vm->uuid)) {
		add(o, "state_error", vm->persist.error[0] ? json_object_new_string(vm->persist.error)
							   : NULL);
		add(o, "state_bytes", u64(vm->persist.disk_bytes));
		add(o, "state_compactions", u64(vm->persist.quota_compactions));
	}
	dt_json_vm_add_libvirt(o, vm);
	return o;
}

struct json_object *dt_json_vm_vcpus_array(const struct dt_vm *vm)
{
	struct json_object *vcpus = json_object_new_array();

	for (uint32_t v = 0; v < vm->vcpus; v++) {
		struct json_object *c = json_object_new_object();
		const struct dt_ring *r = vm->collector.rings ? vm->collector.rings[v] : NULL;

		add(c, "vcpu", u64(v));
		add(c, "ring", json_object_new_boolean(r != NULL));
		add(c, "entries", u64(dt_stats_vcpu_entries(vm->stats, v)));
		add(c, "wss", wss_curve(vm, DT_CURVE_VCPU, v, NULL));
		json_object_array_add(vcpus, c);
	}
	return vcpus;
}

struct json_object *dt_json_vm_slots_array(const struct dt_vm *vm)
{
	struct json_object *slots = json_object_new_array();

	for (uint32_t i = 0; i < vm->collector.slots.n; i++) {
		const struct dt_slot *s = &vm->collector.slots.slots[i];
		struct json_object *j;

		if (!s->active && vm->state == DT_VM_ATTACHED)
			continue;
		j = json_object_new_object();
		add(j, "slot", u64(s->slot));
		add(j, "as_id", u64(s->slot >> 16));
		add(j, "id", u64(s->slot & 0xffff));
		add(j, "gpa", u64(s->gpa));
		add(j, "pages", u64(s->pages));
		add(j, "wss", wss_curve(vm, DT_CURVE_SLOT, 0, s));
		json_object_array_add(slots, j);
	}
	return slots;
}

/* {"id", "generation", "epoch_seconds", "epochs_harvested", key: value} */
static struct json_object *vm_part(const struct dt_vm *vm, const char *key,
				   struct json_object *value)
{
	struct json_object *o = json_object_new_object();

	add(o, "id", u64(vm->id));
	add(o, "generation", u64(vm->generation));
	add(o, "epoch_seconds", json_object_new_double(dt_vm_epoch_seconds(vm)));
	add(o, "epochs_harvested", u64(dt_stats_epochs(vm->stats)));
	add(o, key, value);
	return o;
}

struct json_object *dt_json_vm_wss(const struct dt_vm *vm)
{
	return vm_part(vm, "wss", wss_curve(vm, DT_CURVE_VM, 0, NULL));
}

struct json_object *dt_json_vm_vcpus(const struct dt_vm *vm)
{
	return vm_part(vm, "vcpus", dt_json_vm_vcpus_array(vm));
}

struct json_object *dt_json_vm_slots(const struct dt_vm *vm)
{
	return vm_part(vm, "slots", dt_json_vm_slots_array(vm));
}

/* The VMM's last sample of guest RAM (MEMORY_SAMPLE), or null. */
static struct json_object *zero_pages(const struct dt_vm *vm)
{
	const struct dt_vm_memory_sample *ms = &vm->memory_sample;
	struct json_object *o;

	if (!ms->at_us)
		return NULL;
	o = json_object_new_object();
	add(o, "fraction", json_object_new_double((double)ms->zero / (double)ms->sampled));
	add(o, "sampled_pages", u64(ms->sampled));
	add(o, "zero_pages", u64(ms->zero));
	add(o, "tracked_pages", u64(ms->pages));
	add(o, "epoch", u64(ms->epoch));
	return o;
}

struct json_object *dt_json_vm(const struct dt_vm *vm)
{
	struct json_object *o = dt_json_vm_summary(vm);
	struct json_object *counters = json_object_new_object();

	add(o, "wss", wss_curve(vm, DT_CURVE_VM, 0, NULL));
	add(o, "vcpus_detail", dt_json_vm_vcpus_array(vm));
	add(o, "slots", dt_json_vm_slots_array(vm));
	add(counters, "harvests", u64(vm->counters.harvests));
	add(counters, "ring_entries", u64(vm->collector.ring_entries));
	add(counters, "invalid_entries", u64(vm->collector.invalid_entries));
	add(counters, "bitmap_pages", u64(vm->collector.bitmap_pages));
	add(counters, "ring_resyncs", u64(vm->collector.ring_resyncs));
	add(counters, "ring_full", u64(vm->counters.ring_full));
	add(counters, "ring_full_harvests", u64(vm->counters.ring_full_harvests));
	add(counters, "resets", u64(vm->counters.resets));
	add(counters, "late_syncs", u64(vm->counters.late_syncs));
	add(counters, "attaches", u64(vm->counters.attaches));
	add(counters, "dirtied_pages", u64(dt_stats_total_pages(vm->stats)));
	add(counters, "harvest_seconds", json_object_new_double(vm->counters.harvest_us / 1e6));
	add(counters, "history_bytes", u64(vm->history_bytes));
	add(o, "counters", counters);
	add(o, "zero_pages", zero_pages(vm));
	return o;
}

struct json_object *dt_json_vm_list(const struct dt_manager *m)
{
	struct json_object *o = json_object_new_object();
	struct json_object *a = json_object_new_array();

	/* Oldest first: the registry is newest first. */
	size_t n = 0;
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		n++;
	const struct dt_vm **v = calloc(n ? n : 1, sizeof(*v));
	if (v) {
		size_t i = n;
		for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
			v[--i] = vm;
		for (i = 0; i < n; i++) {
			struct json_object *s = dt_json_vm_summary(v[i]);
			add(s, "wss", wss_curve(v[i], DT_CURVE_VM, 0, NULL));
			json_object_array_add(a, s);
		}
		free(v);
	}
	add(o, "vms", a);
	return o;
}

