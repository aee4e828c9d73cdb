/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-copy replay: the ground truth for the migration planner.
 *
 * bench_plan --trace FILE --memory SIZE --bandwidth B[,B...] --downtime T[,T...]
 *
 * It reads a page-level write trace (dtsim or dtvm --trace: 16-byte records
 * {u64 monotonic_us, u64 gpa_page}, little-endian) and, for every bandwidth
 * and downtime given, replays a pre-copy migration that starts with the
 * trace's first write:
 *
 *   round 0 sends every page in page order at the bandwidth; later rounds
 *   send, in page order, the pages dirty when the previous round ended. A
 *   page is dirty from a write until it is sent (its dirty bit is cleared
 *   just before it is sent, as QEMU does with KVM's manual dirty-log
 *   clearing): a page of the round's list written before its turn is sent
 *   once, with its new content. After a round, if the dirty pages fit in
 *   bandwidth x downtime the VM stops and they are copied (the downtime);
 *   after --max-rounds rounds the stop is forced. The trace repeats when
 *   the migration outlasts it: after its span rounded up to an epoch, or
 *   after --period (a whole number of the workload's cycles, so that the
 *   repetition is seamless; writes beyond it are dropped).
 *
 * Beside the replay it runs, on the same trace:
 *   plan  the planner (plan/) on the curve D(T) the daemon would
 *         measure: dt_stats fed the trace in 100 ms epochs, D(T) at the
 *         windows the daemon plans with (1, 2, 3, 5, 7, 10, 15, ... epochs
 *         within the trace; --daemon-windows: its gauges' 1 epoch, 1, 2, 5,
 *         10, 30, 60 s, ...) averaged over every epoch of the trace, the
 *         layout by window (dt_stats_layout) and the activity profile (the
 *         per-epoch distinct pages) as the daemon passes them;
 *   avg   the single-average-rate model (AVG, Akoush et al., MASCOTS 2010):
 *         every round dirties rate x its duration pages, the rate being the
 *         mean per-epoch dirty rate over the whole trace;
 *   qemu  QEMU's rule: the dirty rate measured over the last second before
 *         migrating (calc-dirty-rate, 1 s), remaining dirty bytes = rate x
 *         last round's duration, switch over when below bandwidth x
 *         downtime, expected downtime = those bytes / bandwidth.
 *
 * Output: one tab-separated line per case (with --header, a header line
 * first), or with --plan the planner's answer in full (rounds and
 * recommendation; --vcpu-json gives per-vCPU curves, as GET /v1/vms/{id}
 * of the daemon returns them, and --target the target time).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dt_plan.h"
#include "dt_stats.h"
#include "dt_util.h"

#define MAX_CASES    64
#define REGION_BYTES (2u << 20)

struct rec {
	uint64_t us; /* from the first write */
	uint32_t page;
};

struct trace {
	struct rec *r;
	size_t n;
	uint64_t period_us; /* the trace repeats after this */
};

struct result {
	bool converges;
	uint32_t rounds;
	double total_s, downtime_s, bytes;
	uint64_t *round_pages; /* optional: pages sent per round (max_rounds entries) */
};

struct opts {
	const char *trace, *label, *vcpu_json;
	uint64_t memory_pages;
	uint32_t page_size;
	double bw[MAX_CASES];
	size_t nbw;
	uint64_t dt[MAX_CASES];
	size_t ndt;
	uint32_t max_rounds, starts;
	uint64_t epoch_us, target_us, period_us;
	enum dt_plan_interp interp;
	bool header, plan, no_layout, no_activity, daemon_windows, no_irm, no_replay;
};

/* "100Mbit", "25Gbit", "1.25GB", "125M", "1000000": bytes per second (decimal units). */
static int parse_bandwidth(const char *s, double *ret)
{
	static const struct {
		const char *unit;
		double mul;
	} units[] = {
	    {"", 1},	       {"B", 1},	  {"K", 1e3},	     {"KB", 1e3},
	    {"M", 1e6},	       {"MB", 1e6},	  {"G", 1e9},	     {"GB", 1e9},
	    {"KiB", 1024},     {"MiB", 1 << 20},  {"GiB", 1 << 30},  {"bit", 1 / 8.0},
	    {"Kbit", 1e3 / 8}, {"Mbit", 1e6 / 8}, {"Gbit", 1e9 / 8},
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || !(v > 0) || !strchr("0123456789.", *s))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].unit)) {
			*ret = v * units[i].mul;
			return 0;
		}
	return -EINVAL;
}

