/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QEMU engine: pre-copy as QEMU (7.2, migration/ram.c and
 * migration.c) runs it, followed in QEMU's own 100 ms rate-limit windows,
 * in expectation, on the VM's measured working-set curve D(T):
 *
 *  - setup syncs the dirty log once (dirty-sync-count 1) and lists all of
 *    memory; the bulk round sends every page in address order, a zero
 *    page as a header (9 bytes) that costs CPU time (zero_page_us), not
 *    bandwidth; pages go out at max-bandwidth (bytes per window), or at
 *    the host's throughput where that is lower (a stated input: a loaded
 *    host sends CPU-bound, below max-bandwidth);
 *  - every 100 ms QEMU estimates its bandwidth as the bytes sent in the
 *    window over its length, and the threshold as that estimate x
 *    downtime-limit (0 before the first window);
 *  - after each window, when what remains unsent is below the threshold,
 *    QEMU syncs the dirty log (a round ends): the list becomes the unsent
 *    tail plus the pages written since the dirty log was cleared. The log
 *    is cleared per chunk of clear_chunk_pages (clear-bitmap-shift, 1 GiB)
 *    when the round first sends a page of the chunk, so a listed page
 *    written after its chunk's clear is sent again next round even though
 *    it was sent with its new content (the ideal model counts only writes
 *    after the page's own send); a page not listed counts if written at
 *    all in the round. A write on a page of the unsent tail adds
 *    nothing: the list is taken as the pages dirtied in the last a
 *    seconds (D(a) = its length; all memory after the bulk round), which
 *    the round's b seconds of writes hit D(a) + D(b) - D(a + b) times,
 *    the unsent share of them on the tail (where a working set's writes
 *    go, not spread over memory). If the list after the sync is below the threshold,
 *    the VM stops and the list is copied at the link's speed (QEMU lifts
 *    max-bandwidth for it: final_bandwidth), with switchover_s more for
 *    the last sync and the device state; a final sync is counted;
 *  - auto-converge (migration_trigger_throttle, mig_throttle_guest_down,
 *    cpu-throttle.c): at a sync at least 1 s after the last check (the
 *    check starts a new period; a sync sooner adds to the period), if the
 *    bytes of the pages newly dirtied in the period exceed the bytes sent
 *    in it x throttle-trigger-threshold / 100 (50), a counter goes up; at
 *    2 it is reset and the guest throttled: to cpu-throttle-initial the
 *    first time (not held to max-cpu-throttle), then + cpu-throttle-
 *    increment up to max-cpu-throttle; with cpu-throttle-tailslow the
 *    step is at most what would bring the guest's CPU share to
 *    share x threshold / dirtied (in whole percent, as QEMU's integer
 *    arithmetic). QEMU keeps the percentage in 1 .. 99. Every 10 ms /
 *    (1 - p) each vCPU sleeps p / (1 - p) x 10 ms: a throttled guest runs
 *    (1 - p) of the time, so D(T) is taken in its run time (a guest bound
 *    by its CPU, as most are). Syncs cost no time here, so a period
 *    exactly 1 s long counts (QEMU's end_time > last + 1000 ms holds
 *    after a real sync's own milliseconds);
 *  - post-copy (postcopy-ram): the switch after the bulk round, downtime
 *    switchover_s, the list then pulled at max-bandwidth.
 * Pre-copy still running at DT_PLAN_QEMU_HORIZON_S (or the target, if
 * longer) does not converge.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dt_plan.h"

#define WINDOW_S	0.1  /* QEMU's BUFFER_DELAY: rate-limit and estimate window */
#define PAGE_HDR	8    /* bytes of a page's header on the wire */
#define ZERO_BYTES	9    /* a zero page: header and one byte */
#define MAX_CHUNKS	64   /* chunks followed one by one (more: grouped) */
#define THROTTLE_PERIOD 1.0  /* s between auto-converge checks */

struct sim {
	const struct dt_plan_input *in;
	struct dt_plan_qemu q;
	double M, ps, bw, down_s, horizon;
	uint32_t nch;
};

static double dirtied(const struct sim *s, double t)
{
	double v = 0;

	if (!(t > 0))
		return 0;
	if (dt_plan_curve_at(s->in->curve, s->in->npoints, s->in->interp, s->in->memory_pages,
			     t * 1e6, &v) < 0)
		return 0;
	return v;
}

/* The window in which the curve dirties `pages`; -1 if it never does. */
static double age_of(const struct sim *s, double pages)
{
	double lo = 0, hi = s->horizon;

	if (!(pages > 0) || dirtied(s, hi) < pages)
		return -1;
	for (int i = 0; i < 50; i++) {
		double mid = (lo + hi) / 2;

		if (dirtied(s, mid) < pages)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

static void fill_defaults(struct dt_plan_qemu *q, const struct dt_plan_input *in)
{
	if (!(q->final_bandwidth > 0))
		q->final_bandwidth = DT_PLAN_QEMU_FINAL_BANDWIDTH;
	if (!(q->zero_page_us > 0))
		q->zero_page_us = DT_PLAN_QEMU_ZERO_PAGE_US;
	if (q->switchover_s < 0 || !isfinite(q->switchover_s))
		q->switchover_s = 0;
	else if (q->switchover_s == 0)
		q->switchover_s = DT_PLAN_QEMU_SWITCHOVER_S;
	if (!(q->setup_s >= 0) || !isfinite(q->setup_s))
		q->setup_s = 0;
	if (q->clear_chunk_pages == 0)
		q->clear_chunk_pages = (1ull << 30) / in->page_size;
	if (q->throttle_initial == 0)
		q->throttle_initial = 20;
	if (q->throttle_increment == 0)
		q->throttle_increment = 10;
	if (q->throttle_max == 0)
		q->throttle_max = 99;
	if (q->throttle_trigger == 0)
		q->throttle_trigger = 50;
	q->throttle_trigger = q->throttle_trigger > 100 ? 100 : q->throttle_trigger;
	q->throttle_initial = q->throttle_initial > 99 ? 99 : q->throttle_initial;
	q->throttle_max = q->throttle_max > 99 ? 99 : q->throttle_max;
}

static void push(struct dt_plan *p, double start, double dur, double pages, double bytes,
		 double after, double pct)
{
	struct dt_plan_round *r;

	if (p->nrounds >= DT_PLAN_MAX_ROUNDS)
		return;
	r = &p->rounds[p->nrounds];
	*r = (struct dt_plan_round){
		.index = p->nrounds,
		.start_us = (uint64_t)llround(start * 1e6),
		.duration_us = (uint64_t)llround(dur * 1e6),
		.pages = (uint64_t)llround(pages),
		.bytes = (uint64_t)llround(bytes),
		.dirtied_pages = (uint64_t)llround(after),
		.throttle_percent = (uint32_t)pct,
	};
	p->nrounds++;
}

/*
 * mig_throttle_guest_down: the throttle after a second high period, from
 * `now` (0: off), the period's dirtied bytes and its threshold (sent x
 * throttle-trigger-threshold / 100); cpu_throttle_set keeps 1 .. 99.
 */
static double throttle_down(const struct dt_plan_qemu *q, double now, double dirty,
			    double threshold)
{
	double next, inc = q->throttle_increment;

	if (now == 0) {
		next = q->throttle_initial;
	} else {
		if (q->throttle_tailslow) {
			double cpu_now = 100 - now, ideal = floor(cpu_now * (threshold / dirty));

			inc = fmin(cpu_now - ideal, inc);
		}
		next = fmin(now + inc, q->throttle_max);
	}
	return fmax(1, fmin(next, 99));
}

static void simulate(const struct sim *s, struct dt_plan *p)
{
	const struct dt_plan_qemu *q = &s->q;
	double list_nz = s->M * (1 - s->in->zero_fraction), list_z = s->M - list_nz;
	double t = q->setup_s, act = 0, est = 0, bytes = 0, zs = q->zero_page_us * 1e-6;
	double round_start = t, round_act = 0, round_list = s->M, round_sent = 0, round_bytes = 0;
	double clear_act[MAX_CHUNKS], period_start = t, period_dirty = 0, period_bytes = 0;
	double prev_after = INFINITY, last_after = 0, thr = 0, pct = 0, prev_act = -1;
	double win_bytes = 0, win_time = 0;
	uint32_t reached = 0, syncs = 1, high = 0, shrinking_stalls = 0;
	bool done = false;

	for (uint32_t c = 0; c < s->nch; c++)
		clear_act[c] = 0;
	while (t < s->horizon) {
		double left = list_nz + list_z, fnz, per_t, per_b, n, dt, wb;

		if (left > 0.5) {
			fnz = list_nz / left;
			per_t = fnz * (s->ps + PAGE_HDR) / s->bw + (1 - fnz) * zs;
			per_b = fnz * (s->ps + PAGE_HDR) + (1 - fnz) * ZERO_BYTES;
			n = WINDOW_S / per_t;
			if (n >= left) {
				n = left;
				dt = n * per_t;
			} else {
				dt = WINDOW_S;
			}
			wb = n * per_b;
			/* a chunk is cleared when the round sends its first listed page */
			while (reached < s->nch) {
				double pos = round_list * (double)reached / (double)s->nch;

				if (pos >= round_sent + n)
					break;
				clear_act[reached++] =
				    act + (pos > round_sent ? (pos - round_sent) / n : 0) * dt *
					      (1 - pct / 100);
			}
			list_nz -= n * fnz;
			list_z -= n * (1 - fnz);
			round_sent += n;
			round_bytes += wb;
			bytes += wb;
			period_bytes += wb;
		} else {
			/* nothing listed: QEMU syncs at once (pending 0) */
			dt = 0;
			wb = 0;
			list_nz = list_z = 0;
		}
		/* the estimate: bytes over time of each window of at least 100 ms */
		win_bytes += wb;
		win_time += dt;
		if (win_time >= WINDOW_S * 0.999 || (dt == 0 && win_time > 0)) {
			est = win_bytes / win_time;
			win_bytes = win_time = 0;
		}
		t += dt;
		act += dt * (1 - pct / 100);
		thr = est * s->down_s;
		left = list_nz + list_z;
		if (left > 0.5 && (!(est > 0) || left * s->ps >= thr))
			continue;
		/* the sync: the tail plus what was written since each chunk's clear */
		{
			double l = round_list / s->M, add = 0, after, a;

			l = l > 1 ? 1 : l;
			for (uint32_t c = 0; c < s->nch; c++) {
				double since = c < reached ? act - clear_act[c] : 0;

				add += (l * dirtied(s, since) + (1 - l) * dirtied(s, act - round_act)) /
				       s->nch;
			}
			/*
			 * what the round dirtied and is still listed (the unsent tail) is
			 * sent once: the bulk round's list is all memory (a share
			 * left / M of the writes land on it); a later list is taken as
			 * the pages dirtied in the last a seconds, D(a) = its length,
			 * which this round's writes (b seconds) hit as the curve says,
			 * D(a) + D(b) - D(a + b), a share left / list of them unsent
			 */
			a = prev_act < 0 ? -1 : age_of(s, round_list);
			if (a < 0) {
				add *= 1 - left / s->M;
			} else {
				double b = act - round_act;
				double both = dirtied(s, a) + dirtied(s, b) - dirtied(s, a + b);

				both = both < 0 ? 0 : both;
				add -= fmin(add, both * fmin(1, left / round_list));
			}
			syncs++;
			list_nz += add;
			after = list_nz + list_z;
			push(p, round_start, t - round_start, round_sent, round_bytes, after, pct);
			p->dirty_rate_at_last_round = t > round_start ? add / (t - round_start) : 0;
			period_dirty += add;
			if (after >= prev_after * 0.98)
				shrinking_stalls++;
			else
				shrinking_stalls = 0;
			prev_after = after;
			last_after = after;
			p->qemu.expected_downtime_s = after * s->ps / est;
			/* auto-converge */
			if (q->auto_converge && t - period_start >= THROTTLE_PERIOD) {
				/* QEMU's integers: bytes, the threshold rounded down */
				double dirty_b = round(period_dirty) * s->ps;
				double thr_b = floor(round(period_bytes) * q->throttle_trigger / 100);

				if (dirty_b > thr_b && ++high >= 2) {
					high = 0;
					pct = throttle_down(q, pct, dirty_b, thr_b);
				}
				period_start = t;
				period_dirty = period_bytes = 0;
			}
			round_start = t;
			prev_act = round_act;
			round_act = act;
			round_list = after;
			round_sent = round_bytes = 0;
			reached = 0;
			while (reached < s->nch && round_list == 0)
				clear_act[reached++] = act;
			if (q->postcopy || after * s->ps < thr || after < 0.5) {
				double fb = q->postcopy ? s->bw : q->final_bandwidth;
				double copy = list_nz * (s->ps + PAGE_HDR) / fb + list_z * zs;

				p->downtime_seconds = q->switchover_s + (q->postcopy ? 0 : copy);
				p->total_seconds = t + q->switchover_s + copy;
				p->final_pages = (uint64_t)llround(list_nz + list_z);
				bytes += list_nz * (s->ps + PAGE_HDR) + list_z * ZERO_BYTES;
				syncs++;
				done = true;
				break;
			}
		}
	}
	p->converges = done;
	if (!done) {
		p->total_seconds = t;
		p->downtime_seconds = last_after * (s->ps + PAGE_HDR) / q->final_bandwidth +
				      q->switchover_s;
		p->final_pages = (uint64_t)llround(last_after);
		p->verdict = shrinking_stalls >= 3 ? DT_PLAN_RATE_EXCEEDS_BANDWIDTH
						   : DT_PLAN_ROUND_LIMIT;
	} else {
		p->verdict = DT_PLAN_CONVERGES;
	}
	p->bytes_sent = (uint64_t)llround(bytes);
	p->qemu.dirty_syncs = syncs;
	p->qemu.bandwidth_estimate = est;
	p->qemu.threshold_bytes = thr;
	p->qemu.throttle_percent = (uint32_t)pct;
}

int dt_plan_qemu_compute(const struct dt_plan_input *in, const struct dt_plan_qemu *q,
			 struct dt_plan **ret)
{
	struct dt_plan *p;
	struct sim s;
	double v;
	uint64_t chunks;

	if (!ret || !in || !q || !in->curve || in->npoints == 0 ||
	    in->npoints > DT_PLAN_MAX_POINTS || in->memory_pages == 0 ||
	    in->page_size < 512 || (in->page_size & (in->page_size - 1)) ||
	    !isfinite(in->bandwidth) || !(in->bandwidth > 0) || in->max_downtime_us == 0 ||
	    !(in->zero_fraction >= 0 && in->zero_fraction < 1) ||
	    (q->final_bandwidth != 0 && !(isfinite(q->final_bandwidth) && q->final_bandwidth > 0)) ||
	    !(q->zero_page_us >= 0 && q->zero_page_us < 1e6) ||
	    (q->throughput != 0 && !(isfinite(q->throughput) && q->throughput > 0)) ||
	    in->interp >= _DT_PLAN_INTERP_MAX ||
	    dt_plan_curve_at(in->curve, in->npoints, in->interp, in->memory_pages, 1, &v) < 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->rounds = calloc(DT_PLAN_MAX_ROUNDS, sizeof(*p->rounds));
	if (!p->rounds) {
		free(p);
		return -ENOMEM;
	}
	p->engine = DT_PLAN_ENGINE_QEMU;
	p->input = *in;
	memcpy(p->curve, in->curve, in->npoints * sizeof(*in->curve));
	p->input.curve = p->curve;
	p->input.vcpus = NULL;
	p->input.activity = NULL;
	p->input.parts = NULL;
	p->input.part_bounds = NULL;
	s = (struct sim){ .in = in, .q = *q };
	fill_defaults(&s.q, in);
	s.M = (double)in->memory_pages;
	s.ps = in->page_size;
	s.bw = in->bandwidth;
	if (q->throughput > 0 && q->throughput < s.bw)
		s.bw = q->throughput;
	s.down_s = (double)in->max_downtime_us / 1e6;
	s.horizon = DT_PLAN_QEMU_HORIZON_S;
	if (in->target_us && (double)in->target_us / 1e6 > s.horizon)
		s.horizon = (double)in->target_us / 1e6;
	chunks = (in->memory_pages + s.q.clear_chunk_pages - 1) / s.q.clear_chunk_pages;
	s.nch = chunks > MAX_CHUNKS ? MAX_CHUNKS : (uint32_t)chunks;
	simulate(&s, p);
	p->qemu_input = s.q;
	p->qemu.final_bandwidth = s.q.final_bandwidth;
	p->qemu.zero_page_us = s.q.zero_page_us;
	p->qemu.switchover_s = s.q.switchover_s;
	p->qemu.clear_chunk_pages = s.q.clear_chunk_pages;
	p->bandwidth_pages = in->bandwidth / in->page_size;
	p->meets_target = p->converges &&
			  (in->target_us == 0 || p->total_seconds * 1e6 <= (double)in->target_us);
	*ret = p;
	return 0;
}

/* The plan for the engine asked: the ideal model (plan/simulate.c) or QEMU's rules. */
int dt_plan_engine_compute(const struct dt_plan_input *in, const struct dt_plan_engine_input *e,
			   struct dt_plan **ret)
{
	if (!e || e->engine == DT_PLAN_ENGINE_IDEAL)
		return dt_plan_compute(in, ret);
	if (e->engine == DT_PLAN_ENGINE_QEMU)
		return dt_plan_qemu_compute(in, &e->qemu, ret);
	return -EINVAL;
}
