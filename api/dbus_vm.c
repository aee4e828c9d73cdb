/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One D-Bus object per VM in the registry, at DT_BUS_VM_PREFIX/<id> (the
 * decimal id escaped with sd_bus_path_encode()), served from a fallback
 * vtable whose find callback looks the VM up: an object exists exactly as
 * long as its VM. Figures are computed with the same stats calls and the
 * same arithmetic as the REST views, so both agree for the same epoch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "vm_query.h"
#include "dbus_int.h"
#include "dt_util.h"
#include "json_advice.h"
#include "planner.h"
#include "vm_plan.h"

int dt_bus_vm_path(const struct dt_vm *vm, char **ret)
{
	char id[16];

	snprintf(id, sizeof(id), "%u", vm->id);
	return sd_bus_path_encode(DT_BUS_VM_PREFIX, id, ret);
}

static struct dt_vm *vm_by_id(struct dt_manager *m, uint64_t id)
{
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->id == id)
			return vm;
	return NULL;
}

int dt_bus_vm_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
		   void **ret_found, sd_bus_error *ret_error)
{
	struct dt_bus *b = userdata;
	_cleanup_free_ char *ext = NULL, *canonical = NULL;
	struct dt_vm *vm;
	uint64_t id;
	int r;

	r = sd_bus_path_decode(path, DT_BUS_VM_PREFIX, &ext);
	if (r <= 0)
		return r;
	if (dt_parse_u64(ext, 1, UINT32_MAX, &id) < 0)
		return 0;
	vm = vm_by_id(b->m, id);
	if (!vm)
		return 0;
	/* One path per VM: "_31" only, not other spellings that decode to "1". */
	r = dt_bus_vm_path(vm, &canonical);
	if (r < 0)
		return r;
	if (strcmp(canonical, path) != 0)
		return 0;
	*ret_found = vm;
	return 1;
}

int dt_bus_vm_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
			sd_bus_error *ret_error)
{
	struct dt_bus *b = userdata;
	char **nodes = calloc(b->m->nvms + 1, sizeof(*nodes));
	size_t n = 0;
	int r;

	if (!nodes)
		return -ENOMEM;
	for (struct dt_vm *vm = b->m->vms; vm && n < b->m->nvms; vm = vm->next) {
		r = dt_bus_vm_path(vm, &nodes[n]);
		if (r < 0) {
			while (n > 0)
				free(nodes[--n]);
			free(nodes);
			return r;
		}
		n++;
	}
	*ret_nodes = nodes;
	return 1;
}

/* Property getters. userdata is the VM, or the VM plus the property's offset. */

static int get_char_array(sd_bus *bus, const char *path, const char *interface,
			  const char *property, sd_bus_message *reply, void *userdata,
			  sd_bus_error *error)
{
	/* Names from HELLO are NUL-terminated printable ASCII (proto checks). */
	return sd_bus_message_append_basic(reply, 's', userdata);
}

static int get_uuid(sd_bus *bus, const char *path, const char *interface, const char *property,
		    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	char uuid[37] = "";

	if (!dt_uuid_is_null(vm->uuid))
		dt_uuid_format(vm->uuid, uuid);
	return sd_bus_message_append_basic(reply, 's', uuid);
}

static int get_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
		    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;

	return sd_bus_message_append_basic(reply, 's', vm->collector.ops->name);
}

static int get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;

	return sd_bus_message_append_basic(reply, 's', dt_vm_state_name(vm->state));
}

static int get_source(sd_bus *bus, const char *path, const char *interface, const char *property,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	return sd_bus_message_append_basic(reply, 's', dt_vm_source_name(userdata));
}

static int get_fidelity(sd_bus *bus, const char *path, const char *interface,
			const char *property, sd_bus_message *reply, void *userdata,
			sd_bus_error *error)
{
	return sd_bus_message_append_basic(reply, 's', dt_vm_fidelity_name(userdata));
}

