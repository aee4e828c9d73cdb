/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Advice in the operator's own knobs: when pre-copy does not converge, or
 * misses the target, what to set in QEMU's migration parameters and
 * capabilities, each with the predicted result of setting it, that is the
 * plan made again with the knob applied (pure code, no I/O, no logging).
 *
 * Every knob is re-planned with QEMU's rules (dt_plan_qemu_compute, the
 * version asked or 7.2's), whatever engine the plan itself used: the
 * knobs are QEMU's, and only that engine models what they do.
 *
 *  - auto-converge (cpu-throttle-initial, cpu-throttle-increment): the
 *    mildest pair of a fixed ladder (QEMU's defaults 20/10 first) whose
 *    plan meets the target with DT_ADVICE_MARGIN; QEMU's throttle schedule (the engine follows
 *    migration_trigger_throttle and mig_throttle_guest_down of QEMU 7.2:
 *    at a dirty-log sync at least 1 s after the last check, the pages
 *    dirtied in the period above half (throttle-trigger-threshold) of the
 *    bytes sent in it count once; every second such period (the count
 *    starts over after each) throttles: first to initial, then by
 *    increment, up to max-cpu-throttle);
 *  - dirty-limit (a per-vCPU cap in MB/s; QEMU >= 7.1 set-vcpu-dirty-limit,
 *    >= 8.1 the dirty-limit capability with vcpu-dirty-limit): the
 *    largest cap that meets the target, modelled as D(T) capped at
 *    vCPUs x cap x T; it needs KVM's dirty ring in the VMM;
 *  - max-bandwidth: the least bandwidth that meets the target, up to the
 *    link's speed (the engine's final_bandwidth, a stated input);
 *  - downtime-limit: the least limit that meets the target, up to
 *    DT_ADVICE_DOWNTIME_MAX_US;
 *  - avail-switchover-bandwidth (QEMU >= 8.2): the link's speed, so
 *    that QEMU switches over when the rest fits at that speed rather
 *    than at its estimate of max-bandwidth: the plan with downtime-limit
 *    x link / max-bandwidth as the switch-over threshold (the stop and
 *    copy itself is at the link's speed in every plan);
 *  - postcopy-ram: the switch after the bulk round.
 * A knob that the VMM cannot apply (dirty ring absent, QEMU too old) is
 * still predicted and marked unavailable with the reason's code.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dt_plan.h"

#define DT_ADVICE_DOWNTIME_MAX_US (30ull * 1000000)
/*
 * A knob's setting is chosen when its plan completes within this share of
 * the target (the QEMU engine's error against real migrations,
 * bench/qemu-plan-grid.md, is tens of per cent); without a target, when
 * it converges at all.
 */
#define DT_ADVICE_MARGIN 0.5

enum dt_knob {
	DT_KNOB_SWITCHOVER_BANDWIDTH,
	DT_KNOB_DIRTY_LIMIT,
	DT_KNOB_AUTO_CONVERGE,
	DT_KNOB_POSTCOPY,
	DT_KNOB_MAX_BANDWIDTH,
	DT_KNOB_DOWNTIME_LIMIT,
	_DT_KNOB_MAX,
};

enum dt_knob_unavailable {
	DT_KNOB_OK,
	DT_KNOB_NEEDS_QEMU_8_2, /* avail-switchover-bandwidth */
	DT_KNOB_NEEDS_QEMU_7_1, /* set-vcpu-dirty-limit */
	DT_KNOB_NEEDS_DIRTY_RING, /* dirty-limit: the VMM uses the dirty bitmap */
	DT_KNOB_BEYOND_LINK,	/* max-bandwidth: even the link's speed does not do */
	DT_KNOB_BEYOND_MAX,	/* downtime-limit: not within DT_ADVICE_DOWNTIME_MAX_US */
	DT_KNOB_NO_SETTING,	/* auto-converge, dirty-limit: no setting tried meets the target */
	_DT_KNOB_UNAVAILABLE_MAX,
};

/* The predicted result of a plan (the knob's, or the plan's as is). */
struct dt_knob_result {
	bool converges, meets_target;
	double total_seconds, downtime_seconds;
	uint32_t rounds, dirty_syncs;
	uint32_t throttle_percent; /* auto-converge's CPU throttle at the end */
	uint64_t bytes_sent;
};

struct dt_knob_advice {
	enum dt_knob knob;
	enum dt_knob_unavailable unavailable; /* DT_KNOB_OK: the VMM can apply it */
	/* the setting: what the knob is set to */
	double bandwidth;		     /* bytes/s: MAX_BANDWIDTH, SWITCHOVER_BANDWIDTH */
	uint64_t downtime_us;		     /* DOWNTIME_LIMIT */
	uint32_t throttle_initial;	     /* AUTO_CONVERGE, % */
	uint32_t throttle_increment;	     /* AUTO_CONVERGE, % */
	double dirty_limit_bytes_per_second; /* DIRTY_LIMIT, per vCPU */
	struct dt_knob_result result;	     /* the plan with the setting applied */
};

struct dt_plan_knobs {
	uint32_t version;     /* the QEMU version the knobs are for (0: 7.2's rules) */
	bool dirty_ring;      /* the VMM collects with KVM's dirty ring */
	uint32_t nvcpus;
	double link_bandwidth; /* bytes/s, the stop-and-copy's (stated input) */
	struct dt_knob_result as_is; /* QEMU's rules without any knob */
	uint32_t nknobs;
	struct dt_knob_advice knobs[_DT_KNOB_MAX]; /* in the order of enum dt_knob */
	/*
	 * The one advised: the first available knob, in the order of enum
	 * dt_knob (least cost to the guest and the operator's limits first),
	 * whose plan meets the target; -1: none does.
	 */
	int advised;
};

/*
 * Advise for the plan input `in` (its curve, memory, bandwidth, downtime,
 * zero fraction and target), the QEMU inputs of e (e->engine IDEAL: QEMU
 * 7.2's defaults), whether the VMM uses a dirty ring and its vCPUs.
 * Returns 0 and *ret (free()), -EINVAL on bad input, -ENOMEM.
 */
int dt_plan_advise(const struct dt_plan_input *in, const struct dt_plan_engine_input *e,
		   bool dirty_ring, uint32_t nvcpus, struct dt_plan_knobs **ret);

const char *dt_knob_name(enum dt_knob k);
const char *dt_knob_unavailable_name(enum dt_knob_unavailable u);
