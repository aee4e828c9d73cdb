/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for the knob advice (plan/knobs.c) and the drain
 * order (plan/evacuate.c): hand-checked schedules one at a time and in
 * parallel; for a guest that outruns the link, each knob's setting is the
 * edge its search claims (the next milder setting re-planned does not fit),
 * the knobs this VMM cannot apply are marked so, and the advised one is
 * the first available that fits.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "dt_evacuate.h"
#include "dt_plan.h"
#include "dt_plan_advice.h"
#include "dt_test.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MiB	      1048576.0

static void test_schedule_one(void)
{
	struct dt_evacuate_item it[] = { { .duration_s = 5 }, { .duration_s = 1 }, { .duration_s = 3 }, { .duration_s = -1 }, { .duration_s = 2 }, { .duration_s = NAN } };
	double total = 0;

	CHECK_EQ(dt_evacuate_schedule(it, ARRAY_SIZE(it), 1, NULL, NULL, &total), 4);
	/* shortest first, back to back */
	CHECK_EQ(it[1].order, 0);
	CHECK_EQ(it[4].order, 1);
	CHECK_EQ(it[2].order, 2);
	CHECK_EQ(it[0].order, 3);
	CHECK(it[1].start_s == 0 && it[4].start_s == 1 && it[2].start_s == 3 && it[0].start_s == 6);
	CHECK(total == 11);
}

static void test_schedule_parallel(void)
{
	struct dt_evacuate_item it[] = { { .duration_s = 5 }, { .duration_s = 1 }, { .duration_s = 3 }, { .duration_s = 2 } };
	double total = 0;

	CHECK_EQ(dt_evacuate_schedule(it, ARRAY_SIZE(it), 2, NULL, NULL, &total), 4);
	/* longest first on the slot that frees first: 5 on 0, 3 on 1, 2 on 1 at 3, 1 on 0 at 5 */
	CHECK(it[0].order == 0 && it[0].slot == 0 && it[0].start_s == 0);
	CHECK(it[2].order == 1 && it[2].slot == 1 && it[2].start_s == 0);
	CHECK(it[3].order == 2 && it[3].slot == 1 && it[3].start_s == 3);
	CHECK(it[1].order == 3 && it[1].slot == 0 && it[1].start_s == 5);
	CHECK(total == 6);
	CHECK_EQ(dt_evacuate_schedule(it, ARRAY_SIZE(it), 0, NULL, NULL, &total), -EINVAL);
	CHECK_EQ(dt_evacuate_schedule(it, ARRAY_SIZE(it), DT_EVACUATE_MAX_PARALLEL + 1, NULL, NULL,
				      &total),
		 -EINVAL);
	CHECK_EQ(dt_evacuate_schedule(NULL, 0, 1, NULL, NULL, &total), 0);
	CHECK(total == 0);
}

/* A migration of sizes[i] bytes over a 100 B/s link shared by `running`. */
static double at_share(void *userdata, size_t i, uint32_t running)
{
	const double *sizes = userdata;

	return running >= 1 ? sizes[i] / (100.0 / running) : -1;
}

/*
 * Each migration's share is the bandwidth over the migrations running at
 * its start: 2 VMs with parallel 4 go at half each (not a quarter), and a
 * VM that starts as another ends shares with those still running.
 */
