/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The router: parse the target (url.c), check the method, find the VM,
 * answer 503 before its first harvest where figures are asked for, give
 * 304 to a matching If-None-Match, park a long-poll, then render. Each
 * route's handler and caching policy (its validators, and whether its body
 * is kept per generation) is a row of route_table.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "evacuation.h"
#include "http.h"
#include "json_plan.h"
#include "json_view.h"
#include "manager.h"
#include "planner.h"
#include "vm_plan.h"

_Static_assert(DT_EVACUATION_PARALLEL_MAX == DT_EVACUATE_MAX_PARALLEL, "?parallel= is the scheduler's limit");

#define DEFAULT_HEATMAP_WINDOW_US (60ull * 1000000)

static enum MHD_Result url_problem(struct MHD_Connection *conn, const struct dt_url_problem *p)
{
	switch (p->error) {
	case DT_URL_TOO_LONG:
		return dt_http_problem(conn, MHD_HTTP_URI_TOO_LONG, NULL, "%s", p->detail);
	case DT_URL_NOT_FOUND:
		return dt_http_problem(conn, MHD_HTTP_NOT_FOUND, NULL, "%s", p->detail);
	case DT_URL_BAD_PARAM:
	case DT_URL_BAD_EPOCH:
	case DT_URL_BAD_PATH:
	default:
		return dt_http_problem(conn, MHD_HTTP_BAD_REQUEST, p->param, "%s", p->detail);
	}
}

static struct json_object *health(struct dt_manager *m)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "vms", json_object_new_int((int)m->nvms));
	json_object_object_add(o, "attached", json_object_new_int((int)dt_manager_attached(m)));
	json_object_object_add(o, "generation", json_object_new_uint64(m->generation));
	return o;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, const char *type, int r, char *body,
				 size_t len, const char *etag, uint64_t index)
{
	if (r < 0)
		return dt_http_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				       "cannot render: %s", strerror(-r));
	return dt_http_send(conn, MHD_HTTP_OK, type, body, len, etag, index);
}

/*
 * A parked plan or evacuation that the planner thread has not answered
 * within [api] plan_timeout: the call is dropped (its result too, when it
 * comes) and the client gets a 503 now, not whenever a starved planner gets
 * to it.
 */
static int on_park_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_req *rq = userdata;

	rq->park_deadline = sd_event_source_disable_unref(rq->park_deadline);
	if (rq->plan_call) {
		dt_plan_call_cancel(TAKE_PTR(rq->plan_call));
		rq->plan_r = -ETIMEDOUT;
		rq->plan_ready = true;
	} else if (rq->evac_call) {
		dt_evacuation_call_cancel(TAKE_PTR(rq->evac_call));
		rq->evac_r = -ETIMEDOUT;
		rq->evac_ready = true;
	} else {
		return 0;
	}
	MHD_resume_connection(rq->conn);
	dt_listener_kick(rq->l);
	return 0;
}

/* Park the request until the planner answers, for at most [api] plan_timeout. */
static enum MHD_Result park(struct dt_req *rq)
{
	struct dt_api *a = rq->l->api;
	int r = sd_event_add_time_relative(a->m->event, &rq->park_deadline, CLOCK_MONOTONIC,
					   a->m->config.api_plan_timeout_us, 10000,
					   on_park_deadline, rq);

	if (r < 0) { /* no deadline: the planner's own bound still holds */
		rq->park_deadline = NULL;
	} else {
		(void)sd_event_source_set_priority(rq->park_deadline, DT_API_PRIORITY);
	}
	MHD_suspend_connection(rq->conn);
	return MHD_YES;
}

static enum MHD_Result planner_timed_out(struct dt_req *rq, const char *what)
{
	const struct dt_config *c = &rq->l->api->m->config;

	return dt_http_unavailable(rq->conn, 1,
				   "the %s was not computed within [api] plan_timeout (%" PRIu64
				   " ms): the planner thread is busy; try again",
				   what, c->api_plan_timeout_us / 1000);
}

static void on_plan_done(void *userdata, int r, struct dt_plan *p, uint64_t generation,
			 uint64_t epoch)
{
	struct dt_req *rq = userdata;

	rq->park_deadline = sd_event_source_disable_unref(rq->park_deadline);
	rq->plan_call = NULL;
	rq->plan = p;
	rq->plan_r = r;
	rq->plan_generation = generation;
	rq->plan_epoch = epoch;
	rq->plan_ready = true;
	MHD_resume_connection(rq->conn);
	dt_listener_kick(rq->l);
}

