/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "dt_plan_advice.h"
#include "dt_util.h"
#include "vm_plan.h"

/*
 * The windows (epochs) the plan's curve is read at: 1, 2, 3, 5, 7, 10, 15,
 * 20, 30, 50, 70, 100, ... (about 1.5x apart, dense enough for the
 * planner's model fit), as far as the history covers: D(T) of longer ones
 * would be flat. The index answers any window, configured or not.
 */
static uint32_t plan_windows(const struct dt_vm *vm, uint64_t epochs, uint32_t *out)
{
	static const uint32_t steps[] = {10, 15, 20, 30, 50, 70};
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	uint64_t limit = epochs < sc->horizon_epochs ? epochs : sc->horizon_epochs;
	uint32_t n = 0;

	for (uint64_t scale = 1; n < DT_PLAN_MAX_POINTS; scale *= 10) {
		for (size_t i = 0; i < ARRAY_SIZE(steps) && n < DT_PLAN_MAX_POINTS; i++) {
			uint64_t w = steps[i] * scale / 10;

			if (w == 0 || (n && w <= out[n - 1]))
				continue;
			if (w > limit || w > UINT32_MAX)
				return n;
			out[n++] = (uint32_t)w;
		}
	}
	return n;
}

int dt_vm_plan(const struct dt_vm *vm, double bandwidth, uint64_t max_downtime_us,
	       struct dt_plan **ret)
{
	const struct dt_vm_plan_options o = {
		.bandwidth = bandwidth,
		.max_downtime_us = max_downtime_us,
	};

	return dt_vm_plan_with(vm, &o, ret);
}

/* The planner's input with every array it points to, owned (dt_vm_plan_gather). */
struct dt_vm_plan_input {
	struct dt_plan_input in;
	struct dt_plan_point curve[DT_PLAN_MAX_POINTS];
	uint64_t bounds[DT_PLAN_MAX_PARTS + 1];
	struct dt_plan_point *vpoints;
	struct dt_plan_vcpu *vcpus;
	uint64_t *activity, *parts;
	struct dt_plan_engine_input engine;
	uint64_t generation, epoch;
	bool dirty_ring; /* the VM's collector reads KVM dirty rings (dirty-limit applies) */
	uint32_t nvcpus;
	bool knobs; /* dt_vm_plan_options.knobs */
};

void dt_vm_plan_input_free(struct dt_vm_plan_input *pi)
{
	if (!pi)
		return;
	free(pi->vpoints);
	free(pi->vcpus);
	free(pi->activity);
	free(pi->parts);
	free(pi);
}

uint64_t dt_vm_plan_input_generation(const struct dt_vm_plan_input *pi)
{
	return pi->generation;
}

uint64_t dt_vm_plan_input_epoch(const struct dt_vm_plan_input *pi)
{
	return pi->epoch;
}

/*
 * A plan that misses its target carries advice in QEMU's knobs, each
 * re-planned with the knob set; a failure there costs the advice only.
 */
static int compute(const struct dt_vm_plan_input *pi, const struct dt_plan_input *in,
		   struct dt_plan **ret)
{
	struct dt_plan *p = NULL;
	int r = dt_plan_engine_compute(in, &pi->engine, &p);

	if (r < 0)
		return r;
	if (pi->knobs && !p->meets_target &&
	    dt_plan_advise(in, &pi->engine, pi->dirty_ring, pi->nvcpus, &p->knobs) < 0)
		p->knobs = NULL;
	*ret = p;
	return 0;
}

int dt_vm_plan_input_compute(const struct dt_vm_plan_input *pi, struct dt_plan **ret)
{
	return compute(pi, &pi->in, ret);
}

int dt_vm_plan_input_compute_share(const struct dt_vm_plan_input *pi, double bandwidth,
				   struct dt_plan **ret)
{
	struct dt_plan_input in = pi->in;

	if (!isfinite(bandwidth) || bandwidth <= 0)
		return -EINVAL;
	in.bandwidth = bandwidth;
	return compute(pi, &in, ret);
}

