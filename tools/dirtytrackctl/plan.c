/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dirtytrackctl plan VM --bandwidth B --downtime D: the daemon's pre-copy
 * migration plan (GET /v1/vms/VM/plan) as a summary, or its JSON as is.
 * Exit CTL_EXIT_NO_CONVERGE when pre-copy would not converge (or not within
 * --target), so that a migration hook can refuse or throttle first.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "dt_util.h"

/* The REST names of ctl_plan_query.engine_opts[], in CTL_PLAN_* order. */
static const char *const ctl_plan_engine_params[CTL_PLAN_NENGINE_OPTS] = {
	"engine", "throughput", "final_bandwidth", "zero_page_cost", "cpu_throttle_initial",
	"cpu_throttle_increment", "throttle_trigger_threshold", "cpu_throttle_tailslow",
};

static void plan_usage(FILE *f)
{
	fprintf(f, "Usage: dirtytrackctl [--json] plan VM --bandwidth B --downtime D [--json]\n"
		   "                     [--zero-fraction F] [--max-rounds N] [--target T]\n"
		   "                     [--engine ideal|qemu|qemu-VERSION] [--throughput B]\n"
		   "                     [--final-bandwidth B] [--zero-page-cost D]\n"
		   "                     [--cpu-throttle-initial P] [--cpu-throttle-increment P]\n"
		   "                     [--throttle-trigger-threshold P]\n"
		   "                     [--cpu-throttle-tailslow true|false]\n"
		   "B: bytes/s, or 10Gbit, 100Mbit/s, 1.25GB, 500MB, 1GiB; D, T: 300ms, 2s, 10m;\n"
		   "P: percent, 1..99 (the threshold 1..100). Any of the last four plans with\n"
		   "auto-converge on. The daemon checks the engine options: a value it refuses\n"
		   "is a usage error, in its words.\n"
		   "Exit 0 when pre-copy converges (within T), 6 when it does not.\n");
}

static double dbl(struct json_object *o, const char *k)
{
	return json_object_get_double(ctl_json_get(o, k));
}

/* The knobs, one line each: the advised one marked, unavailable ones said so. */
void ctl_print_knobs(struct json_object *k, const char *indent)
{
	struct json_object *opts = ctl_json_get(k, "options");
	const char *advised = json_object_get_string(ctl_json_get(k, "advised"));

	printf("%sQEMU knobs (%s rules%s), each re-planned with the knob set:\n", indent,
	       ctl_json_str(k, "engine"),
	       json_object_get_boolean(ctl_json_get(k, "version_assumed")) ? ", version assumed" : "");
	for (size_t i = 0; opts && i < json_object_array_length(opts); i++) {
		struct json_object *x = json_object_array_get_idx(opts, i);
		const char *name = ctl_json_str(x, "knob");
		bool mark = advised && strcmp(advised, name) == 0;

		printf("%s %s %s\n", indent, mark ? "*" : json_object_get_boolean(
								 ctl_json_get(x, "available")) ? "-" : "x",
		       ctl_json_str(x, "why"));
		if (mark && ctl_json_get(x, "virsh"))
			printf("%s     virsh: %s\n", indent, ctl_json_str(x, "virsh"));
	}
	printf("%s (* advised, - possible, x not with this VMM)\n", indent);
}