/*
 * The engine a plan's query asks for: ?engine=, else the VM's VMM's, with
 * the QEMU engine's inputs given (host speeds, auto-converge). False when
 * the query names none of them (the planner takes the VM's default).
 */
static bool plan_engine_input(const struct dt_vm *vm, const struct dt_request_target *t,
			      struct dt_plan_engine_input *e)
{
	const unsigned qemu = (1u << DT_PARAM_THROUGHPUT) | (1u << DT_PARAM_FINAL_BANDWIDTH) |
			      (1u << DT_PARAM_ZERO_PAGE_COST) |
			      (1u << DT_PARAM_CPU_THROTTLE_INITIAL) |
			      (1u << DT_PARAM_CPU_THROTTLE_INCREMENT) |
			      (1u << DT_PARAM_THROTTLE_TRIGGER_THRESHOLD) |
			      (1u << DT_PARAM_CPU_THROTTLE_TAILSLOW);
	/* any of QEMU's auto-converge parameters plans with it on */
	const unsigned ac = (1u << DT_PARAM_CPU_THROTTLE_INITIAL) |
			    (1u << DT_PARAM_CPU_THROTTLE_INCREMENT) |
			    (1u << DT_PARAM_THROTTLE_TRIGGER_THRESHOLD) |
			    (1u << DT_PARAM_CPU_THROTTLE_TAILSLOW);

	if (t->present & (1u << DT_PARAM_ENGINE))
		*e = (struct dt_plan_engine_input){ .engine = (enum dt_plan_engine)t->engine,
						    .qemu.version = t->engine_version };
	else if (t->present & qemu)
		dt_vm_plan_engine(vm, e);
	else
		return false;
	e->qemu.throughput = (double)t->throughput;
	e->qemu.final_bandwidth = (double)t->final_bandwidth;
	e->qemu.zero_page_us = (double)t->zero_page_us;
	e->qemu.throttle_initial = t->throttle_initial;
	e->qemu.throttle_increment = t->throttle_increment;
	e->qemu.throttle_trigger = t->throttle_trigger;
	e->qemu.throttle_tailslow = t->throttle_tailslow;
	e->qemu.auto_converge = t->present & ac;
	return true;
}

/*
 * The plan is computed on the planner's thread: the request is parked
 * until it is ready (then MHD calls the handler again and the answer is
 * sent with the generation and ETag the figures were read at).
 */
static enum MHD_Result render_plan(struct dt_req *rq, struct dt_vm *vm,
				   const struct dt_request_target *t, const char *etag)
{
	const struct dt_vm_plan_options o = {
		.bandwidth = (double)t->bandwidth,
		.max_downtime_us = t->downtime_us,
		.zero_fraction = t->zero_fraction,
		.zero_stated = t->present & (1u << DT_PARAM_ZERO_FRACTION),
		.max_rounds = t->max_rounds,
		.target_us = t->target_us,
		.knobs = true,
	};
	struct MHD_Connection *conn = rq->conn;
	struct dt_plan_engine_input e;
	struct dt_vm_plan_options oe = o;
	struct dt_plan *p = NULL;
	struct json_object *j;
	int r;

	if (plan_engine_input(vm, t, &e))
		oe.engine = &e;
	if (rq->plan_ready) {
		rq->plan_ready = false;
		p = TAKE_PTR(rq->plan);
		r = rq->plan_r;
		if (r == -ECANCELED)
			return dt_http_unavailable(conn, 1, "the daemon is stopping");
		if (r == -ETIMEDOUT)
			return planner_timed_out(rq, "plan");
	} else {
		r = dt_planner_submit(rq->l->api->planner, vm, &oe, on_plan_done, rq, &rq->plan_call);
		if (r == -EBUSY)
			return dt_http_unavailable(conn, 1, "%u plans are being computed: try again",
						   rq->l->api->m->config.api_max_pending_plans);
		if (r >= 0) {
			snprintf(rq->plan_etag, sizeof(rq->plan_etag), "%s", etag);
			return park(rq);
		}
	}
	if (r == -ENODATA)
		return dt_http_unavailable(conn, (unsigned)((vm->epoch_us + 999999) / 1000000),
					   "VM %u has no closed epoch or no memory yet", vm->id);
	if (r == -EINVAL)
		return dt_http_problem(conn, MHD_HTTP_BAD_REQUEST, NULL,
				       "the planner refused these figures");
	if (r < 0)
		return dt_http_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				       "cannot plan: %s", strerror(-r));
	j = dt_json_vm_plan(vm, rq->plan_generation, rq->plan_epoch, p);
	dt_plan_free(p);
	return dt_http_send_json(conn, MHD_HTTP_OK, j, rq->plan_etag, rq->plan_generation);
}

