/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-copy migration planner (see dt_plan.h for the model). Doubles are
 * fine here: this is a model, its inputs are figures and its outputs are
 * estimates; every input is checked so that nothing comes out NaN.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dt_nnls.h"
#include "dt_plan.h"

/* Heavier throttling than this (the busiest throttled vCPU keeping less
 * than a quarter of its dirty rate) costs the guest more than post-copy. */
#define POSTCOPY_KEEP_MIN 0.25
#define AVG_STEPS	  16 /* Simpson intervals per curve piece for averages of D */
#define SEARCH_STEPS	  60
#define BANDWIDTH_MARGIN  0.9
#define PHASE_SAMPLES	  64 /* send moments sampled for a mean of D in activity time */
#define GOLDEN		  0.6180339887498949
#define STEADY_CV	  0.1	/* an activity profile steadier than this is none */
#define IRM_MAX		  63	/* rate classes of the independent-reference model */
#define IRM_STEP	  1.2	/* between adjacent rates, at least */
#define IRM_FIT_TOL	  0.04	/* its fit to every point of the curve, relative */

struct curve {
	const struct dt_plan_point *p;
	size_t n;
	enum dt_plan_interp interp;
	double cap; /* pages */
};

/* The curve a plan runs on: the VM's, scaled by per-vCPU dirty limits. */
struct model {
	const struct dt_plan_input *in;
	struct curve vm;
	struct curve *vcpu; /* nvcpu entries, or NULL */
	double *rate;	    /* each vCPU's dirty rate, pages/s */
	uint32_t nvcpu;
	double limit;	      /* pages/s per vCPU; 0: none */
	double horizon_pages; /* D at the last point: pages that ever get dirty */
	/*
	 * Activity profile, or NULL: cum[k] = activity of the profile's first
	 * k epochs over the mean epoch's (cum[nact] = nact); the profile
	 * repeats. phase: where in it (seconds) the migration starts.
	 */
	double *cum;
	size_t nact;
	double act_epoch_s, phase;
	/*
	 * The independent-reference model, when it fits the curve: nirm
	 * classes of irm_pages[k] pages, each written as a Poisson process
	 * of irm_rate[k] writes per second (of activity time); 0: the curve
	 * model.
	 */
	size_t nirm;
	double irm_rate[IRM_MAX], irm_pages[IRM_MAX];
	/* memory in nparts parts in send order: their pages, and per class */
	size_t nparts;
	double part_span[DT_PLAN_MAX_PARTS];
	double part_pages[DT_PLAN_MAX_PARTS][IRM_MAX];
};

struct outcome {
	bool converges;
	enum dt_plan_verdict verdict;
	uint32_t nrounds;
	double total_s, downtime_s, final_pages, bytes, last_rate;
};

static bool curve_valid(const struct dt_plan_point *p, size_t n)
{
	if (!p || n == 0 || n > DT_PLAN_MAX_POINTS)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i].window_us == 0)
			return false;
		if (i > 0 && (p[i].window_us <= p[i - 1].window_us || p[i].pages < p[i - 1].pages))
			return false;
	}
	return true;
}

/* D(t), t in seconds. */
static double curve_at(const struct curve *c, double t)
{
	const struct dt_plan_point *p = c->p;
	double v, w0 = (double)p[0].window_us / 1e6;
	size_t n = c->n, i;

	if (!(t > 0))
		return 0;
	if (t <= w0) {
		/*
		 * Below one epoch, linearly through the origin: the epoch's rate
		 * (a lower bound for a concave curve; the log-log slope of the
		 * first segment, tried, overstates short windows of a guest whose
		 * rewrites only show at longer ones)
		 */
		v = (double)p[0].pages * t / w0;
	} else if (t >= (double)p[n - 1].window_us / 1e6) {
		double wl = (double)p[n - 1].window_us / 1e6, slope;

		if (n >= 2)
			slope = ((double)p[n - 1].pages - (double)p[n - 2].pages) /
				(wl - (double)p[n - 2].window_us / 1e6);
		else
			slope = (double)p[0].pages / w0;
		v = (double)p[n - 1].pages + slope * (t - wl);
	} else {
		double a, b, x;

		for (i = 1; i < n && (double)p[i].window_us / 1e6 < t; i++)
			;
		a = (double)p[i - 1].window_us / 1e6;
		b = (double)p[i].window_us / 1e6;
		if (c->interp == DT_PLAN_INTERP_LINEAR)
			x = (t - a) / (b - a);
		else
			x = log(t / a) / log(b / a);
		v = (double)p[i - 1].pages + x * ((double)p[i].pages - (double)p[i - 1].pages);
		/*
		 * D(T)/T never grows with T (a window's pages are at most those
		 * of its parts): log T interpolation between far-apart points
		 * would break that, so cap at every shorter point's rate.
		 */
		for (size_t j = 0; j < i; j++) {
			double w = (double)p[j].window_us / 1e6, cap = (double)p[j].pages * t / w;

			if (v > cap)
				v = cap;
		}
	}
	return v < c->cap ? v : c->cap;
}

