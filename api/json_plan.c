/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "json_advice.h"
#include "json_plan.h"

/*
 * Every key is a string literal added once per object: json-c need neither
 * copy it nor look for an old value (the VM view adds hundreds of keys).
 */
static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add_ex(o, k, v,
				  JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

static struct json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

/* json-c would print NaN and Infinity, which are not JSON. */
static struct json_object *num(double v)
{
	return isfinite(v) ? json_object_new_double(v) : NULL;
}

static double seconds(uint64_t us)
{
	return (double)us / 1e6;
}

static struct json_object *inputs(const struct dt_plan *p)
{
	const struct dt_plan_input *in = &p->input;
	struct json_object *o = json_object_new_object();

	add(o, "bandwidth_bytes_per_second", num(in->bandwidth));
	add(o, "downtime_seconds", num(seconds(in->max_downtime_us)));
	add(o, "memory_bytes", u64(in->memory_pages * in->page_size));
	add(o, "memory_pages", u64(in->memory_pages));
	add(o, "page_size", u64(in->page_size));
	static const char *const zero_source[_DT_PLAN_ZERO_SOURCE_MAX] = {
		[DT_PLAN_ZERO_NONE] = "none",
		[DT_PLAN_ZERO_STATED] = "stated",
		[DT_PLAN_ZERO_MEASURED] = "measured",
	};

	add(o, "zero_fraction", num(in->zero_fraction));
	add(o, "zero_fraction_source", json_object_new_string(zero_source[in->zero_source]));
	if (in->zero_source == DT_PLAN_ZERO_MEASURED) {
		add(o, "zero_sampled_pages", u64(in->zero_sampled));
		add(o, "zero_sample_age_seconds", num(seconds(in->zero_sample_age_us)));
		add(o, "zero_pages_dirtied_since_sample", u64(in->zero_dirtied_since));
	}
	add(o, "max_rounds", u64(in->max_rounds));
	add(o, "target_seconds", in->target_us ? num(seconds(in->target_us)) : NULL);
	add(o, "vcpu_curves", u64(in->nvcpus));
	return o;
}

static struct json_object *curve(const struct dt_plan *p)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < p->input.npoints; i++) {
		struct json_object *o = json_object_new_object();

		add(o, "window_seconds", num(seconds(p->curve[i].window_us)));
		add(o, "pages", u64(p->curve[i].pages));
		json_object_array_add(a, o);
	}
	return a;
}

static struct json_object *rounds(const struct dt_plan *p)
{
	struct json_object *a = json_object_new_array();

	for (uint32_t i = 0; i < p->nrounds; i++) {
		const struct dt_plan_round *d = &p->rounds[i];
		struct json_object *o = json_object_new_object();

		add(o, "index", u64(d->index));
		add(o, "start_seconds", num(seconds(d->start_us)));
		add(o, "duration_seconds", num(seconds(d->duration_us)));
		add(o, "pages", u64(d->pages));
		add(o, "bytes", u64(d->bytes));
		add(o, "dirtied_pages", u64(d->dirtied_pages));
		if (p->engine == DT_PLAN_ENGINE_QEMU)
			add(o, "throttle_percent", u64(d->throttle_percent));
		json_object_array_add(a, o);
	}
	return a;
}

/* A growing string for the sentence. */
struct text {
	char buf[1024];
	size_t len;
};

static void say(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len >= sizeof(t->buf) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len = DT_MIN(t->len + (size_t)n, sizeof(t->buf) - 1);
}

static void say_vcpus(struct text *t, const struct dt_plan_recommendation *rec)
{
	const uint32_t shown = 16;

	say(t, "vCPU%s ", rec->nthrottle == 1 ? "" : "s");
	for (uint32_t i = 0; i < rec->nthrottle && i < shown; i++)
		say(t, "%s%" PRIu32, i == 0 ? "" : i + 1 == rec->nthrottle ? " and " : ", ",
		    rec->throttle_vcpus[i]);
	if (rec->nthrottle > shown)
		say(t, " and %" PRIu32 " more", rec->nthrottle - shown);
}