static void on_evacuation_done(void *userdata, int r, struct dt_evacuation *ev)
{
	struct dt_req *rq = userdata;

	rq->park_deadline = sd_event_source_disable_unref(rq->park_deadline);
	rq->evac_call = NULL;
	rq->evac = ev;
	rq->evac_r = r;
	rq->evac_ready = true;
	MHD_resume_connection(rq->conn);
	dt_listener_kick(rq->l);
}

/* GET /v1/evacuation: parked like a plan until the planner thread has planned every VM. */
static enum MHD_Result render_evacuation(struct dt_req *rq, const struct dt_request_target *t)
{
	const struct dt_evacuation_options o = {
		.bandwidth = (double)t->bandwidth,
		.max_downtime_us = t->downtime_us,
		.parallel = t->parallel ? t->parallel : 1,
		.target_us = t->target_us,
		.zero_fraction = t->zero_fraction,
		.zero_stated = t->present & (1u << DT_PARAM_ZERO_FRACTION),
	};
	struct MHD_Connection *conn = rq->conn;
	struct dt_evacuation *ev;
	struct json_object *j;
	int r;

	if (!rq->evac_ready) {
		r = dt_evacuation_submit(rq->l->api->planner, rq->l->api->m, &o, on_evacuation_done,
					 rq, &rq->evac_call);
		if (r == -EBUSY)
			return dt_http_unavailable(conn, 1, "an evacuation or %u plans are being "
							    "computed: try again",
						   rq->l->api->m->config.api_max_pending_plans);
		if (r == -E2BIG)
			return dt_http_unavailable(conn, 60,
						   "the host has more than the %u VMs one evacuation "
						   "plans",
						   DT_EVACUATION_MAX_VMS);
		if (r < 0)
			return dt_http_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
					       "cannot plan the evacuation: %s", strerror(-r));
		return park(rq);
	}
	rq->evac_ready = false;
	if (rq->evac_r == -ETIMEDOUT)
		return planner_timed_out(rq, "evacuation");
	ev = TAKE_PTR(rq->evac);
	if (rq->evac_r == -ECANCELED || !ev)
		return dt_http_unavailable(conn, 1, "the daemon is stopping");
	j = dt_json_evacuation(ev);
	dt_evacuation_free(ev);
	return dt_http_send_json(conn, MHD_HTTP_OK, j, NULL, 0);
}

/* FNV-1a over the plan's parsed query: its ETag part besides the generation. */
static uint64_t plan_query_hash(const struct dt_request_target *t)
{
	const uint64_t v[] = { t->bandwidth, t->downtime_us, t->max_rounds, t->target_us,
			       (uint64_t)llround(t->zero_fraction * 1e15),
			       (t->present & (1u << DT_PARAM_ENGINE)) ? 1u + t->engine : 0,
			       t->engine_version, t->throughput, t->final_bandwidth,
			       t->zero_page_us, t->throttle_initial, t->throttle_increment,
			       t->throttle_trigger, t->throttle_tailslow };
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		for (unsigned b = 0; b < 64; b += 8) {
			h ^= (v[i] >> b) & 0xff;
			h *= 0x100000001b3ull;
		}
	return h;
}

/* CACHE_VM_RENDERED: the body of this generation, rendered by json once. */
static enum MHD_Result send_rendered(struct dt_req *rq, struct dt_vm *vm,
				     struct json_object *(*json)(const struct dt_vm *vm),
				     const char *etag)
{
	struct dt_api_vm *e = dt_api_vm_find(rq->l->api, vm->id);
	char *body;

	if (!e || vm->state == DT_VM_OBSERVED) /* no entry (out of memory when added): rendered */
		return dt_http_send_json(rq->conn, MHD_HTTP_OK, json(vm), etag, vm->generation);
	if (!e->view || e->view_gen != vm->generation) {
		struct json_object *o = json(vm);
		const char *s;

		if (!o)
			return MHD_NO;
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
		free(e->view);
		e->view_len = strlen(s);
		e->view = strdup(s);
		e->view_gen = vm->generation;
		json_object_put(o);
		if (!e->view)
			return MHD_NO;
	}
	body = malloc(e->view_len + 1);
	if (!body)
		return MHD_NO;
	memcpy(body, e->view, e->view_len + 1);
	return dt_http_send(rq->conn, MHD_HTTP_OK, "application/json", body, e->view_len, etag,
			    vm->generation);
}

