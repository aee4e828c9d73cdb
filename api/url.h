/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Request-target parsing for the REST API: pure code, no I/O, no
 * libmicrohttpd, so that the libFuzzer harness links it alone. The raw
 * target ("/v1/vms/web%201/history?since=3&limit=10") is split into
 * percent-decoded path segments, matched against the route table, and its
 * query parameters are validated against what that route accepts.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_URL_MAX 2048 /* longer targets are refused (414) */
#define DT_URL_MAX_SEGMENTS 8
#define DT_URL_MAX_PARAMS 8
#define DT_HISTORY_LIMIT_MAX 100000u
#define DT_HISTORY_LIMIT_DEFAULT 1000u
/* epochs/{n}/pages: ranges per response (?limit=), the same maximum; the
 * default is [api] pages_limit */
/* heatmap: regions per response (?limit=), the same maximum */
#define DT_HEATMAP_LIMIT_DEFAULT 4096u
/*
 * The plan's inputs are bounded where they stop meaning a migration and only
 * cost: a plan that never converges runs all max_rounds from every phase of
 * the activity profile (seconds on the planner thread at 1000 rounds).
 */
#define DT_PLAN_BANDWIDTH_MIN 125000u /* ?bandwidth= at least 1 Mbit/s */
#define DT_PLAN_DOWNTIME_MIN_US 1000u /* ?downtime= at least 1 ms */
#define DT_PLAN_DOWNTIME_MAX_US (3600ull * 1000000) /* ?downtime= at most 1 h */
#define DT_PLAN_TARGET_MAX_US (7ull * 24 * 3600 * 1000000) /* ?target= at most a week */
#define DT_EVACUATION_PARALLEL_MAX 16u /* ?parallel= (dt_evacuate.h's limit) */

enum dt_route {
	DT_ROUTE_VMS,
	DT_ROUTE_VM,
	DT_ROUTE_VM_WSS,
	DT_ROUTE_VM_WSS_SVG,
	DT_ROUTE_VM_VCPUS,
	DT_ROUTE_VM_SLOTS,
	DT_ROUTE_VM_HISTORY,
	DT_ROUTE_VM_HEATMAP,
	DT_ROUTE_VM_HEATMAP_SVG,
	DT_ROUTE_VM_EPOCH_PAGES,
	DT_ROUTE_VM_PLAN,
	DT_ROUTE_EVACUATION,
	DT_ROUTE_HEALTH,
	DT_ROUTE_OPENAPI,
	DT_ROUTE_METRICS,
	_DT_ROUTE_MAX,
};

/* Query parameters, one bit each in a route's accepted set. */
enum dt_param {
	DT_PARAM_SINCE, /* history: first epoch */
	DT_PARAM_LIMIT, /* history: at most this many epochs; epoch pages: ranges */
	DT_PARAM_INDEX, /* long-poll: the generation the client has */
	DT_PARAM_WAIT, /* long-poll: how long to wait for a newer one */
	DT_PARAM_WINDOW, /* heatmap: duration the heatmap covers */
	DT_PARAM_BANDWIDTH, /* plan: bytes per second, with units (required) */
	DT_PARAM_DOWNTIME, /* plan: maximum downtime, a duration (required) */
	DT_PARAM_ZERO_FRACTION, /* plan: share of memory that is zero pages, 0 .. 1 */
	DT_PARAM_MAX_ROUNDS, /* plan: pre-copy rounds before a forced stop */
	DT_PARAM_TARGET, /* plan: time the migration should take at most */
	DT_PARAM_CURSOR, /* epoch pages: the page index to continue from (a "next" link's) */
	DT_PARAM_ENGINE, /* plan: "ideal", "qemu" or "qemu-VERSION" (default: the VMM's) */
	DT_PARAM_PARALLEL, /* evacuation: migrations at once, sharing the bandwidth */
	/* plan, QEMU engine: the host's speeds (stated: the daemon cannot measure them) */
	DT_PARAM_THROUGHPUT,	  /* bytes/s normal pages go at when max-bandwidth allows */
	DT_PARAM_FINAL_BANDWIDTH, /* bytes/s of the stop-and-copy */
	DT_PARAM_ZERO_PAGE_COST,  /* CPU time of a zero page in the bulk round */
	/* plan, QEMU engine: auto-converge with these (either turns it on) */
	DT_PARAM_CPU_THROTTLE_INITIAL,
	DT_PARAM_CPU_THROTTLE_INCREMENT,
	DT_PARAM_THROTTLE_TRIGGER_THRESHOLD, /* percent of the bytes sent, 1 .. 100 */
	DT_PARAM_CPU_THROTTLE_TAILSLOW,	     /* true or false */
	_DT_PARAM_MAX,
};

