/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackctl list: one line per VM. */
#include <stdio.h>

#include "ctl.h"

/* Rate at the smallest window of at least one second. */
static double rate_1s(struct json_object *vm)
{
	struct json_object *wss, *p, *w, *r;

	if (!json_object_object_get_ex(vm, "wss", &wss))
		return 0;
	for (size_t i = 0; i < json_object_array_length(wss); i++) {
		p = json_object_array_get_idx(wss, i);
		if (json_object_object_get_ex(p, "window_seconds", &w) &&
		    json_object_get_double(w) >= 0.999 &&
		    json_object_object_get_ex(p, "dirty_rate_bytes_per_second", &r))
			return json_object_get_double(r);
	}
	return 0;
}

int ctl_list(const struct ctl *ctl, int argc, char **argv)
{
	struct json_object *o, *vms;
	int r = ctl_get(ctl, "/v1/vms", &o);

	if (r)
		return r;
	if (ctl->json) {
		ctl_print_json(o);
		json_object_put(o);
		return 0;
	}
	json_object_object_get_ex(o, "vms", &vms);
	printf("%-5s %-20s %-9s %-12s %5s %10s %12s %8s\n", "ID", "NAME", "STATE", "MODE", "VCPUS",
	       "MEMORY", "DIRTY RATE", "EPOCHS");
	for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
		struct json_object *vm = json_object_array_get_idx(vms, i), *v;
		char mem[32], rate[32];

		json_object_object_get_ex(vm, "memory_bytes", &v);
		ctl_bytes((double)json_object_get_uint64(v), mem);
		ctl_rate(rate_1s(vm), rate);
		printf("%-5s %-20s %-9s %-12s %5s %10s %12s %8s\n", ctl_json_str(vm, "id"), ctl_json_str(vm, "name"),
		       ctl_json_str(vm, "state"), ctl_json_str(vm, "mode"), ctl_json_str(vm, "vcpus"), mem, rate,
		       ctl_json_str(vm, "epochs_harvested"));
	}
	json_object_put(o);
	return 0;
}
