/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-copy simulated round by round on the fitted model: what each round
 * sends and leaves dirty, the chance that the migration stops before each
 * round, and the mean over start phases for a bursty guest.
 */
#include <math.h>

#include "plan_int.h"

#define PHASE_SAMPLES	  64 /* send moments sampled for a mean of D in activity time */
#define GOLDEN		  0.6180339887498949

/* Mean over send moments x in [a, b] of D(pl_window(x, b)): pages dirty at b
 * among those sent evenly over [a, b] (dirtied since their send). */
static double mean_since_sent(const struct model *m, double a, double b)
{
	double sum = 0;

	if (!m->cum)
		return pl_model_avg(m, 0, b - a);
	for (int j = 0; j < PHASE_SAMPLES; j++)
		sum += pl_model_at(m, pl_window(m, a + (b - a) * (j + 0.5) / PHASE_SAMPLES, b));
	return sum / PHASE_SAMPLES;
}

/* Pages dirty once round 0 (all memory, in page order, t0 long) has ended. */
static double after_full_copy(const struct model *m, double t0)
{
	const struct dt_plan_input *in = m->in;
	double sum = 0, weight = 0, mem = (double)in->memory_pages;

	/*
	 * the layout by window at its longest: a guest this model serves
	 * moves its short-window pages about (a sweep's band), only its whole
	 * footprint stays put
	 */
	for (size_t b = 0; b < in->nparts; b++) {
		double pages = (double)in->parts[b * in->npoints + in->npoints - 1], first, next;

		pl_part_range(in, in->nparts, b, &first, &next);
		sum += pages * pl_model_at(m, pl_window(m, t0 * (first + next) / 2 / mem, t0));
		weight += pages;
	}
	return weight > 0 ? sum / weight : mean_since_sent(m, 0, t0);
}

/* Pages written in both of two adjacent windows of a and b seconds (activity time). */
static double overlap(const struct model *m, double a, double b)
{
	double v = pl_model_at(m, a) + pl_model_at(m, b) - pl_model_at(m, a + b);

	return v > 0 ? v : 0;
}

/*
 * Pages dirty after a round that sent `list` pages evenly from `now` for
 * `t` seconds, the previous round having started at `prev`. Every page of
 * the list was written in the previous round (window A, D(A) pages). This
 * round's writes are D(t) pages, of which D(a) + D(b) - D(a + b) were
 * written in A too (the curve's overlap of adjacent windows). This model
 * serves guests the IRM does not describe, which are taken to rewrite
 * their pages oldest first, as a sweep does: the rewrites land on A's
 * oldest pages first, and the list holds A's youngest (those written
 * after their send), so only an overlap larger than A's pages off the list
 * reaches it. A list page rewritten is dirty at the end only if written
 * after its send (the overlap of A with the window from its send to the
 * end, adjacent, over the whole overlap), else its write was absorbed by
 * its send. A curve that saturates (every page rewritten all the time)
 * absorbs as a random one would.
 */
static double after_round(const struct model *m, double list, double prev, double now, double t)
{
	double wa = pl_window(m, prev, now), d = pl_model_at(m, pl_window(m, now, now + t));
	double da = pl_model_at(m, wa), on, after = 0, on_list;

	if (!(da > 0))
		return d;
	on = overlap(m, wa, pl_window(m, now, now + t));
	if (!(on > 0))
		return d;
	on_list = fmin(list, fmax(0, on - fmax(0, da - list)));
	for (int j = 0; j < PHASE_SAMPLES; j++)
		after += overlap(m, wa, pl_window(m, now + t * (j + 0.5) / PHASE_SAMPLES, now + t));
	after /= PHASE_SAMPLES;
	return d - on_list * fmax(0, on - after) / on;
}

/*
 * The independent-reference model: every page is written as a Poisson
 * process of its own rate (its class's), independent of the others. Its
 * working-set curve is D(T) = sum_k pages_k (1 - exp(-rate_k T)), fitted
 * to the measured curve; pre-copy then follows per class exactly (in
 * expectation) instead of through the overlap estimates above. Memory is
 * cut into parts in send (page) order, each with its own pages per class
 * (from the layout); q[b][k] is the probability that a class-k page of
 * part b is dirty (on the next round's list).
 */
static double irm_written(const struct model *m, size_t k, double a, double b)
{
	return -expm1(-m->irm_rate[k] * pl_window(m, a, b));
}

