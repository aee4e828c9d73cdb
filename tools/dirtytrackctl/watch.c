/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dirtytrackctl watch VM: a live view redrawn on each new harvest. Each
 * round is a long-poll (?index=GENERATION&wait=30s): the daemon answers
 * when the VM's generation moves on, so there is no sleep loop here.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define BAR_WIDTH 40

static double num(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static void draw(struct json_object *vm, bool clear)
{
	struct json_object *wss;
	double max = 0;
	char b[32], r[32];
	bool partial = false;

	if (clear)
		fputs("\033[H\033[2J", stdout);
	printf("VM %s: %s (%s, %s), %s epochs, generation %s\n", ctl_json_str(vm, "id"), ctl_json_str(vm, "name"),
	       ctl_json_str(vm, "state"), ctl_json_str(vm, "mode"), ctl_json_str(vm, "epochs_harvested"),
	       ctl_json_str(vm, "generation"));
	if (!json_object_object_get_ex(vm, "wss", &wss))
		return;
	for (size_t i = 0; i < json_object_array_length(wss); i++)
		if (num(json_object_array_get_idx(wss, i), "bytes") > max)
			max = num(json_object_array_get_idx(wss, i), "bytes");
	printf("  %9s %12s %14s %9s  working set\n", "WINDOW", "BYTES", "RATE", "OBSERVED");
	for (size_t i = 0; i < json_object_array_length(wss); i++) {
		struct json_object *p = json_object_array_get_idx(wss, i);
		double bytes = num(p, "bytes");
		bool complete = json_object_get_boolean(ctl_json_get(p, "complete"));
		int n = max > 0 ? (int)(bytes / max * BAR_WIDTH + 0.5) : 0;

		/* A window not yet covered says how much of it the rate is over. */
		printf("  %8gs %12s %14s %8gs%c ", num(p, "window_seconds"), ctl_bytes(bytes, b),
		       ctl_rate(num(p, "dirty_rate_bytes_per_second"), r), num(p, "observed_seconds"),
		       complete ? ' ' : '*');
		partial |= !complete;
		for (int k = 0; k < n; k++)
			fputs("#", stdout);
		putchar('\n');
	}
	if (partial)
		printf("  * window not yet covered: D(T) and the rate are over the observed part\n");
	fflush(stdout);
}

int ctl_watch(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "wait", required_argument, NULL, 'w' },
		{},
	};
	unsigned long count = 0, wait_s = 30, seen = 0;
	bool clear = isatty(STDOUT_FILENO);
	uint64_t gen = 0;
	bool have = false;
	char *e = NULL;
	int c, r;

	optind = 0; /* glibc: start over, options before or after the VM */
	while ((c = getopt_long(argc, argv, "n:w:", opts, NULL)) >= 0) {
		switch (c) {
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			wait_s = strtoul(optarg, NULL, 10);
			if (wait_s < 1 || wait_s > 300) {
				fprintf(stderr, "dirtytrackctl: --wait must be 1..300 seconds\n");
				return CTL_EXIT_USAGE;
			}
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "dirtytrackctl: usage: watch [--count N] [--wait SECONDS] VM\n");
		return CTL_EXIT_USAGE;
	}
	e = ctl_escape(argv[optind]);
	if (!e)
		return CTL_EXIT_FAILURE;
	for (;;) {
		struct json_object *o, *g;
		char path[512];

		if (have)
			snprintf(path, sizeof(path), "/v1/vms/%s?index=%" PRIu64 "&wait=%lus", e,
				 gen, wait_s);
		else
			snprintf(path, sizeof(path), "/v1/vms/%s", e);
		r = ctl_get_timeout(ctl, path, (long)wait_s + 10, &o);
		if (r)
			break;
		if (!json_object_object_get_ex(o, "generation", &g)) {
			json_object_put(o);
			fprintf(stderr, "dirtytrackctl: the answer has no generation\n");
			r = CTL_EXIT_FAILURE;
			break;
		}
		/* An unchanged generation: the wait timed out; nothing to redraw. */
		if (!have || json_object_get_uint64(g) != gen) {
			gen = json_object_get_uint64(g);
			have = true;
			if (ctl->json)
				puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
			else
				draw(o, clear);
			fflush(stdout);
			seen++;
		}
		json_object_put(o);
		if (count && seen >= count) {
			r = CTL_EXIT_OK;
			break;
		}
	}
	free(e);
	return r;
}