char *dt_plan_why(const struct dt_plan *p)
{
	const struct dt_plan_recommendation *rec = &p->rec;
	struct text t = { .len = 0 };

	switch (p->verdict) {
	case DT_PLAN_RATE_EXCEEDS_BANDWIDTH:
		say(&t,
		    "Pre-copy does not converge: the guest dirties %.0f pages/s at the last "
		    "round's length, at least the link's %.0f pages/s, so the remainder stops "
		    "shrinking",
		    p->dirty_rate_at_last_round, p->bandwidth_pages);
		break;
	case DT_PLAN_ROUND_LIMIT:
		say(&t,
		    "Pre-copy does not converge: the remainder still shrinks, but too slowly "
		    "to fit the %.3g s downtime within %" PRIu32 " rounds",
		    seconds(p->input.max_downtime_us), p->input.max_rounds);
		break;
	default:
		if (p->meets_target)
			say(&t,
			    "Pre-copy converges in %" PRIu32 " rounds, %.3g s in all, with "
			    "%.3g s of downtime",
			    p->nrounds, p->total_seconds, p->downtime_seconds);
		else
			say(&t, "Pre-copy converges but takes %.3g s, more than the %.3g s target",
			    p->total_seconds, seconds(p->input.target_us));
		break;
	}
	if (!p->has_recommendation) {
		say(&t, "; migrate as is.");
		return strdup(t.buf);
	}
	switch (rec->advice) {
	case DT_PLAN_ADVICE_THROTTLE:
		/* Without per-vCPU curves (no dirty rings) the limit is the whole VM's. */
		if (rec->nthrottle == 0) {
			say(&t, "; limit the VM's dirtying as a whole (no per-vCPU figures without "
				"dirty rings)");
		} else {
			say(&t, "; throttle ");
			say_vcpus(&t, rec);
		}
		say(&t,
		    " to at most %.0f dirtied pages/s (%.0f bytes/s)%s: pre-copy then "
		    "converges in %" PRIu32 " rounds, %.3g s in all, with %.3g s of downtime "
		    "(post-copy would take %.3g s).",
		    rec->dirty_limit_pages_per_second,
		    rec->dirty_limit_pages_per_second * p->input.page_size,
		    rec->nthrottle ? " each" : "", rec->throttled_rounds,
		    rec->throttled_total_seconds, rec->throttled_downtime_seconds,
		    rec->postcopy_total_seconds);
		break;
	case DT_PLAN_ADVICE_POSTCOPY:
		if (rec->dirty_limit_pages_per_second > 0 && rec->nthrottle > 0) {
			say(&t, "; a dirty limit of %.0f pages/s on ",
			    rec->dirty_limit_pages_per_second);
			say_vcpus(&t, rec);
			say(&t,
			    " would leave the busiest of them %.0f%% of its rate, so use "
			    "post-copy: %.3g s in all, downtime about the device state.",
			    100 * rec->throttle_keeps, rec->postcopy_total_seconds);
		} else {
			say(&t,
			    "; no per-vCPU dirty limit makes it converge%s, so use post-copy: "
			    "%.3g s in all, downtime about the device state.",
			    p->input.target_us ? " within the target" : "",
			    rec->postcopy_total_seconds);
		}
		break;
	default:
		say(&t, "; nothing the planner can recommend helps.");
		break;
	}
	return strdup(t.buf);
}

static struct json_object *recommendation(const struct dt_plan *p)
{
	const struct dt_plan_recommendation *rec = &p->rec;
	struct json_object *o = json_object_new_object(), *v = json_object_new_array();
	char *why = dt_plan_why(p);

	add(o, "advice", json_object_new_string(dt_plan_advice_name(rec->advice)));
	add(o, "dirty_limit_pages_per_second", num(rec->dirty_limit_pages_per_second));
	add(o, "dirty_limit_bytes_per_second",
	    num(rec->dirty_limit_pages_per_second * p->input.page_size));
	for (uint32_t i = 0; i < rec->nthrottle; i++)
		json_object_array_add(v, u64(rec->throttle_vcpus[i]));
	add(o, "throttle_vcpus", v);
	add(o, "throttled_total_seconds", num(rec->throttled_total_seconds));
	add(o, "throttled_downtime_seconds", num(rec->throttled_downtime_seconds));
	add(o, "throttled_rounds", u64(rec->throttled_rounds));
	add(o, "throttle_keeps", num(rec->throttle_keeps));
	add(o, "postcopy_total_seconds", num(rec->postcopy_total_seconds));
	add(o, "why", why ? json_object_new_string(why) : NULL);
	free(why);
	return o;
}

