/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Knob advice as JSON and sentences (json_advice.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json_advice.h"

#define MiB		 1048576.0
#define GiB		 1073741824.0
#define TIMEOUT_MARGIN	 1.25 /* completion timeouts: the predicted time and a quarter */

static void add(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add_ex(o, k, v,
				  JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

static struct json_object *num(double v)
{
	return isfinite(v) ? json_object_new_double(v) : NULL;
}

static struct json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

static uint64_t mib(double bytes)
{
	return (uint64_t)ceil(bytes / MiB);
}

/* QEMU's unit for vcpu-dirty-limit and set-vcpu-dirty-limit: MB/s. */
static uint64_t mbps(double bytes)
{
	return (uint64_t)floor(bytes / 1e6);
}

static struct json_object *result(const struct dt_knob_result *r)
{
	struct json_object *o = json_object_new_object();

	add(o, "converges", json_object_new_boolean(r->converges));
	add(o, "meets_target", json_object_new_boolean(r->meets_target));
	add(o, "total_time_seconds", num(r->total_seconds));
	add(o, "downtime_seconds", num(r->downtime_seconds));
	add(o, "rounds", u64(r->rounds));
	add(o, "dirty_syncs", u64(r->dirty_syncs));
	add(o, "throttle_percent", u64(r->throttle_percent));
	add(o, "bytes_sent", u64(r->bytes_sent));
	return o;
}

void dt_knob_qemu_text(const struct dt_plan_knobs *a, const struct dt_knob_advice *k, char *buf,
		       size_t size)
{
	switch (k->knob) {
	case DT_KNOB_SWITCHOVER_BANDWIDTH:
		snprintf(buf, size, "avail-switchover-bandwidth=%.0f", k->bandwidth);
		break;
	case DT_KNOB_DIRTY_LIMIT:
		if (a->version >= 80100)
			snprintf(buf, size, "dirty-limit=on vcpu-dirty-limit=%" PRIu64,
				 mbps(k->dirty_limit_bytes_per_second));
		else
			snprintf(buf, size, "set-vcpu-dirty-limit dirty-rate=%" PRIu64,
				 mbps(k->dirty_limit_bytes_per_second));
		break;
	case DT_KNOB_AUTO_CONVERGE:
		snprintf(buf, size,
			 "auto-converge=on cpu-throttle-initial=%" PRIu32
			 " cpu-throttle-increment=%" PRIu32,
			 k->throttle_initial, k->throttle_increment);
		break;
	case DT_KNOB_POSTCOPY:
		snprintf(buf, size, "postcopy-ram=on, migrate-start-postcopy after the bulk round");
		break;
	case DT_KNOB_MAX_BANDWIDTH:
		snprintf(buf, size, "max-bandwidth=%.0f", k->bandwidth);
		break;
	case DT_KNOB_DOWNTIME_LIMIT:
		snprintf(buf, size, "downtime-limit=%" PRIu64, k->downtime_us / 1000);
		break;
	default:
		snprintf(buf, size, "?");
		break;
	}
}

void dt_knob_say(const struct dt_plan_knobs *a, const struct dt_knob_advice *k, char *buf,
		 size_t size)
{
	const struct dt_knob_result *r = &k->result;
	char set[160];
	int n;

	dt_knob_qemu_text(a, k, set, sizeof(set));
	if (r->converges)
		n = snprintf(buf, size,
			     "With %s, the migration is predicted to %s in %.3g s with %.3g s of "
			     "downtime",
			     set,
			     r->meets_target ? "complete" : "complete, but not within the target,",
			     r->total_seconds, r->downtime_seconds);
	else
		n = snprintf(buf, size, "Even with %s, pre-copy is predicted not to converge", set);
	if (n < 0 || (size_t)n >= size)
		return;
	if (k->knob == DT_KNOB_AUTO_CONVERGE && r->converges)
		n += snprintf(buf + n, size - (size_t)n, ", the guest throttled to %" PRIu32 " %%",
			      r->throttle_percent);
	if (n < 0 || (size_t)n >= size)
		return;
	switch (k->unavailable) {
	case DT_KNOB_NEEDS_QEMU_8_2:
		snprintf(buf + n, size - (size_t)n, "; QEMU 8.2 or later only (not in 7.2).");
		break;
	case DT_KNOB_NEEDS_QEMU_7_1:
		snprintf(buf + n, size - (size_t)n, "; QEMU 7.1 or later only.");
		break;
	case DT_KNOB_NEEDS_DIRTY_RING:
		snprintf(buf + n, size - (size_t)n,
			 "; needs KVM's dirty ring in the VMM (QEMU: -accel kvm,dirty-ring-size=N), "
			 "which this VM does not use.");
		break;
	case DT_KNOB_BEYOND_LINK:
		snprintf(buf + n, size - (size_t)n, " even at the link's %.0f MiB/s.",
			 a->link_bandwidth / MiB);
		break;
	case DT_KNOB_BEYOND_MAX:
		snprintf(buf + n, size - (size_t)n, " even at %.0f s.",
			 (double)DT_ADVICE_DOWNTIME_MAX_US / 1e6);
		break;
	case DT_KNOB_NO_SETTING:
		snprintf(buf + n, size - (size_t)n, " (the strongest setting tried).");
		break;
	default:
		snprintf(buf + n, size - (size_t)n, ".");
		break;
	}
}

static struct json_object *qemu(const struct dt_plan_knobs *a, const struct dt_knob_advice *k)
{
	struct json_object *o = json_object_new_object(), *caps = json_object_new_object(),
			   *params = json_object_new_object(), *cmds = json_object_new_array();

	switch (k->knob) {
	case DT_KNOB_SWITCHOVER_BANDWIDTH:
		add(params, "avail-switchover-bandwidth", u64((uint64_t)k->bandwidth));
		break;
	case DT_KNOB_DIRTY_LIMIT:
		if (a->version >= 80100) {
			add(caps, "dirty-limit", json_object_new_boolean(1));
			add(params, "vcpu-dirty-limit", u64(mbps(k->dirty_limit_bytes_per_second)));
		} else {
			char c[96];

			snprintf(c, sizeof(c),
				 "{\"execute\":\"set-vcpu-dirty-limit\",\"arguments\":{\"dirty-rate\":%" PRIu64
				 "}}",
				 mbps(k->dirty_limit_bytes_per_second));
			json_object_array_add(cmds, json_object_new_string(c));
		}
		break;
	case DT_KNOB_AUTO_CONVERGE:
		add(caps, "auto-converge", json_object_new_boolean(1));
		add(params, "cpu-throttle-initial", u64(k->throttle_initial));
		add(params, "cpu-throttle-increment", u64(k->throttle_increment));
		break;
	case DT_KNOB_POSTCOPY:
		add(caps, "postcopy-ram", json_object_new_boolean(1));
		json_object_array_add(
			cmds, json_object_new_string("{\"execute\":\"migrate-start-postcopy\"}"));
		break;
	case DT_KNOB_MAX_BANDWIDTH:
		add(params, "max-bandwidth", u64((uint64_t)k->bandwidth));
		break;
	case DT_KNOB_DOWNTIME_LIMIT:
		add(params, "downtime-limit", u64(k->downtime_us / 1000));
		break;
	default:
		break;
	}
	add(o, "capabilities", caps);
	add(o, "parameters", params);
	add(o, "commands", cmds);
	return o;
}

static struct json_object *virsh(const struct dt_knob_advice *k)
{
	char b[160];

	switch (k->knob) {
	case DT_KNOB_AUTO_CONVERGE:
		snprintf(b, sizeof(b),
			 "virsh migrate --live --auto-converge --auto-converge-initial %" PRIu32
			 " --auto-converge-increment %" PRIu32 " DOMAIN URI",
			 k->throttle_initial, k->throttle_increment);
		break;
	case DT_KNOB_POSTCOPY:
		snprintf(b, sizeof(b), "virsh migrate --live --postcopy --postcopy-after-precopy "
				       "DOMAIN URI");
		break;
	case DT_KNOB_MAX_BANDWIDTH:
		snprintf(b, sizeof(b),
			 "virsh migrate --live --bandwidth %" PRIu64
			 " DOMAIN URI (or virsh migrate-setspeed DOMAIN %" PRIu64 ")",
			 mib(k->bandwidth), mib(k->bandwidth));
		break;
	case DT_KNOB_DOWNTIME_LIMIT:
		snprintf(b, sizeof(b), "virsh migrate-setmaxdowntime DOMAIN %" PRIu64,
			 k->downtime_us / 1000);
		break;
	default:
		return NULL; /* no libvirt equivalent */
	}
	return json_object_new_string(b);
}

/* Seconds per GiB of guest memory both KubeVirt and Nova time a migration out by. */
static uint64_t timeout_per_gib(const struct dt_knob_advice *k, uint64_t memory_bytes)
{
	double gib = (double)memory_bytes / GiB, t;

	if (!k->result.converges || !(gib > 0))
		return 0;
	t = ceil(k->result.total_seconds * TIMEOUT_MARGIN / gib);
	return t < 1 ? 1 : (uint64_t)t;
}

static struct json_object *kubevirt(const struct dt_knob_advice *k, uint64_t memory_bytes)
{
	struct json_object *o = json_object_new_object();
	uint64_t t = timeout_per_gib(k, memory_bytes);
	char b[32];

	switch (k->knob) {
	case DT_KNOB_AUTO_CONVERGE:
		add(o, "allowAutoConverge", json_object_new_boolean(1));
		break;
	case DT_KNOB_POSTCOPY:
		add(o, "allowPostCopy", json_object_new_boolean(1));
		break;
	case DT_KNOB_MAX_BANDWIDTH:
		snprintf(b, sizeof(b), "%" PRIu64 "Mi", mib(k->bandwidth));
		add(o, "bandwidthPerMigration", json_object_new_string(b));
		break;
	default:
		json_object_put(o);
		return NULL;
	}
	if (t)
		add(o, "completionTimeoutPerGiB", u64(t));
	return o;
}

static struct json_object *nova(const struct dt_knob_advice *k, uint64_t memory_bytes)
{
	struct json_object *o = json_object_new_object();
	uint64_t t = timeout_per_gib(k, memory_bytes);

	switch (k->knob) {
	case DT_KNOB_AUTO_CONVERGE:
		add(o, "live_migration_permit_auto_converge", json_object_new_boolean(1));
		break;
	case DT_KNOB_POSTCOPY:
		add(o, "live_migration_permit_post_copy", json_object_new_boolean(1));
		break;
	case DT_KNOB_MAX_BANDWIDTH:
		add(o, "live_migration_bandwidth", u64(mib(k->bandwidth)));
		break;
	case DT_KNOB_DOWNTIME_LIMIT:
		add(o, "live_migration_downtime", u64(k->downtime_us / 1000));
		break;
	default:
		json_object_put(o);
		return NULL;
	}
	if (t)
		add(o, "live_migration_completion_timeout", u64(t));
	return o;
}

static struct json_object *knob(const struct dt_plan_knobs *a, const struct dt_knob_advice *k,
				uint64_t memory_bytes)
{
	struct json_object *o = json_object_new_object();
	char why[512];

	add(o, "knob", json_object_new_string(dt_knob_name(k->knob)));
	add(o, "available", json_object_new_boolean(k->unavailable == DT_KNOB_OK));
	add(o, "status", json_object_new_string(dt_knob_unavailable_name(k->unavailable)));
	add(o, "predicted", result(&k->result));
	add(o, "qemu", qemu(a, k));
	add(o, "virsh", virsh(k));
	add(o, "kubevirt", kubevirt(k, memory_bytes));
	add(o, "nova", nova(k, memory_bytes));
	dt_knob_say(a, k, why, sizeof(why));
	add(o, "why", json_object_new_string(why));
	return o;
}

struct json_object *dt_json_plan_knobs(const struct dt_plan_knobs *a, uint64_t memory_bytes)
{
	struct json_object *o = json_object_new_object(), *l = json_object_new_array();
	char v[32];

	if (a->version)
		snprintf(v, sizeof(v), "qemu-%u.%u.%u", a->version / 10000, a->version / 100 % 100,
			 a->version % 100);
	else
		snprintf(v, sizeof(v), "qemu-7.2");
	add(o, "engine", json_object_new_string(v));
	add(o, "version_assumed", json_object_new_boolean(a->version == 0));
	add(o, "dirty_ring", json_object_new_boolean(a->dirty_ring));
	add(o, "link_bandwidth_bytes_per_second", num(a->link_bandwidth));
	add(o, "as_is", result(&a->as_is));
	add(o, "advised", a->advised >= 0
				  ? json_object_new_string(dt_knob_name(a->knobs[a->advised].knob))
				  : NULL);
	for (uint32_t i = 0; i < a->nknobs; i++)
		json_object_array_add(l, knob(a, &a->knobs[i], memory_bytes));
	add(o, "options", l);
	return o;
}