static void test_schedule_share(void)
{
	double two[] = { 400, 100 }, three[] = { 400, 0, 100 }, five[] = { 400, 300, 200, 100, 100 }, total = 0;
	/* ranked by their times at the first migrations' share */
	struct dt_evacuate_item a[] = { { .duration_s = 8 }, { .duration_s = 2 } };
	struct dt_evacuate_item b[] = { { .duration_s = 16 }, { .duration_s = 12 }, { .duration_s = 8 },
					{ .duration_s = 4 }, { .duration_s = 4 } };
	struct dt_evacuate_item c[] = { { .duration_s = 8 }, { .duration_s = -1 }, { .duration_s = 2 } };

	CHECK_EQ(dt_evacuate_schedule(a, ARRAY_SIZE(a), 4, at_share, two, &total), 2);
	CHECK(a[0].running == 2 && a[1].running == 2);
	CHECK(a[0].start_s == 0 && a[1].start_s == 0);
	CHECK(a[0].duration_s == 8 && a[1].duration_s == 2); /* 400 B and 100 B at 50 B/s */
	CHECK(total == 8);
	/* 4 at once at 25 B/s: 16, 12, 8, 4 s; the fifth at 4 s shares with 3 still running */
	CHECK_EQ(dt_evacuate_schedule(b, ARRAY_SIZE(b), 4, at_share, five, &total), 5);
	for (size_t i = 0; i < ARRAY_SIZE(b); i++)
		CHECK(b[i].running == 4);
	CHECK(b[4].start_s == 4 && b[4].slot == 3 && b[4].duration_s == 4);
	CHECK(total == 16);
	/* one that cannot go live takes no share: the two others at half each */
	CHECK_EQ(dt_evacuate_schedule(c, ARRAY_SIZE(c), 3, at_share, three, &total), 2);
	CHECK(c[0].running == 2 && c[2].running == 2 && c[0].duration_s == 8);
	/* one at a time: the whole link each; a failed re-plan keeps its ranked time */
	CHECK_EQ(dt_evacuate_schedule(a, ARRAY_SIZE(a), 1, at_share, two, &total), 2);
	CHECK(a[0].running == 1 && a[0].duration_s == 4 && a[1].duration_s == 1 && total == 5);
	a[0].duration_s = 8;
	a[1].duration_s = 2;
	CHECK_EQ(dt_evacuate_schedule(a, ARRAY_SIZE(a), 2, NULL, NULL, &total), 2);
	CHECK(a[0].duration_s == 8 && total == 8);
}

/* 20000 pages/s up to all of memory (200000 pages) at 10 s: twice the 10000 pages/s link. */
static const struct dt_plan_point hot[] = {
	{ 100000, 2000 }, { 1000000, 20000 }, { 10000000, 200000 } };

static struct dt_plan_input hot_input(uint64_t target_us)
{
	return (struct dt_plan_input){
		.curve = hot,
		.npoints = ARRAY_SIZE(hot),
		.memory_pages = 200000,
		.page_size = 4096,
		.bandwidth = 10000.0 * 4096,
		.max_downtime_us = 100000,
		.max_rounds = 30,
		.target_us = target_us,
		.interp = DT_PLAN_INTERP_LINEAR,
	};
}

static bool fits(const struct dt_plan_input *in, const struct dt_plan_engine_input *e)
{
	struct dt_plan *p = NULL;
	bool ok;

	if (dt_plan_engine_compute(in, e, &p) < 0)
		return false;
	ok = p->converges &&
	     (in->target_us == 0 || p->total_seconds * 1e6 <= DT_ADVICE_MARGIN * (double)in->target_us);
	dt_plan_free(p);
	return ok;
}