/*
 * A dirty limit slows a vCPU's writes by limit/rate: its D(T) becomes its
 * D(T limit/rate), and never more than limit x T. The VM's curve is scaled by how much the vCPUs'
 * curves shrink together (their pages overlap, the VM's curve is the truth).
 */
static double model_at(const struct model *m, double t)
{
	double d = curve_at(&m->vm, t), before = 0, after = 0;

	if (!(m->limit > 0))
		return d;
	if (!m->vcpu) {
		/* no per-vCPU curves: the VM as a single writer */
		double rate = m->rate[0];

		return rate > m->limit ? fmin(curve_at(&m->vm, t * m->limit / rate), m->limit * t)
				       : d;
	}
	for (uint32_t v = 0; v < m->nvcpu; v++) {
		double k = m->rate[v] > m->limit ? m->limit / m->rate[v] : 1;

		before += curve_at(&m->vcpu[v], t);
		/* and it cannot dirty more than limit x T pages */
		after += k < 1 ? fmin(curve_at(&m->vcpu[v], t * k), m->limit * t)
			       : curve_at(&m->vcpu[v], t);
	}
	return before > 0 ? d * after / before : d;
}

static double simpson(const struct model *m, double a, double b)
{
	double h = (b - a) / AVG_STEPS, s = model_at(m, a) + model_at(m, b);

	for (int i = 1; i < AVG_STEPS; i++)
		s += (i % 2 ? 4 : 2) * model_at(m, a + i * h);
	return s * h / 3;
}

/*
 * Mean of D(t) for t in [a, b]: Simpson on each piece between the curve's
 * points, so that a piecewise linear curve averages exactly.
 */
static double model_avg(const struct model *m, double a, double b)
{
	double sum = 0, from = a;

	if (!(b > a))
		return model_at(m, a);
	for (size_t i = 0; i < m->vm.n; i++) {
		double w = (double)m->vm.p[i].window_us / 1e6;

		if (w <= from)
			continue;
		if (w >= b)
			break;
		sum += simpson(m, from, w);
		from = w;
	}
	sum += simpson(m, from, b);
	return sum / (b - a);
}

/* Activity time (seconds) of the profile's first x seconds. */
static double activity_until(const struct model *m, double x)
{
	double e = x / m->act_epoch_s, n = (double)m->nact, cycles = floor(e / n), r = e - cycles * n;
	size_t k = (size_t)r;

	if (k >= m->nact)
		k = m->nact - 1;
	return (cycles * n + m->cum[k] + (r - (double)k) * (m->cum[k + 1] - m->cum[k])) *
	       m->act_epoch_s;
}

/*
 * The window from a to b seconds after the migration started, as the
 * window of the curve that dirties as much: its length, or with an
 * activity profile its activity time.
 */
static double window(const struct model *m, double a, double b)
{
	if (!m->cum)
		return b - a;
	return activity_until(m, m->phase + b) - activity_until(m, m->phase + a);
}

/* Mean over send moments x in [a, b] of D(window(x, b)): pages dirty at b
 * among those sent evenly over [a, b] (dirtied since their send). */
static double mean_since_sent(const struct model *m, double a, double b)
{
	double sum = 0;

	if (!m->cum)
		return model_avg(m, 0, b - a);
	for (int j = 0; j < PHASE_SAMPLES; j++)
		sum += model_at(m, window(m, a + (b - a) * (j + 0.5) / PHASE_SAMPLES, b));
	return sum / PHASE_SAMPLES;
}

/* The curve's point whose window is closest to t seconds (in log). */
static size_t closest_window(const struct dt_plan_input *in, double t)
{
	double best = INFINITY;
	size_t w = 0;

	for (size_t j = 0; j < in->npoints; j++) {
		double d = fabs(log((double)in->curve[j].window_us / 1e6 / t));

		if (d < best) {
			best = d;
			w = j;
		}
	}
	return w;
}

