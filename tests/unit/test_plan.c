/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for the migration planner (plan/): hand-checked
 * round sequences for a linear and a flat curve, a non-converging case, the
 * dirty-limit recommendation, and bad inputs that must be -EINVAL, never NaN.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "dt_nnls.h"
#include "dt_plan.h"
#include "dt_test.h"

#define ARRAY_SIZE(a)	 (sizeof(a) / sizeof((a)[0]))
#define CLOSE(a, b, rel) CHECK(fabs((double)(a) - (double)(b)) <= (rel)*fabs((double)(b)) + 1e-9)

/* 1000 pages/s, exactly linear up to all of memory (100000 pages at 100 s). */
static const struct dt_plan_point linear[] = {
    {100000, 100}, {1000000, 1000}, {10000000, 10000}, {100000000, 100000}};

static struct dt_plan_input base(void)
{
	return (struct dt_plan_input){
	    .curve = linear,
	    .npoints = ARRAY_SIZE(linear),
	    .memory_pages = 100000,
	    .page_size = 4096,
	    .bandwidth = 10000.0 * 4096, /* 10000 pages/s */
	    .max_downtime_us = 300000,
	    .max_rounds = 30,
	    .interp = DT_PLAN_INTERP_LINEAR,
	};
}

/*
 * Linear D(T) = r T, b = 10 r: round 0 takes 10 s; with no layout the dirty
 * pages are spread, so R1 = mean of D over [0, 10 s] = 5000 pages (0.5 s);
 * then R2 = r t1 = 500 pages: a linear curve rewrites nothing (adjacent
 * windows share no page: D(10) + D(0.5) - D(10.5) = 0), so none of round
 * 2's writes hits round 1's list; they fit 300 ms (3000 pages): downtime
 * 50 ms, total 10.55 s.
 */
static void test_linear_geometric(void)
{
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;

	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK(p->converges);
	CHECK(p->meets_target);
	CHECK(!p->has_recommendation);
	CHECK_EQ(p->verdict, DT_PLAN_CONVERGES);
	CHECK_EQ(p->nrounds, 2);
	CHECK_EQ(p->rounds[0].pages, 100000);
	CHECK_EQ(p->rounds[0].duration_us, 10000000);
	CHECK_EQ(p->rounds[0].bytes, 100000ull * 4096);
	CHECK_EQ(p->irm_classes, 0); /* a straight line is no IRM curve */
	CHECK_EQ(p->rounds[0].dirtied_pages, 5000);
	CHECK_EQ(p->rounds[1].pages, 5000);
	CHECK_EQ(p->rounds[1].start_us, 10000000);
	CHECK_EQ(p->rounds[1].duration_us, 500000);
	CLOSE(p->downtime_seconds, 0.05, 1e-9);
	CLOSE(p->total_seconds, 10.55, 1e-9);
	CHECK_EQ(p->final_pages, 500);
	CLOSE(p->bytes_sent, (100000 + 5000 + 500) * 4096, 1e-9);
	CLOSE(p->dirty_rate_at_last_round, 1000, 1e-9);
	p = dt_plan_free(p);

	/* 10 ms: one more round: R3 = r t2 = 50 pages */
	in.max_downtime_us = 10000;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK(p->converges);
	CHECK_EQ(p->nrounds, 3);
	CLOSE(p->downtime_seconds, 0.005, 1e-9);
	CLOSE(p->total_seconds, 10 + 0.5 + 0.05 + 0.005, 1e-9);
	dt_plan_free(p);
}

/*
 * An activity profile: a flat one changes nothing; a bursty one (active
 * one epoch in five, at five times the mean) makes some starts end their
 * last round in a lull: the plan is the mean over the starts.
 */