struct dt_request_target {
	enum dt_route route;
	char vm[128]; /* {vm}: id, uuid or name, decoded; "" if none */
	uint64_t epoch; /* {n} of epochs/{n}/pages */
	unsigned present; /* bit (1 << enum dt_param) per parameter given */
	uint64_t since, limit, index;
	uint32_t cursor;
	uint64_t wait_us, window_us;
	/* plan: bandwidth >= 1 (bytes/s), downtime_us > 0; max_rounds 0 and target_us 0: not given */
	uint64_t bandwidth, downtime_us, target_us;
	double zero_fraction; /* 0 .. 1 */
	uint32_t max_rounds;
	unsigned engine;	 /* plan: enum dt_plan_engine, if given */
	uint32_t engine_version; /* plan: major * 10000 + minor * 100 + micro; 0: none */
	uint32_t parallel;	 /* evacuation: 1 .. DT_EVACUATION_PARALLEL_MAX; 0: not given */
	uint64_t throughput, final_bandwidth; /* plan: bytes/s, if given */
	uint64_t zero_page_us;		      /* plan: if given */
	uint32_t throttle_initial, throttle_increment; /* plan: percent 1 .. 99, if given */
	uint32_t throttle_trigger;		       /* plan: percent 1 .. 100, if given */
	bool throttle_tailslow;			       /* plan: if given */
};

enum dt_url_error {
	DT_URL_OK,
	DT_URL_TOO_LONG, /* 414 */
	DT_URL_BAD_PATH, /* 400: bad escape, NUL, not absolute */
	DT_URL_NOT_FOUND, /* 404: no such route */
	DT_URL_BAD_EPOCH, /* 400: {n} not a number */
	DT_URL_BAD_PARAM, /* 400: unknown, repeated or invalid parameter */
	_DT_URL_ERROR_MAX,
};

struct dt_url_problem {
	enum dt_url_error error;
	char param[32]; /* the parameter at fault, for DT_URL_BAD_PARAM */
	char detail[160];
};

/* The configured limits a request is parsed against. */
struct dt_url_limits {
	uint64_t max_wait_us; /* [api] max_wait: ?wait= is cut to it */
	uint32_t max_rounds; /* [api] max_plan_rounds: ?max_rounds= above it is a 400 */
};

/*
 * Parse a request target. lim->max_wait_us caps ?wait= (larger asks are
 * cut to it, as the cap is documented, not an error); ?max_rounds= is
 * refused above lim->max_rounds (and DT_PLAN_MAX_ROUNDS). Returns 0 with
 * *ret filled, or -EINVAL/-ENOENT/-E2BIG with *problem describing why.
 */
int dt_url_parse(const char *target, const struct dt_url_limits *lim, struct dt_request_target *ret,
		 struct dt_url_problem *problem);

const char *dt_route_name(enum dt_route r);
/* Whether the route's figures need at least one harvested epoch. */
bool dt_route_needs_epoch(enum dt_route r);
/* Whether the route serves a VM (has a {vm} segment). */
bool dt_route_has_vm(enum dt_route r);

/* Decode %XX escapes (and nothing else) of src[0..len) into dst (size dstlen). */
int dt_url_decode(const char *src, size_t len, char *dst, size_t dstlen);

/*
 * If-None-Match: whether the header's list ("*", "a", W/"b", ...) matches
 * etag (a quoted strong tag), by the weak comparison RFC 9110 asks for.
 */
bool dt_etag_match(const char *header, const char *etag);
