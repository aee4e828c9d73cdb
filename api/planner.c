/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Plans on a worker thread (see planner.h). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "dt_plant.h"
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
	unsigned n; /* plans: 1 at the gathered link (done), or n at links (links_done) */
	struct dt_plan_link links[DT_PLANNER_MAX_LINKS];
	struct dt_plan *plan[DT_PLANNER_MAX_LINKS];
	int r[DT_PLANNER_MAX_LINKS];
	dt_plan_done_t done;
	dt_plan_links_done_t links_done;
	void *userdata;
	bool cancelled;
};

static void call_run(struct dt_job *j)
{
	struct dt_plan_call *c = (struct dt_plan_call *)j;

	if (dt_plant("plan-slow"))
		sleep(3); /* a planner starved of CPU (sanitizer builds only) */

	if (!c->links_done) {
		c->r[0] = dt_vm_plan_input_compute(c->in, &c->plan[0]);
		return;
	}
	for (unsigned i = 0; i < c->n; i++)
		c->r[i] = dt_vm_plan_input_compute_at(c->in, c->links[i].bandwidth,
						      c->links[i].max_downtime_us, &c->plan[i]);
}

static void call_done(struct dt_job *j)
{
	struct dt_plan_call *c = (struct dt_plan_call *)j;
	uint64_t gen = dt_vm_plan_input_generation(c->in), epoch = dt_vm_plan_input_epoch(c->in);

	for (unsigned i = 0; i < c->n; i++) {
		if (!j->ran) {
			dt_plan_free(c->plan[i]);
			c->plan[i] = NULL;
			c->r[i] = -ECANCELED;
		}
		if (c->cancelled || c->r[i] < 0) {
			dt_plan_free(c->plan[i]);
			c->plan[i] = NULL;
		}
	}
	if (!c->cancelled && c->links_done)
		c->links_done(c->userdata, c->r, c->plan, c->n, gen, epoch);
	else if (!c->cancelled)
		c->done(c->userdata, c->r[0], c->plan[0], gen, epoch);
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

/* Gather vm's figures into c and queue it (c is freed on failure). */
static int submit(struct dt_planner *pl, const struct dt_vm *vm,
		  const struct dt_vm_plan_options *o, struct dt_plan_call *c,
		  struct dt_plan_call **ret)
{
	int r = dt_vm_plan_gather(vm, o, &c->in);

	if (r < 0) {
		free(c);
		return r;
	}
	c->job.run = call_run;
	c->job.done = call_done;
	r = dt_worker_submit(pl->w, &c->job, false);
	if (r < 0) {
		dt_vm_plan_input_free(c->in);
		free(c);
		return r == -EAGAIN ? -EBUSY : r;
	}
	*ret = c;
	return 0;
}

int dt_planner_submit(struct dt_planner *pl, const struct dt_vm *vm,
		      const struct dt_vm_plan_options *o, dt_plan_done_t done, void *userdata,
		      struct dt_plan_call **ret)
{
	struct dt_plan_call *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->n = 1;
	c->done = done;
	c->userdata = userdata;
	return submit(pl, vm, o, c, ret);
}

int dt_planner_submit_links(struct dt_planner *pl, const struct dt_vm *vm,
			    const struct dt_vm_plan_options *o, const struct dt_plan_link *links,
			    unsigned n, dt_plan_links_done_t done, void *userdata,
			    struct dt_plan_call **ret)
{
	struct dt_plan_call *c;

	if (n == 0 || n > DT_PLANNER_MAX_LINKS)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->n = n;
	for (unsigned i = 0; i < n; i++)
		c->links[i] = links[i];
	c->links_done = done;
	c->userdata = userdata;
	return submit(pl, vm, o, c, ret);
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
