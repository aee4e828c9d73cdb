/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "dt_util.h"
#include "json_libvirt.h"

static struct json_object *libvirt_object(const struct dt_vm *vm)
{
	const struct dt_lv_sample *s = &vm->libvirt;
	struct json_object *o = json_object_new_object();
	uint64_t now = dt_now_us();

	/* null until QEMU finished a calc; whole MiB/s from libvirt, in bytes/s */
	json_object_object_add(o, "dirty_rate_bytes_per_second",
			       s->has_rate ? json_object_new_uint64(s->rate_bytes) : NULL);
	json_object_object_add(o, "calc_status",
			       json_object_new_string(s->calc_status == DT_LV_MEASURED    ? "measured"
						      : s->calc_status == DT_LV_MEASURING ? "measuring"
											  : "unstarted"));
	json_object_object_add(o, "calc_mode",
			       json_object_new_string(dt_lv_calc_mode_name(s->calc_mode)));
	json_object_object_add(o, "calc_period_seconds", json_object_new_uint64(s->calc_period_s));
	json_object_object_add(o, "calc_start_time", json_object_new_int64(s->calc_start_time));
	json_object_object_add(o, "sample_us", json_object_new_uint64(s->sample_us));
	json_object_object_add(o, "sample_age_seconds",
			       json_object_new_double(now > s->sample_us ? (now - s->sample_us) / 1e6
									 : 0.0));
	return o;
}

void dt_json_vm_add_libvirt(struct json_object *o, const struct dt_vm *vm)
{
	json_object_object_add(o, "source", json_object_new_string(dt_vm_source_name(vm)));
	json_object_object_add(o, "fidelity", json_object_new_string(dt_vm_fidelity_name(vm)));
	json_object_object_add(o, "libvirt_domain",
			       vm->libvirt_domain[0] ? json_object_new_string(vm->libvirt_domain)
						     : NULL);
	if (vm->state == DT_VM_OBSERVED)
		json_object_object_add(o, "libvirt", libvirt_object(vm));
}