static int load_trace(const char *path, uint64_t memory_pages, uint64_t epoch_us, uint64_t period_us,
		      struct trace *t)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t raw[2 * 4096], first = 0, last = 0;
	struct stat st;
	size_t cap, n = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size % 16 || st.st_size == 0)
		return -EBADMSG;
	cap = (size_t)st.st_size / 16;
	t->r = malloc(cap * sizeof(*t->r));
	if (!t->r)
		return -ENOMEM;
	for (;;) {
		ssize_t got = read(fd, raw, sizeof(raw));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		if (got % 16) /* regular file: short reads only at the end */
			return -EBADMSG;
		for (ssize_t i = 0; i < got / 16; i++) {
			uint64_t us = le64toh(raw[2 * i]), page = le64toh(raw[2 * i + 1]);

			if (n == 0)
				first = us;
			if (us < last || page >= memory_pages || n == cap)
				return -EBADMSG; /* not sorted, or outside a contiguous memory */
			if (period_us && us - first >= period_us)
				continue; /* beyond the period given */
			last = us;
			t->r[n++] = (struct rec){us - first, (uint32_t)page};
		}
	}
	t->n = n;
	/* as given, or a whole number of epochs, at least the span of the trace */
	t->period_us = period_us ? period_us : ((last - first) / epoch_us + 1) * epoch_us;
	return 0;
}

/* ---- the replay ------------------------------------------------------- */

static void replay(const struct trace *t, uint64_t start_us, uint64_t mem, double bpages,
		   uint64_t downtime_us, uint32_t max_rounds, uint8_t *dirty, uint32_t *list,
		   struct result *res)
{
	double fit = bpages * (double)downtime_us / 1e6, now = 0, bytes = 0;
	uint64_t ndirty = mem, n;
	size_t k = 0; /* next write */
	uint64_t cycle = 0;
	uint32_t round;

	while (k < t->n && t->r[k].us < start_us)
		k++;
	if (k == t->n) {
		k = 0;
		cycle = 1;
	}
	memset(dirty, 1, mem);
	for (round = 0; (double)ndirty > fit && round < max_rounds; round++) {
		n = 0;
		for (uint64_t p = 0; p < mem; p++)
			if (dirty[p])
				list[n++] = (uint32_t)p;
		for (uint64_t i = 0; i <= n; i++) {
			/* page i is read at now + i / b; the round ends at now + n / b */
			double at = (now + (double)i / bpages) * 1e6;

			for (;;) {
				double w = (double)(cycle * t->period_us + t->r[k].us - start_us);

				if (w > at || (i == n && w >= at))
					break;
				ndirty += !dirty[t->r[k].page];
				dirty[t->r[k].page] = 1;
				if (++k == t->n) {
					k = 0;
					cycle++;
				}
			}
			if (i < n) {
				ndirty -= dirty[list[i]];
				dirty[list[i]] = 0;
			}
		}
		now += (double)n / bpages;
		bytes += (double)n;
		if (res->round_pages)
			res->round_pages[round] = n;
	}
	res->converges = (double)ndirty <= fit;
	res->rounds = round;
	res->downtime_s = (double)ndirty / bpages;
	res->total_s = now + res->downtime_s;
	res->bytes = bytes + (double)ndirty;
}

/*
 * The migration may start at any moment of the workload (a bursty guest is
 * caught in a burst or between two): replay from `starts` moments spread
 * over the trace and take the means, and the majority's verdict.
 */
static void replay_starts(const struct trace *t, uint32_t starts, uint64_t mem, double bpages,
			  uint64_t downtime_us, uint32_t max_rounds, uint8_t *dirty, uint32_t *list,
			  struct result *res)
{
	uint64_t *keep = res->round_pages;
	uint32_t conv = 0;
	double rounds = 0;