static void test_activity(void)
{
	static const uint64_t flat[] = {100, 100, 100, 100, 100, 100, 100, 100, 100, 100};
	static const uint64_t bursty[] = {500, 0, 0, 0, 0, 500, 0, 0, 0, 0};
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL, *q = NULL;

	in.max_downtime_us = 10000;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	in.activity = flat, in.nactivity = ARRAY_SIZE(flat), in.activity_epoch_us = 100000;
	CHECK_EQ(dt_plan_compute(&in, &q), 0);
	if (!p || !q)
		goto out;
	CHECK_EQ(q->converges, p->converges);
	CHECK_EQ(q->nrounds, p->nrounds);
	CLOSE(q->total_seconds, p->total_seconds, 1e-6);
	CLOSE(q->downtime_seconds, p->downtime_seconds, 1e-6);
	CHECK(q->input.activity == NULL);
	q = dt_plan_free(q);
	in.activity = bursty;
	CHECK_EQ(dt_plan_compute(&in, &q), 0);
	if (!q)
		goto out;
	CHECK(q->converges);
	CHECK(isfinite(q->downtime_seconds) && q->downtime_seconds >= 0);
	CHECK(q->downtime_seconds < p->downtime_seconds); /* starts that stop in a lull */
	CHECK(q->nrounds >= 1 && q->nrounds <= in.max_rounds);
	/* one epoch is no profile */
	in.nactivity = 1;
	CHECK_EQ(dt_plan_compute(&in, &q), -EINVAL);
out:
	dt_plan_free(p);
	dt_plan_free(q);
}

/*
 * The same with the dirtied pages all at the start of memory (sent first):
 * round 0 leaves D(t0 - their send time), nearly r t0, and with the horizon
 * far above the remainders the series is geometric with ratio r/b.
 */
static void test_linear_layout(void)
{
	static const struct dt_plan_point big[] = {{100000, 100}, {1000000000000, 1000000000}};
	/* two parts: page 0, which holds every dirtied page, and the rest */
	static const uint64_t at_start[] = {100, 1000000000, 0, 0}, bounds[] = {0, 1, 1000000000};
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;
	double want, t;

	in.curve = big;
	in.npoints = ARRAY_SIZE(big);
	in.memory_pages = 1000000000; /* 10^5 s at 10^4 pages/s */
	in.parts = at_start;
	in.part_bounds = bounds;
	in.nparts = 2;
	in.bandwidth = 1e6 * 4096; /* ratio 1e-3 */
	in.max_downtime_us = 500;  /* 500 pages */
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	/* t0 = 1000 s, R1 ~ 1e6, R2 ~ 1e3, R3 ~ 1: fits */
	CHECK(p->converges);
	CHECK_EQ(p->nrounds, 3);
	CLOSE(p->rounds[1].pages, 1e6, 1e-3);
	CLOSE(p->rounds[2].pages, 1e3, 2e-3);
	want = 0;
	for (t = 1000; t > 1e-3 / 2; t /= 1000)
		want += t;
	CLOSE(p->total_seconds, want + 1e-6, 2e-3);
	CLOSE(p->downtime_seconds, 1e-6, 2e-3);
	dt_plan_free(p);
}

/* Flat D(T) = W beyond one epoch: converges after round 0 iff W fits. */
static void test_flat(void)
{
	static const struct dt_plan_point flat[] = {
	    {100000, 2000}, {1000000, 2000}, {60000000, 2000}};
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;

	in.curve = flat;
	in.npoints = ARRAY_SIZE(flat);
	in.no_irm = true; /* the curve model's figures, by hand */
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	/* R1 = mean over [0, 10 s] = 2000 (1 - 0.05 / 10) = 1990 <= 3000 */
	CHECK(p->converges);
	CHECK_EQ(p->nrounds, 1);
	CHECK_EQ(p->final_pages, 1990);
	CLOSE(p->downtime_seconds, 0.199, 1e-9);
	CLOSE(p->total_seconds, 10.199, 1e-9);
	p = dt_plan_free(p);

	/* 100 ms holds 1000 pages: the remainder never shrinks below ~W */
	in.max_downtime_us = 100000;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK(!p->converges);
	CHECK_EQ(p->verdict, DT_PLAN_RATE_EXCEEDS_BANDWIDTH);
	CHECK_EQ(p->nrounds, 30);
	CHECK(p->downtime_seconds > 0.1);
	CHECK(p->has_recommendation);
	/* one writer, no per-vCPU curves: a VM-wide limit, no vCPU named */
	CHECK_EQ(p->rec.nthrottle, 0);
	CHECK(p->rec.dirty_limit_pages_per_second > 0);
	dt_plan_free(p);
}

