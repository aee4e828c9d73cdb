/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lawson-Hanson active-set NNLS. The unconstrained least-squares problem on
 * the passive set is solved by Householder QR (not the normal equations:
 * the planner's basis functions are nearly collinear).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "dt_nnls.h"

#define MAX_ITER (3 * DT_NNLS_MAX_COLS)

/*
 * Least squares on the columns idx[0..p) of a: z (p) minimising
 * |A_idx z - b|. Returns false when the columns are rank-deficient.
 */
static bool lsq(const double *a, const double *b, size_t rows, size_t cols, const size_t *idx,
		size_t p, double *z)
{
	double q[DT_NNLS_MAX_ROWS][DT_NNLS_MAX_COLS], y[DT_NNLS_MAX_ROWS];

	if (p > rows)
		return false;
	for (size_t i = 0; i < rows; i++) {
		y[i] = b[i];
		for (size_t j = 0; j < p; j++)
			q[i][j] = a[i * cols + idx[j]];
	}
	/* Householder: reduce q to upper triangular, applying each reflection to y */
	for (size_t k = 0; k < p; k++) {
		double norm = 0, alpha, vnorm = 0, s;

		for (size_t i = k; i < rows; i++)
			norm += q[i][k] * q[i][k];
		norm = sqrt(norm);
		if (!(norm > 1e-300))
			return false;
		alpha = q[k][k] > 0 ? -norm : norm;
		q[k][k] -= alpha; /* v = x - alpha e1, stored in column k from row k */
		for (size_t i = k; i < rows; i++)
			vnorm += q[i][k] * q[i][k];
		for (size_t j = k + 1; j < p; j++) {
			s = 0;
			for (size_t i = k; i < rows; i++)
				s += q[i][k] * q[i][j];
			s = 2 * s / vnorm;
			for (size_t i = k; i < rows; i++)
				q[i][j] -= s * q[i][k];
		}
		s = 0;
		for (size_t i = k; i < rows; i++)
			s += q[i][k] * y[i];
		s = 2 * s / vnorm;
		for (size_t i = k; i < rows; i++)
			y[i] -= s * q[i][k];
		q[k][k] = alpha; /* the diagonal of R */
	}
	/* R z = (Q^T b)[0..p); a tiny diagonal against the first means rank loss */
	for (size_t k = p; k-- > 0;) {
		double s = y[k];

		if (!(fabs(q[k][k]) > 1e-12 * fabs(q[0][0])))
			return false;
		for (size_t j = k + 1; j < p; j++)
			s -= q[k][j] * z[j];
		z[k] = s / q[k][k];
	}
	return true;
}

/* w = A^T (b - A x) */
static void gradient(const double *a, const double *b, size_t rows, size_t cols, const double *x,
		     double *w)
{
	double r[DT_NNLS_MAX_ROWS];

	for (size_t i = 0; i < rows; i++) {
		r[i] = b[i];
		for (size_t j = 0; j < cols; j++)
			r[i] -= a[i * cols + j] * x[j];
	}
	for (size_t j = 0; j < cols; j++) {
		w[j] = 0;
		for (size_t i = 0; i < rows; i++)
			w[j] += a[i * cols + j] * r[i];
	}
}

int dt_nnls(const double *a, const double *b, size_t rows, size_t cols, double *x)
{
	double w[DT_NNLS_MAX_COLS], z[DT_NNLS_MAX_COLS], scale = 0;
	bool passive[DT_NNLS_MAX_COLS] = {false}, tried[DT_NNLS_MAX_COLS];
	size_t idx[DT_NNLS_MAX_COLS], p;

	if (!a || !b || !x || rows == 0 || cols == 0 || rows > DT_NNLS_MAX_ROWS ||
	    cols > DT_NNLS_MAX_COLS)
		return -EINVAL;
	for (size_t i = 0; i < rows * cols; i++) {
		if (!isfinite(a[i]))
			return -EINVAL;
		scale = fmax(scale, fabs(a[i]));
	}
	for (size_t i = 0; i < rows; i++)
		if (!isfinite(b[i]))
			return -EINVAL;
	memset(x, 0, cols * sizeof(*x));
	for (int iter = 0; iter < MAX_ITER; iter++) {
		double best = 0, tol;
		size_t j = cols;

		gradient(a, b, rows, cols, x, w);
		tol = 1e-10 * scale * scale * (double)rows;
		memset(tried, 0, sizeof(tried));
	pick:
		best = tol;
		j = cols;
		for (size_t k = 0; k < cols; k++)
			if (!passive[k] && !tried[k] && w[k] > best) {
				best = w[k];
				j = k;
			}
		if (j == cols)
			return 0; /* Kuhn-Tucker conditions hold */
		passive[j] = true;
		/* inner loop: keep the passive set's solution feasible */
		for (bool first = true;; first = false) {
			double alpha = INFINITY;

			p = 0;
			for (size_t k = 0; k < cols; k++)
				if (passive[k])
					idx[p++] = k;
			if (!lsq(a, b, rows, cols, idx, p, z)) {
				/* a column dependent on the passive ones: skip it */
				passive[j] = false;
				tried[j] = true;
				goto pick;
			}
			for (size_t k = 0; first && k < p; k++)
				if (idx[k] == j && z[k] <= 0) {
					/* rounding: the column does not help after all */
					passive[j] = false;
					tried[j] = true;
					goto pick;
				}
			for (size_t k = 0; k < p; k++)
				if (z[k] <= 0)
					alpha = fmin(alpha, x[idx[k]] / (x[idx[k]] - z[k]));
			if (alpha == INFINITY) {
				for (size_t k = 0; k < p; k++)
					x[idx[k]] = z[k];
				break;
			}
			for (size_t k = 0; k < p; k++) {
				x[idx[k]] += alpha * (z[k] - x[idx[k]]);
				if (x[idx[k]] <= 1e-15 * fabs(z[k]) || x[idx[k]] <= 0) {
					x[idx[k]] = 0;
					passive[idx[k]] = false;
				}
			}
		}
	}
	return -ERANGE;
}