static int get_libvirt_rate(sd_bus *bus, const char *path, const char *interface,
			    const char *property, sd_bus_message *reply, void *userdata,
			    sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	uint64_t rate = vm->state == DT_VM_OBSERVED && vm->libvirt.has_rate ? vm->libvirt.rate_bytes
									       : 0;

	return sd_bus_message_append(reply, "t", rate);
}

static int get_memory_bytes(sd_bus *bus, const char *path, const char *interface,
			    const char *property, sd_bus_message *reply, void *userdata,
			    sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	return sd_bus_message_append(reply, "t", dt_vm_memory_pages(vm) << vm->page_shift);
}

static int get_epoch_seconds(sd_bus *bus, const char *path, const char *interface,
			     const char *property, sd_bus_message *reply, void *userdata,
			     sd_bus_error *error)
{
	return sd_bus_message_append(reply, "d", dt_vm_epoch_seconds(userdata));
}

static int get_epochs(sd_bus *bus, const char *path, const char *interface, const char *property,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;

	return sd_bus_message_append(reply, "t", dt_stats_epochs(vm->stats));
}

static int get_dirtied_pages(sd_bus *bus, const char *path, const char *interface,
			     const char *property, sd_bus_message *reply, void *userdata,
			     sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;

	return sd_bus_message_append(reply, "t", dt_stats_total_pages(vm->stats));
}

static int get_history_bytes(sd_bus *bus, const char *path, const char *interface,
			     const char *property, sd_bus_message *reply, void *userdata,
			     sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;

	return sd_bus_message_append(reply, "t", vm->history_bytes);
}

/*
 * A working-set curve as a(dttddb): window seconds, D(T) pages, bytes, dirty
 * rate in bytes per second (over the observed part), observed seconds,
 * complete, for every window the stats precompute.
 */
static int append_curve(sd_bus_message *reply, const struct dt_vm *vm, enum dt_curve_kind kind,
			uint32_t vcpu, const struct dt_slot *slot)
{
	struct dt_curve c;
	int r;

	dt_vm_curve(vm, kind, vcpu, slot, &c);
	r = sd_bus_message_open_container(reply, 'a', "(dttddb)");
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < c.n; i++) {
		r = sd_bus_message_append(reply, "(dttddb)", c.p[i].window_seconds, c.p[i].pages,
					  c.p[i].bytes, c.p[i].rate, c.p[i].observed_seconds,
					  (int)c.p[i].complete);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int get_working_set(sd_bus *bus, const char *path, const char *interface,
			   const char *property, sd_bus_message *reply, void *userdata,
			   sd_bus_error *error)
{
	return append_curve(reply, userdata, DT_CURVE_VM, 0, NULL);
}

/* a(ubta(dttddb)): vCPU index, has a dirty ring, ring entries, working-set curve. */
static int get_vcpu_rates(sd_bus *bus, const char *path, const char *interface,
			  const char *property, sd_bus_message *reply, void *userdata,
			  sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "(ubta(dttddb))");
	if (r < 0)
		return r;
	for (uint32_t v = 0; v < vm->vcpus; v++) {
		int ring = vm->collector.rings && vm->collector.rings[v];

		r = sd_bus_message_open_container(reply, 'r', "ubta(dttddb)");
		if (r < 0)
			return r;
		r = sd_bus_message_append(reply, "ubt", v, ring,
					  dt_stats_vcpu_entries(vm->stats, v));
		if (r < 0)
			return r;
		r = append_curve(reply, vm, DT_CURVE_VCPU, v, NULL);
		if (r < 0)
			return r;
		r = sd_bus_message_close_container(reply);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

/* a(utta(dttddb)): slot ((as_id << 16) | id), guest-physical base, pages, curve. */
static int get_slots(sd_bus *bus, const char *path, const char *interface, const char *property,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "(utta(dttddb))");
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < vm->collector.slots.n; i++) {
		const struct dt_slot *s = &vm->collector.slots.slots[i];

		/* As REST: retired slots only once the VM has detached. */
		if (!s->active && vm->state == DT_VM_ATTACHED)
			continue;
		r = sd_bus_message_open_container(reply, 'r', "utta(dttddb)");
		if (r < 0)
			return r;
		r = sd_bus_message_append(reply, "utt", s->slot, s->gpa, s->pages);
		if (r < 0)
			return r;
		r = append_curve(reply, vm, DT_CURVE_SLOT, 0, s);
		if (r < 0)
			return r;
		r = sd_bus_message_close_container(reply);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

/* GetHistory(t since, u limit) -> a(ttttt): epoch, end_usec, pages, entries, bytes. */
static int method_get_history(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_free_ struct dt_epoch_record *recs = NULL;
	const struct dt_vm *vm = userdata;
	uint64_t since;
	uint32_t limit;
	size_t n;
	int r;

	r = sd_bus_message_read(msg, "tu", &since, &limit);
	if (r < 0)
		return r;
	if (limit < 1 || limit > DT_BUS_HISTORY_LIMIT_MAX)
		return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
					 "limit must be from 1 to %u, not %u",
					 DT_BUS_HISTORY_LIMIT_MAX, limit);
	/* Never more than the history holds, however large the limit. */
	n = DT_MIN((uint64_t)limit, dt_stats_config(vm->stats)->horizon_epochs);
	recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	n = dt_stats_history(vm->stats, since, recs, n);

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "(ttttt)");
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = sd_bus_message_append(reply, "(ttttt)", recs[i].epoch, recs[i].end_us,
					  recs[i].pages, recs[i].entries,
					  recs[i].pages << vm->page_shift);
		if (r < 0)
			return r;
	}
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

