/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /metrics' reference-link gauges: every VM's pre-copy plan at each
 * [metrics] reference link, from the planner REST and D-Bus use, computed
 * on a planner thread of its own (its queue never makes a REST plan wait
 * or fail) and cached in the VM's API entry. A change of the VM's figures
 * (an epoch closed, attached, detached) marks it wanted; a wanted VM with
 * no call in flight is submitted at once: its figures are read then, once
 * for all links (on the loop, as every plan's), and planned at each link
 * on the thread. A VM whose call is in flight is planned again when the
 * call returns, so it has at most one call at a time however short its
 * epochs, and a scrape only prints what is cached: the gauges are at most
 * one plan behind.
 */
#include <errno.h>

#include "dt_util.h"
#include "http.h"
#include "manager.h"
#include "planner.h"

_Static_assert(DT_MAX_REF_LINKS <= DT_PLANNER_MAX_LINKS, "every reference link in one call");

#define REF_MIN_INTERVAL_US (1000ull * 1000) /* between two calls of a VM */
#define REF_KEEP_US (300ull * 1000 * 1000) /* plans are kept fresh this long after a scrape */

static void kick(struct dt_api *a);

/* Link i's plan of generation (r: the planner's result; p's figures when r >= 0). */
static void record(struct dt_api_vm *e, unsigned i, uint64_t generation, int r,
		   const struct dt_plan *p)
{
	struct dt_ref_plan *rp = &e->ref[i];

	*rp = (struct dt_ref_plan){
		.valid = true,
		.generation = generation,
		.bandwidth = e->ref_sent[i].bandwidth,
		.downtime_us = e->ref_sent[i].downtime_us,
		.error = r,
	};
	if (r >= 0 && p) {
		rp->converges = p->converges;
		rp->rounds = p->nrounds;
		rp->total_seconds = p->total_seconds;
		rp->downtime_seconds = p->downtime_seconds;
	}
}

static void on_done(void *userdata, const int *r, struct dt_plan **p, unsigned n,
		    uint64_t generation, uint64_t epoch)
{
	struct dt_api_vm *e = userdata;
	bool stopping = false;

	e->ref_call = NULL;
	for (unsigned i = 0; i < n; i++) {
		stopping |= r[i] == -ECANCELED;
		if (!stopping)
			record(e, i, generation, r[i], p[i]);
		dt_plan_free(p[i]);
	}
	if (!stopping)
		kick(e->api);
}

/* Submit e's links now: false when the planner's queue is full (try again later). */
static bool submit(struct dt_api *a, struct dt_api_vm *e)
{
	const struct dt_config *c = &a->m->config;
	struct dt_plan_link links[DT_MAX_REF_LINKS];
	const struct dt_vm_plan_options o = {
		.bandwidth = (double)c->ref_links[0].bandwidth,
		.max_downtime_us = c->ref_links[0].downtime_us,
	};
	int r;

	e->ref_nsent = c->n_ref_links;
	for (unsigned i = 0; i < c->n_ref_links; i++) {
		e->ref_sent[i] = c->ref_links[i];
		links[i] = (struct dt_plan_link){
			.bandwidth = (double)c->ref_links[i].bandwidth,
			.max_downtime_us = c->ref_links[i].downtime_us,
		};
	}
	r = dt_planner_submit_links(a->ref_planner, e->vm, &o, links, c->n_ref_links, on_done, e,
				    &e->ref_call);
	if (r == -EBUSY)
		return false;
	e->ref_wanted = false;
	e->ref_started_us = dt_now_us();
	/* nothing to plan (no epoch yet, observed VM, ...): no gauge */
	for (unsigned i = 0; r < 0 && i < c->n_ref_links; i++)
		record(e, i, e->vm->generation, r, NULL);
	return true;
}

/*
 * Submit every wanted VM with no call in flight whose interval is over,
 * while the queue has room (a call's return kicks again), and arm the
 * timer for the next one due.
 */
static void kick(struct dt_api *a)
{
	uint64_t now = dt_now_us(), next = UINT64_MAX;

	if (!a->ref_planner || a->m->config.n_ref_links == 0 || !a->ref_scraped_us ||
	    now - a->ref_scraped_us > REF_KEEP_US)
		return;
	for (unsigned b = 0; b < DT_API_VM_BUCKETS; b++)
		for (struct dt_api_vm *e = a->vms[b]; e; e = e->next) {
			uint64_t due = e->ref_started_us + REF_MIN_INTERVAL_US;

			if (!e->ref_wanted || e->ref_call)
				continue;
			if (e->ref_started_us && due > now) {
				next = DT_MIN(next, due);
				continue;
			}
			if (!submit(a, e))
				return;
		}
	if (next != UINT64_MAX) {
		(void)sd_event_source_set_time(a->ref_timer, next);
		(void)sd_event_source_set_enabled(a->ref_timer, SD_EVENT_ONESHOT);
	}
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	kick(userdata);
	return 0;
}

void dt_ref_plans_scraped(struct dt_api *a)
{
	a->ref_scraped_us = dt_now_us();
	kick(a);
}

void dt_ref_plans_changed(struct dt_api_vm *e)
{
	e->ref_wanted = true;
	kick(e->api);
}

void dt_ref_plans_drop(struct dt_api_vm *e)
{
	dt_plan_call_cancel(e->ref_call);
	e->ref_call = NULL;
	e->ref_wanted = false;
}

const struct dt_ref_plan *dt_ref_plan_get(const struct dt_api_vm *e, unsigned i,
					   const struct dt_ref_link *l)
{
	const struct dt_ref_plan *rp = &e->ref[i];

	if (i >= e->ref_nsent || !rp->valid || rp->error < 0 || rp->bandwidth != l->bandwidth ||
	    rp->downtime_us != l->downtime_us)
		return NULL;
	return rp;
}

int dt_ref_plans_start(struct dt_api *a)
{
	int r = sd_event_add_time(a->m->event, &a->ref_timer, CLOCK_MONOTONIC, UINT64_MAX, 10000,
				  on_timer, a);

	if (r < 0)
		return r;
	(void)sd_event_source_set_enabled(a->ref_timer, SD_EVENT_OFF);
	(void)sd_event_source_set_priority(a->ref_timer, DT_API_PRIORITY);
	/* One call per VM at a time: room for every VM the registry may hold. */
	return dt_planner_new(a->m->event, a->m->config.max_vms, &a->ref_planner);
}

void dt_ref_plans_stop(struct dt_api *a)
{
	a->ref_timer = sd_event_source_disable_unref(a->ref_timer);
	a->ref_planner = dt_planner_free(a->ref_planner);
}