static void test_knobs(void)
{
	const struct dt_plan_input in = hot_input(300000000); /* 300 s */
	const struct dt_plan_engine_input e = { .engine = DT_PLAN_ENGINE_QEMU };
	struct dt_plan_knobs *a = NULL;
	const struct dt_knob_advice *k;

	CHECK_EQ(dt_plan_advise(&in, &e, false, 2, &a), 0);
	if (!a)
		return;
	CHECK(!a->as_is.converges);
	CHECK_EQ(a->nknobs, _DT_KNOB_MAX);
	/* QEMU 7.2 (version unknown) with a dirty bitmap */
	CHECK_EQ(a->knobs[DT_KNOB_SWITCHOVER_BANDWIDTH].unavailable, DT_KNOB_NEEDS_QEMU_8_2);
	CHECK_EQ(a->knobs[DT_KNOB_DIRTY_LIMIT].unavailable, DT_KNOB_NEEDS_DIRTY_RING);
	/* post-copy always completes, downtime the switch-over only */
	k = &a->knobs[DT_KNOB_POSTCOPY];
	CHECK(k->result.converges && k->unavailable == DT_KNOB_OK);
	/* max-bandwidth: its setting fits, one MiB/s less does not */
	k = &a->knobs[DT_KNOB_MAX_BANDWIDTH];
	CHECK(k->unavailable == DT_KNOB_OK && k->bandwidth > in.bandwidth);
	{
		struct dt_plan_input x = in;

		x.bandwidth = k->bandwidth;
		CHECK(fits(&x, &e));
		x.bandwidth = k->bandwidth - MiB;
		CHECK(!fits(&x, &e));
	}
	/* downtime-limit: its setting fits, one ms less does not */
	k = &a->knobs[DT_KNOB_DOWNTIME_LIMIT];
	if (k->unavailable == DT_KNOB_OK) {
		struct dt_plan_input x = in;

		x.max_downtime_us = k->downtime_us;
		CHECK(fits(&x, &e));
		x.max_downtime_us = k->downtime_us - 1000;
		CHECK(!fits(&x, &e));
	}
	/* auto-converge: its setting fits and throttles the guest */
	k = &a->knobs[DT_KNOB_AUTO_CONVERGE];
	if (k->unavailable == DT_KNOB_OK) {
		struct dt_plan_engine_input t = e;

		t.qemu.auto_converge = true;
		t.qemu.throttle_initial = k->throttle_initial;
		t.qemu.throttle_increment = k->throttle_increment;
		CHECK(fits(&in, &t));
		CHECK(k->result.throttle_percent > 0);
	}
	/* the advised: the first available that fits, in the enum's order */
	CHECK(a->advised >= 0);
	for (int i = 0; a->advised >= 0 && i < a->advised; i++)
		CHECK(a->knobs[i].unavailable != DT_KNOB_OK ||
		      !(a->knobs[i].result.converges &&
			a->knobs[i].result.total_seconds <= DT_ADVICE_MARGIN * 300));
	if (a->advised >= 0)
		CHECK(a->knobs[a->advised].unavailable == DT_KNOB_OK);
	free(a);
}

static void test_knobs_ring_and_version(void)
{
	const struct dt_plan_input in = hot_input(300000000);
	struct dt_plan_engine_input e = { .engine = DT_PLAN_ENGINE_QEMU };
	struct dt_plan_knobs *a = NULL;
	const struct dt_knob_advice *k;

	e.qemu.version = 80200;
	CHECK_EQ(dt_plan_advise(&in, &e, true, 2, &a), 0);
	if (!a)
		return;
	CHECK(a->knobs[DT_KNOB_SWITCHOVER_BANDWIDTH].unavailable != DT_KNOB_NEEDS_QEMU_8_2);
	k = &a->knobs[DT_KNOB_DIRTY_LIMIT];
	CHECK_EQ(k->unavailable, DT_KNOB_OK);
	/* whole MB/s per vCPU; one MB/s more does not fit */
	CHECK(k->dirty_limit_bytes_per_second >= 1e6 &&
	      fmod(k->dirty_limit_bytes_per_second, 1e6) == 0);
	CHECK(k->result.converges);
	free(a);
	/* the ideal engine's input still gets QEMU's rules */
	e = (struct dt_plan_engine_input){ .engine = DT_PLAN_ENGINE_IDEAL };
	CHECK_EQ(dt_plan_advise(&in, &e, false, 1, &a), 0);
	if (a)
		CHECK(a->version == 0 && !a->as_is.converges);
	free(a);
	a = NULL;
	CHECK_EQ(dt_plan_advise(NULL, &e, false, 1, &a), -EINVAL);
	CHECK(a == NULL);
	for (int i = 0; i < _DT_KNOB_MAX; i++)
		CHECK(dt_knob_name((enum dt_knob)i)[0] != '?');
	CHECK(dt_knob_name(_DT_KNOB_MAX)[0] == '?');
}

int main(void)
{
	RUN(test_schedule_one);
	RUN(test_schedule_parallel);
	RUN(test_schedule_share);
	RUN(test_knobs);
	RUN(test_knobs_ring_and_version);
	TEST_EXIT();
}