static int dict_open(sd_bus_message *m, const char *key, const char *sig)
{
	int r = sd_bus_message_open_container(m, 'e', "sv");

	if (r < 0)
		return r;
	r = sd_bus_message_append(m, "s", key);
	if (r < 0)
		return r;
	return sd_bus_message_open_container(m, 'v', sig);
}

static int dict_close(sd_bus_message *m)
{
	int r = sd_bus_message_close_container(m);

	return r < 0 ? r : sd_bus_message_close_container(m);
}

/*
 * "knobs" a(sbbddss): per knob of dt_plan_advice.h its name, whether the
 * VMM can apply it, whether its plan meets the target, that plan's total
 * time and downtime, the setting in QEMU's terms and the sentence; and
 * "advised_knob" s, the one advised ("" for none).
 */
static int append_knobs(sd_bus_message *m, const struct dt_plan_knobs *a)
{
	int r = sd_bus_message_append(m, "{sv}", "advised_knob", "s",
				      a->advised >= 0 ? dt_knob_name(a->knobs[a->advised].knob)
						      : "");

	if (r >= 0)
		r = dict_open(m, "knobs", "a(sbbddss)");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sbbddss)");
	for (uint32_t i = 0; r >= 0 && i < a->nknobs; i++) {
		const struct dt_knob_advice *k = &a->knobs[i];
		char set[160], why[512];

		dt_knob_qemu_text(a, k, set, sizeof(set));
		dt_knob_say(a, k, why, sizeof(why));
		r = sd_bus_message_append(m, "(sbbddss)", dt_knob_name(k->knob),
					  (int)(k->unavailable == DT_KNOB_OK),
					  (int)k->result.meets_target, k->result.total_seconds,
					  k->result.downtime_seconds, set, why);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	return r < 0 ? r : dict_close(m);
}

