/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Advice in QEMU's migration knobs, each re-planned with the knob applied (dt_plan_advice.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dt_plan_advice.h"

#define MiB	     1048576.0
#define SEARCH_STEPS 24

/* auto-converge settings tried, mildest first: (cpu-throttle-initial, cpu-throttle-increment) */
static const uint32_t ladder[][2] = {
	{ 20, 10 }, { 30, 10 }, { 30, 20 }, { 40, 20 }, { 50, 20 },
	{ 60, 20 }, { 70, 10 }, { 80, 10 }, { 90, 5 },	{ 99, 1 },
};

struct ctx {
	const struct dt_plan_input *in;
	double target_s; /* 0: none */
	struct dt_plan_engine_input e; /* engine QEMU */
	struct dt_plan_point capped[DT_PLAN_MAX_POINTS];
};

static int replan(const struct dt_plan_input *in, const struct dt_plan_engine_input *e,
		  struct dt_knob_result *ret)
{
	struct dt_plan *p = NULL;
	int r = dt_plan_engine_compute(in, e, &p);

	if (r < 0)
		return r;
	*ret = (struct dt_knob_result){
		.converges = p->converges,
		.meets_target = p->meets_target,
		.total_seconds = p->total_seconds,
		.downtime_seconds = p->downtime_seconds,
		.rounds = p->nrounds,
		.dirty_syncs = p->qemu.dirty_syncs,
		.throttle_percent = p->qemu.throttle_percent,
		.bytes_sent = p->bytes_sent,
	};
	dt_plan_free(p);
	return 0;
}

/*
 * A setting is chosen when its plan converges within DT_ADVICE_MARGIN of
 * the target: QEMU's real figures scatter about the engine's (the grid,
 * bench/qemu-plan-grid.md), so a setting that only just fits would often
 * miss in the real migration.
 */
static bool fits(const struct ctx *c, const struct dt_knob_result *r)
{
	return r->converges && (c->target_s == 0 || r->total_seconds <= DT_ADVICE_MARGIN * c->target_s);
}

static int try_throttle(struct ctx *c, uint32_t initial, uint32_t increment,
			struct dt_knob_result *ret)
{
	struct dt_plan_engine_input e = c->e;

	e.qemu.auto_converge = true;
	e.qemu.throttle_initial = initial;
	e.qemu.throttle_increment = increment;
	return replan(c->in, &e, ret);
}

/* D(T) capped at a whole-VM dirty rate of `pages_per_second`. */
static int try_dirty_limit(struct ctx *c, double pages_per_second, struct dt_knob_result *ret)
{
	struct dt_plan_input in = *c->in;

	for (size_t i = 0; i < in.npoints; i++) {
		double cap = pages_per_second * (double)in.curve[i].window_us / 1e6;

		c->capped[i] = in.curve[i];
		if ((double)c->capped[i].pages > cap)
			c->capped[i].pages = (uint64_t)floor(cap);
	}
	in.curve = c->capped;
	return replan(&in, &c->e, ret);
}

static int try_bandwidth(struct ctx *c, double bw, struct dt_knob_result *ret)
{
	struct dt_plan_input in = *c->in;

	in.bandwidth = bw;
	return replan(&in, &c->e, ret);
}

static int try_downtime(struct ctx *c, uint64_t us, struct dt_knob_result *ret)
{
	struct dt_plan_input in = *c->in;

	in.max_downtime_us = us;
	return replan(&in, &c->e, ret);
}

static int advise_auto_converge(struct ctx *c, struct dt_knob_advice *k)
{
	const size_t n = sizeof(ladder) / sizeof(ladder[0]);
	int r = 0;

	k->unavailable = DT_KNOB_NO_SETTING;
	for (size_t i = 0; i < n; i++) {
		k->throttle_initial = ladder[i][0];
		k->throttle_increment = ladder[i][1];
		r = try_throttle(c, ladder[i][0], ladder[i][1], &k->result);
		if (r < 0)
			return r;
		if (fits(c, &k->result)) {
			k->unavailable = DT_KNOB_OK;
			break;
		}
	}
	return 0;
}

/*
 * The largest per-vCPU cap, in whole MB/s (QEMU's unit), that meets the
 * target: a bisection in log space between 1 MB/s and the guest's rate.
 */
static int advise_dirty_limit(struct ctx *c, const struct dt_plan_knobs *a,
			      struct dt_knob_advice *k)
{
	const struct dt_plan_input *in = c->in;
	double ps = in->page_size, v = a->nvcpus ? a->nvcpus : 1;
	double rate = (double)in->curve[0].pages / ((double)in->curve[0].window_us / 1e6);
	double lo = 1, hi = floor(rate * ps / v / 1e6), mb;
	struct dt_knob_result res;
	int r;

