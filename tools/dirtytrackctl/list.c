/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackctl list: one line per VM. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/*
 * Rate at the smallest window of at least one second; *ret_complete false
 * when the history does not cover that window yet (the rate is then over
 * the observed part).
 */
static double rate_1s(struct json_object *vm, bool *ret_complete)
{
	struct json_object *wss, *p, *w, *r;

	*ret_complete = true;
	if (!json_object_object_get_ex(vm, "wss", &wss))
		return 0;
	for (size_t i = 0; i < json_object_array_length(wss); i++) {
		p = json_object_array_get_idx(wss, i);
		if (json_object_object_get_ex(p, "window_seconds", &w) &&
		    json_object_get_double(w) >= 0.999 &&
		    json_object_object_get_ex(p, "dirty_rate_bytes_per_second", &r)) {
			*ret_complete = json_object_get_boolean(ctl_json_get(p, "complete"));
			return json_object_get_double(r);
		}
	}
	return 0;
}

int ctl_list(const struct ctl *ctl, int argc, char **argv)
{
	struct json_object *o, *vms;
	bool partial = false;
	int r = ctl_no_args("list", argc, argv);

	if (r)
		return r;
	r = ctl_get(ctl, "/v1/vms", &o);
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
		bool complete;
		size_t len;

		json_object_object_get_ex(vm, "memory_bytes", &v);
		ctl_bytes((double)json_object_get_uint64(v), mem);
		ctl_rate(rate_1s(vm, &complete), rate);
		len = strlen(rate);
		if (!complete && len + 1 < sizeof(rate)) {
			rate[len] = '*';
			rate[len + 1] = 0;
			partial = true;
		}
		printf("%-5s %-20s %-9s %-12s %5s %10s %12s %8s\n", ctl_json_str(vm, "id"), ctl_json_str(vm, "name"),
		       ctl_json_str(vm, "state"), ctl_json_str(vm, "mode"), ctl_json_str(vm, "vcpus"), mem, rate,
		       ctl_json_str(vm, "epochs_harvested"));
	}
	if (partial)
		printf("* over less than its 1 s window: the VM was not watched for all of it yet\n");
	json_object_put(o);
	return 0;
}