static int append_plan(sd_bus_message *m, uint64_t epoch, const struct dt_plan *p)
{
	const struct dt_plan_recommendation *rec = &p->rec;
	int r;

	r = sd_bus_message_open_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	/* Its inputs first: every prediction states what it is based on. */
	r = sd_bus_message_append(
		m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "epoch", "t", epoch,
		"memory_pages", "t", p->input.memory_pages, "page_size", "u", p->input.page_size,
		"bandwidth", "d", p->input.bandwidth, "max_downtime_usec", "t",
		p->input.max_downtime_us, "max_rounds", "u", p->input.max_rounds, "vcpu_curves",
		"u", p->input.nvcpus);
	if (r < 0)
		return r;
	r = dict_open(m, "curve", "a(tt)");
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(m, 'a', "(tt)");
	for (size_t i = 0; r >= 0 && i < p->input.npoints; i++)
		r = sd_bus_message_append(m, "(tt)", p->curve[i].window_us, p->curve[i].pages);
	if (r < 0)
		return r;
	r = sd_bus_message_close_container(m);
	if (r < 0)
		return r;
	r = dict_close(m);
	if (r < 0)
		return r;
	r = sd_bus_message_append(
		m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "converges", "b", (int)p->converges,
		"meets_target", "b", (int)p->meets_target, "verdict", "s",
		dt_plan_verdict_name(p->verdict), "rounds", "u", p->nrounds, "total_seconds", "d",
		p->total_seconds, "downtime_seconds", "d", p->downtime_seconds, "bytes_sent", "t",
		p->bytes_sent, "final_pages", "t", p->final_pages, "dirty_rate_at_last_round", "d",
		p->dirty_rate_at_last_round, "bandwidth_pages", "d", p->bandwidth_pages, "model", "s",
		dt_plan_model_name(p), "model_classes", "u", p->irm_classes);
	if (r < 0)
		return r;
	r = sd_bus_message_append(m, "{sv}", "engine", "s", dt_plan_engine_name(p->engine));
	if (r >= 0 && p->engine == DT_PLAN_ENGINE_QEMU)
		r = sd_bus_message_append(m, "{sv}{sv}{sv}", "dirty_syncs", "u", p->qemu.dirty_syncs,
					  "bandwidth_estimate", "d", p->qemu.bandwidth_estimate,
					  "throttle_percent", "u", p->qemu.throttle_percent);
	if (r < 0)
		return r;
	r = dict_open(m, "round_list", "a(uttttt)");
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(m, 'a', "(uttttt)");
	for (uint32_t i = 0; r >= 0 && i < p->nrounds; i++) {
		const struct dt_plan_round *d = &p->rounds[i];
		r = sd_bus_message_append(m, "(uttttt)", d->index, d->start_us, d->duration_us,
					  d->pages, d->bytes, d->dirtied_pages);
	}
	if (r < 0)
		return r;
	r = sd_bus_message_close_container(m);
	if (r < 0)
		return r;
	r = dict_close(m);
	if (r < 0)
		return r;
	r = sd_bus_message_append(m, "{sv}", "advice", "s",
				  dt_plan_advice_name(p->has_recommendation ? rec->advice
									    : DT_PLAN_ADVICE_NONE));
	if (r < 0)
		return r;
	if (p->has_recommendation) {
		r = sd_bus_message_append(
			m, "{sv}{sv}{sv}{sv}{sv}{sv}", "dirty_limit_pages_per_second", "d",
			rec->dirty_limit_pages_per_second, "throttled_total_seconds", "d",
			rec->throttled_total_seconds, "throttled_downtime_seconds", "d",
			rec->throttled_downtime_seconds, "throttled_rounds", "u",
			rec->throttled_rounds, "postcopy_total_seconds", "d",
			rec->postcopy_total_seconds, "throttle_keeps", "d", rec->throttle_keeps);
		if (r < 0)
			return r;
		r = dict_open(m, "throttle_vcpus", "au");
		if (r < 0)
			return r;
		r = sd_bus_message_append_array(m, 'u', rec->throttle_vcpus,
						(size_t)rec->nthrottle * sizeof(uint32_t));
		if (r < 0)
			return r;
		r = dict_close(m);
		if (r < 0)
			return r;
	}
	if (p->knobs) {
		r = append_knobs(m, p->knobs);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(m);
}

/* A Plan() call waiting for the planner thread. */
struct bus_plan {
	sd_bus_message *msg;
	uint32_t vm_id;
	struct dt_plan_call *call;
	sd_event_source *deadline; /* [api] plan_timeout */
	uint64_t timeout_us;
};

static void bus_plan_free(struct bus_plan *bp)
{
	sd_event_source_disable_unref(bp->deadline);
	sd_bus_message_unref(bp->msg);
	free(bp);
}

/*
 * Not computed within [api] plan_timeout (a starved or stuck planner): the
 * call is dropped, its result too when it comes, and the caller is told now,
 * as REST answers 503, rather than when its own bus timeout runs out.
 */
static int on_plan_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bus_plan *bp = userdata;

	(void)s;
	(void)usec;
	dt_plan_call_cancel(bp->call);
	(void)sd_bus_reply_method_errorf(bp->msg, SD_BUS_ERROR_TIMEOUT,
					 "the plan was not computed within [api] plan_timeout "
					 "(%" PRIu64 " ms): the planner thread is busy; try again",
					 bp->timeout_us / 1000);
	bus_plan_free(bp);
	return 0;
}