static enum MHD_Result h_history(struct dt_req *rq, struct dt_vm *vm,
				 const struct dt_request_target *t, const char *etag)
{
	char *body = NULL;
	size_t len = 0;
	int r = dt_history_render(vm, t->since, (uint32_t)t->limit, &body, &len);

	return send_text(rq->conn, "application/json", r, body, len, etag, vm->generation);
}

static uint32_t heatmap_window(const struct dt_vm *vm, const struct dt_request_target *t)
{
	return dt_vm_window_epochs(vm, t->window_us ? t->window_us : DEFAULT_HEATMAP_WINDOW_US);
}

static enum MHD_Result h_heatmap(struct dt_req *rq, struct dt_vm *vm,
				 const struct dt_request_target *t, const char *etag)
{
	char *body = NULL;
	size_t len = 0;
	int r = dt_heatmap_render(vm, heatmap_window(vm, t), t->window_us, t->cursor,
				  (t->present & (1u << DT_PARAM_LIMIT)) ? (uint32_t)t->limit
									   : DT_HEATMAP_LIMIT_DEFAULT,
				  &body, &len);

	return send_text(rq->conn, "application/json", r, body, len, etag, vm->generation);
}

static enum MHD_Result h_heatmap_svg(struct dt_req *rq, struct dt_vm *vm,
				     const struct dt_request_target *t, const char *etag)
{
	char *body = NULL;
	size_t len = 0;
	int r = dt_svg_heatmap(vm, heatmap_window(vm, t), &body, &len);

	return send_text(rq->conn, "image/svg+xml", r, body, len, etag, vm->generation);
}

static enum MHD_Result h_wss_svg(struct dt_req *rq, struct dt_vm *vm,
				 const struct dt_request_target *t, const char *etag)
{
	char *body = NULL;
	size_t len = 0;
	int r = dt_svg_wss(vm, &body, &len);

	return send_text(rq->conn, "image/svg+xml", r, body, len, etag, vm->generation);
}

static enum MHD_Result h_epoch_pages(struct dt_req *rq, struct dt_vm *vm,
				     const struct dt_request_target *t, const char *etag)
{
	char *body = NULL;
	size_t len = 0;
	int r = dt_epoch_pages_render(vm, t->epoch, t->cursor,
				      (t->present & (1u << DT_PARAM_LIMIT)) ? (uint32_t)t->limit
									   : rq->l->api->m->config.api_pages_limit,
				      &body, &len);

	if (r == -ENOENT)
		return dt_http_problem(rq->conn, MHD_HTTP_NOT_FOUND, NULL,
				       "epoch %" PRIu64 " of VM %u is not held exactly (the "
				       "last recent_epochs are)",
				       t->epoch, vm->id);
	return send_text(rq->conn, "application/json", r, body, len, NULL, 0);
}

static enum MHD_Result h_evacuation(struct dt_req *rq, struct dt_vm *vm,
				    const struct dt_request_target *t, const char *etag)
{
	return render_evacuation(rq, t);
}

static enum MHD_Result h_vms(struct dt_req *rq, struct dt_vm *vm,
			     const struct dt_request_target *t, const char *etag)
{
	struct dt_manager *m = rq->l->api->m;

	return dt_http_send_json(rq->conn, MHD_HTTP_OK, dt_json_vm_list(m), etag, m->generation);
}

static enum MHD_Result h_health(struct dt_req *rq, struct dt_vm *vm,
				const struct dt_request_target *t, const char *etag)
{
	return dt_http_send_json(rq->conn, MHD_HTTP_OK, health(rq->l->api->m), NULL, 0);
}

