/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pre-copy migration planner: pure code, no I/O, no globals, no logging.
 *
 * From a measured working-set curve D(T) (distinct pages dirtied in a
 * window of T), it predicts what pre-copy live migration will do at a given
 * bandwidth and maximum downtime: converges or not, round by round, total
 * time, bytes sent and the final downtime. When it does not converge (or
 * misses the target time) it recommends the mildest per-vCPU dirty limit
 * that makes it converge within the target time, or post-copy.
 *
 * The model (DESIGN.md section 6), with b = bandwidth / page size pages/s:
 *
 *   round 0 sends all memory but the zero pages: t_0 = M (1 - z) / b;
 *   round i sends R_i, the pages dirty when round i-1 ended: t_i = R_i / b;
 *   after each round, if R_{i+1} pages fit in bandwidth x max downtime, the
 *   VM stops and the remainder is copied: downtime = R_{i+1} / b; if the
 *   round limit is reached first, the stop-and-copy is forced anyway
 *   (downtime above the maximum: it does not converge).
 *
 * A page sent is clean until written again (QEMU with KVM's manual dirty-log
 * clearing: a page's dirty bit is cleared just before it is sent), so a page
 * of the send list that is written before its turn in the same round is
 * sent once, with its new content: R_{i+1} is the pages written during
 * round i after their send, plus those off the list written at all.
 *
 * Two models compute it. The independent-reference model (IRM), used
 * whenever it fits: every page is written as a Poisson process of its own
 * rate, pages independent, so D(T) = sum_k n_k (1 - exp(-r_k T)) over rate
 * classes; n_k (up to 63 rates at least 1.2x apart, from a third of a
 * write per longest window to 30 per epoch) by non-negative least squares
 * on the relative error at every point, all of them adding up to memory.
 * It is used when it matches every point within 4 %; pre-copy is then
 * followed per class and per part of memory in expectation: a page dirty
 * at a round's start (on its list) is dirty at its end if written after
 * its send, a clean one if written at all, the list being sent in page
 * order (a part's list pages in its share of the round). Where each class
 * lies comes from the layout by window (`parts`: a class is spread like
 * the pages dirtied within the window closest to its time between writes)
 * or, failing that, equal parts. This captures that a round's
 * list is rich in hot pages, that hot pages early in memory have longest
 * to be written again, and windows shorter than an epoch.
 *
 * A guest the IRM does not describe (a sweep, whose D(T) is a straight
 * line that stops at the working set) is planned on the curve itself:
 * round 0 leaves each part's D(t_0 - its send time) (the layout's longest window, or
 * pages spread evenly); a later round leaves D(t_i) less the writes that
 * landed on list pages before their send, the list pages being those
 * written last in the previous round and the guest taken to rewrite its
 * pages oldest first, so only an overlap of the two rounds' writes (D(a) +
 * D(b) - D(a + b)) larger than the previous round's pages off the list
 * reaches the list.
 *
 * With an activity profile the plan runs in activity time. The IRM inverts
 * each epoch's activity from its distinct pages through the fitted classes
 * (a burst that rewrites its pages counts each once) and refits on the
 * inverted profile.
 *
 * The remainder is random (a sum of pages each dirty or not): pre-copy
 * stops at the first round whose remainder fits, so every round is weighed
 * by the chance the migration stops there (the remainder taken as normal,
 * its variance the classes' Bernoulli variances, or the mean for the
 * curve model); the figures are the means over that distribution, the
 * verdict whether it stops within the round limit more often than not, the
 * rounds shown the mean remainder's up to the median stop.
 *
 * D(T) between points is interpolated piecewise linearly in log T (exact
 * at the points, concave-friendly); below the first point (one epoch)
 * linearly through the origin; beyond the last point it grows at the last
 * segment's rate (pages per second), never above memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_PLAN_MAX_POINTS  64
#define DT_PLAN_MAX_ROUNDS  1000
#define DT_PLAN_MAX_VCPUS   4096
#define DT_PLAN_MAX_ACTIVITY (1u << 16)
#define DT_PLAN_MAX_PARTS   64 /* parts of memory a layout by window describes */
#define DT_PLAN_PHASES	    512 /* start moments a plan with an activity profile averages over */

/* One point of a working-set curve: `pages` distinct pages dirtied in `window_us`. */
struct dt_plan_point {
	uint64_t window_us;
	uint64_t pages;
};

/* The curve of the pages one vCPU dirtied (its dirty ring's entries). */
struct dt_plan_vcpu {
	uint32_t vcpu;
	size_t npoints;
	const struct dt_plan_point *points;
};

