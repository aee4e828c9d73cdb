/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /metrics' reference-link gauges: every VM's pre-copy plan at each
 * [metrics] reference link, from the planner REST and D-Bus use, computed
 * on a planner thread of its own (its queue never makes a REST plan wait
 * or fail) and cached in the VM's API entry. A change of the VM's figures
 * (an epoch closed, attached, detached) marks its links wanted; a wanted
 * link with no call in flight is submitted at once (the figures are read
 * then, on the loop; the planning is the thread's). A link whose call is
 * in flight is planned again when the call returns, so a VM is planned at
 * most once per link at a time, however short its epochs, and a scrape
 * only prints what is cached: the gauges are at most one plan behind.
 */
#include <errno.h>

#include "http.h"
#include "manager.h"
#include "planner.h"

static void kick(struct dt_api *a);

/* Link l's plan of generation (r: the planner's result; the figures follow when r >= 0). */
static struct dt_ref_plan *record(struct dt_api_vm *e, unsigned i, const struct dt_ref_link *l,
				  uint64_t generation, int r)
{
	e->ref[i] = (struct dt_ref_plan){
	    .valid = true,
	    .generation = generation,
	    .bandwidth = l->bandwidth,
	    .downtime_us = l->downtime_us,
	    .error = r,
	};
	return &e->ref[i];
}

static void on_done(void *userdata, int r, struct dt_plan *p, uint64_t generation, uint64_t epoch)
{
	struct dt_ref_call *rc = userdata;
	struct dt_api_vm *e = rc->e;
	const struct dt_config *c = &e->api->m->config;
	struct dt_ref_plan *rp;

	rc->call = NULL;
	if (r == -ECANCELED || rc->link >= c->n_ref_links) { /* stopping, or a link reloaded away */
		dt_plan_free(p);
		return;
	}
	rp = record(e, rc->link, &c->ref_links[rc->link], generation, r);
	if (r >= 0) {
		rp->converges = p->converges;
		rp->rounds = p->nrounds;
		rp->total_seconds = p->total_seconds;
		rp->downtime_seconds = p->downtime_seconds;
	}
	dt_plan_free(p);
	kick(e->api);
}

/* Submit rc's link now: false when the planner's queue is full (try again later). */
static bool submit(struct dt_api *a, struct dt_ref_call *rc)
{
	const struct dt_config *c = &a->m->config;
	const struct dt_ref_link *l = &c->ref_links[rc->link];
	const struct dt_vm_plan_options o = {
	    .bandwidth = (double)l->bandwidth,
	    .max_downtime_us = l->downtime_us,
	};
	int r;

	r = dt_planner_submit(a->ref_planner, rc->e->vm, &o, on_done, rc, &rc->call);
	if (r == -EBUSY)
		return false;
	rc->wanted = false;
	if (r < 0) /* nothing to plan (no epoch yet, observed VM, ...): no gauge */
		(void)record(rc->e, rc->link, l, rc->e->vm->generation, r);
	return true;
}

/* Submit every wanted link with no call in flight, while the queue has room. */
static void kick(struct dt_api *a)
{
	unsigned n = a->m->config.n_ref_links;

	if (!a->ref_planner)
		return;
	for (unsigned b = 0; b < DT_API_VM_BUCKETS; b++)
		for (struct dt_api_vm *e = a->vms[b]; e; e = e->next)
			for (unsigned i = 0; i < n; i++) {
				struct dt_ref_call *rc = &e->ref_calls[i];

				if (rc->wanted && !rc->call && !submit(a, rc))
					return;
			}
}

void dt_ref_plans_changed(struct dt_api_vm *e)
{
	for (unsigned i = 0; i < DT_MAX_REF_LINKS; i++)
		e->ref_calls[i].wanted = true;
	kick(e->api);
}

void dt_ref_plans_drop(struct dt_api_vm *e)
{
	for (unsigned i = 0; i < DT_MAX_REF_LINKS; i++) {
		dt_plan_call_cancel(e->ref_calls[i].call);
		e->ref_calls[i].call = NULL;
		e->ref_calls[i].wanted = false;
	}
}

const struct dt_ref_plan *dt_ref_plan_get(const struct dt_api_vm *e, unsigned i,
					  const struct dt_ref_link *l)
{
	const struct dt_ref_plan *rp = &e->ref[i];

	if (!rp->valid || rp->error < 0 || rp->bandwidth != l->bandwidth ||
	    rp->downtime_us != l->downtime_us)
		return NULL;
	return rp;
}

int dt_ref_plans_start(struct dt_api *a) { return dt_planner_new(a->m->event, &a->ref_planner); }

void dt_ref_plans_stop(struct dt_api *a) { a->ref_planner = dt_planner_free(a->ref_planner); }