/* The engine the plan predicts for, and what the QEMU engine adds. */
static struct json_object *engine(const struct dt_plan *p)
{
	struct json_object *o = json_object_new_object();

	add(o, "name", json_object_new_string(dt_plan_engine_name(p->engine)));
	if (p->engine != DT_PLAN_ENGINE_QEMU)
		return o;
	add(o, "dirty_syncs", u64(p->qemu.dirty_syncs));
	add(o, "bandwidth_estimate_bytes_per_second", num(p->qemu.bandwidth_estimate));
	add(o, "threshold_bytes", num(p->qemu.threshold_bytes));
	add(o, "expected_downtime_seconds", num(p->qemu.expected_downtime_s));
	add(o, "throttle_percent", u64(p->qemu.throttle_percent));
	add(o, "final_bandwidth_bytes_per_second", num(p->qemu.final_bandwidth));
	add(o, "zero_page_seconds", num(p->qemu.zero_page_us / 1e6));
	add(o, "switchover_seconds", num(p->qemu.switchover_s));
	add(o, "clear_chunk_pages", u64(p->qemu.clear_chunk_pages));
	add(o, "throughput_bytes_per_second",
	    num(p->qemu_input.throughput > 0 && p->qemu_input.throughput < p->input.bandwidth
			? p->qemu_input.throughput
			: p->input.bandwidth));
	add(o, "auto_converge", json_object_new_boolean(p->qemu_input.auto_converge));
	add(o, "cpu_throttle_initial", u64(p->qemu_input.throttle_initial));
	add(o, "cpu_throttle_increment", u64(p->qemu_input.throttle_increment));
	add(o, "throttle_trigger_threshold", u64(p->qemu_input.throttle_trigger));
	add(o, "cpu_throttle_tailslow", json_object_new_boolean(p->qemu_input.throttle_tailslow));
	add(o, "postcopy", json_object_new_boolean(p->qemu_input.postcopy));
	return o;
}

struct json_object *dt_json_vm_plan(const struct dt_vm *vm, uint64_t generation, uint64_t epoch,
				    const struct dt_plan *p)
{
	struct json_object *o = json_object_new_object();

	add(o, "engine", engine(p));

	add(o, "id", u64(vm->id));
	add(o, "name", json_object_new_string(vm->name));
	add(o, "generation", u64(generation));
	add(o, "epoch", u64(epoch));
	add(o, "epoch_seconds", num(seconds(vm->epoch_us)));
	add(o, "inputs", inputs(p));
	add(o, "curve", curve(p));
	add(o, "converges", json_object_new_boolean(p->converges));
	add(o, "meets_target", json_object_new_boolean(p->meets_target));
	add(o, "verdict", json_object_new_string(dt_plan_verdict_name(p->verdict)));
	add(o, "model", json_object_new_string(dt_plan_model_name(p)));
	add(o, "model_classes", u64(p->irm_classes));
	add(o, "rounds", rounds(p));
	add(o, "total_time_seconds", num(p->total_seconds));
	add(o, "downtime_seconds", num(p->downtime_seconds));
	add(o, "bytes_sent", u64(p->bytes_sent));
	add(o, "final_pages", u64(p->final_pages));
	add(o, "dirty_rate_at_last_round_pages_per_second", num(p->dirty_rate_at_last_round));
	add(o, "bandwidth_pages_per_second", num(p->bandwidth_pages));
	add(o, "advice", json_object_new_string(dt_plan_advice_name(
				 p->has_recommendation ? p->rec.advice : DT_PLAN_ADVICE_NONE)));
	if (p->has_recommendation)
		add(o, "recommendation", recommendation(p));
	if (p->knobs)
		add(o, "knobs",
		    dt_json_plan_knobs(p->knobs, p->input.memory_pages * p->input.page_size));
	return o;
}
