/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The planner's internals, shared by its parts (curve, fit, simulate,
 * recommend, plan) and by nothing else: the model a plan runs on and the
 * outcome of one simulated migration.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "dt_plan.h"

#define IRM_MAX		  63	/* rate classes of the independent-reference model */

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

/* curve.c */
bool pl_curve_valid(const struct dt_plan_point *p, size_t n);
double pl_curve_at(const struct curve *c, double t);
double pl_model_at(const struct model *m, double t);
double pl_model_avg(const struct model *m, double a, double b);
double pl_activity_until(const struct model *m, double x);
double pl_window(const struct model *m, double a, double b);
size_t pl_closest_window(const struct dt_plan_input *in, double t);
void pl_part_range(const struct dt_plan_input *in, size_t n, size_t b, double *first,
		       double *next);
/* fit.c */
double *pl_activity_profile(const struct dt_plan_input *in, bool *nomem);
void pl_irm_fit(struct model *m);
void pl_irm_parts(struct model *m);
/* simulate.c */
void pl_run(const struct model *m, struct outcome *o, struct dt_plan_round *rounds);
void pl_run_phases(struct model *m, struct outcome *o, struct dt_plan_round *rounds);
/* recommend.c */
bool pl_good_enough(const struct dt_plan_input *in, const struct outcome *o);
int pl_recommend(struct model *m, struct dt_plan *p);