static void print_plan(struct json_object *o)
{
	struct json_object *in = ctl_json_get(o, "inputs"), *rounds = ctl_json_get(o, "rounds");
	struct json_object *rec = ctl_json_get(o, "recommendation"), *target = ctl_json_get(in, "target_seconds");
	bool converges = json_object_get_boolean(ctl_json_get(o, "converges"));
	char a[32], b[32];

	printf("VM %s (%s), epoch %s, %s engine: pre-copy %s at %s with at most %gs downtime",
	       json_object_get_string(ctl_json_get(o, "id")), json_object_get_string(ctl_json_get(o, "name")),
	       json_object_get_string(ctl_json_get(o, "epoch")),
	       ctl_json_str(ctl_json_get(o, "engine"), "name"),
	       converges ? "converges" : "does NOT converge",
	       ctl_rate(dbl(in, "bandwidth_bytes_per_second"), a), dbl(in, "downtime_seconds"));
	if (target)
		printf(" (target %gs: %s)", json_object_get_double(target),
		       json_object_get_boolean(ctl_json_get(o, "meets_target")) ? "met" : "missed");
	printf("\n  memory %s, page size %s, zero fraction %g, at most %s rounds; verdict %s\n",
	       ctl_bytes(dbl(in, "memory_bytes"), b), json_object_get_string(ctl_json_get(in, "page_size")),
	       dbl(in, "zero_fraction"), json_object_get_string(ctl_json_get(in, "max_rounds")),
	       json_object_get_string(ctl_json_get(o, "verdict")));
	printf("  %5s %10s %10s %12s %12s %12s\n", "ROUND", "START", "DURATION", "PAGES", "BYTES",
	       "DIRTIED");
	for (size_t i = 0; rounds && i < json_object_array_length(rounds); i++) {
		struct json_object *r = json_object_array_get_idx(rounds, i);

		printf("  %5s %9.3fs %9.3fs %12llu %12s %12llu\n",
		       json_object_get_string(ctl_json_get(r, "index")), dbl(r, "start_seconds"),
		       dbl(r, "duration_seconds"),
		       (unsigned long long)json_object_get_uint64(ctl_json_get(r, "pages")),
		       ctl_bytes((double)json_object_get_uint64(ctl_json_get(r, "bytes")), a),
		       (unsigned long long)json_object_get_uint64(ctl_json_get(r, "dirtied_pages")));
	}
	printf("  total time %.3fs, downtime %.3fs, %s sent\n", dbl(o, "total_time_seconds"),
	       dbl(o, "downtime_seconds"),
	       ctl_bytes((double)json_object_get_uint64(ctl_json_get(o, "bytes_sent")), a));
	if (ctl_json_get(o, "knobs"))
		ctl_print_knobs(ctl_json_get(o, "knobs"), "");
	if (!rec) {
		if (!ctl_json_get(o, "knobs"))
			printf("Recommendation: none, migrate as is.\n");
		return;
	}
	const char *advice = json_object_get_string(ctl_json_get(rec, "advice"));
	struct json_object *vcpus = ctl_json_get(rec, "throttle_vcpus");

	if (strcmp(advice, "throttle") == 0 && json_object_array_length(vcpus) == 0) {
		/* no dirty rings, no per-vCPU figures: the limit is the whole VM's */
		printf("Recommendation: limit the VM's dirtying to %.0f pages/s (%s) in all: "
		       "then %.3fs in all, %.3fs downtime.\n",
		       dbl(rec, "dirty_limit_pages_per_second"),
		       ctl_rate(dbl(rec, "dirty_limit_bytes_per_second"), a),
		       dbl(rec, "throttled_total_seconds"), dbl(rec, "throttled_downtime_seconds"));
	} else if (strcmp(advice, "throttle") == 0) {
		printf("Recommendation: throttle vCPU%s ",
		       json_object_array_length(vcpus) == 1 ? "" : "s");
		for (size_t i = 0; i < json_object_array_length(vcpus); i++)
			printf("%s%s", i ? "," : "",
			       json_object_get_string(json_object_array_get_idx(vcpus, i)));
		printf(" to %.0f dirtied pages/s (%s) each: then %.3fs in all, %.3fs downtime.\n",
		       dbl(rec, "dirty_limit_pages_per_second"),
		       ctl_rate(dbl(rec, "dirty_limit_bytes_per_second"), a),
		       dbl(rec, "throttled_total_seconds"), dbl(rec, "throttled_downtime_seconds"));
	} else if (strcmp(advice, "postcopy") == 0) {
		printf("Recommendation: post-copy, %.3fs in all.\n",
		       dbl(rec, "postcopy_total_seconds"));
	} else {
		printf("Recommendation: %s.\n", advice);
	}
	printf("  %s\n", json_object_get_string(ctl_json_get(rec, "why")));
}

