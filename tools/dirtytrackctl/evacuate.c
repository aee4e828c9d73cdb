/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dirtytrackctl evacuate --bandwidth B --downtime D [--parallel N]
 * [--target T]: the plan to drain the host (GET /v1/evacuation) as a
 * table in the drain's order, or its JSON. Exit CTL_EXIT_NO_CONVERGE when
 * a VM cannot go live (or cannot be planned).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void evacuate_usage(FILE *f)
{
	fprintf(f, "Usage: dirtytrackctl [--json] evacuate --bandwidth B --downtime D [--parallel N]\n"
		   "                     [--target T] [--json]\n"
		   "B: bytes/s for the whole drain; N (1..16, default 1): migrations at once,\n"
		   "each VM at B over those running when it starts; D, T: 300ms, 2s, 10m\n"
		   "(T: per VM).\n"
		   "Exit 0 when every VM can go live, 6 when one cannot.\n");
}

static void print_evacuation(struct json_object *o)
{
	struct json_object *in = ctl_json_get(o, "inputs"), *vms = ctl_json_get(o, "vms");
	char a[32], b[32], t[32] = "-";

	if (ctl_json_get(o, "total_drain_seconds"))
		snprintf(t, sizeof(t), "%.2fs",
			 json_object_get_double(ctl_json_get(o, "total_drain_seconds")));
	printf("Drain at %s (%s per migration, %s at once), at most %gs downtime: %s in all\n",
	       ctl_rate(json_object_get_double(ctl_json_get(in, "bandwidth_bytes_per_second")), a),
	       ctl_rate(json_object_get_double(
				ctl_json_get(in, "per_migration_bandwidth_bytes_per_second")),
			b),
	       ctl_json_str(in, "parallel"),
	       json_object_get_double(ctl_json_get(in, "downtime_seconds")), t);
	printf("  %5s %4s %-20s %-15s %9s %9s  %s\n", "ORDER", "SLOT", "VM", "VERDICT", "START",
	       "DURATION", "KNOB");
	for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
		struct json_object *v = json_object_array_get_idx(vms, i);
		bool planned = ctl_json_get(v, "start_seconds") != NULL;

		if (planned)
			printf("  %5s %4s %-20.20s %-15s %8.2fs %8.2fs  %s\n", ctl_json_str(v, "order"),
			       ctl_json_str(v, "slot"), ctl_json_str(v, "name"),
			       ctl_json_str(v, "verdict"),
			       json_object_get_double(ctl_json_get(v, "start_seconds")),
			       json_object_get_double(ctl_json_get(v, "duration_seconds")),
			       ctl_json_get(v, "knob") ? ctl_json_str(v, "knob") : "-");
		else
			printf("  %5s %4s %-20.20s %-15s %9s %9s  %s\n", "-", "-",
			       ctl_json_str(v, "name"), ctl_json_str(v, "verdict"), "-", "-", "-");
		printf("        %s\n", ctl_json_str(v, "why"));
	}
}

int ctl_evacuate(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "downtime", required_argument, NULL, 'd' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "target", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *bandwidth = NULL, *downtime = NULL, *parallel = NULL, *target = NULL;
	struct json_object *o = NULL;
	bool json = ctl->json;
	char path[512] = "/v1/evacuation";
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "b:d:p:t:jh", opts, NULL)) >= 0) {
		switch (c) {
		case 'b':
			bandwidth = optarg;
			break;
		case 'd':
			downtime = optarg;
			break;
		case 'p':
			parallel = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			evacuate_usage(stdout);
			return CTL_EXIT_OK;
		default:
			evacuate_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc || !bandwidth || !downtime) {
		fprintf(stderr, "dirtytrackctl: evacuate needs --bandwidth and --downtime%s\n",
			optind != argc ? " and no other argument" : "");
		evacuate_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (ctl_add_param(path, sizeof(path), "bandwidth", bandwidth) < 0 ||
	    ctl_add_param(path, sizeof(path), "downtime", downtime) < 0 ||
	    (parallel && ctl_add_param(path, sizeof(path), "parallel", parallel) < 0) ||
	    (target && ctl_add_param(path, sizeof(path), "target", target) < 0)) {
		fprintf(stderr, "dirtytrackctl: evacuate: arguments too long\n");
		return CTL_EXIT_USAGE;
	}
	r = ctl_get(ctl, path, &o);
	if (r)
		return r;
	if (json)
		ctl_print_json(o);
	else
		print_evacuation(o);
	r = json_object_get_uint64(ctl_json_get(o, "cannot_go_live")) ? CTL_EXIT_NO_CONVERGE
								       : CTL_EXIT_OK;
	json_object_put(o);
	return r;
}
