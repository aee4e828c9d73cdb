/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The router: parse the target (url.c), check the method, find the VM,
 * answer 503 before its first harvest where figures are asked for, give
 * 304 to a matching If-None-Match, park a long-poll, then render.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "http.h"
#include "json_plan.h"
#include "json_view.h"
#include "manager.h"
#include "planner.h"
#include "vm_plan.h"

_Static_assert(DT_PLAN_ROUNDS_MAX <= DT_PLAN_MAX_ROUNDS, "?max_rounds= within the planner's limit");

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

static void on_plan_done(void *userdata, int r, struct dt_plan *p, uint64_t generation,
			 uint64_t epoch)
{
	struct dt_req *rq = userdata;

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
		.max_rounds = t->max_rounds,
		.target_us = t->target_us,
	};
	struct MHD_Connection *conn = rq->conn;
	struct dt_plan_engine_input e = { .engine = (enum dt_plan_engine)t->engine };
	struct dt_vm_plan_options oe = o;
	struct dt_plan *p = NULL;
	struct json_object *j;
	int r;

	e.qemu.version = t->engine_version;
	if (t->present & (1u << DT_PARAM_ENGINE))
		oe.engine = &e;
	if (rq->plan_ready) {
		rq->plan_ready = false;
		p = TAKE_PTR(rq->plan);
		r = rq->plan_r;
		if (r == -ECANCELED)
			return dt_http_unavailable(conn, 1, "the daemon is stopping");
	} else {
		r = dt_planner_submit(rq->l->api->planner, vm, &oe, on_plan_done, rq, &rq->plan_call);
		if (r == -EBUSY)
			return dt_http_unavailable(conn, 1, "%u plans are being computed: try again",
						   DT_PLANNER_MAX_PENDING);
		if (r >= 0) {
			snprintf(rq->plan_etag, sizeof(rq->plan_etag), "%s", etag);
			MHD_suspend_connection(conn);
			return MHD_YES;
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

/* FNV-1a over the plan's parsed query: its ETag part besides the generation. */
static uint64_t plan_query_hash(const struct dt_request_target *t)
{
	const uint64_t v[] = { t->bandwidth, t->downtime_us, t->max_rounds, t->target_us,
			       (uint64_t)llround(t->zero_fraction * 1e15),
			       (t->present & (1u << DT_PARAM_ENGINE)) ? 1u + t->engine : 0,
			       t->engine_version };
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		for (unsigned b = 0; b < 64; b += 8) {
			h ^= (v[i] >> b) & 0xff;
			h *= 0x100000001b3ull;
		}
	return h;
}

/*
 * The VM view changes only with the generation (once per epoch): render it
 * once per generation and send copies, so that clients polling many VMs,
 * or one VM many times, cost a copy and not a json-c tree. This also keeps
 * the strong ETag honest: one generation, one body.
 */
static enum MHD_Result send_vm_view(struct MHD_Connection *conn, struct dt_vm *vm,
				    const char *etag)
{
	char *body;

	if (!vm->view || vm->view_gen != vm->generation) {
		struct json_object *o = dt_json_vm(vm);
		const char *s;

		if (!o)
			return MHD_NO;
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
		free(vm->view);
		vm->view_len = strlen(s);
		vm->view = strdup(s);
		vm->view_gen = vm->generation;
		json_object_put(o);
		if (!vm->view)
			return MHD_NO;
	}
	body = malloc(vm->view_len + 1);
	if (!body)
		return MHD_NO;
	memcpy(body, vm->view, vm->view_len + 1);
	return dt_http_send(conn, MHD_HTTP_OK, "application/json", body, vm->view_len, etag,
			    vm->generation);
}

static enum MHD_Result render_vm(struct dt_req *rq, struct dt_vm *vm,
				 const struct dt_request_target *t, const char *etag)
{
	struct MHD_Connection *conn = rq->conn;
	struct json_object *o = NULL;
	char *body = NULL;
	size_t len = 0;
	int r;

	switch (t->route) {
	case DT_ROUTE_VM:
		/* An observed VM's sample ages between generations: never cached. */
		if (vm->state != DT_VM_OBSERVED)
			return send_vm_view(conn, vm, etag);
		o = dt_json_vm(vm);
		break;
	case DT_ROUTE_VM_WSS:
		o = dt_json_vm_wss(vm);
		break;
	case DT_ROUTE_VM_VCPUS:
		o = dt_json_vm_vcpus(vm);
		break;
	case DT_ROUTE_VM_SLOTS:
		o = dt_json_vm_slots(vm);
		break;
	case DT_ROUTE_VM_HISTORY:
		r = dt_history_render(vm, t->since, (uint32_t)t->limit, &body, &len);
		return send_text(conn, "application/json", r, body, len, etag, vm->generation);
	case DT_ROUTE_VM_HEATMAP: {
		uint64_t window_us = t->window_us ? t->window_us : DEFAULT_HEATMAP_WINDOW_US;

		r = dt_heatmap_render(vm, dt_vm_window_epochs(vm, window_us), t->window_us,
				      t->cursor,
				      (t->present & (1u << DT_PARAM_LIMIT)) ? (uint32_t)t->limit
									     : DT_HEATMAP_LIMIT_DEFAULT,
				      &body, &len);
		return send_text(conn, "application/json", r, body, len, etag, vm->generation);
	}
	case DT_ROUTE_VM_HEATMAP_SVG:
		r = dt_svg_heatmap(vm,
				   dt_vm_window_epochs(vm, t->window_us ? t->window_us
								    : DEFAULT_HEATMAP_WINDOW_US),
				   &body, &len);
		return send_text(conn, "image/svg+xml", r, body, len, etag, vm->generation);
	case DT_ROUTE_VM_WSS_SVG:
		r = dt_svg_wss(vm, &body, &len);
		return send_text(conn, "image/svg+xml", r, body, len, etag, vm->generation);
	case DT_ROUTE_VM_EPOCH_PAGES:
		r = dt_epoch_pages_render(vm, t->epoch, t->cursor,
					  (t->present & (1u << DT_PARAM_LIMIT))
						  ? (uint32_t)t->limit
						  : DT_PAGES_LIMIT_DEFAULT,
					  &body, &len);
		if (r == -ENOENT)
			return dt_http_problem(conn, MHD_HTTP_NOT_FOUND, NULL,
					       "epoch %" PRIu64 " of VM %u is not held exactly (the "
					       "last recent_epochs are)",
					       t->epoch, vm->id);
		/* A closed epoch's set never changes: no validators needed. */
		return send_text(conn, "application/json", r, body, len, NULL, 0);
	case DT_ROUTE_VM_PLAN:
		return render_plan(rq, vm, t, etag);
	default:
		return dt_http_problem(conn, MHD_HTTP_NOT_FOUND, NULL, "no such resource");
	}
	return dt_http_send_json(conn, MHD_HTTP_OK, o, etag, vm->generation);
}

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

enum MHD_Result dt_router_handle(struct dt_req *rq, const char *method)
{
	struct dt_api *a = rq->l->api;
	struct dt_manager *m = a->m;
	struct MHD_Connection *conn = rq->conn;
	struct dt_request_target t;
	struct dt_url_problem p;
	enum MHD_Result res;
	struct dt_vm *vm;
	char etag[96];
	char *body;
	size_t len;
	bool om;
	int r;

	if (!rq->target)
		return MHD_NO;
	r = dt_url_parse(rq->target, m->config.api_max_wait_us, &t, &p);
	if (r < 0 && p.error != DT_URL_BAD_PARAM)
		return url_problem(conn, &p);
	/* The resource exists: a wrong method is 405 even with a bad query. */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return dt_http_method_not_allowed(conn);
	if (r < 0)
		return url_problem(conn, &p);

	switch (t.route) {
	case DT_ROUTE_VMS:
		snprintf(etag, sizeof(etag), "\"%" PRIx64 "-0-%" PRIu64 "\"", a->etag_salt,
			 m->generation);
		if (conditional(rq, &t, 0, m->generation, etag, &res))
			return res;
		return dt_http_send_json(conn, MHD_HTTP_OK, dt_json_vm_list(m), etag,
					 m->generation);
	case DT_ROUTE_HEALTH:
		return dt_http_send_json(conn, MHD_HTTP_OK, health(m), NULL, 0);
	case DT_ROUTE_OPENAPI:
		body = malloc(dt_openapi_json_len() + 1);
		if (!body)
			return MHD_NO;
		memcpy(body, dt_openapi_json, dt_openapi_json_len() + 1);
		return dt_http_send(conn, MHD_HTTP_OK, "application/json", body,
				    dt_openapi_json_len(), NULL, 0);
	case DT_ROUTE_METRICS:
		om = dt_metrics_wants_openmetrics(
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
		r = dt_metrics_render(m, om, &body, &len);
		return send_text(conn,
				 om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
				    : "text/plain; version=0.0.4; charset=utf-8",
				 r, body, len, NULL, 0);
	default:
		break;
	}

	vm = dt_manager_find_vm(m, t.vm);
	if (!vm)
		return dt_http_problem(conn, MHD_HTTP_NOT_FOUND, NULL, "no VM '%s'", t.vm);
	/* Not a 503: libvirt's rate never becomes exact epochs (docs/openapi.json). */
	if (dt_route_needs_epoch(t.route) && vm->state == DT_VM_OBSERVED)
		return dt_http_problem(conn, MHD_HTTP_CONFLICT, NULL,
				       "VM %u is observed through libvirt (%s): this needs the exact "
				       "working-set curve of a VM attached through the protocol",
				       vm->id, dt_vm_source_name(vm));
	if (dt_route_needs_epoch(t.route) && dt_stats_epochs(vm->stats) == 0)
		return dt_http_unavailable(conn, (unsigned)((vm->epoch_us + 999999) / 1000000),
					   "VM %u has no harvested epoch yet", vm->id);
	if (t.route == DT_ROUTE_VM_PLAN) /* a function of the generation and the query */
		snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%u-%" PRIu64 "-%016" PRIx64 "\"",
			 a->etag_salt, vm->id, vm->generation, plan_query_hash(&t));
	else
		snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%u-%" PRIu64 "\"", a->etag_salt,
			 vm->id, vm->generation);
	if (t.route != DT_ROUTE_VM_EPOCH_PAGES &&
	    conditional(rq, &t, vm->id, vm->generation, etag, &res))
		return res;
	return render_vm(rq, vm, &t, etag);
}