int ctl_plan_path(char *path, size_t size, const char *name, const struct ctl_plan_query *q)
{
	const char *bandwidth = q->bandwidth, *downtime = q->downtime, *zero = q->zero_fraction,
		   *rounds = q->max_rounds, *target = q->target;
	char *vm;
	uint64_t u;

	/* The daemon checks them too; a typo is a usage error here, not a daemon error. */
	if (dt_parse_bandwidth(bandwidth, &u) < 0) {
		fprintf(stderr,
			"dirtytrackctl: --bandwidth '%s' is not a bandwidth from 1 B/s to 1PB/s "
			"(bytes/s, or 10Gbit, 100Mbit/s, 1.25GB, 500MB, 1GiB)\n",
			bandwidth);
		return CTL_EXIT_USAGE;
	}
	if (dt_parse_duration(downtime, &u) < 0 || u == 0) {
		fprintf(stderr, "dirtytrackctl: --downtime '%s' is not a duration such as 300ms\n",
			downtime);
		return CTL_EXIT_USAGE;
	}
	if (zero) {
		char *end;
		double f = strtod(zero, &end);

		if (*end || end == zero || !(f >= 0 && f <= 1) ||
		    strspn(zero, "0123456789.") != strlen(zero)) {
			fprintf(stderr,
				"dirtytrackctl: --zero-fraction '%s' is not a number from 0 to 1\n",
				zero);
			return CTL_EXIT_USAGE;
		}
	}
	if (rounds && dt_parse_u64(rounds, 1, 1000, &u) < 0) {
		fprintf(stderr,
			"dirtytrackctl: --max-rounds '%s' is not an integer from 1 to 1000\n",
			rounds);
		return CTL_EXIT_USAGE;
	}
	if (target && (dt_parse_duration(target, &u) < 0 || u == 0)) {
		fprintf(stderr, "dirtytrackctl: --target '%s' is not a duration such as 120s\n",
			target);
		return CTL_EXIT_USAGE;
	}
	vm = ctl_escape(name);
	if (!vm)
		return CTL_EXIT_FAILURE;
	snprintf(path, size, "/v1/vms/%s/plan", vm);
	free(vm);
	if (ctl_add_param(path, size, "bandwidth", bandwidth) < 0 ||
	    ctl_add_param(path, size, "downtime", downtime) < 0 ||
	    (zero && ctl_add_param(path, size, "zero_fraction", zero) < 0) ||
	    (rounds && ctl_add_param(path, size, "max_rounds", rounds) < 0) ||
	    (target && ctl_add_param(path, size, "target", target) < 0)) {
		fprintf(stderr, "dirtytrackctl: the arguments are too long\n");
		return CTL_EXIT_USAGE;
	}
	/* The engine's options as given: the daemon's checks (and words) are the only ones. */
	for (size_t i = 0; i < sizeof(q->engine_opts) / sizeof(q->engine_opts[0]); i++)
		if (q->engine_opts[i] &&
		    ctl_add_param(path, size, ctl_plan_engine_params[i], q->engine_opts[i]) < 0) {
		fprintf(stderr, "dirtytrackctl: the arguments are too long\n");
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

int ctl_plan(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "downtime", required_argument, NULL, 'd' },
		{ "zero-fraction", required_argument, NULL, 'z' },
		{ "max-rounds", required_argument, NULL, 'r' },
		{ "target", required_argument, NULL, 't' },
		{ "engine", required_argument, NULL, CTL_PLAN_ENGINE },
		{ "throughput", required_argument, NULL, CTL_PLAN_THROUGHPUT },
		{ "final-bandwidth", required_argument, NULL, CTL_PLAN_FINAL_BANDWIDTH },
		{ "zero-page-cost", required_argument, NULL, CTL_PLAN_ZERO_PAGE_COST },
		{ "cpu-throttle-initial", required_argument, NULL, CTL_PLAN_THROTTLE_INITIAL },
		{ "cpu-throttle-increment", required_argument, NULL, CTL_PLAN_THROTTLE_INCREMENT },
		{ "throttle-trigger-threshold", required_argument, NULL, CTL_PLAN_THROTTLE_TRIGGER },
		{ "cpu-throttle-tailslow", required_argument, NULL, CTL_PLAN_THROTTLE_TAILSLOW },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ctl_plan_query q = { 0 };
	struct json_object *o = NULL;
	bool json = ctl->json;
	char path[1024];
	int c, r;

	optind = 0; /* glibc: start over on the subcommand's arguments */
	while ((c = getopt_long(argc, argv, "b:d:z:r:t:jh", opts, NULL)) >= 0) {
		switch (c) {
		case 'b':
			q.bandwidth = optarg;
			break;
		case 'd':
			q.downtime = optarg;
			break;
		case 'z':
			q.zero_fraction = optarg;
			break;
		case 'r':
			q.max_rounds = optarg;
			break;
		case 't':
			q.target = optarg;
			break;
		case CTL_PLAN_ENGINE ... CTL_PLAN_ENGINE_LAST:
			q.engine_opts[c - CTL_PLAN_ENGINE] = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			plan_usage(stdout);
			return CTL_EXIT_OK;
		default:
			plan_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !q.bandwidth || !q.downtime) {
		fprintf(stderr, "dirtytrackctl: plan needs a VM, --bandwidth and --downtime\n");
		plan_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	r = ctl_plan_path(path, sizeof(path), argv[optind], &q);
	if (r)
		return r;
	r = ctl_get(ctl, path, &o);
	if (r)
		return r;
	if (json)
		ctl_print_json(o);
	else
		print_plan(o);
	r = json_object_get_boolean(ctl_json_get(o, "meets_target")) ? CTL_EXIT_OK : CTL_EXIT_NO_CONVERGE;
	json_object_put(o);
	return r;
}