enum dt_plan_interp {
	DT_PLAN_INTERP_LOG,    /* piecewise linear in log T (default) */
	DT_PLAN_INTERP_LINEAR, /* piecewise linear in T */
	_DT_PLAN_INTERP_MAX,
};

enum dt_plan_zero_source {
	DT_PLAN_ZERO_NONE, /* none assumed: no sample, none stated */
	DT_PLAN_ZERO_STATED, /* the caller's */
	DT_PLAN_ZERO_MEASURED, /* the VMM's sample of guest RAM */
	_DT_PLAN_ZERO_SOURCE_MAX,
};

struct dt_plan_input {
	const struct dt_plan_point *curve; /* ascending windows, non-decreasing pages */
	size_t npoints;			   /* 1 .. DT_PLAN_MAX_POINTS */
	uint64_t memory_pages;
	uint32_t page_size;	  /* bytes, power of two */
	double bandwidth;	  /* bytes per second, finite, > 0 */
	uint64_t max_downtime_us; /* > 0 */
	double zero_fraction;	  /* 0 .. 1: share of memory that is zero pages (sent for free) */
	/* where zero_fraction came from (echoed in the plan, not planned with) */
	enum dt_plan_zero_source zero_source;
	uint64_t zero_sampled;	    /* DT_PLAN_ZERO_MEASURED: pages in the VMM's sample */
	uint64_t zero_sample_age_us; /* ... and how old it was */
	uint64_t zero_dirtied_since; /* ... pages first dirtied since (taken off the zero pages) */
	uint32_t max_rounds; /* pre-copy rounds before a forced stop, 1 .. DT_PLAN_MAX_ROUNDS */
	uint64_t target_us;  /* time the migration should take at most; 0: none */
	const struct dt_plan_vcpu *vcpus; /* optional per-vCPU curves */
	uint32_t nvcpus;
	enum dt_plan_interp interp;
	/*
	 * Optional activity profile: distinct pages dirtied in each of the
	 * last `nactivity` epochs of activity_epoch_us, oldest first (the
	 * daemon's per-epoch history). With it the plan is phase-aware: a
	 * round's window counts as long as the activity it spans (a window
	 * caught in a burst dirties like a longer one, one in a lull like a
	 * shorter one: D(T) is taken in activity time, T = its length times
	 * the window's mean activity over the profile's mean), the migration is
	 * planned from DT_PLAN_PHASES start moments spread over the profile,
	 * which repeats, and the figures are their means (rounds: the start
	 * closest to the mean), the verdict the majority's. This captures
	 * that pre-copy of a bursty guest stops at the first round that ends
	 * in a lull. The dirty-limit search stays on the mean curve.
	 */
	const uint64_t *activity;
	size_t nactivity; /* 0 (none), or 2 .. DT_PLAN_MAX_ACTIVITY */
	uint64_t activity_epoch_us;
	/*
	 * The curve is D(T) averaged over every end moment of the activity
	 * profile, not D(T) as of its end (what the daemon measures now).
	 */
	bool curve_is_mean;
	/*
	 * Optional layout by window:
	 * memory cut into `nparts` parts in page (send) order, part b being
	 * pages [part_bounds[b], part_bounds[b + 1]) (nparts + 1 bounds, the
	 * first 0, the last memory_pages, non-decreasing; NULL: equal parts);
	 * parts[b * npoints + j] = distinct pages of part b dirtied within the
	 * curve's window j. It tells where hot and cold pages lie, which sets
	 * when each is sent in every round; the daemon cuts at quantiles of
	 * the dirtied pages, so that a small working set is resolved too.
	 */
	const uint64_t *parts;
	const uint64_t *part_bounds;
	uint32_t nparts; /* 0 (none), or 1 .. DT_PLAN_MAX_PARTS */
	bool no_irm; /* plan with the curve model even where the IRM fits */
};

struct dt_plan_round {
	uint32_t index;	   /* 0 = the full copy */
	uint64_t start_us; /* from the start of the migration */
	uint64_t duration_us;
	uint64_t pages; /* sent */
	uint64_t bytes;
	uint64_t dirtied_pages; /* dirty when the round ends: what the next round sends */
	uint32_t throttle_percent; /* engine QEMU: auto-converge's CPU throttle during the round */
};

enum dt_plan_verdict {
	DT_PLAN_CONVERGES,
	DT_PLAN_RATE_EXCEEDS_BANDWIDTH, /* the remainder stopped shrinking: D(t)/t >= b */
	DT_PLAN_ROUND_LIMIT,		/* still shrinking, too slowly for max_rounds */
	_DT_PLAN_VERDICT_MAX,
};

