/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal to api/: the HTTP server's state shared by the listener glue
 * (rest.c), the router, responses, long-poll, metrics and SVG.
 */
#pragma once

#define DT_API_PRIORITY 10 /* sd-event priority of HTTP work: after the harvest */

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "clients.h"
#include "config.h"
#include "url.h"

struct dt_manager;
struct dt_plan;
struct dt_plan_call;
struct dt_vm;
struct json_object;

#define DT_API_MAX_LISTENERS 3

struct dt_listener {
	struct dt_api *api;
	struct MHD_Daemon *mhd;
	sd_event_source *io;
	sd_event_source *timer;
	const char *name;
	bool remote; /* TLS, bearer token required */
	bool local; /* a Unix socket: clients are peer uids (clients below) */
	bool closed; /* a connection closed in this MHD_run: run again (see rest.c) */
	struct dt_clients clients;
	uint64_t refused; /* connections over max_connections_per_client */
	unsigned waiters; /* suspended long-polls */
	unsigned max_waiters;
};

/* One request (MHD's per-connection-request context). */
struct dt_req {
	struct dt_listener *l;
	struct MHD_Connection *conn;
	char *target; /* the raw request target, before any unescaping */
	struct dt_req *prev, *next; /* in api->waiting while suspended */
	sd_event_source *timer; /* long-poll deadline */
	uint32_t vm_id; /* the VM waited for; 0: the registry */
	bool suspended;
	bool waited; /* the long-poll is over: answer now */
	/* A plan computed off the loop (planner.c): suspended while plan_call is set. */
	struct dt_plan_call *plan_call;
	struct dt_plan *plan; /* the result, when plan_ready */
	int plan_r;
	bool plan_ready;
	uint64_t plan_generation, plan_epoch;
	char plan_etag[96];
	/* An evacuation planned off the loop (evacuation.c): suspended while evac_call is set. */
	struct dt_evacuation_call *evac_call;
	struct dt_evacuation *evac; /* the result, when evac_ready */
	int evac_r;
	bool evac_ready;
	/* [api] plan_timeout while a plan or an evacuation is parked: then 503 */
	sd_event_source *park_deadline;
};

/*
 * /metrics' plan of a VM at one [metrics] reference link (ref_plans.c),
 * computed on the planner thread after the VM's figures change.
 */
struct dt_ref_plan {
	bool valid; /* planned at all */
	uint64_t generation; /* of the VM when its figures were read */
	uint64_t bandwidth, downtime_us; /* the link it was planned at */
	int error; /* < 0: no plan (no epoch yet, observed VM, ...) */
	bool converges;
	uint32_t rounds;
	double total_seconds, downtime_seconds;
};

/*
 * The API's state of one VM in the registry (vm_cache.c): made on the
 * registry's ADDED, dropped on REMOVED. The VM model knows nothing of it.
 */
struct dt_api_vm {
	struct dt_api_vm *next; /* in its hash bucket */
	struct dt_api *api;
	const struct dt_vm *vm; /* valid until REMOVED */
	uint32_t id;
	char *view; /* the rendering of GET /v1/vms/{vm} at generation view_gen, or NULL */
	size_t view_len;
	uint64_t view_gen;
	struct dt_ref_plan ref[DT_MAX_REF_LINKS]; /* by [metrics] reference_links index */
	bool ref_wanted; /* the figures changed since the last submit */
	struct dt_plan_call *ref_call; /* the links' plans in flight, or NULL */
	uint64_t ref_started_us; /* when the last call was submitted; 0: never */
	struct dt_ref_link ref_sent[DT_MAX_REF_LINKS]; /* the links as submitted */
	unsigned ref_nsent;
};

#define DT_API_VM_BUCKETS 256

struct dt_api {
	struct dt_manager *m;
	struct dt_listener l[DT_API_MAX_LISTENERS];
	unsigned n;
	char *token; /* bearer token of the remote listener */
	char *tls_cert, *tls_key; /* PEM */
	struct dt_req *waiting;
	struct dt_planner *planner; /* plans off the loop */
	struct dt_planner *ref_planner; /* /metrics' reference-link plans (their own queue) */
	sd_event_source *ref_timer; /* a VM's next reference-link plan is due */
	uint64_t ref_scraped_us; /* the last /metrics; 0: none yet */
	struct dt_api_vm *vms[DT_API_VM_BUCKETS]; /* by id */
	uint64_t etag_salt; /* per daemon start, so ETags never repeat across restarts */
	bool observing;
};

/*
 * vm_cache.c: the API's per-VM state, following the registry (its
 * observer also wakes the long-polls). start takes the VMs already listed.
 */
int dt_api_vms_start(struct dt_api *a);
void dt_api_vms_stop(struct dt_api *a); /* drops every entry, cancels their plans */
/* NULL when the API has none for it (out of memory at ADDED): serve it uncached. */
struct dt_api_vm *dt_api_vm_find(const struct dt_api *a, uint32_t id);

