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
#include "url.h"

struct dt_manager;
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
};

struct dt_api {
	struct dt_manager *m;
	struct dt_listener l[DT_API_MAX_LISTENERS];
	unsigned n;
	char *token; /* bearer token of the remote listener */
	char *tls_cert, *tls_key; /* PEM */
	struct dt_req *waiting;
	struct dt_planner *planner; /* plans off the loop */
	uint64_t etag_salt; /* per daemon start, so ETags never repeat across restarts */
	bool observing;
};

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

/* longpoll.c */
int dt_longpoll_start(struct dt_api *a);
void dt_longpoll_stop(struct dt_api *a); /* resumes every waiter */
/* Suspend rq until vm_id (0: any VM) changes or wait_us passes. */
int dt_longpoll_suspend(struct dt_req *rq, uint32_t vm_id, uint64_t wait_us);
void dt_longpoll_forget(struct dt_req *rq); /* the request ends */
/* rest.c: have MHD look at its connections soon (after a resume). */
void dt_listener_kick(struct dt_listener *l);

/*
 * metrics.c: Prometheus text format 0.0.4, or OpenMetrics 1.0.0 (om).
 * Caller frees *ret.
 */
int dt_metrics_render(struct dt_manager *m, bool om, char **ret, size_t *ret_len);
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
