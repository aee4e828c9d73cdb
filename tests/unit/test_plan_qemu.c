/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QEMU engine (plan/engine_qemu.c) on cases computed by hand. The
 * link carries exactly 1000 pages (4096 bytes + an 8-byte header) per
 * 100 ms window, so QEMU's bandwidth estimate is the bandwidth and a round
 * of memory of 10000 pages takes 1.0 s; downtime-limit 50 ms makes the
 * threshold 41.04e6 x 0.05 = 2.052e6 bytes: fewer than 501 pages. The
 * stop-and-copy runs at 164.16e6 bytes/s (400 pages in 10 ms), plus a
 * switch-over of 5 ms.
 */
#include <errno.h>
#include <math.h>

#include "dt_plan.h"
#include "dt_test.h"

#define PS	 4096
#define WIRE	 (PS + 8)
#define M	 10000
#define BW	 (WIRE * 1000 / 0.1) /* 41.04e6 bytes/s */
#define FINAL_BW (WIRE * 400 / 0.01)
#define SWITCH_S 0.005

#define CHECK_NEAR(a, b)                                                                           \
	do {                                                                                       \
		double _a = (a), _b = (b);                                                         \
		if (!(fabs(_a - _b) <= 1e-6 * fmax(1, fabs(_b)))) {                               \
			fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s == %.9g, %s == %.9g\n",      \
				__FILE__, __LINE__, #a, _a, #b, _b);                               \
			dt_test_failures++;                                                        \
		}                                                                                  \
	} while (0)

/* D(T): `rate` distinct new pages a second (linear), or a set of `flat` pages
 * written all the time (rate 0). */
static struct dt_plan *plan(double rate, uint64_t flat, double zero, const struct dt_plan_qemu *q0)
{
	struct dt_plan_point pts[2] = {
	    {100000, flat ? flat : (uint64_t)llround(rate * 0.1)},
	    {10000000, flat ? flat : (uint64_t)llround(rate * 10)},
	};
	struct dt_plan_input in = {
	    .curve = pts,
	    .npoints = 2,
	    .memory_pages = M,
	    .page_size = PS,
	    .bandwidth = BW,
	    .max_downtime_us = 50000,
	    .zero_fraction = zero,
	    .max_rounds = 100,
	    .interp = DT_PLAN_INTERP_LINEAR,
	};
	struct dt_plan_qemu q = {.final_bandwidth = FINAL_BW, .switchover_s = SWITCH_S};
	struct dt_plan *p = NULL;

	if (q0)
		q = *q0;
	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), 0);
	return p;
}

/*
 * A static working set of 400 pages: the bulk round (1.0 s) ends with the
 * dirty log synced: the 400 pages, below the threshold, so the VM stops and
 * they are copied (10 ms) with the switch-over (5 ms). Syncs: setup, the
 * one that ends the round, the last one while stopped.
 */
static void test_static_set(void)
{
	struct dt_plan *p = plan(0, 400, 0, NULL);

	CHECK(p->converges && p->meets_target);
	CHECK_EQ(p->verdict, DT_PLAN_CONVERGES);
	CHECK_EQ(p->nrounds, 1);
	CHECK_EQ(p->rounds[0].pages, M);
	CHECK_EQ(p->rounds[0].dirtied_pages, 400);
	CHECK_EQ(p->final_pages, 400);
	CHECK_NEAR(p->rounds[0].duration_us / 1e6, 1.0);
	CHECK_NEAR(p->total_seconds, 1.0 + 0.010 + SWITCH_S);
	CHECK_NEAR(p->downtime_seconds, 0.010 + SWITCH_S);
	CHECK_NEAR((double)p->bytes_sent, (M + 400.0) * WIRE);
	CHECK_EQ(p->qemu.dirty_syncs, 3);
	CHECK_NEAR(p->qemu.bandwidth_estimate, BW);
	CHECK_NEAR(p->qemu.threshold_bytes, BW * 0.05);
	dt_plan_free(p);
}

/*
 * 2000 new pages a second (below the link's 10000): round 1 sends the 2000
 * the bulk round left (0.2 s), which leaves D(0.2 s) = 400: stop. 20000 a
 * second (above the link): every round leaves all memory, never converges.
 */
static void test_rate_vs_bandwidth(void)
{
	struct dt_plan *p = plan(2000, 0, 0, NULL);

	CHECK(p->converges);
	CHECK_EQ(p->nrounds, 2);
	CHECK_EQ(p->rounds[0].dirtied_pages, 2000);
	CHECK_EQ(p->rounds[1].pages, 2000);
	CHECK_EQ(p->rounds[1].dirtied_pages, 400);
	CHECK_NEAR(p->total_seconds, 1.2 + 0.010 + SWITCH_S);
	CHECK_EQ(p->qemu.dirty_syncs, 4);
	dt_plan_free(p);

	p = plan(20000, 0, 0, NULL);
	CHECK(!p->converges && !p->meets_target);
	CHECK_EQ(p->verdict, DT_PLAN_RATE_EXCEEDS_BANDWIDTH);
	CHECK(p->total_seconds >= DT_PLAN_QEMU_HORIZON_S);
	dt_plan_free(p);
}

/*
 * The dirty log is cleared per chunk when the round first sends a page of
 * it: every write after that is sent again, listed or not. 300 new pages a
 * second over the bulk round of 1.0 s: one chunk, cleared at 0, leaves 300;
 * two chunks of 5000 pages, cleared at 0 and at 0.5 s, leave
 * (300 + 150) / 2 = 225 (the writes to the second half before its clear are
 * cleared with it: those pages were listed and sent with that content).
 */
