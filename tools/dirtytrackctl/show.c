/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackctl show VM / wss VM: one VM's figures and working-set curve. */
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

static int get_vm(const struct ctl *ctl, const char *name, struct json_object **ret)
{
	char *e = ctl_escape(name);
	char path[512];
	int r;

	if (!e)
		return CTL_EXIT_FAILURE;
	snprintf(path, sizeof(path), "/v1/vms/%s", e);
	free(e);
	r = ctl_get(ctl, path, ret);
	return r;
}

/*
 * A window the history does not cover yet shows how much of it was
 * observed; its rate is over that part ("5s of 3600s"), never over the
 * whole window.
 */
static void print_curve(struct json_object *wss)
{
	printf("  %-10s %12s %12s %14s  %s\n", "WINDOW", "PAGES", "BYTES", "RATE", "OBSERVED");
	for (size_t i = 0; wss && i < json_object_array_length(wss); i++) {
		struct json_object *p = json_object_array_get_idx(wss, i), *w, *pg, *b, *r, *o, *c;
		char bytes[32], rate[32];

		json_object_object_get_ex(p, "window_seconds", &w);
		json_object_object_get_ex(p, "pages", &pg);
		json_object_object_get_ex(p, "bytes", &b);
		json_object_object_get_ex(p, "dirty_rate_bytes_per_second", &r);
		json_object_object_get_ex(p, "observed_seconds", &o);
		json_object_object_get_ex(p, "complete", &c);
		printf("  %9gs %12llu %12s %14s  ", json_object_get_double(w),
		       (unsigned long long)json_object_get_uint64(pg),
		       ctl_bytes((double)json_object_get_uint64(b), bytes),
		       ctl_rate(json_object_get_double(r), rate));
		if (json_object_get_boolean(c))
			printf("all\n");
		else
			printf("%gs of %gs\n", json_object_get_double(o), json_object_get_double(w));
	}
}

int ctl_wss(const struct ctl *ctl, int argc, char **argv)
{
	struct json_object *o, *wss;
	int r;

	if (argc != 2) {
		fprintf(stderr, "dirtytrackctl: usage: wss VM\n");
		return CTL_EXIT_USAGE;
	}
	r = get_vm(ctl, argv[1], &o);
	if (r)
		return r;
	json_object_object_get_ex(o, "wss", &wss);
	if (ctl->json)
		ctl_print_json(wss);
	else
		print_curve(wss);
	json_object_put(o);
	return 0;
}

int ctl_show(const struct ctl *ctl, int argc, char **argv)
{
	struct json_object *o, *wss, *vcpus;
	char mem[32];
	int r;

	if (argc != 2) {
		fprintf(stderr, "dirtytrackctl: usage: show VM\n");
		return CTL_EXIT_USAGE;
	}
	r = get_vm(ctl, argv[1], &o);
	if (r)
		return r;
	if (ctl->json) {
		ctl_print_json(o);
		json_object_put(o);
		return 0;
	}
	struct json_object *m;
	json_object_object_get_ex(o, "memory_bytes", &m);
	printf("VM %s: %s (%s)\n", ctl_json_str(o, "id"), ctl_json_str(o, "name"), ctl_json_str(o, "state"));
	printf("  uuid %s, vmm %s, mode %s\n", ctl_json_str(o, "uuid"), ctl_json_str(o, "vmm"), ctl_json_str(o, "mode"));
	printf("  %s vCPUs, memory %s, page size %s, epoch %ss, %s epochs\n", ctl_json_str(o, "vcpus"),
	       ctl_bytes((double)json_object_get_uint64(m), mem), ctl_json_str(o, "page_size"),
	       ctl_json_str(o, "epoch_seconds"), ctl_json_str(o, "epochs_harvested"));
	printf("Working-set curve:\n");
	json_object_object_get_ex(o, "wss", &wss);
	print_curve(wss);
	if (json_object_object_get_ex(o, "vcpus_detail", &vcpus)) {
		printf("Per vCPU (ring entries, pages in the 1 s window):\n");
		for (size_t i = 0; i < json_object_array_length(vcpus); i++) {
			struct json_object *v = json_object_array_get_idx(vcpus, i), *w, *p;
			unsigned long long pages = 0;

			if (json_object_object_get_ex(v, "wss", &w) && json_object_array_length(w)) {
				size_t k = json_object_array_length(w) > 1 ? 1 : 0;
				json_object_object_get_ex(json_object_array_get_idx(w, k), "pages", &p);
				pages = json_object_get_uint64(p);
			}
			printf("  vCPU %-4s %12s entries %10llu pages\n", ctl_json_str(v, "vcpu"),
			       ctl_json_str(v, "entries"), pages);
		}
	}
	json_object_put(o);
	return 0;
}
