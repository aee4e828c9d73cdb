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

/*
 * Auto-converge as QEMU 7.2 schedules it (migration_trigger_throttle,
 * mig_throttle_guest_down), computed by hand. 12000 pages, a set of 7000
 * written all the time (D(T) = 7000 from 0.1 s of run time on, so the
 * throttle never shrinks it here): the bulk round sends 12000 pages in
 * 1.2 s, every later round the 7000 in 0.7 s; syncs (dirty-sync-count)
 * at 1.2 (#2), 1.9, 2.6 (#4), 3.3, 4.0 (#6) ...: round k runs after sync
 * k + 1. A check needs 1 s since the last, so it is at the even syncs
 * (#2 after 1.2 s, then every 1.4 s: two rounds). The bulk period dirtied
 * 7000 x 4096 = 28.672e6 bytes against 12000 x 4104 = 49.248e6 sent
 * (58 %); each later one 14000 x 4096 = 57.344e6 against 57.456e6
 * (99.8 %). A check above the threshold counts; the second count throttles
 * and starts the count over.
 */
static struct dt_plan *plan_ac(const struct dt_plan_qemu *q0)
{
	struct dt_plan_point pts[2] = {{100000, 7000}, {10000000, 7000}};
	struct dt_plan_input in = {
	    .curve = pts,
	    .npoints = 2,
	    .memory_pages = 12000,
	    .page_size = PS,
	    .bandwidth = BW,
	    .max_downtime_us = 50000,
	    .max_rounds = 100,
	    .interp = DT_PLAN_INTERP_LINEAR,
	};
	struct dt_plan_qemu q = *q0;
	struct dt_plan *p = NULL;

	q.final_bandwidth = FINAL_BW;
	q.switchover_s = SWITCH_S;
	q.auto_converge = true;
	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), 0);
	return p;
}

/* want[k]: the throttle of round k, for the first n rounds (each round's length checked too) */
static void check_schedule(const struct dt_plan *p, const uint32_t *want, size_t n)
{
	CHECK(p->nrounds >= n);
	for (size_t k = 0; k < n && k < p->nrounds; k++) {
		if (p->rounds[k].throttle_percent != want[k]) {
			fprintf(stderr, "round %zu: throttle %u %%, want %u %%\n", k,
				p->rounds[k].throttle_percent, want[k]);
			dt_test_failures++;
		}
		CHECK_NEAR(p->rounds[k].duration_us / 1e6, k == 0 ? 1.2 : 0.7);
		CHECK_EQ(p->rounds[k].pages, k == 0 ? 12000 : 7000);
	}
}

static void test_auto_converge(void)
{
	/* QEMU's defaults (20/10, threshold 50): #2 high (58 % > 50 %) counts 1, #4
	 * throttles to 20 % (round 3 on), #6 counts, #8 adds 10 (round 7 on), ... */
	static const uint32_t dflt[] = {0, 0, 0, 20, 20, 20, 20, 30, 30, 30, 30, 40, 40, 40, 40, 50};
	/* throttle-trigger-threshold 60: the bulk period (58 %) is not high: #4, #6 */
	static const uint32_t t60[] = {0, 0, 0, 0, 0, 20, 20, 20, 20, 30, 30, 30, 30, 40};
	/* tailslow, threshold 95: the step is at most 100 - p - floor((100 - p) x
	 * 0.95 x 57.456e6 / 57.344e6): from 20, 80 - floor(76.15) = 4; 76 -
	 * floor(72.34) = 4; 72 - floor(68.53) = 4 */
	static const uint32_t slow[] = {0, 0, 0, 0, 0, 20, 20, 20, 20, 24, 24, 24, 24, 28, 28, 28, 28, 32};
	/* cpu-throttle-initial above max-cpu-throttle: QEMU sets the initial as is,
	 * then min(initial + increment, max) brings it down */
	static const uint32_t over[] = {0, 0, 0, 40, 40, 40, 40, 30, 30, 30, 30, 30};
	/* increment 30 from 70: min(100, 99), and 99 stays */
	static const uint32_t top[] = {0, 0, 0, 70, 70, 70, 70, 99};
	struct dt_plan *p;

	p = plan_ac(&(struct dt_plan_qemu){0});
	check_schedule(p, dflt, sizeof(dflt) / sizeof(dflt[0]));
	CHECK_NEAR(p->rounds[3].start_us / 1e6, 2.6);
	dt_plan_free(p);
	p = plan_ac(&(struct dt_plan_qemu){.throttle_trigger = 60});
	check_schedule(p, t60, sizeof(t60) / sizeof(t60[0]));
	dt_plan_free(p);
	p = plan_ac(&(struct dt_plan_qemu){.throttle_trigger = 95, .throttle_tailslow = true});
	check_schedule(p, slow, sizeof(slow) / sizeof(slow[0]));
	dt_plan_free(p);
	p = plan_ac(&(struct dt_plan_qemu){.throttle_initial = 40, .throttle_max = 30});
	check_schedule(p, over, sizeof(over) / sizeof(over[0]));
	dt_plan_free(p);
	p = plan_ac(&(struct dt_plan_qemu){.throttle_initial = 70, .throttle_increment = 30});
	check_schedule(p, top, sizeof(top) / sizeof(top[0]));
	dt_plan_free(p);
}

/*
 * A throttle of p % leaves the guest (1 - p) of its run time (each vCPU
 * sleeps p / (1 - p) x 10 ms every 10 ms / (1 - p)): 8000 new pages a second
 * (linear D), 100000 pages, initial 50 %. The bulk round takes 10 s and
 * dirties 80000 (#2: 80 % of the bytes sent: counts); round 1 sends them in
 * 8 s and dirties 64000 (#3: counts again: to 50 %); round 2 sends those in
 * 6.4 s at 50 %: 3.2 s of run time, 25600 pages.
 */
static void test_throttle_scales_rate(void)
{
	struct dt_plan_point pts[2] = {{100000, 800}, {10000000, 80000}};
	struct dt_plan_input in = {.curve = pts, .npoints = 2, .memory_pages = 100000,
				   .page_size = PS, .bandwidth = BW, .max_downtime_us = 50000,
				   .max_rounds = 100, .interp = DT_PLAN_INTERP_LINEAR};
	struct dt_plan_qemu q = {.final_bandwidth = FINAL_BW, .switchover_s = SWITCH_S,
				 .auto_converge = true, .throttle_initial = 50};
	struct dt_plan *p = NULL;

	CHECK_EQ(dt_plan_qemu_compute(&in, &q, &p), 0);
	CHECK(p->nrounds >= 3);
	CHECK_EQ(p->rounds[1].throttle_percent, 0);
	CHECK_EQ(p->rounds[2].throttle_percent, 50);
	CHECK_EQ(p->rounds[1].dirtied_pages, 64000);
	CHECK_NEAR(p->rounds[2].duration_us / 1e6, 6.4);
	CHECK_EQ(p->rounds[2].dirtied_pages, 25600);
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
	RUN(test_auto_converge);
	RUN(test_throttle_scales_rate);
	RUN(test_bad_inputs);
	TEST_EXIT();
}