/* irm_written(x, end) averaged over send moments x spread evenly over [a, b] */
static double irm_written_after(const struct model *m, size_t k, double a, double b, double end)
{
	double r = m->irm_rate[k], x = r * (b - a), sum = 0;
	int n = PHASE_SAMPLES / (int)m->nparts;

	if (!m->cum)
		return x > 1e-9 ? 1 + exp(-r * (end - b)) * expm1(-x) / x
				: irm_written(m, k, (a + b) / 2, end);
	if (n < 1)
		n = 1;
	for (int j = 0; j < n; j++)
		sum += irm_written(m, k, a + (b - a) * (j + 0.5) / n, end);
	return sum / n;
}

/*
 * One round from `now`, t long, sending the dirty pages in page order
 * (round 0: all memory, q all 1): a part's list pages are sent in its
 * share of the round; a page on the list is dirty at the end if written
 * after its send, one that was clean if written at all. Returns the pages
 * dirty at the end.
 */
static double irm_round(const struct model *m, bool first, double now, double t,
			double q[][IRM_MAX])
{
	double share[DT_PLAN_MAX_PARTS], all[IRM_MAX], list = 0, before = 0, dirty = 0;

	for (size_t b = 0; b < m->nparts; b++) {
		share[b] = first ? m->part_span[b] : 0;
		for (size_t k = 0; !first && k < m->nirm; k++)
			share[b] += m->part_pages[b][k] * q[b][k];
		list += share[b];
	}
	for (size_t k = 0; k < m->nirm; k++)
		all[k] = irm_written(m, k, now, now + t);
	for (size_t b = 0; b < m->nparts; b++) {
		double from = list > 0 ? now + t * before / list : now;
		double to = list > 0 ? now + t * (before + share[b]) / list : now + t;

		before += share[b];
		for (size_t k = 0; k < m->nirm; k++) {
			q[b][k] = q[b][k] * irm_written_after(m, k, from, to, now + t) +
				  (1 - q[b][k]) * all[k];
			dirty += m->part_pages[b][k] * q[b][k];
		}
	}
	return dirty;
}

static void push_round(struct dt_plan_round *rounds, uint32_t i, double start, double t,
		       double pages, double dirtied, uint32_t page_size)
{
	if (!rounds)
		return;
	rounds[i] = (struct dt_plan_round){
	    .index = i,
	    .start_us = (uint64_t)llround(start * 1e6),
	    .duration_us = (uint64_t)llround(t * 1e6),
	    .pages = (uint64_t)llround(pages),
	    .bytes = (uint64_t)llround(pages) * page_size,
	    .dirtied_pages = (uint64_t)llround(dirtied),
	};
}

/*
 * The remainder is a random variable: a sum of pages each dirty or not.
 * Its spread, for the IRM the sum of the classes' Bernoulli variances,
 * else taken as Poisson (the mean). Pre-copy stops at the first round
 * whose remainder fits, so a remainder whose mean hovers just above the
 * fit still stops once chance takes it below: the plan weighs every round
 * by the probability that the migration stops there (the remainder taken
 * as normal, rounds as independent).
 */
static double spread(const struct model *m, double q[][IRM_MAX], double list)
{
	double v = 0;

	if (!m->nirm)
		return sqrt(list);
	for (size_t b = 0; b < m->nparts; b++)
		for (size_t k = 0; k < m->nirm; k++)
			v += m->part_pages[b][k] * q[b][k] * (1 - q[b][k]);
	return sqrt(v);
}

/* P(X <= fit) and E[X | X <= fit], E[X | X > fit] for X normal (mean, sd) */
static void below(double mean, double sd, double fit, double *p, double *lo, double *hi)
{
	double a, phi;

	if (!(sd > 0)) {
		*p = mean <= fit;
		*lo = *hi = mean;
		return;
	}
	a = (fit - mean) / sd;
	*p = 0.5 * erfc(-a / M_SQRT2);
	phi = exp(-a * a / 2) / sqrt(2 * M_PI);
	*lo = *p > 1e-12 ? fmax(0, mean - sd * phi / *p) : fit;
	*hi = *p < 1 - 1e-12 ? mean + sd * phi / (1 - *p) : fit;
}