	*res = (struct result){.round_pages = keep};
	for (uint32_t s = 0; s < starts; s++) {
		struct result one = {.round_pages = s == 0 ? keep : NULL};

		/* spread over the trace and, by the odd step, over the phase of any second */
		uint64_t start = (t->period_us / starts + 123457) * s % t->period_us;

		replay(t, start, mem, bpages, downtime_us, max_rounds, dirty, list, &one);
		conv += one.converges;
		rounds += one.rounds;
		res->total_s += one.total_s / starts;
		res->downtime_s += one.downtime_s / starts;
		res->bytes += one.bytes / starts;
	}
	res->converges = 2 * conv >= starts;
	res->rounds = (uint32_t)lround(rounds / starts);
}

/* ---- single-rate models (AVG, QEMU) ----------------------------------- */

static void single_rate(double rate, uint64_t mem, double bpages, uint64_t downtime_us,
			uint32_t max_rounds, struct result *res)
{
	double fit = bpages * (double)downtime_us / 1e6, left = (double)mem, now = 0, bytes = 0;
	uint32_t round;

	for (round = 0; left > fit && round < max_rounds; round++) {
		double t = left / bpages;

		now += t;
		bytes += left;
		left = fmin((double)mem, rate * t);
	}
	res->converges = left <= fit;
	res->rounds = round;
	res->downtime_s = left / bpages;
	res->total_s = now + res->downtime_s;
	res->bytes = bytes + left;
}

/* ---- the curve the daemon would measure -------------------------------- */

struct measured {
	struct dt_plan_point curve[DT_STATS_MAX_WINDOWS];
	size_t npoints;
	double avg_rate;	 /* pages/s: mean per-epoch dirty rate */
	double last_second_rate; /* pages/s: D(1 s) at the end */
	struct dt_stats *stats;	 /* as of the end, for the heatmap */
	uint64_t *activity;	 /* distinct pages per epoch, as the daemon's history has them */
	size_t nactivity;
};

static int measure(const struct trace *t, uint64_t epoch_us, uint32_t page_size, bool dense,
		   struct measured *m)
{
	static const uint32_t seconds[] = {1, 2, 5, 10, 30, 60, 300, 900, 3600};
	static const uint32_t dense_epochs[] = {1,  2,	3,  5,	 7,   10,  15,	20,
						30, 50, 70, 100, 150, 200, 300, 600};
	uint64_t epochs = t->period_us / epoch_us;
	struct dt_stats_config cfg = {
	    .horizon_epochs = (uint32_t)epochs,
	    .recent_epochs = 64,
	    .coarse_epochs = 60,
	    .region_pages = REGION_BYTES / page_size,
	};
	double sum[DT_STATS_MAX_WINDOWS] = {0}, total = 0;
	uint64_t cnt[DT_STATS_MAX_WINDOWS] = {0};
	uint32_t last = 1;
	size_t k = 0;
	int r;

	if (dense) {
		/* 16 windows, about 1.5x apart: 1, 2, 3, 5, 7, 10, 15, ... epochs */
		for (size_t i = 0; i < sizeof(dense_epochs) / sizeof(dense_epochs[0]); i++)
			if (dense_epochs[i] <= epochs && cfg.nwindows < DT_STATS_MAX_WINDOWS)
				cfg.windows[cfg.nwindows++] = dense_epochs[i];
	} else {
		/* the daemon's windows (daemon/vm.c): one epoch, then 1 s ... 1 h */
		cfg.windows[cfg.nwindows++] = 1;
		for (size_t i = 0; i < sizeof(seconds) / sizeof(seconds[0]); i++) {
			uint64_t w = (seconds[i] * 1000000ull + epoch_us / 2) / epoch_us;

			if (w <= last || w > epochs)
				continue;
			cfg.windows[cfg.nwindows++] = last = (uint32_t)w;
		}
	}
	r = dt_stats_new(&cfg, 0, &m->stats);
	if (r < 0)
		return r;
	m->activity = calloc(epochs ? epochs : 1, sizeof(*m->activity));
	if (!m->activity)
		return -ENOMEM;
	for (uint64_t e = 0; e < epochs; e++) {
		uint64_t end = (e + 1) * epoch_us;

		for (; k < t->n && t->r[k].us < end; k++)
			dt_stats_add(m->stats, t->r[k].page);
		r = dt_stats_close_epoch(m->stats, end, NULL);
		if (r < 0)
			return r;
		m->activity[m->nactivity++] = dt_stats_wss(m->stats, 1);
		total += (double)dt_stats_wss(m->stats, 1);
		for (uint32_t i = 0; i < cfg.nwindows; i++)
			if (e + 1 >= cfg.windows[i]) {
				sum[i] += (double)dt_stats_wss(m->stats, cfg.windows[i]);
				cnt[i]++;
			}
	}
	m->npoints = 0;
	for (uint32_t i = 0; i < cfg.nwindows; i++) {
		uint64_t pages = (uint64_t)llround(sum[i] / (double)cnt[i]);

		/* averages over fewer epochs may dip: keep the curve monotone */
		if (m->npoints && pages < m->curve[m->npoints - 1].pages)
			pages = m->curve[m->npoints - 1].pages;
		m->curve[m->npoints++] = (struct dt_plan_point){cfg.windows[i] * epoch_us, pages};
	}
	m->avg_rate = total / (double)epochs / ((double)epoch_us / 1e6);
	{
		uint32_t w1 = (uint32_t)((1000000 + epoch_us / 2) / epoch_us);

		if (w1 < 1)
			w1 = 1;
		m->last_second_rate =
		    (double)dt_stats_wss(m->stats, w1) / ((double)w1 * (double)epoch_us / 1e6);
	}
	return 0;
}