static void on_plan_done(void *userdata, int r, struct dt_plan *p, uint64_t generation,
			 uint64_t epoch)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct bus_plan *bp = userdata;

	if (r == -EINVAL)
		r = sd_bus_reply_method_errorf(bp->msg, DT_BUS_ERROR_INVALID_ARGUMENT,
					       "the planner refused these figures");
	else if (r == -ECANCELED)
		r = sd_bus_reply_method_errorf(bp->msg, SD_BUS_ERROR_FAILED,
					       "the daemon is stopping");
	else if (r < 0)
		r = sd_bus_reply_method_errno(bp->msg, r, NULL);
	else {
		r = sd_bus_message_new_method_return(bp->msg, &reply);
		if (r >= 0)
			r = append_plan(reply, epoch, p);
		if (r >= 0)
			r = sd_bus_send(NULL, reply, NULL);
		else
			r = sd_bus_reply_method_errno(bp->msg, r, NULL);
	}
	dt_plan_free(p);
	bus_plan_free(bp);
}

/*
 * Plan(t bandwidth, t max_downtime_usec) -> a{sv}. Replied to when the
 * planner thread has computed it (the figures are read now).
 */
static int submit_plan(sd_bus_message *msg, const struct dt_vm *vm, uint64_t bandwidth,
		       uint64_t downtime, const struct dt_plan_engine_input *e,
		       sd_bus_error *error);

static int method_plan(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	uint64_t bandwidth, downtime;
	int r;

	r = sd_bus_message_read(msg, "tt", &bandwidth, &downtime);
	if (r < 0)
		return r;
	return submit_plan(msg, vm, bandwidth, downtime, NULL, error);
}