/* Pages [*first, *next) of part b of n: the layout's bounds, or equal parts. */
static void part_range(const struct dt_plan_input *in, size_t n, size_t b, double *first,
		       double *next)
{
	double mem = (double)in->memory_pages;

	if (in->nparts && in->part_bounds) {
		*first = (double)in->part_bounds[b];
		*next = (double)in->part_bounds[b + 1];
		return;
	}
	*first = floor(mem * (double)b / (double)n);
	*next = b + 1 == n ? mem : floor(mem * (double)(b + 1) / (double)n);
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

		part_range(in, in->nparts, b, &first, &next);
		sum += pages * model_at(m, window(m, t0 * (first + next) / 2 / mem, t0));
		weight += pages;
	}
	return weight > 0 ? sum / weight : mean_since_sent(m, 0, t0);
}

/* Pages written in both of two adjacent windows of a and b seconds (activity time). */
static double overlap(const struct model *m, double a, double b)
{
	double v = model_at(m, a) + model_at(m, b) - model_at(m, a + b);

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
	double wa = window(m, prev, now), d = model_at(m, window(m, now, now + t));
	double da = model_at(m, wa), on, after = 0, on_list;

	if (!(da > 0))
		return d;
	on = overlap(m, wa, window(m, now, now + t));
	if (!(on > 0))
		return d;
	on_list = fmin(list, fmax(0, on - fmax(0, da - list)));
	for (int j = 0; j < PHASE_SAMPLES; j++)
		after += overlap(m, wa, window(m, now + t * (j + 0.5) / PHASE_SAMPLES, now + t));
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
	return -expm1(-m->irm_rate[k] * window(m, a, b));
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
static void run(const struct model *m, struct outcome *o, struct dt_plan_round *rounds)
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
	o->last_rate = last_t > 0 ? model_at(m, last_t) / last_t : 0;
	o->converges = conv >= 0.5;
	if (!o->converges)
		/* a remainder that no longer shrinks never will: the rate wins */
		o->verdict =
		    list >= prev * 0.999 ? DT_PLAN_RATE_EXCEEDS_BANDWIDTH : DT_PLAN_ROUND_LIMIT;
}

static bool good_enough(const struct dt_plan_input *in, const struct outcome *o)
{
	return o->converges && (in->target_us == 0 || o->total_s * 1e6 <= (double)in->target_us);
}

/*
 * The limit is searched for with BANDWIDTH_MARGIN of the bandwidth: the
 * mildest limit that converges exactly is on a knife's edge (a guest just
 * short of converging needs almost no throttle in the model), and a link
 * or a guest a little off its measured figures would tip it back.
 */
static int recommend(struct model *m, struct dt_plan *p)
{
	const struct dt_plan_input *in = m->in;
	struct dt_plan_input margin = *in;
	struct dt_plan_recommendation *rec = &p->rec;
	double top = 0, lo, hi;
	struct outcome o;

	margin.bandwidth = in->bandwidth * BANDWIDTH_MARGIN;
	m->in = &margin;
	m->cum = NULL; /* the search on the mean curve (a throttle flattens bursts anyway) */
	m->nirm = 0;   /* and with the curve model, which scales per-vCPU curves */

	rec->postcopy_total_seconds =
	    (double)in->memory_pages * (1 - in->zero_fraction) * in->page_size / in->bandwidth;
	for (uint32_t v = 0; v < m->nvcpu; v++)
		if (m->rate[v] > top)
			top = m->rate[v];
	/* feasible at hi, not at lo: the mildest limit is in (lo, hi] */
	lo = top;
	hi = top * 1e-6;
	m->limit = hi;
	run(m, &o, NULL);
	if (!(top > 0) || !good_enough(in, &o)) {
		m->limit = 0;
		m->in = in;
		rec->advice = DT_PLAN_ADVICE_POSTCOPY;
		return 0;
	}
	for (int s = 0; s < SEARCH_STEPS && hi < lo * 0.999; s++) {
		double mid = sqrt(lo * hi);

		m->limit = mid;
		run(m, &o, NULL);
		if (good_enough(in, &o))
			hi = mid;
		else
			lo = mid;
	}
	/* the figures with the limit, at the bandwidth given */
	m->in = in;
	m->limit = hi;
	run(m, &o, NULL);
	m->limit = 0;
	rec->dirty_limit_pages_per_second = hi;
	rec->throttled_total_seconds = o.total_s;
	rec->throttled_downtime_seconds = o.downtime_s;
	rec->throttled_rounds = o.nrounds;
	rec->throttle_keeps = hi / top;
	if (m->vcpu) {
		rec->throttle_vcpus = calloc(m->nvcpu, sizeof(*rec->throttle_vcpus));
		if (!rec->throttle_vcpus)
			return -ENOMEM;
		for (uint32_t v = 0; v < m->nvcpu; v++)
			if (m->rate[v] > hi)
				rec->throttle_vcpus[rec->nthrottle++] = in->vcpus[v].vcpu;
	}
	rec->advice = rec->throttle_keeps < POSTCOPY_KEEP_MIN ? DT_PLAN_ADVICE_POSTCOPY
							      : DT_PLAN_ADVICE_THROTTLE;
	return 0;
}

