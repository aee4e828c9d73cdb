/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A migration plan for a VM from its current figures: the one place that
 * turns a dt_vm into the planner's input, so that every front end (D-Bus,
 * REST) gives the same plan for the same epoch.
 */
#pragma once

#include "dt_plan.h"
#include "manager.h"

#define DT_VM_PLAN_MAX_ROUNDS 30 /* pre-copy rounds before a forced stop */

/*
 * The working-set curve holds the windows the history already covers (at
 * least one epoch), each vCPU with a dirty ring adds its own curve, memory
 * is what the VM declares (or declared when it detached). -ENODATA when no
 * epoch closed yet or no memory is declared, -EINVAL for a bad bandwidth or
 * downtime, -ENOMEM.
 */
int dt_vm_plan(const struct dt_vm *vm, double bandwidth, uint64_t max_downtime_us,
	       struct dt_plan **ret);

/* What a front end may ask beyond bandwidth and downtime (REST's query). */
struct dt_vm_plan_options {
	double bandwidth;	  /* bytes per second */
	uint64_t max_downtime_us;
	/*
	 * The share of zero pages: stated (zero_stated), else the VM's last
	 * MEMORY_SAMPLE (the VMM measures it), else none assumed.
	 */
	double zero_fraction; /* 0 .. 1 */
	bool zero_stated;
	uint32_t max_rounds;  /* 0: DT_VM_PLAN_MAX_ROUNDS */
	uint64_t target_us;   /* 0: no target */
	/* the engine and its inputs; NULL: the one the VM's VMM reported (dt_vm_plan_engine) */
	const struct dt_plan_engine_input *engine;
	/*
	 * A plan that misses its target carries advice in QEMU's knobs
	 * (dt_plan_advice.h: tens of re-plans; for the front ends, which plan
	 * on the planner thread, not for /metrics' reference plans on the loop).
	 */
	bool knobs;
};

/*
 * The engine a VM's plan predicts for by default: QEMU's rules for a VM
 * whose VMM says "qemu" (or "qemu-VERSION"), the ideal model otherwise.
 */
void dt_vm_plan_engine(const struct dt_vm *vm, struct dt_plan_engine_input *ret);

/* dt_vm_plan with options; dt_vm_plan is this with the defaults. */
int dt_vm_plan_with(const struct dt_vm *vm, const struct dt_vm_plan_options *o,
		    struct dt_plan **ret);

/*
 * The same in two steps, so that the planning runs off the event loop:
 * gather the planner's input from the VM's figures (on the loop thread,
 * which owns them; the errors of dt_vm_plan_with), then compute the plan
 * from it on any thread (dt_plan_compute's errors). The input owns what
 * it points to and records the generation and epoch it was read at.
 */
struct dt_vm_plan_input;
int dt_vm_plan_gather(const struct dt_vm *vm, const struct dt_vm_plan_options *o,
		      struct dt_vm_plan_input **ret);
int dt_vm_plan_input_compute(const struct dt_vm_plan_input *pi, struct dt_plan **ret);
/* The same, knobs too, at another bandwidth (a share of a drain's link; -EINVAL for a bad one). */
int dt_vm_plan_input_compute_share(const struct dt_vm_plan_input *pi, double bandwidth,
				   struct dt_plan **ret);
/* The same figures planned at another link (-EINVAL for a bad bandwidth or downtime). */
int dt_vm_plan_input_compute_at(const struct dt_vm_plan_input *pi, double bandwidth,
				uint64_t max_downtime_us, struct dt_plan **ret);
uint64_t dt_vm_plan_input_generation(const struct dt_vm_plan_input *pi);
uint64_t dt_vm_plan_input_epoch(const struct dt_vm_plan_input *pi);
void dt_vm_plan_input_free(struct dt_vm_plan_input *pi); /* NULL-safe */