/*
 * ref_plans.c: each VM's plan at every [metrics] reference link, computed
 * on a planner thread of their own after its figures change, while
 * /metrics is being scraped, so that a scrape only reads what is cached.
 */
int dt_ref_plans_start(struct dt_api *a);
void dt_ref_plans_stop(struct dt_api *a); /* after dt_api_vms_stop */
void dt_ref_plans_changed(struct dt_api_vm *e); /* its figures changed */
void dt_ref_plans_drop(struct dt_api_vm *e); /* it leaves: cancel its calls */
void dt_ref_plans_scraped(struct dt_api *a); /* /metrics was read: keep them fresh */
/* The plan at link i if one was made at the link as configured now, else NULL. */
const struct dt_ref_plan *dt_ref_plan_get(const struct dt_api_vm *e, unsigned i,
					   const struct dt_ref_link *l);

/* response.c */
enum MHD_Result dt_http_send(struct MHD_Connection *conn, unsigned status,
			     const char *content_type, char *body, size_t len,
			     const char *etag, uint64_t index);
enum MHD_Result dt_http_send_json(struct MHD_Connection *conn, unsigned status,
				  struct json_object *o, const char *etag, uint64_t index);
/* RFC 9457 problem details; param names the query parameter at fault, or NULL. */
enum MHD_Result dt_http_problem(struct MHD_Connection *conn, unsigned status, const char *param,
				const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum MHD_Result dt_http_not_modified(struct MHD_Connection *conn, const char *etag,
				     uint64_t index);
/* 405 with Allow. */
enum MHD_Result dt_http_method_not_allowed(struct MHD_Connection *conn);
/* 401 with WWW-Authenticate. */
enum MHD_Result dt_http_unauthorized(struct MHD_Connection *conn, const char *why);
/* 503 with Retry-After. */
enum MHD_Result dt_http_unavailable(struct MHD_Connection *conn, unsigned retry_after_s,
				    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* router.c */
enum MHD_Result dt_router_handle(struct dt_req *rq, const char *method);
/* Every route of url.c has a row in the route table: 0, or -ENOENT naming one without. */
int dt_router_check(const char **ret_missing);

/* longpoll.c */
void dt_longpoll_stop(struct dt_api *a); /* resumes every waiter */
/* vm (any VM for a registry wait) changed: wake whoever waits for it. */
void dt_longpoll_changed(struct dt_api *a, const struct dt_vm *vm);
/* Suspend rq until vm_id (0: any VM) changes or wait_us passes. */
int dt_longpoll_suspend(struct dt_req *rq, uint32_t vm_id, uint64_t wait_us);
void dt_longpoll_forget(struct dt_req *rq); /* the request ends */
/* rest.c: have MHD look at its connections soon (after a resume). */
void dt_listener_kick(struct dt_listener *l);

/*
 * metrics.c: Prometheus text format 0.0.4, or OpenMetrics 1.0.0 (om).
 * Caller frees *ret.
 */
int dt_metrics_render(struct dt_api *a, bool om, char **ret, size_t *ret_len);
/* accept.c: dt_metrics_wants_openmetrics() picks the format from Accept. */
#include "accept.h"

/* svg.c: pictures a browser can open. Caller frees *ret. */
struct dt_vm;
int dt_svg_heatmap(const struct dt_vm *vm, uint32_t window_epochs, char **ret, size_t *ret_len);
int dt_svg_wss(const struct dt_vm *vm, char **ret, size_t *ret_len);

/*
 * epoch_pages.c: up to limit ranges of epoch's dirty set from dense page
 * index cursor on, as the JSON body; -ENOENT when the epoch is not held
 * exactly. Caller frees *ret.
 */
int dt_epoch_pages_render(const struct dt_vm *vm, uint64_t epoch, uint32_t cursor,
			  uint32_t limit, char **ret, size_t *ret_len);

/*
 * history.c: up to limit epoch records from epoch `since` on, and up to
 * limit heatmap regions of the last `window` epochs from region `cursor`
 * on (window_us, when not 0, goes into the next page's link), as the JSON
 * bodies with the link to the next page. -EINVAL for a limit of 0 or over
 * DT_HISTORY_LIMIT_MAX. Caller frees *ret.
 */
int dt_history_render(const struct dt_vm *vm, uint64_t since, uint32_t limit, char **ret,
		      size_t *ret_len);
int dt_heatmap_render(const struct dt_vm *vm, uint32_t window, uint64_t window_us,
		      uint32_t cursor, uint32_t limit, char **ret, size_t *ret_len);

/* openapi.c: docs/openapi.json, embedded at build time. */
extern const char dt_openapi_json[];
size_t dt_openapi_json_len(void);
