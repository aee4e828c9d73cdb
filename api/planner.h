/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Migration plans off the event loop, for the front ends (REST, D-Bus): the
 * input is gathered from the VM on the loop thread (dt_vm_plan_gather, a
 * bounded read of its figures), the plan is computed on a worker thread
 * (dt_plan_compute, the costly part), and the front end's callback runs on
 * the loop thread with the result. A plan request therefore never delays
 * a harvest, whatever its parameters. At most max_pending plans
 * ([api] max_pending_plans) wait or run at once: beyond that a submit is -EBUSY (the front end says
 * so, e.g. 503), never an unbounded queue.
 */
#pragma once

#include <systemd/sd-event.h>

#include "vm_plan.h"

struct dt_planner;
struct dt_plan_call;

/*
 * r: 0 with the plan p (the callback owns it), or dt_plan_compute's error
 * (p NULL), or -ECANCELED when the planner stopped first. generation and
 * epoch: the VM's, when its figures were read.
 */
typedef void (*dt_plan_done_t)(void *userdata, int r, struct dt_plan *p, uint64_t generation,
			       uint64_t epoch);

int dt_planner_new(sd_event *e, unsigned max_pending, struct dt_planner **ret);
/* Every call still pending is finished (done with -ECANCELED if not computed). NULL-safe. */
struct dt_planner *dt_planner_free(struct dt_planner *pl);
/*
 * Read vm's figures now and plan on the thread: 0 and *ret (until done is
 * called or the call is cancelled), dt_vm_plan_gather's errors (done is
 * not called then), -EBUSY when max_pending are pending.
 */
int dt_planner_submit(struct dt_planner *pl, const struct dt_vm *vm,
		      const struct dt_vm_plan_options *o, dt_plan_done_t done, void *userdata,
		      struct dt_plan_call **ret);
/*
 * The same figures planned at up to DT_PLANNER_MAX_LINKS links in one call
 * (they are read once, on the loop): r[i] and p[i] as for one plan (the
 * callback owns the plans), or every r -ECANCELED when the planner stopped
 * first. o gives everything but the links' bandwidth and downtime.
 */
#define DT_PLANNER_MAX_LINKS 4
struct dt_plan_link {
	double bandwidth; /* bytes per second */
	uint64_t max_downtime_us;
};
typedef void (*dt_plan_links_done_t)(void *userdata, const int *r, struct dt_plan **p,
				     unsigned n, uint64_t generation, uint64_t epoch);
int dt_planner_submit_links(struct dt_planner *pl, const struct dt_vm *vm,
			    const struct dt_vm_plan_options *o, const struct dt_plan_link *links,
			    unsigned n, dt_plan_links_done_t done, void *userdata,
			    struct dt_plan_call **ret);
/* The requester went away: done will not be called. */
void dt_plan_call_cancel(struct dt_plan_call *c);

struct dt_job;
/*
 * A job of many plans (an evacuation) on the planner's thread: at most one
 * at a time, counted against the planner's max_pending too: 0, -EBUSY. Its
 * done callback must call dt_planner_batch_done.
 */
int dt_planner_submit_batch(struct dt_planner *pl, struct dt_job *j);
void dt_planner_batch_done(struct dt_planner *pl);