/* r = 2 b: the dirty rate beats the bandwidth; the round limit forces the stop. */
static void test_not_converging(void)
{
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;

	in.bandwidth = 500.0 * 4096;
	in.max_rounds = 5;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK(!p->converges);
	CHECK(!p->meets_target);
	CHECK_EQ(p->verdict, DT_PLAN_RATE_EXCEEDS_BANDWIDTH);
	CHECK_EQ(p->nrounds, 5);
	CHECK(p->dirty_rate_at_last_round >= p->bandwidth_pages);
	CHECK(isfinite(p->total_seconds) && p->total_seconds > 200);
	CHECK(p->has_recommendation);
	CLOSE(p->rec.postcopy_total_seconds, 200, 1e-9);
	dt_plan_free(p);
}

/*
 * Two vCPUs: vCPU 0 dirties 900 pages/s, vCPU 1 100 pages/s (disjoint
 * pages: the VM's curve is their sum). At 500 pages/s of bandwidth it does
 * not converge; throttling vCPU 0 alone does, within 600 s.
 */
static void test_recommendation(void)
{
	static const struct dt_plan_point v0[] = {
	    {100000, 90}, {1000000, 900}, {10000000, 9000}, {100000000, 90000}};
	static const struct dt_plan_point v1[] = {
	    {100000, 10}, {1000000, 100}, {10000000, 1000}, {100000000, 10000}};
	const struct dt_plan_vcpu vcpus[] = {{0, ARRAY_SIZE(v0), v0}, {1, ARRAY_SIZE(v1), v1}};
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL, *q = NULL;
	static struct dt_plan_point scaled[ARRAY_SIZE(linear)];
	double lim;

	in.bandwidth = 500.0 * 4096;
	in.vcpus = vcpus;
	in.nvcpus = 2;
	in.target_us = 600000000;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK(!p->converges);
	CHECK(p->has_recommendation);
	CHECK_EQ(p->rec.advice, DT_PLAN_ADVICE_THROTTLE);
	lim = p->rec.dirty_limit_pages_per_second;
	CHECK(lim > 100 && lim < 900);
	CHECK_EQ(p->rec.nthrottle, 1);
	if (p->rec.nthrottle == 1)
		CHECK_EQ(p->rec.throttle_vcpus[0], 0);
	CHECK(p->rec.throttled_total_seconds <= 600);
	CHECK(p->rec.throttled_downtime_seconds <= 0.3);
	CLOSE(p->rec.throttle_keeps, lim / 900, 1e-9);

	/* Re-plan with vCPU 0 slowed to the limit: converges within the target. */
	for (size_t i = 0; i < ARRAY_SIZE(linear); i++)
		scaled[i] = (struct dt_plan_point){
		    linear[i].window_us,
		    (uint64_t)llround((double)v1[i].pages + (double)v0[i].pages * lim / 900)};
	in.curve = scaled;
	in.vcpus = NULL;
	in.nvcpus = 0;
	CHECK_EQ(dt_plan_compute(&in, &q), 0);
	if (q) {
		CHECK(q->converges);
		CHECK(q->total_seconds <= 600 * 1.01);
	}
	dt_plan_free(q);
	dt_plan_free(p);

	/* A target shorter than round 0 itself: no limit helps; post-copy */
	in.curve = linear;
	in.vcpus = vcpus;
	in.nvcpus = 2;
	in.target_us = 100000000; /* round 0 alone takes 200 s */
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK_EQ(p->rec.advice, DT_PLAN_ADVICE_POSTCOPY);
	CHECK(p->rec.dirty_limit_pages_per_second == 0);
	dt_plan_free(p);
}

/* Rounds shorter than the first point scale D linearly through the origin. */
static void test_curve_edges(void)
{
	static const struct dt_plan_point c[] = {{100000, 1000}, {1000000, 5000}, {10000000, 9000}};
	double v;

	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, 50000, &v), 0);
	CLOSE(v, 500, 1e-12);
	CHECK_EQ(dt_plan_curve_at(linear, 4, DT_PLAN_INTERP_LOG, 100000, 50000, &v), 0);
	CLOSE(v, 50, 1e-12); /* a linear start stays linear */
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, 0, &v), 0);
	CHECK(v == 0);
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, 1000000, &v), 0);
	CLOSE(v, 5000, 1e-12);
	/* log T: half-way between 1 s and 10 s is sqrt(10) s */
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, 1e6 * sqrt(10), &v), 0);
	CLOSE(v, 7000, 1e-9);
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LINEAR, 100000, 5500000, &v), 0);
	CLOSE(v, 7000, 1e-9);
	/* beyond: the last segment's rate (4000 pages / 9 s), capped at memory */
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, 19000000, &v), 0);
	CLOSE(v, 13000, 1e-9);
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 10000, 1e9, &v), 0);
	CHECK(v == 10000);
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, NAN, &v), -EINVAL);
	CHECK_EQ(dt_plan_curve_at(c, 3, DT_PLAN_INTERP_LOG, 100000, -1, &v), -EINVAL);
	CHECK_EQ(dt_plan_curve_at(c, 0, DT_PLAN_INTERP_LOG, 100000, 1, &v), -EINVAL);
}

