/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drain a host: every VM planned on the planner thread, then ordered (evacuation.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_plan_advice.h"
#include "dt_util.h"
#include "evacuation.h"
#include "json_advice.h"
#include "worker.h"

struct dt_evacuation_call {
	struct dt_job job;
	struct dt_planner *pl;
	struct dt_evacuation *ev;
	dt_evacuation_done_t done;
	void *userdata;
	bool cancelled;
};

const char *dt_evacuation_verdict_name(enum dt_evacuation_verdict v)
{
	static const char *const names[_DT_EVACUATION_VERDICT_MAX] = {
		[DT_EVACUATION_PRECOPY] = "precopy",
		[DT_EVACUATION_KNOBS] = "with-knobs",
		[DT_EVACUATION_OVER_TARGET] = "over-target",
		[DT_EVACUATION_CANNOT] = "cannot-go-live",
		[DT_EVACUATION_UNPLANNED] = "unplanned",
	};
	return v < _DT_EVACUATION_VERDICT_MAX ? names[v] : "?";
}

struct dt_evacuation *dt_evacuation_free(struct dt_evacuation *ev)
{
	if (!ev)
		return NULL;
	for (size_t i = 0; i < ev->n; i++) {
		dt_vm_plan_input_free(ev->vms[i].in);
		dt_plan_free(ev->vms[i].plan);
	}
	free(ev->vms);
	free(ev);
	return NULL;
}

static const char *unplanned_why(int r)
{
	switch (r) {
	case -EOPNOTSUPP:
		return "observed through libvirt: one rate per calc, no exact working-set curve "
		       "to plan with";
	case -ENODATA:
		return "no closed epoch or no memory declared yet";
	case -EINVAL:
		return "the planner refused its figures";
	case -ENOMEM:
		return "out of memory while planning it";
	default:
		return "it could not be planned";
	}
}

/* The fastest available option that completes (any target), or -1. */
static int fastest(const struct dt_plan_knobs *a)
{
	int best = -1;

	for (uint32_t i = 0; i < a->nknobs; i++) {
		const struct dt_knob_advice *k = &a->knobs[i];

		if (k->unavailable != DT_KNOB_OK || !k->result.converges)
			continue;
		if (best < 0 || k->result.total_seconds < a->knobs[best].result.total_seconds)
			best = (int)i;
	}
	return best;
}

/*
 * A planned VM's verdict, duration and the knob it needs: with a target,
 * the knob its plan advises (the mildest that fits); without one the
 * drain's own goal decides, emptying the host soonest: the fastest knob
 * that completes.
 */
static void judge(struct dt_evacuation_vm *v, bool has_target)
{
	const struct dt_plan *p = v->plan;
	const struct dt_plan_knobs *a = p->knobs;
	char set[160];

	v->knob = -1;
	v->item.duration_s = -1;
	if (p->meets_target) {
		v->verdict = DT_EVACUATION_PRECOPY;
		v->item.duration_s = p->total_seconds;
		snprintf(v->why, sizeof(v->why), "pre-copy as is: %.3g s, %.3g s of downtime",
			 p->total_seconds, p->downtime_seconds);
		return;
	}
	if (!a) {
		v->verdict = DT_EVACUATION_CANNOT;
		snprintf(v->why, sizeof(v->why), "pre-copy does not converge and no knob advice "
						 "could be computed");
		return;
	}
	v->knob = has_target ? a->advised : fastest(a);
	v->verdict = DT_EVACUATION_KNOBS;
	if (v->knob < 0 && has_target) {
		v->knob = fastest(a);
		v->verdict = DT_EVACUATION_OVER_TARGET;
	}
	if (v->knob < 0) {
		v->verdict = DT_EVACUATION_CANNOT;
		snprintf(v->why, sizeof(v->why),
			 "pre-copy does not converge at %.0f bytes/s and no knob this VMM can "
			 "apply makes it complete: migrate it offline or give it more bandwidth",
			 p->input.bandwidth);
		return;
	}
	v->item.duration_s = a->knobs[v->knob].result.total_seconds;
	dt_knob_say(a, &a->knobs[v->knob], set, sizeof(set));
	snprintf(v->why, sizeof(v->why), "%s%s",
		 v->verdict == DT_EVACUATION_OVER_TARGET ? "no knob meets the target; the fastest: "
							 : "",
		 set);
}

/*
 * The scheduler's re-plan (dt_evacuate_duration_fn): VM i when `running`
 * migrations share the link from its start, judged again at that share.
 * A re-plan that fails or cannot go live keeps the plan it was ranked with.
 */
static double at_share(void *userdata, size_t i, uint32_t running)
{
	struct dt_evacuation *ev = userdata;
	struct dt_evacuation_vm *v = &ev->vms[i], old = *v;
	double share = ev->o.bandwidth / running;

	if (share == v->bandwidth)
		return v->item.duration_s;
	if (dt_vm_plan_input_compute_share(v->in, share, &v->plan) < 0) {
		v->plan = old.plan;
		return -1;
	}
	judge(v, ev->o.target_us != 0);
	if (!(v->item.duration_s >= 0 && isfinite(v->item.duration_s))) {
		dt_plan_free(v->plan);
		*v = old;
		return -1;
	}
	dt_plan_free(old.plan);
	v->bandwidth = share;
	return v->item.duration_s; /* the scheduler keeps its own copy of the item */
}

static void call_run(struct dt_job *j)
{
	struct dt_evacuation_call *c = (struct dt_evacuation_call *)j;
	struct dt_evacuation *ev = c->ev;
	struct dt_evacuate_item *items;
	struct dt_evacuation_vm *sorted;
	size_t k = 0, gathered = 0;
	int r;

	/* the first migrations share the link: as many as run at once, at most the VMs planned */
	for (size_t i = 0; i < ev->n; i++)
		if (ev->vms[i].r >= 0)
			gathered++;
	ev->per_migration_bandwidth =
		ev->o.bandwidth / (double)DT_MAX((size_t)1, DT_MIN((size_t)ev->o.parallel, gathered));
	for (size_t i = 0; i < ev->n; i++) {
		struct dt_evacuation_vm *v = &ev->vms[i];

		v->item.duration_s = -1;
		v->knob = -1;
		v->bandwidth = ev->per_migration_bandwidth;
		if (v->r >= 0)
			v->r = dt_vm_plan_input_compute_share(v->in, v->bandwidth, &v->plan);
		if (v->r < 0) {
			v->verdict = DT_EVACUATION_UNPLANNED;
			snprintf(v->why, sizeof(v->why), "%s", unplanned_why(v->r));
			continue;
		}
		judge(v, ev->o.target_us != 0);
	}
	items = calloc(ev->n ? ev->n : 1, sizeof(*items));
	sorted = calloc(ev->n ? ev->n : 1, sizeof(*sorted));
	if (!items || !sorted) {
		free(items);
		free(sorted);
		return; /* the VMs stay in registry order, none scheduled */
	}
	for (size_t i = 0; i < ev->n; i++)
		items[i] = ev->vms[i].item;
	r = dt_evacuate_schedule(items, ev->n, ev->o.parallel, at_share, ev, &ev->total_s);
	ev->nplanned = r > 0 ? (uint32_t)r : 0;
	/* the planned ones by their order, then the rest as they were */
	for (size_t i = 0; i < ev->n; i++) {
		ev->vms[i].item = items[i];
		if (r >= 0 && ev->vms[i].item.duration_s >= 0 && isfinite(ev->vms[i].item.duration_s))
			sorted[items[i].order] = ev->vms[i];
	}
	k = ev->nplanned;
	for (size_t i = 0; i < ev->n; i++)
		if (!(ev->vms[i].item.duration_s >= 0 && isfinite(ev->vms[i].item.duration_s)))
			sorted[k++] = ev->vms[i];
	free(ev->vms);
	ev->vms = sorted;
	free(items);
}

static void call_done(struct dt_job *j)
{
	struct dt_evacuation_call *c = (struct dt_evacuation_call *)j;

	dt_planner_batch_done(c->pl);
	if (c->cancelled)
		dt_evacuation_free(c->ev);
	else if (!j->ran) {
		dt_evacuation_free(c->ev);
		c->done(c->userdata, -ECANCELED, NULL);
	} else
		c->done(c->userdata, 0, c->ev);
	free(c);
}

int dt_evacuation_submit(struct dt_planner *pl, const struct dt_manager *m,
			 const struct dt_evacuation_options *o, dt_evacuation_done_t done,
			 void *userdata, struct dt_evacuation_call **ret)
{
	struct dt_evacuation_call *c;
	struct dt_evacuation *ev;
	size_t n = 0;
	int r;

	if (!isfinite(o->bandwidth) || o->bandwidth <= 0 || o->max_downtime_us == 0 ||
	    o->parallel < 1 || o->parallel > DT_EVACUATE_MAX_PARALLEL)
		return -EINVAL;
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->state != DT_VM_DETACHED)
			n++;
	if (n > DT_EVACUATION_MAX_VMS)
		return -E2BIG;
	c = calloc(1, sizeof(*c));
	ev = calloc(1, sizeof(*ev));
	if (!c || !ev || !(ev->vms = calloc(n ? n : 1, sizeof(*ev->vms)))) {
		free(ev);
		free(c);
		return -ENOMEM;
	}
	ev->o = *o;
	ev->generation = m->generation;
	/* the registry is newest first: list the VMs oldest first */
	ev->n = n;
	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		const struct dt_vm_plan_options po = {
			.bandwidth = o->bandwidth / o->parallel, /* call_run plans at the share */
			.max_downtime_us = o->max_downtime_us,
			.zero_fraction = o->zero_fraction,
			.zero_stated = o->zero_stated,
			.target_us = o->target_us,
			.knobs = true,
		};
		struct dt_evacuation_vm *v;

		if (vm->state == DT_VM_DETACHED)
			continue;
		v = &ev->vms[--n];
		v->id = vm->id;
		snprintf(v->name, sizeof(v->name), "%s", vm->name);
		memcpy(v->uuid, vm->uuid, sizeof(v->uuid));
		v->r = dt_vm_plan_gather(vm, &po, &v->in);
		if (v->r == -ENOMEM) {
			dt_evacuation_free(ev);
			free(c);
			return -ENOMEM;
		}
	}
	c->job.run = call_run;
	c->job.done = call_done;
	c->pl = pl;
	c->ev = ev;
	c->done = done;
	c->userdata = userdata;
	r = dt_planner_submit_batch(pl, &c->job);
	if (r < 0) {
		dt_evacuation_free(ev);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void dt_evacuation_call_cancel(struct dt_evacuation_call *c)
{
	if (c)
		c->cancelled = true;
}

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add_ex(o, k, v,
				  JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

static struct json_object *num(double v)
{
	return isfinite(v) ? json_object_new_double(v) : NULL;
}

static struct json_object *vm_json(const struct dt_evacuation_vm *v)
{
	struct json_object *o = json_object_new_object();
	bool planned = v->item.duration_s >= 0 && isfinite(v->item.duration_s);
	const struct dt_plan *p = v->plan;
	char uuid[37];

	dt_uuid_format(v->uuid, uuid);
	add(o, "id", json_object_new_uint64(v->id));
	add(o, "name", json_object_new_string(v->name));
	add(o, "uuid", dt_uuid_is_null(v->uuid) ? NULL : json_object_new_string(uuid));
	add(o, "verdict", json_object_new_string(dt_evacuation_verdict_name(v->verdict)));
	add(o, "order", planned ? json_object_new_uint64(v->item.order) : NULL);
	add(o, "slot", planned ? json_object_new_uint64(v->item.slot) : NULL);
	add(o, "start_seconds", planned ? num(v->item.start_s) : NULL);
	add(o, "duration_seconds", planned ? num(v->item.duration_s) : NULL);
	add(o, "running", planned && v->item.running ? json_object_new_uint64(v->item.running) : NULL);
	add(o, "bandwidth_bytes_per_second", p ? num(v->bandwidth) : NULL);
	add(o, "end_seconds", planned ? num(v->item.start_s + v->item.duration_s) : NULL);
	add(o, "precopy_converges", p ? json_object_new_boolean(p->converges) : NULL);
	add(o, "precopy_total_seconds", p ? num(p->total_seconds) : NULL);
	add(o, "engine", p ? json_object_new_string(dt_plan_engine_name(p->engine)) : NULL);
	add(o, "knob", p && p->knobs && v->knob >= 0
			       ? json_object_new_string(dt_knob_name(p->knobs->knobs[v->knob].knob))
			       : NULL);
	add(o, "knobs", p && p->knobs
				? dt_json_plan_knobs(p->knobs, p->input.memory_pages * p->input.page_size)
				: NULL);
	add(o, "why", json_object_new_string(v->why));
	return o;
}

struct json_object *dt_json_evacuation(const struct dt_evacuation *ev)
{
	struct json_object *o = json_object_new_object(), *in = json_object_new_object(),
			   *a = json_object_new_array();
	size_t unplanned = 0;

	add(in, "bandwidth_bytes_per_second", num(ev->o.bandwidth));
	add(in, "downtime_seconds", num((double)ev->o.max_downtime_us / 1e6));
	add(in, "parallel", json_object_new_uint64(ev->o.parallel));
	add(in, "per_migration_bandwidth_bytes_per_second", num(ev->per_migration_bandwidth));
	add(in, "target_seconds", ev->o.target_us ? num((double)ev->o.target_us / 1e6) : NULL);
	add(in, "zero_fraction", ev->o.zero_stated ? num(ev->o.zero_fraction) : NULL);
	add(o, "inputs", in);
	add(o, "generation", json_object_new_uint64(ev->generation));
	add(o, "order_rule",
	    json_object_new_string(ev->o.parallel == 1
					   ? "one at a time, shortest first (the drain time is "
					     "the sum whatever the order)"
					   : "longest first, each on the slot that frees first "
					     "(LPT), each migration at the bandwidth divided by "
					     "the migrations running at its start"));
	for (size_t i = 0; i < ev->n; i++) {
		json_object_array_add(a, vm_json(&ev->vms[i]));
		if (!(ev->vms[i].item.duration_s >= 0 && isfinite(ev->vms[i].item.duration_s)))
			unplanned++;
	}
	add(o, "vms", a);
	add(o, "planned", json_object_new_uint64(ev->nplanned));
	add(o, "cannot_go_live", json_object_new_uint64(unplanned));
	add(o, "total_drain_seconds", num(ev->total_s));
	return o;
}