int dt_vm_plan_input_compute_at(const struct dt_vm_plan_input *pi, double bandwidth,
				uint64_t max_downtime_us, struct dt_plan **ret)
{
	struct dt_plan_input in = pi->in;

	if (!isfinite(bandwidth) || bandwidth <= 0 || max_downtime_us == 0)
		return -EINVAL;
	in.bandwidth = bandwidth;
	in.max_downtime_us = max_downtime_us;
	return dt_plan_engine_compute(&in, &pi->engine, ret);
}

int dt_vm_plan_gather(const struct dt_vm *vm, const struct dt_vm_plan_options *o,
		      struct dt_vm_plan_input **ret)
{
	uint32_t windows[DT_PLAN_MAX_POINTS];
	_cleanup_free_ struct dt_epoch_record *hist = NULL;
	struct dt_vm_plan_input *pi;
	size_t nact = 0;
	uint64_t epochs = dt_stats_epochs(vm->stats);
	uint64_t memory = dt_vm_memory_pages(vm);
	uint32_t n = plan_windows(vm, epochs, windows), nv = 0;

	/* libvirt's one rate per calc is no D(T) curve: no plan is better than a made-up one. */
	if (vm->state == DT_VM_OBSERVED)
		return -EOPNOTSUPP;
	if (!isfinite(o->bandwidth) || o->bandwidth <= 0 || o->max_downtime_us == 0 ||
	    (o->zero_stated && !(o->zero_fraction >= 0 && o->zero_fraction <= 1)) ||
	    o->max_rounds > DT_PLAN_MAX_ROUNDS)
		return -EINVAL;
	if (n == 0 || memory == 0)
		return -ENODATA;
	pi = calloc(1, sizeof(*pi));
	if (!pi)
		return -ENOMEM;
	pi->generation = vm->generation;
	pi->epoch = epochs;
	pi->nvcpus = vm->vcpus;
	pi->knobs = o->knobs;
	for (uint32_t i = 0; i < n; i++)
		pi->curve[i] = (struct dt_plan_point){
			.window_us = windows[i] * vm->epoch_us,
			.pages = dt_stats_wss(vm->stats, windows[i]),
		};
	if (vm->collector.rings && vm->vcpus > 0 && vm->vcpus <= DT_PLAN_MAX_VCPUS) {
		pi->vcpus = calloc(vm->vcpus, sizeof(*pi->vcpus));
		pi->vpoints = calloc((size_t)vm->vcpus * n, sizeof(*pi->vpoints));
		if (!pi->vcpus || !pi->vpoints)
			goto enomem;
		for (uint32_t v = 0; v < vm->vcpus; v++) {
			struct dt_plan_point *p = &pi->vpoints[(size_t)nv * n];

			if (!vm->collector.rings[v])
				continue;
			for (uint32_t i = 0; i < n; i++)
				p[i] = (struct dt_plan_point){
					.window_us = pi->curve[i].window_us,
					.pages = dt_stats_vcpu_wss(vm->stats, v, windows[i]),
				};
			pi->vcpus[nv++] = (struct dt_plan_vcpu){ .vcpu = v, .npoints = n, .points = p };
		}
	}
	pi->dirty_ring = nv > 0;
	/* the activity profile: the history's per-epoch pages (bursts and lulls) */
	if (epochs >= 2) {
		size_t max = epochs < DT_PLAN_MAX_ACTIVITY ? (size_t)epochs : DT_PLAN_MAX_ACTIVITY;

		hist = calloc(max, sizeof(*hist));
		pi->activity = calloc(max, sizeof(*pi->activity));
		if (!hist || !pi->activity)
			goto enomem;
		nact = dt_stats_history(vm->stats, epochs - max, hist, max);
		for (size_t i = 0; i < nact; i++)
			pi->activity[i] = hist[i].pages;
	}
	/* where the dirtied pages lie, by window (none for a VM smaller than the parts) */
	if (memory >= DT_PLAN_MAX_PARTS) {
		pi->parts = calloc((size_t)DT_PLAN_MAX_PARTS * n, sizeof(*pi->parts));
		if (!pi->parts)
			goto enomem;
		if (dt_stats_layout(vm->stats, windows, n, memory, DT_PLAN_MAX_PARTS, pi->bounds,
				    pi->parts) < 0) {
			free(pi->parts);
			pi->parts = NULL;
		}
	}
	pi->in = (struct dt_plan_input){
		.curve = pi->curve,
		.npoints = n,
		.memory_pages = memory,
		.page_size = vm->page_size,
		.bandwidth = o->bandwidth,
		.max_downtime_us = o->max_downtime_us,
		.zero_fraction = o->zero_stated ? o->zero_fraction : 0,
		.zero_source = o->zero_stated ? DT_PLAN_ZERO_STATED : DT_PLAN_ZERO_NONE,
		.max_rounds = o->max_rounds ? o->max_rounds : DT_VM_PLAN_MAX_ROUNDS,
		.target_us = o->target_us,
		.vcpus = nv ? pi->vcpus : NULL,
		.nvcpus = nv,
		.interp = DT_PLAN_INTERP_LOG,
		.activity = nact >= 2 ? pi->activity : NULL,
		.nactivity = nact >= 2 ? nact : 0,
		.activity_epoch_us = vm->epoch_us,
		.parts = pi->parts,
		.part_bounds = pi->parts ? pi->bounds : NULL,
		.nparts = pi->parts ? DT_PLAN_MAX_PARTS : 0,
	};
	if (!o->zero_stated && vm->memory_sample.at_us) {
		const struct dt_vm_memory_sample *ms = &vm->memory_sample;
		double f = (double)ms->zero / (double)ms->sampled, m = (double)memory;
		/*
		 * A sample is up to 16 s old, and a guest filling its memory writes
		 * over zero pages meanwhile: the pages first dirtied since it (the
		 * history's own exact count) are taken off, each as zero as the pages
		 * not dirtied before it were (all zero pages are among those).
		 */
		uint64_t now = dt_stats_wss(vm->stats, UINT32_MAX);
		double fresh = now > ms->dirtied ? (double)(now - ms->dirtied) : 0;
		double untouched = m > (double)ms->dirtied ? m - (double)ms->dirtied : 1;
		double zu = f * m / untouched < 1 ? f * m / untouched : 1;
		double z = (f * m - fresh * zu) / m;
		/* the planner takes less than 1: all of a sample zero is not all of RAM */
		double most = 1 - 0.5 / (double)ms->sampled;

		pi->in.zero_fraction = z < 0 ? 0 : z < most ? z : most;
		pi->in.zero_source = DT_PLAN_ZERO_MEASURED;
		pi->in.zero_sampled = ms->sampled;
		pi->in.zero_sample_age_us = dt_now_us() - ms->at_us;
		pi->in.zero_dirtied_since = (uint64_t)fresh;
	}
	if (o->engine)
		pi->engine = *o->engine;
	else
		dt_vm_plan_engine(vm, &pi->engine);
	*ret = pi;
	return 0;
enomem:
	dt_vm_plan_input_free(pi);
	return -ENOMEM;
}

int dt_vm_plan_with(const struct dt_vm *vm, const struct dt_vm_plan_options *o,
		    struct dt_plan **ret)
{
	struct dt_vm_plan_input *pi = NULL;
	int r = dt_vm_plan_gather(vm, o, &pi);

	if (r < 0)
		return r;
	r = dt_vm_plan_input_compute(pi, ret);
	dt_vm_plan_input_free(pi);
	return r;
}

void dt_vm_plan_engine(const struct dt_vm *vm, struct dt_plan_engine_input *ret)
{
	uint32_t version;

	*ret = (struct dt_plan_engine_input){ .engine = DT_PLAN_ENGINE_IDEAL };
	if (dt_plan_engine_parse(vm->vmm, &ret->engine, &version) < 0 ||
	    ret->engine != DT_PLAN_ENGINE_QEMU)
		ret->engine = DT_PLAN_ENGINE_IDEAL;
	else
		ret->qemu.version = version;
}