static void bad(struct dt_plan_input in)
{
	struct dt_plan *p = NULL;

	CHECK_EQ(dt_plan_compute(&in, &p), -EINVAL);
	CHECK(p == NULL);
}

static void test_bad_inputs(void)
{
	static const struct dt_plan_point down[] = {{100000, 100}, {1000000, 50}};
	static const struct dt_plan_point same[] = {{100000, 100}, {100000, 200}};
	static const struct dt_plan_point zero_window[] = {{0, 100}};
	static const struct dt_plan_point ok1[] = {{100000, 100}};
	/* layouts of two parts over base()'s four windows */
	static const uint64_t parts[] = {1, 2, 3, 4, 1, 2, 3, 4};
	static const uint64_t unsorted[] = {0, 60000, 50000}, beyond[] = {0, 50000, 100005};
	const struct dt_plan_vcpu bad_vcpu[] = {{0, 0, NULL}};
	struct dt_plan_input in;
	struct dt_plan *p = NULL;

	CHECK_EQ(dt_plan_compute(NULL, &p), -EINVAL);
	in = base();
	CHECK_EQ(dt_plan_compute(&in, NULL), -EINVAL);

	in = base(), in.bandwidth = 0, bad(in);
	in = base(), in.bandwidth = -1e9, bad(in);
	in = base(), in.bandwidth = NAN, bad(in);
	in = base(), in.bandwidth = INFINITY, bad(in);
	in = base(), in.npoints = 0, bad(in);
	in = base(), in.curve = NULL, bad(in);
	in = base(), in.npoints = DT_PLAN_MAX_POINTS + 1, bad(in);
	in = base(), in.curve = down, in.npoints = 2, bad(in);
	in = base(), in.curve = same, in.npoints = 2, bad(in);
	in = base(), in.curve = zero_window, in.npoints = 1, bad(in);
	in = base(), in.memory_pages = 0, bad(in);
	in = base(), in.page_size = 0, bad(in);
	in = base(), in.page_size = 5000, bad(in);
	in = base(), in.max_downtime_us = 0, bad(in);
	in = base(), in.zero_fraction = NAN, bad(in);
	in = base(), in.zero_fraction = -0.1, bad(in);
	in = base(), in.zero_fraction = 1, bad(in);
	in = base(), in.max_rounds = 0, bad(in);
	in = base(), in.max_rounds = DT_PLAN_MAX_ROUNDS + 1, bad(in);
	in = base(), in.interp = _DT_PLAN_INTERP_MAX, bad(in);
	in = base(), in.vcpus = bad_vcpu, in.nvcpus = 1, bad(in);
	in = base(), in.nvcpus = 1, bad(in);
	in = base(), in.parts = parts, in.part_bounds = unsorted, in.nparts = 2, bad(in);
	in = base(), in.parts = parts, in.part_bounds = beyond, in.nparts = 2, bad(in);
	in = base(), in.nparts = 1, bad(in);
	in = base(), in.parts = parts, in.nparts = DT_PLAN_MAX_PARTS + 1, bad(in);

	/* a one-point curve is enough */
	in = base(), in.curve = ok1, in.npoints = 1;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (p)
		CHECK(isfinite(p->total_seconds) && isfinite(p->downtime_seconds));
	dt_plan_free(p);
	/* an idle VM: all zero */
	static const struct dt_plan_point idle[] = {{100000, 0}, {1000000, 0}};
	in = base(), in.curve = idle, in.npoints = 2;
	p = NULL;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (p) {
		CHECK(p->converges);
		CHECK_EQ(p->nrounds, 1);
		CHECK(p->downtime_seconds == 0);
	}
	dt_plan_free(p);
}

