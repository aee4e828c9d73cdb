/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Plans on a worker thread (see planner.h). */
#include <errno.h>
#include <stdlib.h>

#include "planner.h"
#include "worker.h"

/* A plan stuck in the planner (it is bounded, but) does not hold the exit longer. */
#define PLANNER_STOP_US (5ull * 1000000)

/* A plan is worth less than a harvest: the loop gets the CPU first on a busy host. */
#define PLANNER_NICE 10

struct dt_planner {
	struct dt_worker *w;
	bool batch; /* an evacuation is queued or running */
};

struct dt_plan_call {
	struct dt_job job;
	struct dt_vm_plan_input *in;
	struct dt_plan *plan;
	int r;
	dt_plan_done_t done;
	void *userdata;
	bool cancelled;
};

static void call_run(struct dt_job *j)
{
	struct dt_plan_call *c = (struct dt_plan_call *)j;

	c->r = dt_vm_plan_input_compute(c->in, &c->plan);
}

static void call_done(struct dt_job *j)
{
	struct dt_plan_call *c = (struct dt_plan_call *)j;

	if (!j->ran) {
		dt_plan_free(c->plan);
		c->plan = NULL;
		c->r = -ECANCELED;
	}
	if (c->cancelled)
		dt_plan_free(c->plan);
	else
		c->done(c->userdata, c->r, c->r < 0 ? NULL : c->plan,
			dt_vm_plan_input_generation(c->in), dt_vm_plan_input_epoch(c->in));
	dt_vm_plan_input_free(c->in);
	free(c);
}

int dt_planner_new(sd_event *e, unsigned max_pending, struct dt_planner **ret)
{
	struct dt_planner *pl = calloc(1, sizeof(*pl));
	int r;

	if (!pl)
		return -ENOMEM;
	r = dt_worker_new(e, "dt-plan", PLANNER_NICE, max_pending, 0, &pl->w);
	if (r < 0) {
		free(pl);
		return r;
	}
	*ret = pl;
	return 0;
}

struct dt_planner *dt_planner_free(struct dt_planner *pl)
{
	if (!pl)
		return NULL;
	dt_worker_free(pl->w, PLANNER_STOP_US);
	free(pl);
	return NULL;
}

int dt_planner_submit(struct dt_planner *pl, const struct dt_vm *vm,
		      const struct dt_vm_plan_options *o, dt_plan_done_t done, void *userdata,
		      struct dt_plan_call **ret)
{
	struct dt_plan_call *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	r = dt_vm_plan_gather(vm, o, &c->in);
	if (r < 0) {
		free(c);
		return r;
	}
	c->job.run = call_run;
	c->job.done = call_done;
	c->done = done;
	c->userdata = userdata;
	r = dt_worker_submit(pl->w, &c->job, false);
	if (r < 0) {
		dt_vm_plan_input_free(c->in);
		free(c);
		return r == -EAGAIN ? -EBUSY : r;
	}
	*ret = c;
	return 0;
}

void dt_plan_call_cancel(struct dt_plan_call *c)
{
	if (c)
		c->cancelled = true;
}

int dt_planner_submit_batch(struct dt_planner *pl, struct dt_job *j)
{
	int r;

	if (pl->batch)
		return -EBUSY;
	r = dt_worker_submit(pl->w, j, false);
	if (r < 0)
		return r == -EAGAIN ? -EBUSY : r;
	pl->batch = true;
	return 0;
}

void dt_planner_batch_done(struct dt_planner *pl)
{
	pl->batch = false;
}