#define STOP_NEGLIGIBLE 1e-9 /* a chance of still running smaller than this ends the plan */
void pl_run(const struct model *m, struct outcome *o, struct dt_plan_round *rounds)
{
	const struct dt_plan_input *in = m->in;
	double b = in->bandwidth / in->page_size; /* pages per second */
	double fit = b * (double)in->max_downtime_us / 1e6;
	double list = (double)in->memory_pages * (1 - in->zero_fraction), sd = 0;
	double now = 0, prev = INFINITY, t = 0, bytes = 0, prev_start = 0;
	double q[DT_PLAN_MAX_PARTS][IRM_MAX];
	double running = 1, p, lo, hi, conv = 0, last_t = 0;
	uint32_t i, median = UINT32_MAX;

	*o = (struct outcome){.verdict = DT_PLAN_CONVERGES};
	for (size_t part = 0; part < m->nparts; part++)
		for (size_t k = 0; k < m->nirm; k++)
			q[part][k] = 1; /* round 0 sends everything */
	for (i = 0;; i++) {
		double next;

		/* stop before round i, with the chance that the remainder fits */
		below(list, sd, fit, &p, &lo, &hi);
		if (i == in->max_rounds) {
			/* forced: it fits or it does not */
			o->total_s += running * (now + (p * lo + (1 - p) * hi) / b);
			o->downtime_s += running * (p * lo + (1 - p) * hi) / b;
			o->final_pages += running * (p * lo + (1 - p) * hi);
			o->bytes += running * (bytes + (p * lo + (1 - p) * hi) * in->page_size);
			conv += running * p;
			if (median == UINT32_MAX)
				median = i;
			break;
		}
		o->total_s += running * p * (now + lo / b);
		o->downtime_s += running * p * lo / b;
		o->final_pages += running * p * lo;
		o->bytes += running * p * (bytes + lo * in->page_size);
		conv += running * p;
		running *= 1 - p;
		if (median == UINT32_MAX && running <= 0.5) {
			median = i;
			last_t = t;
		}
		if (running < STOP_NEGLIGIBLE)
			break;
		t = list / b;
		if (m->nirm)
			next = irm_round(m, i == 0, now, t, q);
		else
			next = i == 0 ? after_full_copy(m, t)
				      : after_round(m, list, prev_start, now, t);
		push_round(rounds, i, now, t, list, next, in->page_size);
		prev_start = now;
		now += t;
		bytes += list * in->page_size;
		prev = list;
		list = next;
		sd = spread(m, q, list);
	}
	/* what is shown: the mean remainder's rounds up to the median stop */
	if (median == in->max_rounds || median == UINT32_MAX) {
		median = in->max_rounds < i ? in->max_rounds : i;
		last_t = t;
	}
	o->nrounds = median;
	o->last_rate = last_t > 0 ? pl_model_at(m, last_t) / last_t : 0;
	o->converges = conv >= 0.5;
	if (!o->converges)
		/* a remainder that no longer shrinks never will: the rate wins */
		o->verdict =
		    list >= prev * 0.999 ? DT_PLAN_RATE_EXCEEDS_BANDWIDTH : DT_PLAN_ROUND_LIMIT;
}

/*
 * With an activity profile: the plan from DT_PLAN_PHASES start moments
 * spread over the profile (golden-ratio steps, so that no period of the
 * guest's activity aliases with them); means, the majority's verdict, and
 * the rounds of the start whose total time is closest to the mean.
 */
static double phase_of(const struct model *m, uint32_t k)
{
	double g = (double)k * GOLDEN;

	return (g - floor(g)) * (double)m->nact * m->act_epoch_s;
}

void pl_run_phases(struct model *m, struct outcome *o, struct dt_plan_round *rounds)
{
	double total[DT_PLAN_PHASES];
	bool conv[DT_PLAN_PHASES], majority;
	struct outcome mean = {0}, one;
	uint32_t nconv = 0, best = DT_PLAN_PHASES;

	for (uint32_t k = 0; k < DT_PLAN_PHASES; k++) {
		m->phase = phase_of(m, k);
		pl_run(m, &one, NULL);
		total[k] = one.total_s;
		conv[k] = one.converges;
		nconv += one.converges;
		mean.total_s += one.total_s / DT_PLAN_PHASES;
		mean.downtime_s += one.downtime_s / DT_PLAN_PHASES;
		mean.final_pages += one.final_pages / DT_PLAN_PHASES;
		mean.bytes += one.bytes / DT_PLAN_PHASES;
	}
	majority = 2 * nconv >= DT_PLAN_PHASES;
	for (uint32_t k = 0; k < DT_PLAN_PHASES; k++)
		if (conv[k] == majority &&
		    (best == DT_PLAN_PHASES ||
		     fabs(total[k] - mean.total_s) < fabs(total[best] - mean.total_s)))
			best = k;
	m->phase = phase_of(m, best);
	pl_run(m, o, rounds);
	o->total_s = mean.total_s;
	o->downtime_s = mean.downtime_s;
	o->final_pages = mean.final_pages;
	o->bytes = mean.bytes;
}