/* One option of PlanWith: the key's value into the engine's inputs, bounded as REST's. */
static int plan_option(sd_bus_message *msg, const char *key, struct dt_plan_engine_input *e,
		       sd_bus_error *error)
{
	static const struct {
		const char *key, *type;
	} types[] = {
		{ "engine", "s" },
		{ "throughput", "t" },
		{ "final_bandwidth", "t" },
		{ "zero_page_cost_usec", "t" },
		{ "cpu_throttle_initial", "u" },
		{ "cpu_throttle_increment", "u" },
		{ "throttle_trigger_threshold", "u" },
		{ "cpu_throttle_tailslow", "b" },
	};
	const char *s;
	uint64_t t;
	uint32_t u;
	int r, b;

	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (strcmp(key, types[i].key) == 0 &&
		    sd_bus_message_verify_type(msg, 'v', types[i].type) <= 0)
			return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
						 "option '%s' must be of type %s", key,
						 types[i].type);

	if (strcmp(key, "engine") == 0) {
		r = sd_bus_message_read(msg, "v", "s", &s);
		if (r < 0)
			return r;
		if (dt_plan_engine_parse(s, &e->engine, &e->qemu.version) < 0)
			return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
						 "engine must be ideal, qemu or qemu-VERSION such "
						 "as qemu-7.2");
		return 0;
	}
	if (strcmp(key, "throughput") == 0 || strcmp(key, "final_bandwidth") == 0) {
		r = sd_bus_message_read(msg, "v", "t", &t);
		if (r < 0)
			return r;
		if (t < DT_PLAN_BANDWIDTH_MIN || t > (uint64_t)1e15)
			return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
						 "%s must be from %u bytes/s (1 Mbit/s) to 1 PB/s",
						 key, DT_PLAN_BANDWIDTH_MIN);
		*(key[0] == 't' ? &e->qemu.throughput : &e->qemu.final_bandwidth) = (double)t;
		return 0;
	}
	if (strcmp(key, "zero_page_cost_usec") == 0) {
		r = sd_bus_message_read(msg, "v", "t", &t);
		if (r < 0)
			return r;
		if (t == 0 || t > 1000)
			return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
						 "zero_page_cost_usec must be from 1 to 1000");
		e->qemu.zero_page_us = (double)t;
		return 0;
	}
	if (strcmp(key, "cpu_throttle_initial") == 0 || strcmp(key, "cpu_throttle_increment") == 0) {
		r = sd_bus_message_read(msg, "v", "u", &u);
		if (r < 0)
			return r;
		if (u == 0 || u > 99)
			return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
						 "%s must be a percentage from 1 to 99", key);
		*(strcmp(key, "cpu_throttle_initial") == 0 ? &e->qemu.throttle_initial
							    : &e->qemu.throttle_increment) = u;
		e->qemu.auto_converge = true;
		return 0;
	}
	if (strcmp(key, "throttle_trigger_threshold") == 0) {
		r = sd_bus_message_read(msg, "v", "u", &u);
		if (r < 0)
			return r;
		if (u == 0 || u > 100)
			return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
						 "%s must be a percentage from 1 to 100", key);
		e->qemu.throttle_trigger = u;
		e->qemu.auto_converge = true;
		return 0;
	}
	if (strcmp(key, "cpu_throttle_tailslow") == 0) {
		r = sd_bus_message_read(msg, "v", "b", &b);
		if (r < 0)
			return r;
		e->qemu.throttle_tailslow = b;
		e->qemu.auto_converge = true;
		return 0;
	}
	return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT, "unknown option '%s'", key);
}

/*
 * PlanWith(t bandwidth, t max_downtime_usec, a{sv} options) -> a{sv}: Plan
 * with the engine and its inputs (docs/org.dirtytrack1.xml).
 */