/*
 * What to do when pre-copy does not converge within the target:
 * THROTTLE with the mildest per-vCPU dirty limit that makes it converge
 * within the target; POSTCOPY when no limit does (round 0 alone takes
 * longer than the target, or the link cannot carry even a nearly idle
 * guest), or when the limit would leave the busiest throttled vCPU less
 * than a quarter of its dirty rate: post-copy then costs the guest less
 * (one pass of remote page faults over the memory-sized transfer, total
 * time memory / bandwidth, downtime about the device state) than a throttle
 * that deep held for the whole migration. Post-copy has no way back if the
 * link fails, which is why a moderate throttle is preferred.
 */
enum dt_plan_advice {
	DT_PLAN_ADVICE_NONE,	 /* converges within the target: migrate */
	DT_PLAN_ADVICE_THROTTLE, /* apply the per-vCPU dirty limit */
	DT_PLAN_ADVICE_POSTCOPY, /* switch to (or start with) post-copy */
	_DT_PLAN_ADVICE_MAX,
};

struct dt_plan_recommendation {
	enum dt_plan_advice advice;
	/*
	 * THROTTLE: the mildest (largest) per-vCPU dirty limit, in pages per
	 * second, with which pre-copy converges within the target time (or
	 * within max_rounds when there is no target) even with 10 % less
	 * bandwidth than given (a margin: the exact edge is knife-sharp). The vCPUs to throttle
	 * are those whose dirty rate (their curve at its first window) exceeds
	 * it. 0 when no limit helps.
	 */
	double dirty_limit_pages_per_second;
	uint32_t *throttle_vcpus;
	uint32_t nthrottle;
	/* The plan's figures with the limit applied. */
	double throttled_total_seconds;
	double throttled_downtime_seconds;
	uint32_t throttled_rounds;
	/* Post-copy: every non-zero page sent once, downtime ~ device state only. */
	double postcopy_total_seconds;
	/* The rate the busiest throttled vCPU keeps, as a share of its own (0..1). */
	double throttle_keeps;
};

/*
 * The migration engine a plan predicts for. IDEAL is the model above (a
 * page sent is clean until written again, the stop-and-copy at the given
 * bandwidth, zero pages free). QEMU follows QEMU's own pre-copy rules
 * (plan/engine_qemu.c).
 */
enum dt_plan_engine {
	DT_PLAN_ENGINE_IDEAL,
	DT_PLAN_ENGINE_QEMU,
	_DT_PLAN_ENGINE_MAX,
};

/*
 * What the QEMU engine needs beyond dt_plan_input: QEMU's migration
 * parameters (migrate-set-parameters) and figures of the host that the
 * daemon cannot measure (stated inputs; 0 takes the default named).
 */
struct dt_plan_qemu {
	uint32_t version;	 /* major * 10000 + minor * 100 + micro; 0: unknown (7.2's rules) */
	double final_bandwidth;	 /* bytes/s of the stop-and-copy (QEMU lifts max-bandwidth
				  * for it): the link's speed; 0: DT_PLAN_QEMU_FINAL_BANDWIDTH */
	double zero_page_us;	 /* CPU time one zero page costs in the bulk round; 0: default */
	double throughput;	 /* bytes/s the host sends normal pages at when max-bandwidth
				  * does not hold it back (CPU-bound: a loaded host sends
				  * below max-bandwidth); 0: max-bandwidth */
	double setup_s;		 /* before the first page is sent */
	double switchover_s;	 /* fixed part of the downtime (last sync, device state); <0: 0 */
	uint64_t clear_chunk_pages; /* pages per dirty-log clear (clear-bitmap-shift); 0: 1 GiB */
	bool auto_converge;
	uint32_t throttle_initial;   /* cpu-throttle-initial, %; 0: 20 */
	uint32_t throttle_increment; /* cpu-throttle-increment, %; 0: 10 */
	uint32_t throttle_max;	     /* max-cpu-throttle, %; 0: 99 */
	uint32_t throttle_trigger;   /* throttle-trigger-threshold, % (1 .. 100); 0: 50 */
	bool throttle_tailslow;	     /* cpu-throttle-tailslow */
	bool postcopy;		     /* plan post-copy (postcopy-ram) after the bulk round */
};

#define DT_PLAN_QEMU_FINAL_BANDWIDTH 1.25e9 /* 10 Gbit/s */
/*
 * Measured by the real-QEMU grid on an idle host (bench/README.md, issue 14):
 * a zero page's median CPU time in the bulk round (1.85 us), and QEMU's
 * smallest downtimes (2 ms: the last sync and the device state).
 */