/* The whole memory fits the downtime: no pre-copy round at all. */
static void test_tiny(void)
{
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;

	in.memory_pages = 1000;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK(p->converges);
	CHECK_EQ(p->nrounds, 0);
	CLOSE(p->downtime_seconds, 0.1, 1e-12);
	CHECK_EQ(p->bytes_sent, 1000 * 4096);
	dt_plan_free(p);
}

/* Zero pages cost nothing in round 0. */
static void test_zero_pages(void)
{
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;

	in.zero_fraction = 0.5;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	if (!p)
		return;
	CHECK_EQ(p->rounds[0].pages, 50000);
	CHECK_EQ(p->rounds[0].duration_us, 5000000);
	CHECK_EQ(p->rounds[0].dirtied_pages, 2500);
	dt_plan_free(p);
}

/* NNLS: a non-negative solution is found exactly; otherwise Kuhn-Tucker holds. */
static void test_nnls(void)
{
	double a[20 * 8], b[20], x[8], want[8] = {3, 0, 1.5, 0, 0, 7, 0.25, 0}, w[8];
	uint64_t seed = 12345;

	for (size_t i = 0; i < 20 * 8; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		a[i] = (double)(seed >> 11) / (double)(1ull << 53);
	}
	for (size_t i = 0; i < 20; i++) {
		b[i] = 0;
		for (size_t j = 0; j < 8; j++)
			b[i] += a[i * 8 + j] * want[j];
	}
	CHECK_EQ(dt_nnls(a, b, 20, 8, x), 0);
	for (size_t j = 0; j < 8; j++)
		CHECK(fabs(x[j] - want[j]) < 1e-9);
	/* a target the columns cannot reach with x >= 0: some negative parts */
	for (size_t i = 0; i < 20; i++)
		b[i] = i % 2 ? 1.0 : -2.0;
	CHECK_EQ(dt_nnls(a, b, 20, 8, x), 0);
	for (size_t j = 0; j < 8; j++) {
		w[j] = 0;
		for (size_t i = 0; i < 20; i++) {
			double r = b[i];

			for (size_t k = 0; k < 8; k++)
				r -= a[i * 8 + k] * x[k];
			w[j] += a[i * 8 + j] * r;
		}
		CHECK(x[j] >= 0);
		CHECK(w[j] < 1e-9);			 /* no column would lower the error */
		CHECK(x[j] == 0 || fabs(w[j]) < 1e-9); /* and the used ones are optimal */
	}
	a[3] = NAN;
	CHECK_EQ(dt_nnls(a, b, 20, 8, x), -EINVAL);
	CHECK_EQ(dt_nnls(a, b, DT_NNLS_MAX_ROWS + 1, 8, x), -EINVAL);
	CHECK_EQ(dt_nnls(a, b, 20, 0, x), -EINVAL);
}

/*
 * A guest that is an independent-reference one (1000 hot pages written 50
 * times a second, 20000 cold ones once in 20 s): the planner fits it and
 * its rounds follow the exact per-class recursion, computed here from the
 * true classes; the curve model, on the same curve, is further off.
 */
static void test_irm(void)
{
	static const double rate[2] = {50, 0.05}, pages[2] = {1000, 20000};
	static const double windows[] = {0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100};
	struct dt_plan_point curve[ARRAY_SIZE(windows)];
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL, *c = NULL;
	double q[2], t, list = 100000, b = 10000, want[4];

	for (size_t j = 0; j < ARRAY_SIZE(windows); j++) {
		double d = 0;

		for (int k = 0; k < 2; k++)
			d += pages[k] * -expm1(-rate[k] * windows[j]);
		curve[j] = (struct dt_plan_point){(uint64_t)llround(windows[j] * 1e6), (uint64_t)llround(d)};
	}
	/* the exact recursion: round 0 sends all memory evenly, later rounds their lists */
	for (int i = 0; i < 4; i++) {
		t = list / b;
		list = 0;
		for (int k = 0; k < 2; k++) {
			double x = rate[k] * t, since_send = 1 + expm1(-x) / x;

			q[k] = i == 0 ? since_send : q[k] * since_send + (1 - q[k]) * -expm1(-x);
			list += pages[k] * q[k];
		}
		want[i] = list;
	}
	in.curve = curve;
	in.npoints = ARRAY_SIZE(curve);
	in.interp = DT_PLAN_INTERP_LOG;
	in.max_downtime_us = 1000; /* 10 pages: never fits, four rounds at least */
	in.max_rounds = 4;
	CHECK_EQ(dt_plan_compute(&in, &p), 0);
	in.no_irm = true;
	CHECK_EQ(dt_plan_compute(&in, &c), 0);
	if (!p || !c)
		goto out;
	CHECK(p->irm_classes > 0);
	CHECK_EQ(c->irm_classes, 0);
	CHECK_EQ(p->nrounds, 4);
	/* within 3 %: 50 writes/s lies between two of the fit's rates */
	for (int i = 0; i < 4; i++)
		CLOSE(p->rounds[i].dirtied_pages, want[i], 0.03);
	CHECK(fabs((double)p->final_pages - want[3]) < fabs((double)c->final_pages - want[3]));
out:
	dt_plan_free(p);
	dt_plan_free(c);
}

