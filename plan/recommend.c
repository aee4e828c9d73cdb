/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What to do when pre-copy misses its target: the mildest per-vCPU dirty
 * limit (throttle) that makes it, searched on the simulation, or post-copy.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "plan_int.h"

/* Heavier throttling than this (the busiest throttled vCPU keeping less
 * than a quarter of its dirty rate) costs the guest more than post-copy. */
#define POSTCOPY_KEEP_MIN 0.25
#define SEARCH_STEPS	  60
#define BANDWIDTH_MARGIN  0.9

bool pl_good_enough(const struct dt_plan_input *in, const struct outcome *o)
{
	return o->converges && (in->target_us == 0 || o->total_s * 1e6 <= (double)in->target_us);
}

/*
 * The limit is searched for with BANDWIDTH_MARGIN of the bandwidth: the
 * mildest limit that converges exactly is on a knife's edge (a guest just
 * short of converging needs almost no throttle in the model), and a link
 * or a guest a little off its measured figures would tip it back.
 */
int pl_recommend(struct model *m, struct dt_plan *p)
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
	pl_run(m, &o, NULL);
	if (!(top > 0) || !pl_good_enough(in, &o)) {
		m->limit = 0;
		m->in = in;
		rec->advice = DT_PLAN_ADVICE_POSTCOPY;
		return 0;
	}
	for (int s = 0; s < SEARCH_STEPS && hi < lo * 0.999; s++) {
		double mid = sqrt(lo * hi);

		m->limit = mid;
		pl_run(m, &o, NULL);
		if (pl_good_enough(in, &o))
			hi = mid;
		else
			lo = mid;
	}
	/* the figures with the limit, at the bandwidth given */
	m->in = in;
	m->limit = hi;
	pl_run(m, &o, NULL);
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
