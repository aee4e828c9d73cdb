/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The working-set curve as the planner reads it: D(t) between and beyond
 * the measured points, scaled by per-vCPU dirty limits, its means, and
 * time as the guest's activity profile runs it.
 */
#include <errno.h>
#include <math.h>

#include "plan_int.h"

#define AVG_STEPS	  16 /* Simpson intervals per curve piece for averages of D */

bool pl_curve_valid(const struct dt_plan_point *p, size_t n)
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
double pl_curve_at(const struct curve *c, double t)
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
double pl_model_at(const struct model *m, double t)
{
	double d = pl_curve_at(&m->vm, t), before = 0, after = 0;

	if (!(m->limit > 0))
		return d;
	if (!m->vcpu) {
		/* no per-vCPU curves: the VM as a single writer */
		double rate = m->rate[0];

		return rate > m->limit ? fmin(pl_curve_at(&m->vm, t * m->limit / rate), m->limit * t)
				       : d;
	}
	for (uint32_t v = 0; v < m->nvcpu; v++) {
		double k = m->rate[v] > m->limit ? m->limit / m->rate[v] : 1;

		before += pl_curve_at(&m->vcpu[v], t);
		/* and it cannot dirty more than limit x T pages */
		after += k < 1 ? fmin(pl_curve_at(&m->vcpu[v], t * k), m->limit * t)
			       : pl_curve_at(&m->vcpu[v], t);
	}
	return before > 0 ? d * after / before : d;
}

static double simpson(const struct model *m, double a, double b)
{
	double h = (b - a) / AVG_STEPS, s = pl_model_at(m, a) + pl_model_at(m, b);

	for (int i = 1; i < AVG_STEPS; i++)
		s += (i % 2 ? 4 : 2) * pl_model_at(m, a + i * h);
	return s * h / 3;
}

/*
 * Mean of D(t) for t in [a, b]: Simpson on each piece between the curve's
 * points, so that a piecewise linear curve averages exactly.
 */
double pl_model_avg(const struct model *m, double a, double b)
{
	double sum = 0, from = a;

	if (!(b > a))
		return pl_model_at(m, a);
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
double pl_activity_until(const struct model *m, double x)
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
double pl_window(const struct model *m, double a, double b)
{
	if (!m->cum)
		return b - a;
	return pl_activity_until(m, m->phase + b) - pl_activity_until(m, m->phase + a);
}

/* The curve's point whose window is closest to t seconds (in log). */
size_t pl_closest_window(const struct dt_plan_input *in, double t)
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
void pl_part_range(const struct dt_plan_input *in, size_t n, size_t b, double *first,
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

int dt_plan_curve_at(const struct dt_plan_point *curve, size_t n, enum dt_plan_interp interp,
		     uint64_t memory_pages, double window_us, double *ret_pages)
{
	struct curve c = {curve, n, interp, (double)memory_pages};

	if (!pl_curve_valid(curve, n) || interp >= _DT_PLAN_INTERP_MAX || memory_pages == 0 ||
	    !isfinite(window_us) || window_us < 0)
		return -EINVAL;
	*ret_pages = pl_curve_at(&c, window_us / 1e6);
	return 0;
}