/* The layout by window, as the daemon gives it (dt_stats_layout). */
static int layout_parts(const struct measured *m, uint64_t mem, uint64_t epoch_us, uint64_t **ret,
			uint64_t **ret_bounds)
{
	uint64_t *parts = calloc((size_t)DT_PLAN_MAX_PARTS * m->npoints, sizeof(*parts));
	uint64_t *bounds = calloc(DT_PLAN_MAX_PARTS + 1, sizeof(*bounds));
	uint32_t windows[DT_PLAN_MAX_POINTS];
	int r = -ENOMEM;

	for (size_t j = 0; j < m->npoints; j++)
		windows[j] = (uint32_t)(m->curve[j].window_us / epoch_us);
	if (parts && bounds)
		r = dt_stats_layout(m->stats, windows, (uint32_t)m->npoints, mem, DT_PLAN_MAX_PARTS,
				    bounds, parts);
	if (r < 0) {
		free(parts);
		free(bounds);
		return r;
	}
	*ret = parts;
	*ret_bounds = bounds;
	return 0;
}

/* ---- per-vCPU curves from the daemon's JSON --------------------------- */

struct vcpus {
	struct dt_plan_vcpu *v;
	struct dt_plan_point *points;
	uint32_t n;
};

static int load_vcpus(const char *path, struct vcpus *out)
{
	struct json_object *root = json_object_from_file(path), *arr;
	size_t n;
	int r = -EBADMSG;

	if (!root)
		return -EBADMSG;
	if (!json_object_object_get_ex(root, "vcpus_detail", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		goto out;
	n = json_object_array_length(arr);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	out->points = calloc((n ? n : 1) * DT_PLAN_MAX_POINTS, sizeof(*out->points));
	if (!out->v || !out->points) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(arr, i), *id, *wss;
		struct dt_plan_point *pts = out->points + i * DT_PLAN_MAX_POINTS;
		size_t np;

		if (!json_object_object_get_ex(c, "vcpu", &id) ||
		    !json_object_object_get_ex(c, "wss", &wss))
			goto out;
		np = json_object_array_length(wss);
		if (np == 0 || np > DT_PLAN_MAX_POINTS)
			goto out;
		for (size_t j = 0; j < np; j++) {
			struct json_object *pt = json_object_array_get_idx(wss, j), *w, *p;

			if (!json_object_object_get_ex(pt, "window_seconds", &w) ||
			    !json_object_object_get_ex(pt, "pages", &p))
				goto out;
			pts[j] = (struct dt_plan_point){
			    (uint64_t)llround(json_object_get_double(w) * 1e6),
			    (uint64_t)json_object_get_uint64(p)};
		}
		out->v[i] = (struct dt_plan_vcpu){(uint32_t)json_object_get_uint64(id), np, pts};
	}
	out->n = (uint32_t)n;
	r = 0;
out:
	json_object_put(root);
	return r;
}

/* ---- output ----------------------------------------------------------- */

static void print_plan(const struct dt_plan *p, const struct result *sim)
{
	const struct dt_plan_recommendation *rec = &p->rec;

	printf("plan: %s (%s), %u rounds, total %.3f s, downtime %.4f s, %" PRIu64
	       " bytes; dirty rate at the last round %.0f pages/s vs bandwidth %.0f pages/s\n",
	       p->converges ? "converges" : "does not converge", dt_plan_verdict_name(p->verdict),
	       p->nrounds, p->total_seconds, p->downtime_seconds, p->bytes_sent,
	       p->dirty_rate_at_last_round, p->bandwidth_pages);
	for (uint32_t i = 0; i < p->nrounds; i++)
		printf("  round %u: %.4f s, %" PRIu64 " pages, %" PRIu64 " dirtied\n", i,
		       (double)p->rounds[i].duration_us / 1e6, p->rounds[i].pages,
		       p->rounds[i].dirtied_pages);
	printf("replay: %s, %u rounds, total %.3f s, downtime %.4f s\n",
	       sim->converges ? "converges" : "does not converge", sim->rounds, sim->total_s,
	       sim->downtime_s);
	for (uint32_t i = 0; sim->round_pages && i < sim->rounds; i++)
		printf("  round %u: %" PRIu64 " pages\n", i, sim->round_pages[i]);
	if (!p->has_recommendation)
		return;
	printf("recommendation: %s; dirty limit %.0f pages/s (keeps %.0f %% of the busiest "
	       "vCPU's rate): %u rounds, total %.3f s, downtime %.4f s; post-copy %.3f s\n",
	       dt_plan_advice_name(rec->advice), rec->dirty_limit_pages_per_second,
	       rec->throttle_keeps * 100, rec->throttled_rounds, rec->throttled_total_seconds,
	       rec->throttled_downtime_seconds, rec->postcopy_total_seconds);
	printf("limit %.0f vcpus", rec->dirty_limit_pages_per_second);
	for (uint32_t i = 0; i < rec->nthrottle; i++)
		printf("%c%u", i ? ',' : ' ', rec->throttle_vcpus[i]);
	printf("\n");
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "Usage: bench_plan --trace FILE --memory SIZE --bandwidth B[,B..] --downtime "
	    "T[,T..]\n"
	    "       [--page-size 4096] [--max-rounds 30] [--epoch 100ms] [--interp log|linear]\n"
	    "       [--period TIME] [--no-layout] [--no-activity] [--no-irm] [--no-replay] [--daemon-windows] [--starts 8] [--label TEXT] [--header] "
	    "[--plan] [--vcpu-json FILE] "
	    "[--target TIME]\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"trace", required_argument, NULL, 't'},
					   {"memory", required_argument, NULL, 'm'},
					   {"bandwidth", required_argument, NULL, 'b'},
					   {"downtime", required_argument, NULL, 'd'},
					   {"page-size", required_argument, NULL, 'p'},
					   {"max-rounds", required_argument, NULL, 'r'},
					   {"epoch", required_argument, NULL, 'e'},
					   {"interp", required_argument, NULL, 'i'},
					   {"label", required_argument, NULL, 'l'},
					   {"header", no_argument, NULL, 'H'},
					   {"plan", no_argument, NULL, 'P'},
					   {"vcpu-json", required_argument, NULL, 'v'},
					   {"target", required_argument, NULL, 'T'},
					   {"no-layout", no_argument, NULL, 'L'},
					   {"no-activity", no_argument, NULL, 'A'},
					   {"daemon-windows", no_argument, NULL, 'W'},
					   {"starts", required_argument, NULL, 'S'},
					   {"no-irm", no_argument, NULL, 'I'},
					   {"no-replay", no_argument, NULL, 'R'},
					   {"period", required_argument, NULL, 'D'},
					   {}};
	uint64_t mem = 0, v;
	int c;

	*o = (struct opts){
	    .page_size = 4096, .max_rounds = 30, .starts = 8, .epoch_us = 100000, .label = "-"};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *save = NULL, *tok, *copy;

		switch (c) {
		case 't':
			o->trace = optarg;
			break;
		case 'm':
			if (dt_parse_size(optarg, &mem) < 0 || mem == 0)
				return -EINVAL;
			break;
		case 'b':
		case 'd':
			copy = strdup(optarg);
			if (!copy)
				return -ENOMEM;
			for (tok = strtok_r(copy, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				int r = 0;

				if (c == 'b' && o->nbw < MAX_CASES)
					r = parse_bandwidth(tok, &o->bw[o->nbw++]);
				else if (c == 'd' && o->ndt < MAX_CASES)
					r = dt_parse_duration(tok, &o->dt[o->ndt++]);
				else
					r = -E2BIG;
				if (r < 0 || (c == 'd' && o->dt[o->ndt - 1] == 0)) {
					fprintf(stderr, "bench_plan: bad value '%s'\n", tok);
					free(copy);
					return -EINVAL;
				}
			}
			free(copy);
			break;
		case 'p':
			if (dt_parse_u64(optarg, 512, 1u << 21, &v) < 0 || (v & (v - 1)))
				return -EINVAL;
			o->page_size = (uint32_t)v;
			break;
		case 'r':
			if (dt_parse_u64(optarg, 1, DT_PLAN_MAX_ROUNDS, &v) < 0)
				return -EINVAL;
			o->max_rounds = (uint32_t)v;
			break;
		case 'e':
			if (dt_parse_duration(optarg, &o->epoch_us) < 0 || o->epoch_us == 0)
				return -EINVAL;
			break;
		case 'i':
			if (!strcmp(optarg, "log"))
				o->interp = DT_PLAN_INTERP_LOG;
			else if (!strcmp(optarg, "linear"))
				o->interp = DT_PLAN_INTERP_LINEAR;
			else
				return -EINVAL;
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'H':
			o->header = true;
			break;
		case 'P':
			o->plan = true;
			break;
		case 'v':
			o->vcpu_json = optarg;
			break;
		case 'T':
			if (dt_parse_duration(optarg, &o->target_us) < 0)
				return -EINVAL;
			break;
		case 'L':
			o->no_layout = true;
			break;
		case 'A':
			o->no_activity = true;
			break;
		case 'W':
			o->daemon_windows = true;
			break;
		case 'I':
			o->no_irm = true;
			break;
		case 'R':
			o->no_replay = true;
			break;
		case 'D':
			if (dt_parse_duration(optarg, &o->period_us) < 0 || o->period_us == 0)
				return -EINVAL;
			break;
		case 'S':
			if (dt_parse_u64(optarg, 1, 1000, &v) < 0)
				return -EINVAL;
			o->starts = (uint32_t)v;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!o->trace || !mem || !o->nbw || !o->ndt || optind < argc || mem % o->page_size)
		return -EINVAL;
	o->memory_pages = mem / o->page_size;
	if (o->memory_pages > UINT32_MAX)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct trace t = {0};
	struct measured m = {0};
	struct vcpus vc = {0};
	uint8_t *dirty = NULL;
	uint32_t *list = NULL;
	uint64_t *rounds = NULL, *parts = NULL, *bounds = NULL;
	int r, ret = 1;

	if (parse_args(argc, argv, &o) < 0) {
		usage();
		return 2;
	}
	r = load_trace(o.trace, o.memory_pages, o.epoch_us, o.period_us, &t);
	if (r < 0) {
		fprintf(stderr, "bench_plan: %s: %s\n", o.trace,
			r == -EBADMSG ? "not a write trace for this memory size" : strerror(-r));
		goto out;
	}
	if (o.vcpu_json) {
		r = load_vcpus(o.vcpu_json, &vc);
		if (r < 0) {
			fprintf(stderr, "bench_plan: %s: no per-vCPU curves\n", o.vcpu_json);
			goto out;
		}
	}
	r = measure(&t, o.epoch_us, o.page_size, !o.daemon_windows, &m);
	if (r < 0) {
		fprintf(stderr, "bench_plan: measuring the curve: %s\n", strerror(-r));
		goto out;
	}
	if (!o.no_layout) {
		r = layout_parts(&m, o.memory_pages, o.epoch_us, &parts, &bounds);
		if (r < 0)
			goto out;
	}
	dirty = malloc(o.memory_pages);
	list = malloc(o.memory_pages * sizeof(*list));
	rounds = calloc(o.max_rounds, sizeof(*rounds));
	if (!dirty || !list || !rounds)
		goto out;

	if (o.header && !o.plan)
		printf("label\tbandwidth_Bps\tdowntime_s\tsim_conv\tsim_rounds\tsim_total_s\t"
		       "sim_down_s\tsim_bytes\tplan_conv\tplan_rounds\tplan_total_s\tplan_down_s\t"
		       "plan_bytes\tavg_conv\tavg_total_s\tavg_down_s\tqemu_conv\tqemu_total_s\t"
		       "qemu_down_s\tplan_irm\n");
	if (o.plan) {
		printf("curve (trace of %.1f s, %zu writes):", (double)t.period_us / 1e6, t.n);
		for (size_t i = 0; i < m.npoints; i++)
			printf(" %.1fs=%" PRIu64, (double)m.curve[i].window_us / 1e6,
			       m.curve[i].pages);
		printf("\n");
	}
	for (size_t bi = 0; bi < o.nbw; bi++) {
		double bpages = o.bw[bi] / o.page_size;
		for (size_t di = 0; di < o.ndt; di++) {
			struct dt_plan_input in = {
			    .curve = m.curve,
			    .npoints = m.npoints,
			    .memory_pages = o.memory_pages,
			    .page_size = o.page_size,
			    .bandwidth = o.bw[bi],
			    .max_downtime_us = o.dt[di],
			    .max_rounds = o.max_rounds,
			    .target_us = o.target_us,
			    .vcpus = vc.v,
			    .nvcpus = vc.n,
			    .interp = o.interp,
			    .activity = o.no_activity ? NULL : m.activity,
			    .nactivity = o.no_activity || m.nactivity < 2 ? 0 : m.nactivity,
			    .activity_epoch_us = o.epoch_us,
			    .curve_is_mean = true,
			    .parts = parts,
			    .part_bounds = bounds,
			    .nparts = parts ? DT_PLAN_MAX_PARTS : 0,
			    .no_irm = o.no_irm,
			};
			struct result sim = {.round_pages = rounds}, avg = {0}, qemu = {0};
			struct dt_plan *p = NULL;

			if (!o.no_replay)
				replay_starts(&t, o.starts, o.memory_pages, bpages, o.dt[di], o.max_rounds,
				      dirty, list, &sim);
			single_rate(m.avg_rate, o.memory_pages, bpages, o.dt[di], o.max_rounds,
				    &avg);
			single_rate(m.last_second_rate, o.memory_pages, bpages, o.dt[di],
				    o.max_rounds, &qemu);
			r = dt_plan_compute(&in, &p);
			if (r < 0) {
				fprintf(stderr, "bench_plan: plan: %s\n", strerror(-r));
				goto out;
			}
			if (o.plan) {
				printf("case %s bandwidth %.0f B/s downtime %.3f s\n", o.label,
				       o.bw[bi], (double)o.dt[di] / 1e6);
				print_plan(p, &sim);
			} else {
				printf("%s\t%.0f\t%.3f\t%d\t%u\t%.4f\t%.6f\t%.0f\t%d\t%u\t%.4f\t%."
				       "6f\t%."
				       "0f\t%d\t%.4f\t%.6f\t%d\t%.4f\t%.6f\t%u\n",
				       o.label, o.bw[bi], (double)o.dt[di] / 1e6, sim.converges,
				       sim.rounds, sim.total_s, sim.downtime_s,
				       sim.bytes * o.page_size, p->converges, p->nrounds,
				       p->total_seconds, p->downtime_seconds, (double)p->bytes_sent,
				       avg.converges, avg.total_s, avg.downtime_s, qemu.converges,
				       qemu.total_s, qemu.downtime_s, p->irm_classes);
			}
			dt_plan_free(p);
		}
	}
	fflush(stdout);
	ret = 0;
out:
	free(dirty);
	free(list);
	free(rounds);
	free(parts);
	free(bounds);
	free(t.r);
	free(vc.v);
	free(vc.points);
	dt_stats_free(m.stats);
	free(m.activity);
	return ret;
}
