/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Drain a host (GET /v1/evacuation, D-Bus Manager.Evacuate): every VM on
 * it planned at its share of the bandwidth (dt_evacuate.h: the bandwidth
 * over the migrations running at its start), with the knobs
 * each needs (dt_plan_advice.h), in the order that empties the host
 * soonest. The figures of every VM are read on the loop thread at once
 * (dt_vm_plan_gather), the plans computed on the planner thread in one
 * job; one evacuation at a time (-EBUSY beyond: the front end says 503),
 * at most DT_EVACUATION_MAX_VMS VMs (-E2BIG beyond).
 */
#pragma once

#include <json-c/json.h>

#include "dt_evacuate.h"
#include "planner.h"

#define DT_EVACUATION_MAX_VMS 256

struct dt_evacuation_options {
	double bandwidth; /* bytes/s for the whole drain */
	uint64_t max_downtime_us;
	uint32_t parallel;    /* 1 .. DT_EVACUATE_MAX_PARALLEL */
	uint64_t target_us;   /* per VM; 0: none */
	double zero_fraction; /* 0 .. 1, if zero_stated; else each VM's measured share */
	bool zero_stated;
};

enum dt_evacuation_verdict {
	DT_EVACUATION_PRECOPY,	    /* pre-copy as is meets the target */
	DT_EVACUATION_KNOBS,	    /* with the advised knob (dt_plan_knobs.advised) */
	DT_EVACUATION_OVER_TARGET,  /* no knob meets the target: the fastest that completes */
	DT_EVACUATION_CANNOT,	    /* nothing completes: it cannot go live */
	DT_EVACUATION_UNPLANNED,    /* no figures to plan with (why says) */
	_DT_EVACUATION_VERDICT_MAX,
};

struct dt_evacuation_vm {
	uint32_t id;
	char name[DT_NAME_MAX];
	uint8_t uuid[16];
	int r; /* < 0: why it could not be planned (gather's or the planner's error) */
	struct dt_vm_plan_input *in;
	struct dt_plan *plan;
	enum dt_evacuation_verdict verdict;
	int knob; /* index in plan->knobs->knobs[] of the knob it needs; -1: none */
	struct dt_evacuate_item item; /* duration, order, slot, start, running */
	double bandwidth; /* bytes/s it is planned at: its share from its start */
	char why[384];
};

struct dt_evacuation {
	struct dt_evacuation_options o;
	double per_migration_bandwidth; /* the first ones' share: bandwidth / min(parallel, VMs) */
	uint64_t generation;		/* the registry's when the figures were read */
	size_t n;
	struct dt_evacuation_vm *vms; /* in the drain's order; unplanned ones last */
	uint32_t nplanned;
	double total_s;
};

struct dt_evacuation_call;

/* r: 0 with ev (the callback owns it: dt_evacuation_free), -ECANCELED when the daemon stopped. */
typedef void (*dt_evacuation_done_t)(void *userdata, int r, struct dt_evacuation *ev);

/*
 * Read every VM's figures now and plan on the planner thread: 0 and *ret
 * (until done is called), -EINVAL on bad options, -E2BIG for more than
 * DT_EVACUATION_MAX_VMS VMs, -EBUSY when an evacuation or too many plans
 * are pending, -ENOMEM.
 */
int dt_evacuation_submit(struct dt_planner *pl, const struct dt_manager *m,
			 const struct dt_evacuation_options *o, dt_evacuation_done_t done,
			 void *userdata, struct dt_evacuation_call **ret);
/* The requester went away: done will not be called. NULL-safe. */
void dt_evacuation_call_cancel(struct dt_evacuation_call *c);
struct dt_evacuation *dt_evacuation_free(struct dt_evacuation *ev);

/* The drain as JSON (docs/openapi.json, Evacuation). */
struct json_object *dt_json_evacuation(const struct dt_evacuation *ev);
const char *dt_evacuation_verdict_name(enum dt_evacuation_verdict v);