	if (hi < 1)
		hi = 1;
	r = try_dirty_limit(c, lo * 1e6 / ps * v, &res);
	if (r < 0)
		return r;
	k->dirty_limit_bytes_per_second = lo * 1e6;
	k->result = res;
	if (!fits(c, &res)) {
		k->unavailable = DT_KNOB_NO_SETTING;
		return 0;
	}
	for (int i = 0; i < SEARCH_STEPS && hi - lo > 1; i++) {
		mb = floor(sqrt(lo * hi));
		if (mb <= lo)
			mb = lo + 1;
		r = try_dirty_limit(c, mb * 1e6 / ps * v, &res);
		if (r < 0)
			return r;
		if (fits(c, &res)) {
			lo = mb;
			k->result = res;
		} else {
			hi = mb;
		}
	}
	k->dirty_limit_bytes_per_second = lo * 1e6;
	if (!a->dirty_ring)
		k->unavailable = DT_KNOB_NEEDS_DIRTY_RING;
	else if (a->version && a->version < 70100)
		k->unavailable = DT_KNOB_NEEDS_QEMU_7_1;
	return 0;
}

/* The least bandwidth, in whole MiB/s (virsh's unit), from the given one to the link's. */
static int advise_bandwidth(struct ctx *c, const struct dt_plan_knobs *a,
			    struct dt_knob_advice *k)
{
	double lo = ceil(c->in->bandwidth / MiB), hi = floor(a->link_bandwidth / MiB), mb;
	struct dt_knob_result res;
	int r;

	if (hi < lo)
		hi = lo;
	r = try_bandwidth(c, hi * MiB, &res);
	if (r < 0)
		return r;
	k->bandwidth = hi * MiB;
	k->result = res;
	if (!fits(c, &res)) {
		k->unavailable = DT_KNOB_BEYOND_LINK;
		return 0;
	}
	for (int i = 0; i < SEARCH_STEPS && hi - lo > 1; i++) {
		mb = ceil(sqrt(lo * hi));
		if (mb >= hi)
			mb = hi - 1;
		r = try_bandwidth(c, mb * MiB, &res);
		if (r < 0)
			return r;
		if (fits(c, &res)) {
			hi = mb;
			k->result = res;
		} else {
			lo = mb;
		}
	}
	k->bandwidth = hi * MiB;
	return 0;
}

/* The least downtime-limit, in whole ms (QEMU's unit), up to DT_ADVICE_DOWNTIME_MAX_US. */
static int advise_downtime(struct ctx *c, struct dt_knob_advice *k)
{
	double lo = ceil((double)c->in->max_downtime_us / 1000),
	       hi = (double)DT_ADVICE_DOWNTIME_MAX_US / 1000, ms;
	struct dt_knob_result res;
	int r;

	if (hi < lo)
		hi = lo;
	r = try_downtime(c, (uint64_t)hi * 1000, &res);
	if (r < 0)
		return r;
	k->downtime_us = (uint64_t)hi * 1000;
	k->result = res;
	if (!fits(c, &res)) {
		k->unavailable = DT_KNOB_BEYOND_MAX;
		return 0;
	}
	for (int i = 0; i < SEARCH_STEPS && hi - lo > 1; i++) {
		ms = ceil(sqrt(lo * hi));
		if (ms >= hi)
			ms = hi - 1;
		r = try_downtime(c, (uint64_t)ms * 1000, &res);
		if (r < 0)
			return r;
		if (fits(c, &res)) {
			hi = ms;
			k->result = res;
		} else {
			lo = ms;
		}
	}
	k->downtime_us = (uint64_t)hi * 1000;
	return 0;
}

/* The threshold at the link's speed: downtime-limit scaled by link / max-bandwidth. */
static int advise_switchover(struct ctx *c, const struct dt_plan_knobs *a,
			     struct dt_knob_advice *k)
{
	double scaled = (double)c->in->max_downtime_us * a->link_bandwidth / c->in->bandwidth;
	int r;

	k->bandwidth = a->link_bandwidth;
	if (scaled < (double)c->in->max_downtime_us)
		scaled = (double)c->in->max_downtime_us;
	r = try_downtime(c, (uint64_t)fmin(scaled, 3600e6), &k->result);
	if (r < 0)
		return r;
	if (a->version < 80200)
		k->unavailable = DT_KNOB_NEEDS_QEMU_8_2;
	return 0;
}