#define DT_PLAN_QEMU_ZERO_PAGE_US    1.8
#define DT_PLAN_QEMU_SWITCHOVER_S    0.002
#define DT_PLAN_QEMU_HORIZON_S	     600.0 /* a pre-copy not done by then does not converge */

struct dt_plan_engine_input {
	enum dt_plan_engine engine;
	struct dt_plan_qemu qemu; /* engine QEMU only */
};

/* What the QEMU engine predicts beyond the common figures. */
struct dt_plan_qemu_result {
	uint32_t dirty_syncs;		/* query-migrate's dirty-sync-count at the end */
	double bandwidth_estimate;	/* bytes/s, QEMU's estimate at the switch-over */
	double threshold_bytes;		/* bandwidth estimate x downtime-limit */
	double expected_downtime_s;	/* QEMU's expected-downtime when it last synced */
	uint32_t throttle_percent;	/* auto-converge's CPU throttle at the end */
	double final_bandwidth;		/* the inputs as used (defaults filled in) */
	double zero_page_us;
	double switchover_s;
	uint64_t clear_chunk_pages;
};

struct dt_plan {
	enum dt_plan_engine engine;
	struct dt_plan_qemu qemu_input;	 /* engine QEMU: the inputs, defaults filled in */
	struct dt_plan_qemu_result qemu; /* engine QEMU */
	struct dt_plan_input input; /* echoed; the pointers point at the copies below */
	struct dt_plan_point curve[DT_PLAN_MAX_POINTS];
	bool converges;
	bool meets_target; /* converges and total time <= target (or no target) */
	enum dt_plan_verdict verdict;
	uint32_t nrounds; /* pre-copy rounds (the stop-and-copy not counted) */
	struct dt_plan_round *rounds;
	uint64_t final_pages; /* copied while stopped */
	double total_seconds; /* pre-copy rounds + downtime */
	double downtime_seconds;
	uint64_t bytes_sent; /* all rounds + the stop-and-copy */
	/* Dirty rate (pages/s) at the last round's length vs bandwidth (pages/s). */
	double dirty_rate_at_last_round;
	double bandwidth_pages;
	uint32_t irm_classes; /* rate classes of the fitted IRM; 0: planned on the curve model */
	bool has_recommendation; /* set when !meets_target */
	struct dt_plan_recommendation rec;
	/* Advice in QEMU's knobs (dt_plan_advice.h), set by whoever asks for it; freed with the plan. */
	struct dt_plan_knobs *knobs;
};

/*
 * Plan. Returns 0 and *ret (free with dt_plan_free), -EINVAL on bad input
 * (no/too many points, non-monotone curve, bandwidth not finite and > 0,
 * zero downtime, zero fraction outside 0..1, bad page size, round limit),
 * or -ENOMEM. The vCPU curves and the layout are read during the call only.
 */
int dt_plan_compute(const struct dt_plan_input *in, struct dt_plan **ret);
struct dt_plan *dt_plan_free(struct dt_plan *p);

/* D(T) as the planner interpolates it (pages); -EINVAL on a bad curve. */
int dt_plan_curve_at(const struct dt_plan_point *curve, size_t n, enum dt_plan_interp interp,
		     uint64_t memory_pages, double window_us, double *ret_pages);

const char *dt_plan_verdict_name(enum dt_plan_verdict v);
const char *dt_plan_engine_name(enum dt_plan_engine e);
/* "ideal" or "qemu" (also "qemu-7.2", "qemu-8.0.1": the version); -EINVAL otherwise. */
int dt_plan_engine_parse(const char *s, enum dt_plan_engine *e, uint32_t *version);

/*
 * Plan for an engine: IDEAL is dt_plan_compute; QEMU dt_plan_qemu_compute.
 * Same returns as dt_plan_compute.
 */
int dt_plan_engine_compute(const struct dt_plan_input *in, const struct dt_plan_engine_input *e,
			   struct dt_plan **ret);
/*
 * QEMU's pre-copy (plan/engine_qemu.c) on the curve of `in`: the vCPU curves,
 * activity profile and layout are not used. -EINVAL on bad input.
 */
int dt_plan_qemu_compute(const struct dt_plan_input *in, const struct dt_plan_qemu *q,
			 struct dt_plan **ret);
const char *dt_plan_advice_name(enum dt_plan_advice a);
/* "independent-reference" or "curve": the model the plan was made with. */
const char *dt_plan_model_name(const struct dt_plan *p);