static enum MHD_Result h_openapi(struct dt_req *rq, struct dt_vm *vm,
				 const struct dt_request_target *t, const char *etag)
{
	char *body = malloc(dt_openapi_json_len() + 1);

	if (!body)
		return MHD_NO;
	memcpy(body, dt_openapi_json, dt_openapi_json_len() + 1);
	return dt_http_send(rq->conn, MHD_HTTP_OK, "application/json", body, dt_openapi_json_len(),
			    NULL, 0);
}

static enum MHD_Result h_metrics(struct dt_req *rq, struct dt_vm *vm,
				 const struct dt_request_target *t, const char *etag)
{
	struct MHD_Connection *conn = rq->conn;
	bool om = dt_metrics_wants_openmetrics(
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
	char *body = NULL;
	size_t len = 0;
	int r = dt_metrics_render(rq->l->api, om, &body, &len);

	dt_ref_plans_scraped(rq->l->api); /* the next scrape finds fresh reference-link plans */
	return send_text(conn,
			 om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
			    : "text/plain; version=0.0.4; charset=utf-8",
			 r, body, len, NULL, 0);
}

/*
 * What a response may be cached by, and so which validators it carries
 * and whether If-None-Match and long-poll (?index=&wait=) apply.
 */
enum cache_policy {
	CACHE_NONE, /* no validators: made afresh for every request */
	CACHE_IMMUTABLE, /* a closed epoch's set never changes: no validators needed */
	CACHE_REGISTRY, /* ETag and index: the registry's generation */
	CACHE_VM, /* ETag and index: the VM's generation */
	CACHE_VM_QUERY, /* ETag: the VM's generation and the parsed query (plan); index: the generation */
	/*
	 * CACHE_VM, and the body is rendered once per generation (dt_api_vm's
	 * view) and sent as copies: clients polling many VMs, or one VM many
	 * times, cost a copy and not a json-c tree; one generation, one body
	 * keeps the strong ETag honest. An observed VM's sample ages between
	 * generations: its body is never kept.
	 */
	CACHE_VM_RENDERED,
};

typedef enum MHD_Result (*route_fn)(struct dt_req *rq, struct dt_vm *vm,
				    const struct dt_request_target *t, const char *etag);
typedef struct json_object *(*vm_json_fn)(const struct dt_vm *vm);

/* Each route's handler (or, for a plain JSON part of a VM, its builder) and caching policy. */
static const struct route_entry {
	enum cache_policy cache;
	route_fn handle;
	vm_json_fn json; /* instead of handle: the body, sent with the policy's validators */
} route_table[_DT_ROUTE_MAX] = {
	[DT_ROUTE_VMS] = { CACHE_REGISTRY, h_vms, NULL },
	[DT_ROUTE_VM] = { CACHE_VM_RENDERED, NULL, dt_json_vm },
	[DT_ROUTE_VM_WSS] = { CACHE_VM, NULL, dt_json_vm_wss },
	[DT_ROUTE_VM_WSS_SVG] = { CACHE_VM, h_wss_svg, NULL },
	[DT_ROUTE_VM_VCPUS] = { CACHE_VM, NULL, dt_json_vm_vcpus },
	[DT_ROUTE_VM_SLOTS] = { CACHE_VM, NULL, dt_json_vm_slots },
	[DT_ROUTE_VM_HISTORY] = { CACHE_VM, h_history, NULL },
	[DT_ROUTE_VM_HEATMAP] = { CACHE_VM, h_heatmap, NULL },
	[DT_ROUTE_VM_HEATMAP_SVG] = { CACHE_VM, h_heatmap_svg, NULL },
	[DT_ROUTE_VM_EPOCH_PAGES] = { CACHE_IMMUTABLE, h_epoch_pages, NULL },
	[DT_ROUTE_VM_PLAN] = { CACHE_VM_QUERY, render_plan, NULL },
	[DT_ROUTE_EVACUATION] = { CACHE_NONE, h_evacuation, NULL },
	[DT_ROUTE_HEALTH] = { CACHE_NONE, h_health, NULL },
	[DT_ROUTE_OPENAPI] = { CACHE_NONE, h_openapi, NULL },
	[DT_ROUTE_METRICS] = { CACHE_NONE, h_metrics, NULL },
};

/*
 * Conditional and long-poll handling shared by every resource with a
 * generation. Returns true when a response was queued or the request
 * parked (*res says which), false to go on and render.
 */
static bool conditional(struct dt_req *rq, const struct dt_request_target *t, uint32_t vm_id,
			uint64_t gen, const char *etag, enum MHD_Result *res)
{
	struct MHD_Connection *conn = rq->conn;
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);

	if (!rq->waited && (t->present & (1u << DT_PARAM_WAIT)) && t->wait_us > 0 &&
	    t->index == gen) {
		int r = dt_longpoll_suspend(rq, vm_id, t->wait_us);

		if (r == -EBUSY) {
			*res = dt_http_unavailable(conn, 1, "too many long-polls are waiting");
			return true;
		}
		if (r >= 0) {
			*res = MHD_YES;
			return true;
		}
		*res = dt_http_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				       "cannot wait: %s", strerror(-r));
		return true;
	}
	if (inm && dt_etag_match(inm, etag)) {
		*res = dt_http_not_modified(conn, etag, gen);
		return true;
	}
	return false;
}

