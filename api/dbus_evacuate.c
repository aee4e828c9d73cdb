/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Manager.Evacuate(t bandwidth, t max_downtime_usec, u parallel) ->
 * (d total_seconds, a(usssdds) vms): REST's /v1/evacuation over D-Bus.
 * Each VM, in the drain's order (unplanned ones last): id, name, verdict,
 * the knob it needs ("" none), start and duration in seconds (-1 when not
 * planned), and why. Replied to when the planner thread has planned it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "dbus_int.h"
#include "dt_plan_advice.h"
#include "dt_util.h"
#include "evacuation.h"
#include "url.h"

/* A call waiting for the planner, for at most [api] plan_timeout (as REST's). */
struct bus_evacuation {
	sd_bus_message *msg;
	struct dt_evacuation_call *call;
	sd_event_source *deadline;
	uint64_t timeout_us;
};

static void bus_evacuation_free(struct bus_evacuation *be)
{
	sd_event_source_disable_unref(be->deadline);
	sd_bus_message_unref(be->msg);
	free(be);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bus_evacuation *be = userdata;

	(void)s;
	(void)usec;
	dt_evacuation_call_cancel(be->call);
	(void)sd_bus_reply_method_errorf(be->msg, SD_BUS_ERROR_TIMEOUT,
					 "the evacuation was not computed within [api] plan_timeout "
					 "(%" PRIu64 " ms): the planner thread is busy; try again",
					 be->timeout_us / 1000);
	bus_evacuation_free(be);
	return 0;
}

static void on_done(void *userdata, int r, struct dt_evacuation *ev)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct bus_evacuation *be = userdata;
	sd_bus_message *msg = be->msg;

	if (r < 0) {
		sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_FAILED, "the daemon is stopping");
		goto out;
	}
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "d", ev->total_s);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(usssdds)");
	for (size_t i = 0; r >= 0 && i < ev->n; i++) {
		const struct dt_evacuation_vm *v = &ev->vms[i];
		bool planned = v->item.duration_s >= 0;
		const char *knob = v->plan && v->plan->knobs && v->knob >= 0
					   ? dt_knob_name(v->plan->knobs->knobs[v->knob].knob)
					   : "";

		r = sd_bus_message_append(reply, "(usssdds)", v->id, v->name,
					  dt_evacuation_verdict_name(v->verdict), knob,
					  planned ? v->item.start_s : -1.0,
					  planned ? v->item.duration_s : -1.0, v->why);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	if (r < 0)
		sd_bus_reply_method_errno(msg, r, NULL);
out:
	dt_evacuation_free(ev);
	bus_evacuation_free(be);
}

int dt_bus_method_evacuate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct dt_bus *b = userdata;
	struct bus_evacuation *be;
	uint64_t bandwidth, downtime;
	uint32_t parallel;
	int r;

	r = sd_bus_message_read(msg, "ttu", &bandwidth, &downtime, &parallel);
	if (r < 0)
		return r;
	if (!dt_bus_link_valid(bandwidth, downtime) || parallel < 1 ||
	    parallel > DT_EVACUATE_MAX_PARALLEL)
		return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
					 "bandwidth must be at least %u bytes/s (1 Mbit/s), max "
					 "downtime from %u us (1 ms) to 1 h, parallel 1 to %u",
					 DT_PLAN_BANDWIDTH_MIN, DT_PLAN_DOWNTIME_MIN_US,
					 DT_EVACUATE_MAX_PARALLEL);
	if (!b->planner)
		return -ESHUTDOWN;
	const struct dt_evacuation_options o = {
		.bandwidth = (double)bandwidth,
		.max_downtime_us = downtime,
		.parallel = parallel,
	};
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->msg = sd_bus_message_ref(msg);
	be->timeout_us = b->m->config.api_plan_timeout_us;
	r = dt_evacuation_submit(b->planner, b->m, &o, on_done, be, &be->call);
	if (r < 0)
		bus_evacuation_free(be);
	else if (sd_event_add_time_relative(b->m->event, &be->deadline, CLOCK_MONOTONIC,
					    be->timeout_us, 10000, on_deadline, be) < 0)
		be->deadline = NULL; /* no deadline: the planner's own bounds still hold */
	if (r == -EBUSY)
		return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					 "an evacuation or %u plans are being computed: try again",
					 b->m->config.api_max_pending_plans);
	if (r == -E2BIG)
		return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					 "the host has more than the %u VMs one evacuation plans",
					 DT_EVACUATION_MAX_VMS);
	if (r < 0)
		return r;
	return 1; /* the reply follows from on_done or on_deadline */
}
