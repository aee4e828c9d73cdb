/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-copy migration planner (see dt_plan.h for the model): the input
 * checked, the model built from it, the plan computed, and names.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"

static bool input_valid(const struct dt_plan_input *in)
{
	if (!in || !pl_curve_valid(in->curve, in->npoints) || in->memory_pages == 0)
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
		if (!pl_curve_valid(in->vcpus[v].points, in->vcpus[v].npoints))
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
	m.horizon_pages = pl_curve_at(&m.vm, (double)in->curve[in->npoints - 1].window_us / 1e6);
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
		cum = pl_activity_profile(in, &nomem);
		if (nomem)
			goto out;
	}
	if (cum) {
		m.cum = cum;
		m.nact = in->nactivity;
		m.act_epoch_s = (double)in->activity_epoch_us / 1e6;
	}
	if (!in->no_irm)
		pl_irm_fit(&m);
	if (m.nirm)
		pl_irm_parts(&m);
	if (cum) {
		pl_run_phases(&m, &o, p->rounds);
	} else {
		pl_run(&m, &o, p->rounds);
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
	p->meets_target = pl_good_enough(in, &o);
	if (!p->meets_target) {
		p->has_recommendation = true;
		r = pl_recommend(&m, p);
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