static int method_plan_with(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	const struct dt_vm *vm = userdata;
	struct dt_plan_engine_input e;
	uint64_t bandwidth, downtime;
	const char *key;
	int r;

	dt_vm_plan_engine(vm, &e);
	r = sd_bus_message_read(msg, "tt", &bandwidth, &downtime);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(msg, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
		r = sd_bus_message_read(msg, "s", &key);
		if (r < 0)
			return r;
		r = plan_option(msg, key, &e, error);
		if (r < 0 || sd_bus_error_is_set(error))
			return r < 0 ? r : -EINVAL;
		r = sd_bus_message_exit_container(msg);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(msg);
	if (r < 0)
		return r;
	return submit_plan(msg, vm, bandwidth, downtime, &e, error);
}

/* Plan and PlanWith: the bounds, then the planner thread (the reply follows). */
bool dt_bus_link_valid(uint64_t bandwidth, uint64_t downtime_us)
{
	return bandwidth >= DT_PLAN_BANDWIDTH_MIN && downtime_us >= DT_PLAN_DOWNTIME_MIN_US &&
	       downtime_us <= DT_PLAN_DOWNTIME_MAX_US;
}

static int submit_plan(sd_bus_message *msg, const struct dt_vm *vm, uint64_t bandwidth,
		       uint64_t downtime, const struct dt_plan_engine_input *e,
		       sd_bus_error *error)
{
	/* The VM vtable's slot was added with the dt_bus (dbus.c); userdata is the found VM. */
	sd_bus_slot *slot = sd_bus_get_current_slot(sd_bus_message_get_bus(msg));
	struct dt_bus *b = sd_bus_slot_get_userdata(slot);
	struct dt_plan_call *call;
	struct bus_plan *bp;
	int r;

	if (!dt_bus_link_valid(bandwidth, downtime))
		return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
					 "bandwidth must be at least %u bytes/s (1 Mbit/s) and max "
					 "downtime from %u us (1 ms) to 1 h",
					 DT_PLAN_BANDWIDTH_MIN, DT_PLAN_DOWNTIME_MIN_US);
	if (!b || !b->planner)
		return -ESHUTDOWN;
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return -ENOMEM;
	const struct dt_vm_plan_options o = {
		.bandwidth = (double)bandwidth,
		.max_downtime_us = downtime,
		.knobs = true,
		.engine = e,
	};
	r = dt_planner_submit(b->planner, vm, &o, on_plan_done, bp, &call);
	if (r < 0)
		free(bp);
	else {
		bp->call = call;
		bp->timeout_us = vm->m->config.api_plan_timeout_us;
		/* no deadline (out of memory): the planner's own bounds still hold */
		if (sd_event_add_time_relative(vm->m->event, &bp->deadline, CLOCK_MONOTONIC,
					       bp->timeout_us, 10000, on_plan_deadline, bp) < 0)
			bp->deadline = NULL;
	}
	if (r == -EOPNOTSUPP)
		return sd_bus_error_setf(error, DT_BUS_ERROR_NOT_EXACT,
					 "VM %u is observed through libvirt: a plan needs the exact "
					 "working-set curve of a VM attached through the protocol",
					 vm->id);
	if (r == -ENODATA)
		return sd_bus_error_setf(error, DT_BUS_ERROR_NO_DATA,
					 "VM %u has no closed epoch or no memory yet", vm->id);
	if (r == -EINVAL)
		return sd_bus_error_setf(error, DT_BUS_ERROR_INVALID_ARGUMENT,
					 "the planner refused these figures");
	if (r == -EBUSY)
		return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					 "%u plans are being computed: try again",
					 vm->m->config.api_max_pending_plans);
	if (r < 0)
		return r;
	bp->msg = sd_bus_message_ref(msg);
	bp->vm_id = vm->id;
	return 1; /* the reply follows from on_plan_done */
}

#define VM_FIELD(f) offsetof(struct dt_vm, f)
#define CONST SD_BUS_VTABLE_PROPERTY_CONST
#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define PER_EPOCH SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION

/* Read-only methods: anyone the bus policy lets through may call them. */
const sd_bus_vtable dt_bus_vm_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Id", "u", NULL, VM_FIELD(id), CONST),
	SD_BUS_PROPERTY("Uuid", "s", get_uuid, 0, CONST),
	SD_BUS_PROPERTY("Mode", "s", get_mode, 0, CONST),
	SD_BUS_PROPERTY("PageSize", "u", NULL, VM_FIELD(page_size), CONST),
	SD_BUS_PROPERTY("VCpus", "u", NULL, VM_FIELD(vcpus), CONST),
	SD_BUS_PROPERTY("EpochSeconds", "d", get_epoch_seconds, 0, CONST),
	SD_BUS_PROPERTY("Name", "s", get_char_array, VM_FIELD(name), CHANGES),
	SD_BUS_PROPERTY("Vmm", "s", get_char_array, VM_FIELD(vmm), CHANGES),
	SD_BUS_PROPERTY("State", "s", get_state, 0, CHANGES),
	SD_BUS_PROPERTY("DetachReason", "s", get_char_array, VM_FIELD(detach_reason), CHANGES),
	SD_BUS_PROPERTY("MemoryBytes", "t", get_memory_bytes, 0, CHANGES),
	SD_BUS_PROPERTY("Source", "s", get_source, 0, CHANGES),
	SD_BUS_PROPERTY("Fidelity", "s", get_fidelity, 0, CHANGES),
	SD_BUS_PROPERTY("LibvirtDomain", "s", get_char_array, VM_FIELD(libvirt_domain), CHANGES),
	SD_BUS_PROPERTY("LibvirtDirtyRate", "t", get_libvirt_rate, 0, PER_EPOCH),
	SD_BUS_PROPERTY("Attaches", "t", NULL, VM_FIELD(counters.attaches), CHANGES),
	SD_BUS_PROPERTY("EpochsHarvested", "t", get_epochs, 0, PER_EPOCH),
	SD_BUS_PROPERTY("Generation", "t", NULL, VM_FIELD(generation), PER_EPOCH),
	SD_BUS_PROPERTY("WorkingSet", "a(dttddb)", get_working_set, 0, PER_EPOCH),
	SD_BUS_PROPERTY("VCpuRates", "a(ubta(dttddb))", get_vcpu_rates, 0, PER_EPOCH),
	SD_BUS_PROPERTY("Slots", "a(utta(dttddb))", get_slots, 0, PER_EPOCH),
	SD_BUS_PROPERTY("Harvests", "t", NULL, VM_FIELD(counters.harvests), PER_EPOCH),
	SD_BUS_PROPERTY("RingEntries", "t", NULL, VM_FIELD(collector.ring_entries), PER_EPOCH),
	SD_BUS_PROPERTY("InvalidEntries", "t", NULL, VM_FIELD(collector.invalid_entries),
			PER_EPOCH),
	SD_BUS_PROPERTY("BitmapPages", "t", NULL, VM_FIELD(collector.bitmap_pages), PER_EPOCH),
	SD_BUS_PROPERTY("RingFull", "t", NULL, VM_FIELD(counters.ring_full), PER_EPOCH),
	SD_BUS_PROPERTY("Resets", "t", NULL, VM_FIELD(counters.resets), PER_EPOCH),
	SD_BUS_PROPERTY("LateSyncs", "t", NULL, VM_FIELD(counters.late_syncs), PER_EPOCH),
	SD_BUS_PROPERTY("DirtiedPages", "t", get_dirtied_pages, 0, PER_EPOCH),
	SD_BUS_PROPERTY("HarvestUSec", "t", NULL, VM_FIELD(counters.harvest_us), PER_EPOCH),
	SD_BUS_PROPERTY("HistoryBytes", "t", get_history_bytes, 0, PER_EPOCH),
	SD_BUS_PROPERTY("StateError", "s", get_char_array, VM_FIELD(persist.error), CHANGES),
	SD_BUS_METHOD_WITH_ARGS("GetHistory", SD_BUS_ARGS("t", since, "u", limit),
				SD_BUS_RESULT("a(ttttt)", epochs), method_get_history,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Plan", SD_BUS_ARGS("t", bandwidth, "t", max_downtime_usec),
				SD_BUS_RESULT("a{sv}", plan), method_plan,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("PlanWith",
				SD_BUS_ARGS("t", bandwidth, "t", max_downtime_usec, "a{sv}", options),
				SD_BUS_RESULT("a{sv}", plan), method_plan_with,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

size_t dt_bus_vm_properties(uint64_t flags, char **ret, size_t max)
{
	size_t n = 0;

	for (const sd_bus_vtable *v = dt_bus_vm_vtable; v->type != _SD_BUS_VTABLE_END; v++)
		if (v->type == _SD_BUS_VTABLE_PROPERTY && (v->flags & flags)) {
			if (n + 1 < max)
				ret[n] = (char *)v->x.property.member;
			n++;
		}
	ret[n + 1 < max ? n : max - 1] = NULL;
	return n;
}
