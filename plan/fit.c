/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fitting the guest's write model to its curve: the activity profile of a
 * bursty guest, and the independent-reference model's classes (their
 * rates by non-negative least squares, and where in memory they lie).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "dt_nnls.h"
#include "plan_int.h"

#define STEADY_CV	  0.1	/* an activity profile steadier than this is none */
#define IRM_STEP	  1.2	/* between adjacent rates, at least */
#define IRM_FIT_TOL	  0.04	/* its fit to every point of the curve, relative */

/*
 * The activity profile as cumulative activity over the mean; NULL when it
 * is all zeros or steady (coefficient of variation under STEADY_CV).
 */
double *pl_activity_profile(const struct dt_plan_input *in, bool *nomem)
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
		return -expm1(-rate * (pl_activity_until(m, end) - pl_activity_until(m, end - t)));
	/* the windows a mean curve averages end at epoch boundaries */
	for (size_t j = 0; j < MEAN_ENDS; j++) {
		double to = floor((double)m->nact * (double)(j + 1) / MEAN_ENDS) * m->act_epoch_s;

		sum += -expm1(-rate * (pl_activity_until(m, to) - pl_activity_until(m, to - t)));
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

void pl_irm_fit(struct model *m)
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
void pl_irm_parts(struct model *m)
{
	const struct dt_plan_input *in = m->in;
	size_t n = in->npoints;

	m->nparts = in->nparts ? in->nparts : 1;
	for (size_t b = 0; b < m->nparts; b++) {
		double first, next;

		pl_part_range(in, m->nparts, b, &first, &next);
		m->part_span[b] = next - first;
	}
	for (size_t k = 0; k < m->nirm; k++) {
		size_t w = pl_closest_window(in, 1 / m->irm_rate[k]);
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
