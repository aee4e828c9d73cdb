/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dirtytrackctl migrate-check DOMAIN --bandwidth B --downtime D: the go/no-go
 * of a live migration in one line and an exit code, for tools that run
 * before `virsh migrate` on the source and for the libvirt hook
 * (units/libvirt/qemu.d/50-dirtytrackd) on the destination. DOMAIN is what
 * the daemon knows the VM by: a libvirt domain's uuid, its name, or an id.
 * The answer is the plan's (GET /v1/vms/DOMAIN/plan): exit 0 when pre-copy
 * converges (within --target), CTL_EXIT_NO_CONVERGE when it does not.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "dt_util.h"

static void check_usage(FILE *f)
{
	fprintf(f,
		"Usage: dirtytrackctl migrate-check DOMAIN --bandwidth B --downtime D\n"
		"                     [--target T] [--timeout T] [--quiet] [--json]\n"
		"DOMAIN: the libvirt domain's uuid or name as the daemon knows it (or a VM id).\n"
		"B: bytes/s, or 10Gbit, 100Mbit/s, 1.25GB, 500MB, 1GiB; D, T: 300ms, 2s, 10m.\n"
		"--timeout: give up on the daemon after T (default 60s).\n"
		"Prints one line (nothing with --quiet; the plan's JSON with --json).\n"
		"Exit 0: pre-copy converges (within --target); 6: it does not; 3: no daemon;\n"
		"4: no such VM; 5: token refused; 1: other daemon error (e.g. no figures\n"
		"yet); 2: usage.\n");
}

static void print_verdict(const char *domain, struct json_object *o)
{
	struct json_object *in = ctl_json_get(o, "inputs"), *rec = ctl_json_get(o, "recommendation");
	bool ok = json_object_get_boolean(ctl_json_get(o, "meets_target"));
	char a[32];

	printf("%s: %s at %s with at most %gs downtime (%s; %.3fs in all, %zu round%s", domain,
	       ok ? "converges" : "will NOT converge",
	       ctl_rate(json_object_get_double(ctl_json_get(in, "bandwidth_bytes_per_second")), a),
	       json_object_get_double(ctl_json_get(in, "downtime_seconds")),
	       json_object_get_string(ctl_json_get(o, "verdict")),
	       json_object_get_double(ctl_json_get(o, "total_time_seconds")),
	       json_object_array_length(ctl_json_get(o, "rounds")),
	       json_object_array_length(ctl_json_get(o, "rounds")) == 1 ? "" : "s");
	printf("%s)", !ok && json_object_get_boolean(ctl_json_get(o, "converges")) ? ", target missed" : "");
	if (rec)
		printf("; advice: %s", json_object_get_string(ctl_json_get(rec, "advice")));
	printf("\n");
}

int ctl_migrate_check(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "downtime", required_argument, NULL, 'd' },
		{ "target", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *bandwidth = NULL, *downtime = NULL, *target = NULL;
	struct ctl c = *ctl;
	struct json_object *o = NULL;
	bool quiet = false;
	char path[1024];
	uint64_t v;
	int opt, r;

	optind = 0; /* glibc: start over on the subcommand's arguments */
	while ((opt = getopt_long(argc, argv, "b:d:t:T:qjh", opts, NULL)) >= 0) {
		switch (opt) {
		case 'b':
			bandwidth = optarg;
			break;
		case 'd':
			downtime = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'T':
			if (dt_parse_duration(optarg, &v) < 0 || v < 1000 || v > 3600000000ull) {
				fprintf(stderr,
					"dirtytrackctl: --timeout '%s' is not a duration from 1ms "
					"to 1h\n",
					optarg);
				return CTL_EXIT_USAGE;
			}
			c.timeout_ms = (long)(v / 1000);
			break;
		case 'q':
			quiet = true;
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			check_usage(stdout);
			return CTL_EXIT_OK;
		default:
			check_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !bandwidth || !downtime) {
		fprintf(stderr, "dirtytrackctl: migrate-check needs a DOMAIN, --bandwidth and "
				"--downtime\n");
		check_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	r = ctl_plan_path(path, sizeof(path), argv[optind],
			  &(struct ctl_plan_query){.bandwidth = bandwidth, .downtime = downtime,
						   .target = target});
	if (r)
		return r;
	r = ctl_get(&c, path, &o);
	if (r)
		return r;
	if (c.json)
		ctl_print_json(o);
	else if (!quiet)
		print_verdict(argv[optind], o);
	r = json_object_get_boolean(ctl_json_get(o, "meets_target")) ? CTL_EXIT_OK : CTL_EXIT_NO_CONVERGE;
	json_object_put(o);
	return r;
}