static void test_chunked_clear(void)
{
	struct dt_plan_qemu q = {
	    .final_bandwidth = FINAL_BW, .switchover_s = SWITCH_S, .clear_chunk_pages = M / 2};
	struct dt_plan *p = plan(300, 0, 0, NULL);

	CHECK_EQ(p->rounds[0].dirtied_pages, 300);
	CHECK_EQ(p->final_pages, 300);
	dt_plan_free(p);
	p = plan(300, 0, 0, &q);
	CHECK_EQ(p->rounds[0].dirtied_pages, 225);
	CHECK_EQ(p->final_pages, 225);
	CHECK_NEAR(p->downtime_seconds, 225.0 * WIRE / FINAL_BW + SWITCH_S);
	dt_plan_free(p);
}

/*
 * The unsent tail: a working set of 1400 pages (D = 400 in 0.1 s, 1400 from
 * 1 s on). The bulk round (1.0 s) lists the 1400; round 1 sends 1000 in a
 * window and syncs with 400 unsent: of its D(0.1 s) = 400 new writes, the
 * share on the unsent list pages is what the previous interval's writes and
 * these share, D(1.0) + D(0.1) - D(1.1) = 400, times 400 / 1400 unsent:
 * 400 + 400 - 114.29 = 685.71 listed. Round 2 sends them in 68.6 ms, which
 * dirties 274.29 (through the origin below 0.1 s): the stop-and-copy.
 */
static void test_unsent_tail(void)
{
	struct dt_plan_point pts[3] = {{100000, 400}, {1000000, 1400}, {2000000, 1400}};
	struct dt_plan_input in = {
	    .curve = pts, .npoints = 3, .memory_pages = M, .page_size = PS, .bandwidth = BW,
	    .max_downtime_us = 50000, .max_rounds = 100, .interp = DT_PLAN_INTERP_LINEAR};
	struct dt_plan_qemu q = {.final_bandwidth = FINAL_BW, .switchover_s = SWITCH_S};
	struct dt_plan *p = NULL;

	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), 0);
	CHECK(p->converges);
	CHECK_EQ(p->nrounds, 3);
	CHECK_EQ(p->rounds[0].dirtied_pages, 1400);
	CHECK_EQ(p->rounds[1].pages, 1000);
	CHECK_EQ(p->rounds[1].dirtied_pages, 686);
	CHECK_EQ(p->final_pages, 274);
	CHECK_NEAR(p->total_seconds, 1.1 + 2400.0 / 3500 * 0.1 + 0.0068571428571 + SWITCH_S);
	dt_plan_free(p);
}

/*
 * Half of memory zero pages, each a 9-byte header costing 50 us of CPU:
 * the bulk round is 5000 x 100 us + 5000 x 50 us = 0.75 s and
 * 5000 x 4104 + 5000 x 9 bytes; an idle guest then stops at once.
 */
static void test_zero_pages(void)
{
	struct dt_plan_qemu q = {
	    .final_bandwidth = FINAL_BW, .switchover_s = SWITCH_S, .zero_page_us = 50};
	struct dt_plan *p = plan(0, 0, 0.5, &q);

	CHECK(p->converges);
	CHECK_EQ(p->final_pages, 0);
	CHECK_NEAR(p->rounds[0].duration_us / 1e6, 0.75);
	CHECK_NEAR((double)p->bytes_sent, 5000.0 * WIRE + 5000.0 * 9);
	CHECK_NEAR(p->total_seconds, 0.75 + SWITCH_S);
	CHECK_NEAR(p->downtime_seconds, SWITCH_S);
	dt_plan_free(p);
}

/*
 * A host that sends at half the link's speed (throughput: CPU-bound) sends
 * 500 pages a window, not the link's 1000: the bulk round takes 2.0 s,
 * QEMU's estimate is half the bandwidth.
 */
static void test_page_cpu(void)
{
	struct dt_plan_qemu q = {.final_bandwidth = FINAL_BW, .switchover_s = SWITCH_S, .throughput = BW / 2};
	struct dt_plan *p = plan(0, 0, 0, &q);

	CHECK(p->converges);
	CHECK_NEAR(p->rounds[0].duration_us / 1e6, 2.0);
	CHECK_NEAR(p->qemu.bandwidth_estimate, BW / 2);
	CHECK_NEAR(p->total_seconds, 2.0 + SWITCH_S);
	dt_plan_free(p);
}

static void test_bad_inputs(void)
{
	struct dt_plan_qemu q = {.throughput = -1};
	struct dt_plan_point pt = {100000, 10};
	struct dt_plan_input in = {.curve = &pt, .npoints = 1, .memory_pages = M, .page_size = PS,
				   .bandwidth = BW, .max_downtime_us = 50000, .max_rounds = 100};
	struct dt_plan *p = NULL;

	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), -EINVAL);
	q = (struct dt_plan_qemu){.final_bandwidth = NAN};
	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), -EINVAL);
	q = (struct dt_plan_qemu){0};
	in.bandwidth = 0;
	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), -EINVAL);
	CHECK(p == NULL);
}

int main(void)
{
	RUN(test_static_set);
	RUN(test_rate_vs_bandwidth);
	RUN(test_chunked_clear);
	RUN(test_unsent_tail);
	RUN(test_zero_pages);
	RUN(test_page_cpu);
	RUN(test_bad_inputs);
	TEST_EXIT();
}