/*
 * The layout by window: the same IRM guest with its hot pages at the
 * start of memory (sent first in round 0, the longest time to be written
 * again) leaves more dirty after round 0 than with them at the end; both
 * as the exact recursion over the two parts says.
 */
static double exact_after_copy(const double *npart, const double *rate, double t0, double from,
			       double to)
{
	double sum = 0;

	/* mean over send moments x in [from, to] t0 of P(written in (x, t0]) */
	for (int k = 0; k < 2; k++) {
		double a = rate[k] * t0 * (1 - to), c = rate[k] * t0 * (to - from);

		sum += npart[k] * (1 + exp(-a) * expm1(-c) / c);
	}
	return sum;
}

static void test_parts(void)
{
	static const double rate[2] = {50, 0.05}, hot_first[2][2] = {{1000, 10000}, {0, 10000}};
	static const double windows[] = {0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100};
	enum { N = ARRAY_SIZE(windows) };
	struct dt_plan_point curve[N];
	uint64_t parts[2 * N], bounds[3] = {0, 50000, 100000};
	struct dt_plan_input in = base();
	struct dt_plan *p = NULL;
	double got[2];

	for (int order = 0; order < 2; order++) {
		for (size_t j = 0; j < N; j++) {
			double d = 0;

			for (int b = 0; b < 2; b++) {
				double db = 0;

				for (int k = 0; k < 2; k++)
					db += hot_first[order ? 1 - b : b][k] * -expm1(-rate[k] * windows[j]);
				parts[b * N + j] = (uint64_t)llround(db);
				d += db;
			}
			curve[j] = (struct dt_plan_point){(uint64_t)llround(windows[j] * 1e6),
							  (uint64_t)llround(d)};
		}
		in.curve = curve;
		in.npoints = N;
		in.interp = DT_PLAN_INTERP_LOG;
		in.parts = parts;
		in.part_bounds = bounds;
		in.nparts = 2;
		in.max_downtime_us = 1000;
		in.max_rounds = 1;
		CHECK_EQ(dt_plan_compute(&in, &p), 0);
		if (!p)
			return;
		CHECK(p->irm_classes > 0);
		got[order] = (double)p->rounds[0].dirtied_pages;
		/* round 0 takes 10 s; part 0 is sent in its first half */
		CLOSE(got[order],
		      exact_after_copy(hot_first[order], rate, 10, 0, 0.5) +
			  exact_after_copy(hot_first[1 - order], rate, 10, 0.5, 1),
		      0.03);
		p = dt_plan_free(p);
	}
	CHECK(got[0] > got[1]);
	bounds[1] = 100001; /* beyond memory: not a layout */
	CHECK_EQ(dt_plan_compute(&in, &p), -EINVAL);
	bounds[1] = 50000;
	bounds[2] = 99999; /* does not end at memory */
	CHECK_EQ(dt_plan_compute(&in, &p), -EINVAL);
	bounds[2] = 100000;
	parts[1] = parts[2] + 1; /* a part's count shrinking with the window */
	CHECK_EQ(dt_plan_compute(&in, &p), -EINVAL);
}

int main(void)
{
	RUN(test_linear_geometric);
	RUN(test_linear_layout);
	RUN(test_flat);
	RUN(test_not_converging);
	RUN(test_recommendation);
	RUN(test_curve_edges);
	RUN(test_bad_inputs);
	RUN(test_tiny);
	RUN(test_zero_pages);
	RUN(test_activity);
	RUN(test_nnls);
	RUN(test_irm);
	RUN(test_parts);
	TEST_EXIT();
}
