/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Non-negative least squares (Lawson and Hanson, "Solving Least Squares
 * Problems", 1974, chapter 23): x >= 0 minimising |A x - b|. Pure, small
 * (the planner fits at most DT_NNLS_MAX_ROWS points with at most
 * DT_NNLS_MAX_COLS basis functions), no allocation.
 */
#pragma once

#include <stddef.h>

#define DT_NNLS_MAX_ROWS 64
#define DT_NNLS_MAX_COLS 64

/*
 * a: rows x cols, row-major; b: rows. On success x (cols) holds the
 * solution and the return value is 0; -EINVAL on bad sizes or a value that
 * is not finite; -ERANGE when the iteration limit is reached (x then holds
 * the last feasible iterate, still >= 0).
 */
int dt_nnls(const double *a, const double *b, size_t rows, size_t cols, double *x);