static bool input_valid(const struct dt_plan_input *in)
{
	if (!in || !curve_valid(in->curve, in->npoints) || in->memory_pages == 0)
		return false;
	if (in->page_size < 512 || (in->page_size & (in->page_size - 1)))
		return false;
	if (!isfinite(in->bandwidth) || !(in->bandwidth > 0) || in->max_downtime_us == 0)
		return false;
	if (!isfinite(in->zero_fraction) || in->zero_fraction < 0 || in->zero_fraction >= 1)
		return false;
	if (in->max_rounds == 0 || in->max_rounds > DT_PLAN_MAX_ROUNDS)
		return false;
	if (in->interp >= _DT_PLAN_INTERP_MAX || in->nvcpus > DT_PLAN_MAX_VCPUS ||
	    (in->nvcpus && !in->vcpus))
		return false;
	if (in->nactivity && (in->nactivity < 2 || in->nactivity > DT_PLAN_MAX_ACTIVITY ||
			      !in->activity || in->activity_epoch_us == 0))
		return false;
	for (uint32_t v = 0; v < in->nvcpus; v++)
		if (!curve_valid(in->vcpus[v].points, in->vcpus[v].npoints))
			return false;
	if (in->nparts > DT_PLAN_MAX_PARTS || (in->nparts && !in->parts) ||
	    in->nparts > in->memory_pages)
		return false;
	if (in->nparts && in->part_bounds) {
		if (in->part_bounds[0] != 0 || in->part_bounds[in->nparts] != in->memory_pages)
			return false;
		for (uint32_t b = 0; b < in->nparts; b++)
			if (in->part_bounds[b + 1] < in->part_bounds[b])
				return false;
	}
	for (uint32_t b = 0; b < in->nparts; b++)
		for (size_t j = 0; j < in->npoints; j++) {
			uint64_t v = in->parts[(size_t)b * in->npoints + j];

			if (v > in->memory_pages ||
			    (j > 0 && v < in->parts[(size_t)b * in->npoints + j - 1]))
				return false;
		}
	return true;
}

int dt_plan_curve_at(const struct dt_plan_point *curve, size_t n, enum dt_plan_interp interp,
		     uint64_t memory_pages, double window_us, double *ret_pages)
{
	struct curve c = {curve, n, interp, (double)memory_pages};

	if (!curve_valid(curve, n) || interp >= _DT_PLAN_INTERP_MAX || memory_pages == 0 ||
	    !isfinite(window_us) || window_us < 0)
		return -EINVAL;
	*ret_pages = curve_at(&c, window_us / 1e6);
	return 0;
}

struct dt_plan *dt_plan_free(struct dt_plan *p)
{
	if (p) {
		free(p->rounds);
		free(p->rec.throttle_vcpus);
		free(p->knobs);
		free(p);
	}
	return NULL;
}

/*
 * The activity profile as cumulative activity over the mean; NULL when it
 * is all zeros or steady (coefficient of variation under STEADY_CV).
 */