static int advise_postcopy(struct ctx *c, struct dt_knob_advice *k)
{
	struct dt_plan_engine_input e = c->e;

	e.qemu.postcopy = true;
	return replan(c->in, &e, &k->result);
}

int dt_plan_advise(const struct dt_plan_input *in, const struct dt_plan_engine_input *e,
		   bool dirty_ring, uint32_t nvcpus, struct dt_plan_knobs **ret)
{
	struct dt_plan_knobs *a;
	struct ctx *c;
	int r = 0;

	if (!in || !ret || !in->curve || in->npoints == 0 || in->npoints > DT_PLAN_MAX_POINTS ||
	    !(in->bandwidth > 0) || !isfinite(in->bandwidth) || in->curve[0].window_us == 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	c = calloc(1, sizeof(*c));
	if (!a || !c) {
		free(a);
		free(c);
		return -ENOMEM;
	}
	c->in = in;
	c->target_s = (double)in->target_us / 1e6;
	c->e.engine = DT_PLAN_ENGINE_QEMU;
	if (e && e->engine == DT_PLAN_ENGINE_QEMU)
		c->e.qemu = e->qemu;
	/* the plan as is, before any knob: auto-converge and post-copy off */
	c->e.qemu.auto_converge = false;
	c->e.qemu.postcopy = false;
	a->version = c->e.qemu.version;
	a->dirty_ring = dirty_ring;
	a->nvcpus = nvcpus;
	a->link_bandwidth = c->e.qemu.final_bandwidth > 0 ? c->e.qemu.final_bandwidth
							  : DT_PLAN_QEMU_FINAL_BANDWIDTH;
	a->advised = -1;
	r = replan(in, &c->e, &a->as_is);
	for (int i = 0; r >= 0 && i < _DT_KNOB_MAX; i++) {
		struct dt_knob_advice *k = &a->knobs[i];

		k->knob = (enum dt_knob)i;
		switch (k->knob) {
		case DT_KNOB_SWITCHOVER_BANDWIDTH:
			r = advise_switchover(c, a, k);
			break;
		case DT_KNOB_DIRTY_LIMIT:
			r = advise_dirty_limit(c, a, k);
			break;
		case DT_KNOB_AUTO_CONVERGE:
			r = advise_auto_converge(c, k);
			break;
		case DT_KNOB_POSTCOPY:
			r = advise_postcopy(c, k);
			break;
		case DT_KNOB_MAX_BANDWIDTH:
			r = advise_bandwidth(c, a, k);
			break;
		case DT_KNOB_DOWNTIME_LIMIT:
			r = advise_downtime(c, k);
			break;
		default:
			break;
		}
		if (r >= 0 && a->advised < 0 && k->unavailable == DT_KNOB_OK && fits(c, &k->result))
			a->advised = i;
	}
	a->nknobs = _DT_KNOB_MAX;
	free(c);
	if (r < 0) {
		free(a);
		return r;
	}
	*ret = a;
	return 0;
}

const char *dt_knob_name(enum dt_knob k)
{
	static const char *const names[_DT_KNOB_MAX] = {
		[DT_KNOB_SWITCHOVER_BANDWIDTH] = "avail-switchover-bandwidth",
		[DT_KNOB_DIRTY_LIMIT] = "dirty-limit",
		[DT_KNOB_AUTO_CONVERGE] = "auto-converge",
		[DT_KNOB_POSTCOPY] = "postcopy-ram",
		[DT_KNOB_MAX_BANDWIDTH] = "max-bandwidth",
		[DT_KNOB_DOWNTIME_LIMIT] = "downtime-limit",
	};
	return k < _DT_KNOB_MAX ? names[k] : "?";
}

const char *dt_knob_unavailable_name(enum dt_knob_unavailable u)
{
	static const char *const names[_DT_KNOB_UNAVAILABLE_MAX] = {
		[DT_KNOB_OK] = "available",
		[DT_KNOB_NEEDS_QEMU_8_2] = "needs-qemu-8.2",
		[DT_KNOB_NEEDS_QEMU_7_1] = "needs-qemu-7.1",
		[DT_KNOB_NEEDS_DIRTY_RING] = "needs-dirty-ring",
		[DT_KNOB_BEYOND_LINK] = "beyond-link-speed",
		[DT_KNOB_BEYOND_MAX] = "beyond-maximum",
		[DT_KNOB_NO_SETTING] = "no-setting-meets-target",
	};
	return u < _DT_KNOB_UNAVAILABLE_MAX ? names[u] : "?";
}