int dt_router_check(const char **ret_missing)
{
	for (unsigned r = 0; r < _DT_ROUTE_MAX; r++)
		if (!route_table[r].handle && !route_table[r].json) {
			*ret_missing = dt_route_name((enum dt_route)r);
			return -ENOENT;
		}
	return 0;
}

enum MHD_Result dt_router_handle(struct dt_req *rq, const char *method)
{
	struct dt_api *a = rq->l->api;
	struct dt_manager *m = a->m;
	struct MHD_Connection *conn = rq->conn;
	const struct route_entry *re;
	struct dt_request_target t;
	struct dt_url_problem p;
	struct dt_vm *vm = NULL;
	enum MHD_Result res;
	uint64_t gen = m->generation;
	uint32_t id = 0;
	char etag[96];
	int r;

	if (!rq->target)
		return MHD_NO;
	r = dt_url_parse(rq->target,
			 &(struct dt_url_limits){ .max_wait_us = m->config.api_max_wait_us,
						  .max_rounds = m->config.api_max_plan_rounds },
			 &t, &p);
	if (r < 0 && p.error != DT_URL_BAD_PARAM)
		return url_problem(conn, &p);
	/* The resource exists: a wrong method is 405 even with a bad query. */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return dt_http_method_not_allowed(conn);
	if (r < 0)
		return url_problem(conn, &p);
	re = t.route < _DT_ROUTE_MAX ? &route_table[t.route] : NULL;
	if (!re || (!re->handle && !re->json))
		return dt_http_problem(conn, MHD_HTTP_NOT_FOUND, NULL, "no such resource");

	if (dt_route_has_vm(t.route)) {
		vm = dt_manager_find_vm(m, t.vm);
		if (!vm)
			return dt_http_problem(conn, MHD_HTTP_NOT_FOUND, NULL, "no VM '%s'", t.vm);
		/* Not a 503: libvirt's rate never becomes exact epochs (docs/openapi.json). */
		if (dt_route_needs_epoch(t.route) && vm->state == DT_VM_OBSERVED)
			return dt_http_problem(conn, MHD_HTTP_CONFLICT, NULL,
					       "VM %u is observed through libvirt (%s): this needs "
					       "the exact working-set curve of a VM attached through "
					       "the protocol",
					       vm->id, dt_vm_source_name(vm));
		if (dt_route_needs_epoch(t.route) && dt_stats_epochs(vm->stats) == 0)
			return dt_http_unavailable(conn,
						   (unsigned)((vm->epoch_us + 999999) / 1000000),
						   "VM %u has no harvested epoch yet", vm->id);
		gen = vm->generation;
		id = vm->id;
	}
	switch (re->cache) {
	case CACHE_NONE:
	case CACHE_IMMUTABLE:
		return re->handle(rq, vm, &t, NULL);
	case CACHE_VM_QUERY: /* a function of the generation and the query */
		snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%u-%" PRIu64 "-%016" PRIx64 "\"",
			 a->etag_salt, id, gen, plan_query_hash(&t));
		break;
	case CACHE_REGISTRY:
	case CACHE_VM:
	case CACHE_VM_RENDERED:
	default:
		snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%u-%" PRIu64 "\"", a->etag_salt, id,
			 gen);
		break;
	}
	if (conditional(rq, &t, id, gen, etag, &res))
		return res;
	if (re->handle)
		return re->handle(rq, vm, &t, etag);
	if (re->cache == CACHE_VM_RENDERED)
		return send_rendered(rq, vm, re->json, etag);
	return dt_http_send_json(conn, MHD_HTTP_OK, re->json(vm), etag, gen);
}