static double *activity_profile(const struct dt_plan_input *in, bool *nomem)
{
	double total = 0, squares = 0, mean, *cum;

	*nomem = false;
	for (size_t k = 0; k < in->nactivity; k++) {
		total += (double)in->activity[k];
		squares += (double)in->activity[k] * (double)in->activity[k];
	}
	if (!(total > 0))
		return NULL;
	/* a steady guest: its epochs differ by chance only, the phases would add noise */
	mean = total / (double)in->nactivity;
	if (squares / (double)in->nactivity - mean * mean < STEADY_CV * STEADY_CV * mean * mean)
		return NULL;
	cum = calloc(in->nactivity + 1, sizeof(*cum));
	if (!cum) {
		*nomem = true;
		return NULL;
	}
	for (size_t k = 0; k < in->nactivity; k++)
		cum[k + 1] = cum[k] + (double)in->activity[k] * (double)in->nactivity / total;
	return cum;
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

static void run_phases(struct model *m, struct outcome *o, struct dt_plan_round *rounds)
{
	double total[DT_PLAN_PHASES];
	bool conv[DT_PLAN_PHASES], majority;
	struct outcome mean = {0}, one;
	uint32_t nconv = 0, best = DT_PLAN_PHASES;

	for (uint32_t k = 0; k < DT_PLAN_PHASES; k++) {
		m->phase = phase_of(m, k);
		run(m, &one, NULL);
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
	run(m, o, rounds);
	o->total_s = mean.total_s;
	o->downtime_s = mean.downtime_s;
	o->final_pages = mean.final_pages;
	o->bytes = mean.bytes;
}

/*
 * Fit the independent-reference model to the curve: classes at rates
 * IRM_STEP apart from a third of a write per longest window to 30 writes
 * per epoch, their page counts by non-negative least squares on the
 * relative error at every point. With an activity profile the model's
 * curve is taken in activity time: at the profile's end, or averaged over
 * its phases when the curve is a mean over time. It is used only if it
 * fits every point within IRM_FIT_TOL (a sweep, whose D(T) is a straight
 * line that stops at the working set, does not fit: it keeps the curve
 * model).
 */
#define MEAN_ENDS 256 /* window ends a mean curve's basis averages over */
static double irm_basis(const struct model *m, double rate, double t)
{
	const struct dt_plan_input *in = m->in;
	double end = (double)m->nact * m->act_epoch_s, sum = 0;

	if (!m->cum)
		return -expm1(-rate * t);
	if (!in->curve_is_mean)
		return -expm1(-rate * (activity_until(m, end) - activity_until(m, end - t)));
	/* the windows a mean curve averages end at epoch boundaries */
	for (size_t j = 0; j < MEAN_ENDS; j++) {
		double to = floor((double)m->nact * (double)(j + 1) / MEAN_ENDS) * m->act_epoch_s;

		sum += -expm1(-rate * (activity_until(m, to) - activity_until(m, to - t)));
	}
	return sum / MEAN_ENDS;
}

static void irm_fit_once(struct model *m)
{
	const struct dt_plan_input *in = m->in;
	size_t n = in->npoints, nk, cols, rows = in->npoints + 1;
	double a[DT_NNLS_MAX_ROWS * DT_NNLS_MAX_COLS], b[DT_NNLS_MAX_ROWS], x[DT_NNLS_MAX_COLS];
	double rate[IRM_MAX], w0 = (double)in->curve[0].window_us / 1e6;
	double lo = 0.3 / ((double)in->curve[n - 1].window_us / 1e6), hi = 30 / w0;
	double mem = (double)in->memory_pages;
	int r;

	m->nirm = 0;
	if (n < 3 || rows > DT_NNLS_MAX_ROWS || !(hi > lo))
		return;
	nk = (size_t)ceil(log(hi / lo) / log(IRM_STEP)) + 1;
	if (nk > IRM_MAX)
		nk = IRM_MAX;
	cols = nk + 1; /* the classes, and the pages never written (a slack) */
	for (size_t k = 0; k < nk; k++)
		rate[k] = lo * pow(hi / lo, (double)k / (double)(nk - 1));
	for (size_t j = 0; j < n; j++) {
		double t = (double)in->curve[j].window_us / 1e6, d = (double)in->curve[j].pages;
		double scale = d > 0 ? 1 / d : 1;

		for (size_t k = 0; k < nk; k++)
			a[j * cols + k] = irm_basis(m, rate[k], t) * scale;
		a[j * cols + nk] = 0;
		b[j] = d * scale;
	}
	/* all classes and the slack add up to memory, weighted to hold (nearly) exactly */
	for (size_t k = 0; k < cols; k++)
		a[n * cols + k] = 100 / mem;
	b[n] = 100;
	r = dt_nnls(a, b, rows, cols, x);
	if (r < 0 && r != -ERANGE)
		return;
	for (size_t j = 0; j < n; j++) {
		double d = (double)in->curve[j].pages, f = 0;

		for (size_t k = 0; k < nk; k++)
			f += x[k] * a[j * cols + k] * (d > 0 ? d : 1);
		if (fabs(f - d) > IRM_FIT_TOL * fmax(d, 1))
			return;
	}
	for (size_t k = 0; k < nk; k++)
		if (x[k] > 0) {
			m->irm_rate[m->nirm] = rate[k];
			m->irm_pages[m->nirm++] = x[k];
		}
}

/*
 * A bursty guest's per-epoch distinct pages understate its bursts: a burst
 * that rewrites its pages counts each once. With the classes fitted, each
 * epoch's activity is the one that makes the model dirty as many distinct
 * pages as the epoch did (inverted through a table of INVERT_STEPS
 * activities from 1/1000 to 100 mean epochs); the fit is then redone on
 * that profile, IRM_ROUNDS times in all.
 */
#define INVERT_STEPS 256
#define IRM_ROUNDS   3
static void irm_activity(struct model *m, const uint64_t *distinct)
{
	double act[INVERT_STEPS], pages[INVERT_STEPS], total = 0, *a = m->cum;

	for (size_t i = 0; i < INVERT_STEPS; i++) {
		act[i] = m->act_epoch_s * 1e-3 * pow(1e5, (double)i / (INVERT_STEPS - 1));
		pages[i] = 0;
		for (size_t k = 0; k < m->nirm; k++)
			pages[i] += m->irm_pages[k] * -expm1(-m->irm_rate[k] * act[i]);
	}
	/* a[e + 1] holds epoch e's activity until the sum below */
	for (size_t e = 0; e < m->nact; e++) {
		double u = (double)distinct[e], v;
		size_t i = 0;

		if (u <= 0) {
			v = 0;
		} else if (u >= pages[INVERT_STEPS - 1]) {
			v = act[INVERT_STEPS - 1];
		} else {
			while (pages[i + 1] < u)
				i++;
			v = u <= pages[i] ? act[i] * u / pages[i]
					  : act[i] + (act[i + 1] - act[i]) * (u - pages[i]) /
							 (pages[i + 1] - pages[i]);
		}
		a[e + 1] = v;
		total += v;
	}
	if (!(total > 0))
		return;
	a[0] = 0;
	for (size_t e = 0; e < m->nact; e++)
		a[e + 1] = a[e] + a[e + 1] * (double)m->nact / total;
}

static void irm_fit(struct model *m)
{
	irm_fit_once(m);
	for (int i = 1; m->cum && m->nirm && i < IRM_ROUNDS; i++) {
		irm_activity(m, m->in->activity);
		irm_fit_once(m);
	}
}

/*
 * The IRM's classes per part of memory. With a layout by window, each
 * class is spread like the pages that join the parts' sets between the
 * window closest to its time between writes and the one before: those are
 * mostly of this class (faster ones are in both sets, slower ones in
 * neither); where no part grew there, like the window's sets themselves.
 * Without one, memory is one part.
 */
static void irm_parts(struct model *m)
{
	const struct dt_plan_input *in = m->in;
	size_t n = in->npoints;

	m->nparts = in->nparts ? in->nparts : 1;
	for (size_t b = 0; b < m->nparts; b++) {
		double first, next;

		part_range(in, m->nparts, b, &first, &next);
		m->part_span[b] = next - first;
	}
	for (size_t k = 0; k < m->nirm; k++) {
		size_t w = closest_window(in, 1 / m->irm_rate[k]);
		double sum = 0, share[DT_PLAN_MAX_PARTS];

		for (int pass = 0; in->nparts && pass < 2 && !(sum > 0); pass++) {
			sum = 0;
			for (size_t b = 0; b < m->nparts; b++) {
				share[b] = (double)in->parts[b * n + w];
				if (pass == 0 && w > 0)
					share[b] -= (double)in->parts[b * n + w - 1];
				sum += share[b];
			}
		}
		for (size_t b = 0; b < m->nparts; b++)
			m->part_pages[b][k] =
			    m->irm_pages[k] * (sum > 0 ? share[b] / sum
						       : m->part_span[b] / (double)in->memory_pages);
	}
}

int dt_plan_compute(const struct dt_plan_input *in, struct dt_plan **ret)
{
	struct model m = {0};
	struct dt_plan *p = NULL;
	struct outcome o;
	double one_rate, *cum = NULL;
	bool nomem;
	int r = -ENOMEM;

	if (!ret || !input_valid(in))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out;
	p->rounds = calloc(in->max_rounds, sizeof(*p->rounds));
	if (!p->rounds)
		goto out;
	p->input = *in;
	memcpy(p->curve, in->curve, in->npoints * sizeof(*in->curve));
	p->input.curve = p->curve;
	p->input.vcpus = NULL; /* read during the call only */
	p->input.activity = NULL;

	m.in = in;
	m.vm = (struct curve){in->curve, in->npoints, in->interp, (double)in->memory_pages};
	m.horizon_pages = curve_at(&m.vm, (double)in->curve[in->npoints - 1].window_us / 1e6);
	if (in->nvcpus) {
		m.nvcpu = in->nvcpus;
		m.vcpu = calloc(in->nvcpus, sizeof(*m.vcpu));
		m.rate = calloc(in->nvcpus, sizeof(*m.rate));
		if (!m.vcpu || !m.rate)
			goto out;
		for (uint32_t v = 0; v < in->nvcpus; v++) {
			const struct dt_plan_vcpu *c = &in->vcpus[v];

			m.vcpu[v] = (struct curve){c->points, c->npoints, in->interp,
						   (double)in->memory_pages};
			m.rate[v] =
			    (double)c->points[0].pages / ((double)c->points[0].window_us / 1e6);
		}
	} else {
		one_rate = (double)in->curve[0].pages / ((double)in->curve[0].window_us / 1e6);
		m.nvcpu = 1;
		m.rate = calloc(1, sizeof(*m.rate));
		if (!m.rate)
			goto out;
		m.rate[0] = one_rate;
	}

	if (in->nactivity) {
		cum = activity_profile(in, &nomem);
		if (nomem)
			goto out;
	}
	if (cum) {
		m.cum = cum;
		m.nact = in->nactivity;
		m.act_epoch_s = (double)in->activity_epoch_us / 1e6;
	}
	if (!in->no_irm)
		irm_fit(&m);
	if (m.nirm)
		irm_parts(&m);
	if (cum) {
		run_phases(&m, &o, p->rounds);
	} else {
		run(&m, &o, p->rounds);
	}
	p->converges = o.converges;
	p->verdict = o.verdict;
	p->nrounds = o.nrounds;
	p->final_pages = (uint64_t)llround(o.final_pages);
	p->total_seconds = o.total_s;
	p->downtime_seconds = o.downtime_s;
	p->bytes_sent = (uint64_t)llround(o.bytes);
	p->dirty_rate_at_last_round = o.last_rate;
	p->bandwidth_pages = in->bandwidth / in->page_size;
	p->irm_classes = (uint32_t)m.nirm;
	p->meets_target = good_enough(in, &o);
	if (!p->meets_target) {
		p->has_recommendation = true;
		r = recommend(&m, p);
		if (r < 0)
			goto out;
	}
	*ret = p;
	p = NULL;
	r = 0;
out:
	free(m.vcpu);
	free(m.rate);
	free(cum);
	dt_plan_free(p);
	return r;
}

const char *dt_plan_verdict_name(enum dt_plan_verdict v)
{
	static const char *const names[_DT_PLAN_VERDICT_MAX] = {
	    [DT_PLAN_CONVERGES] = "converges",
	    [DT_PLAN_RATE_EXCEEDS_BANDWIDTH] = "dirty-rate-exceeds-bandwidth",
	    [DT_PLAN_ROUND_LIMIT] = "round-limit",
	};
	return v < _DT_PLAN_VERDICT_MAX ? names[v] : "?";
}

const char *dt_plan_model_name(const struct dt_plan *p)
{
	return p->irm_classes ? "independent-reference" : "curve";
}

const char *dt_plan_advice_name(enum dt_plan_advice a)
{
	static const char *const names[_DT_PLAN_ADVICE_MAX] = {
	    [DT_PLAN_ADVICE_NONE] = "none",
	    [DT_PLAN_ADVICE_THROTTLE] = "throttle",
	    [DT_PLAN_ADVICE_POSTCOPY] = "postcopy",
	};
	return a < _DT_PLAN_ADVICE_MAX ? names[a] : "?";
}
