/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackctl: shared state of the subcommands. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

/* Exit codes (documented in dirtytrackctl --help and README.md). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILURE = 1, /* the daemon answered with an error */
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_UNREACHABLE = 3, /* no daemon at the socket or URL */
	CTL_EXIT_NOT_FOUND = 4, /* unknown VM */
	CTL_EXIT_DENIED = 5, /* the token was refused (401) */
	CTL_EXIT_NO_CONVERGE = 6, /* plan: pre-copy would not converge (or not within --target) */
};

struct ctl {
	const char *socket; /* Unix socket of the API */
	const char *url; /* base URL for TCP instead */
	const char *cacert; /* CA file for an https URL */
	char *token; /* bearer token (from --token-file) */
	long timeout_ms; /* if > 0: the whole request, connect included, in ms */
	bool json;
};

/* GET path; on success *ret is the parsed body. Returns an exit code. */
int ctl_get(const struct ctl *ctl, const char *path, struct json_object **ret);
/* Same, waiting at most timeout_s for the answer (long-polls). */
int ctl_get_timeout(const struct ctl *ctl, const char *path, long timeout_s,
		    struct json_object **ret);
/* URL-escape one path segment (a VM name). Caller frees. */
char *ctl_escape(const char *s);
void ctl_print_json(struct json_object *o);
/* o[k], or NULL when o is NULL or has no such key. */
struct json_object *ctl_json_get(struct json_object *o, const char *k);
/* o[k] as text, "-" when missing (for tables). */
const char *ctl_json_str(struct json_object *o, const char *k);
/* Append "?key=value" or "&key=value" (value URL-escaped) to path. -1 if it does not fit. */
int ctl_add_param(char *path, size_t size, const char *key, const char *value);
/*
 * The plan request for VM `name`: every argument checked (a typo is a usage
 * error, named on stderr) and added to "/v1/vms/{name}/plan". NULL
 * optional ones are left out. Returns an exit code.
 */
enum { /* the engine's options (getopt values past any character) */
	CTL_PLAN_ENGINE = 0x100,
	CTL_PLAN_THROUGHPUT,
	CTL_PLAN_FINAL_BANDWIDTH,
	CTL_PLAN_ZERO_PAGE_COST,
	CTL_PLAN_THROTTLE_INITIAL,
	CTL_PLAN_THROTTLE_INCREMENT,
	CTL_PLAN_THROTTLE_TRIGGER,
	CTL_PLAN_THROTTLE_TAILSLOW,
	CTL_PLAN_ENGINE_LAST = CTL_PLAN_THROTTLE_TAILSLOW,
	CTL_PLAN_NENGINE_OPTS = CTL_PLAN_ENGINE_LAST - CTL_PLAN_ENGINE + 1,
};
struct ctl_plan_query {
	const char *bandwidth, *downtime, *zero_fraction, *max_rounds, *target;
	/* --engine, --throughput, ... (CTL_PLAN_* - CTL_PLAN_ENGINE), passed to the daemon as given */
	const char *engine_opts[CTL_PLAN_NENGINE_OPTS];
};
int ctl_plan_path(char *path, size_t size, const char *name, const struct ctl_plan_query *q);
/* A plan's "knobs" object as lines, each starting with indent. */
void ctl_print_knobs(struct json_object *knobs, const char *indent);
int ctl_evacuate(const struct ctl *ctl, int argc, char **argv);
/* A command that takes no arguments: a usage error naming the first one. */
int ctl_no_args(const char *command, int argc, char **argv);
/* Human units */
const char *ctl_bytes(double bytes, char buf[32]);
const char *ctl_rate(double bytes_per_s, char buf[32]);

int ctl_list(const struct ctl *ctl, int argc, char **argv);
int ctl_show(const struct ctl *ctl, int argc, char **argv);
int ctl_wss(const struct ctl *ctl, int argc, char **argv);
int ctl_watch(const struct ctl *ctl, int argc, char **argv);
int ctl_plan(const struct ctl *ctl, int argc, char **argv);
int ctl_migrate_check(const struct ctl *ctl, int argc, char **argv);
int ctl_health(const struct ctl *ctl, int argc, char **argv);
