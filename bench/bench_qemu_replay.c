/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QEMU engine model replayed on the rows of a real-QEMU grid run
 * (bench/qemu-plan-grid.sh with KEEP=ROWS.jsonl): each row holds the curve
 * and inputs the daemon planned with just before `migrate`, and QEMU's own
 * figures. The plan is recomputed here with dt_plan_qemu_compute, with
 * engine inputs from the command line, and set beside QEMU's figures, so the
 * model can be checked (and its stated inputs chosen) without rerunning QEMU.
 *
 *   bench_qemu_replay ROWS.jsonl [KEY=VALUE ...]
 *     KEY: final_bandwidth (bytes/s), zero_page_us, throughput (bytes/s), setup_s,
 *          switchover_s, engine (the plan of the row read: default qemu),
 *          speeds=own|previous: the host's speeds (throughput, zero page, final
 *          copy: the row's "host", qemu_plan_grid.py speeds) of this
 *          migration (the rules alone judged) or of the grid's previous one
 *          (what an operator knows from the last migration on the host),
 *          scale=X: those speeds times X (a zero page's cost over X),
 *          format=json: one JSON object per row, no summary
 *
 * One line per row, then the median and worst error of total time, downtime
 * and bytes over the rows both QEMU and the model say converge, and the
 * verdicts that agree (as bench/qemu_plan_grid.py counts them).
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_plan.h"

#define MAX_ROWS 256

static double num(json_object *o, const char *path)
{
	char buf[128], *save = NULL, *k;
	json_object *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(v, k, &v) || !v)
			return NAN;
	return json_object_get_double(v);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summary(const char *what, double *v, size_t n)
{
	if (n == 0) {
		printf("%s: -\n", what);
		return;
	}
	qsort(v, n, sizeof(*v), cmp);
	printf("%s: median %.1f %% worst %.1f %% (%zu cases)\n", what,
	       100 * (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2), 100 * v[n - 1], n);
}

static bool json_out;

static int row(json_object *r, const struct dt_plan_qemu *q, const char *engine, double *et,
	       double *ed, double *eb, size_t *n, unsigned *agree)
{
	struct dt_plan_point pts[DT_PLAN_MAX_POINTS];
	json_object *plans, *p, *curve, *qm, *name;
	struct dt_plan_input in = {0};
	struct dt_plan *pl = NULL;
	size_t np;
	int conv, ret;
	double tot, down, byt;

	if (!json_object_object_get_ex(r, "plans", &plans) ||
	    !json_object_object_get_ex(plans, engine, &p) ||
	    !json_object_object_get_ex(p, "curve", &curve) ||
	    !json_object_object_get_ex(r, "qemu", &qm))
		return -EINVAL;
	np = json_object_array_length(curve);
	if (np == 0 || np > DT_PLAN_MAX_POINTS)
		return -EINVAL;
	for (size_t i = 0; i < np; i++) {
		json_object *pt = json_object_array_get_idx(curve, i);

		pts[i].window_us = (uint64_t)llround(num(pt, "window_seconds") * 1e6);
		pts[i].pages = (uint64_t)llround(num(pt, "pages"));
	}
	in.curve = pts;
	in.npoints = np;
	in.memory_pages = (uint64_t)num(p, "inputs.memory_pages");
	in.page_size = (uint32_t)num(p, "inputs.page_size");
	in.bandwidth = num(p, "inputs.bandwidth_bytes_per_second");
	in.max_downtime_us = (uint64_t)llround(num(p, "inputs.downtime_seconds") * 1e6);
	in.zero_fraction = num(p, "inputs.zero_fraction");
	in.max_rounds = 100;
	in.target_us = (uint64_t)llround(num(p, "inputs.target_seconds") * 1e6);
	ret = dt_plan_qemu_compute(&in, q, &pl);
	if (ret < 0)
		return ret;
	conv = json_object_get_boolean(json_object_object_get(qm, "completed"));
	tot = num(qm, "total_time_ms") / 1000;
	down = num(qm, "downtime_ms") / 1000;
	byt = num(qm, "ram_transferred");
	name = json_object_object_get(json_object_object_get(r, "case"), "name");
	if (json_out)
		printf("{\"case\": \"%s\", \"qemu\": {\"converges\": %s, \"total_seconds\": %.6g, "
		       "\"syncs\": %.0f}, \"model\": {\"converges\": %s, \"total_seconds\": %.6g, "
		       "\"downtime_seconds\": %.6g, \"bytes\": %" PRIu64 ", \"syncs\": %u, "
		       "\"rounds\": %u}}\n",
		       json_object_get_string(name), conv ? "true" : "false", conv ? tot : -1,
		       num(qm, "dirty_sync_count"), pl->meets_target ? "true" : "false",
		       pl->total_seconds, pl->downtime_seconds, pl->bytes_sent, pl->qemu.dirty_syncs,
		       pl->nrounds);
	else
		printf("%-14s qemu %s %6.2f s %4.0f ms %5.0f MiB %3.0f syncs | model %s %6.2f s %4.0f ms "
	       "%5.0f MiB %3u syncs %3u rounds\n",
	       json_object_get_string(name), conv ? "conv" : "NOT ", conv ? tot : NAN,
	       conv ? down * 1e3 : NAN, byt / 1048576, num(qm, "dirty_sync_count"),
	       pl->meets_target ? "conv" : "NOT ", pl->total_seconds, pl->downtime_seconds * 1e3,
	       (double)pl->bytes_sent / 1048576, pl->qemu.dirty_syncs, pl->nrounds);
	*agree += pl->meets_target == (conv != 0);
	/* QEMU 7.2 sometimes reports total-time 0: no figure to compare (as the grid's report) */
	if (conv && pl->meets_target && tot > 0) {
		et[*n] = fabs(pl->total_seconds - tot) / tot;
		ed[*n] = down > 0 ? fabs(pl->downtime_seconds - down) / down : 0;
		eb[*n] = fabs((double)pl->bytes_sent - byt) / byt;
		(*n)++;
	}
	dt_plan_free(pl);
	return 0;
}

/* The row's measured host speeds over the inputs given (where it has them). */
static void host_speeds(json_object *r, struct dt_plan_qemu *q)
{
	json_object *h;
	double v;

	if (!json_object_object_get_ex(r, "host", &h) || !h)
		return;
	if ((v = num(h, "throughput")) > 0)
		q->throughput = v;
	if ((v = num(h, "zero_page_us")) > 0)
		q->zero_page_us = v;
	if ((v = num(h, "final_bandwidth")) > 0)
		q->final_bandwidth = v;
}

int main(int argc, char **argv)
{
	struct dt_plan_qemu prev;
	const char *speeds = "";
	double scale = 1;
	static double et[MAX_ROWS], ed[MAX_ROWS], eb[MAX_ROWS];
	struct dt_plan_qemu q = {0};
	const char *engine = "qemu";
	size_t n = 0;
	unsigned rows = 0, agree = 0;
	char line[1 << 20];
	FILE *f;

	if (argc < 2) {
		fprintf(stderr, "usage: %s ROWS.jsonl [KEY=VALUE ...]\n", argv[0]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		double v;

		if (!eq) {
			fprintf(stderr, "%s: KEY=VALUE expected\n", argv[i]);
			return 2;
		}
		*eq = 0;
		v = strtod(eq + 1, NULL);
		if (strcmp(argv[i], "final_bandwidth") == 0)
			q.final_bandwidth = v;
		else if (strcmp(argv[i], "zero_page_us") == 0)
			q.zero_page_us = v;
		else if (strcmp(argv[i], "throughput") == 0)
			q.throughput = v;
		else if (strcmp(argv[i], "setup_s") == 0)
			q.setup_s = v;
		else if (strcmp(argv[i], "switchover_s") == 0)
			q.switchover_s = v;
		else if (strcmp(argv[i], "engine") == 0)
			engine = eq + 1;
		else if (strcmp(argv[i], "speeds") == 0)
			speeds = eq + 1;
		else if (strcmp(argv[i], "scale") == 0 && v > 0)
			scale = v;
		else if (strcmp(argv[i], "format") == 0)
			json_out = strcmp(eq + 1, "json") == 0;
		else {
			fprintf(stderr, "%s: unknown key\n", argv[i]);
			return 2;
		}
	}
	f = fopen(argv[1], "re");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	prev = q;
	while (fgets(line, sizeof(line), f) && rows < MAX_ROWS) {
		json_object *r = json_tokener_parse(line);
		struct dt_plan_qemu rq = q;

		if (!r)
			continue;
		if (strcmp(speeds, "own") == 0)
			host_speeds(r, &rq);
		else if (strcmp(speeds, "previous") == 0)
			rq = prev;
		rq.throughput *= scale;
		rq.final_bandwidth *= scale;
		rq.zero_page_us /= scale;
		if (row(r, &rq, engine, et, ed, eb, &n, &agree) == 0)
			rows++;
		prev = q;
		host_speeds(r, &prev);
		json_object_put(r);
	}
	fclose(f);
	if (json_out)
		return 0;
	printf("verdicts agree: %u/%u\n", agree, rows);
	summary("total time", et, n);
	summary("downtime", ed, n);
	summary("bytes", eb, n);
	return 0;
}
