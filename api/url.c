/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "dt_plan.h"
#include "url.h"

#define P(x) (1u << DT_PARAM_##x)
#define SEG_VM "{vm}"
#define SEG_N "{n}"
#define WINDOW_MAX_US (24ull * 3600 * 1000000)

static const struct {
	const char *name;
	const char *seg[DT_URL_MAX_SEGMENTS];
	unsigned params;
	bool needs_epoch;
	unsigned required; /* parameters that must be given */
} routes[_DT_ROUTE_MAX] = {
	[DT_ROUTE_VMS] = { "vms", { "v1", "vms" }, P(INDEX) | P(WAIT) },
	[DT_ROUTE_VM] = { "vm", { "v1", "vms", SEG_VM }, P(INDEX) | P(WAIT) },
	[DT_ROUTE_VM_WSS] = { "wss", { "v1", "vms", SEG_VM, "wss" }, P(INDEX) | P(WAIT), true },
	[DT_ROUTE_VM_WSS_SVG] = { "wss.svg", { "v1", "vms", SEG_VM, "wss.svg" }, 0, true },
	[DT_ROUTE_VM_VCPUS] = { "vcpus", { "v1", "vms", SEG_VM, "vcpus" }, P(INDEX) | P(WAIT),
				true },
	[DT_ROUTE_VM_SLOTS] = { "slots", { "v1", "vms", SEG_VM, "slots" }, P(INDEX) | P(WAIT),
				true },
	[DT_ROUTE_VM_HISTORY] = { "history",
				  { "v1", "vms", SEG_VM, "history" },
				  P(SINCE) | P(LIMIT) | P(INDEX) | P(WAIT) },
	[DT_ROUTE_VM_HEATMAP] = { "heatmap",
				  { "v1", "vms", SEG_VM, "heatmap" },
				  P(WINDOW) | P(CURSOR) | P(LIMIT) | P(INDEX) | P(WAIT),
				  true },
	[DT_ROUTE_VM_HEATMAP_SVG] = { "heatmap.svg",
				      { "v1", "vms", SEG_VM, "heatmap.svg" },
				      P(WINDOW),
				      true },
	[DT_ROUTE_VM_EPOCH_PAGES] = { "epoch pages",
				      { "v1", "vms", SEG_VM, "epochs", SEG_N, "pages" },
				      P(CURSOR) | P(LIMIT) },
	[DT_ROUTE_VM_PLAN] = { "plan",
			       { "v1", "vms", SEG_VM, "plan" },
			       P(BANDWIDTH) | P(DOWNTIME) | P(ZERO_FRACTION) | P(MAX_ROUNDS) |
				       P(TARGET) | P(ENGINE) | P(THROUGHPUT) | P(FINAL_BANDWIDTH) |
				       P(ZERO_PAGE_COST) | P(CPU_THROTTLE_INITIAL) |
				       P(CPU_THROTTLE_INCREMENT) | P(THROTTLE_TRIGGER_THRESHOLD) |
				       P(CPU_THROTTLE_TAILSLOW) | P(INDEX) | P(WAIT),
			       true,
			       P(BANDWIDTH) | P(DOWNTIME) },
	[DT_ROUTE_EVACUATION] = { "evacuation",
				  { "v1", "evacuation" },
				  P(BANDWIDTH) | P(DOWNTIME) | P(PARALLEL) | P(TARGET) |
					  P(ZERO_FRACTION),
				  false,
				  P(BANDWIDTH) | P(DOWNTIME) },
	[DT_ROUTE_HEALTH] = { "health", { "v1", "health" } },
	[DT_ROUTE_OPENAPI] = { "openapi", { "openapi.json" } },
	[DT_ROUTE_METRICS] = { "metrics", { "metrics" } },
};

static const char *const param_names[_DT_PARAM_MAX] = {
	[DT_PARAM_SINCE] = "since", [DT_PARAM_LIMIT] = "limit", [DT_PARAM_INDEX] = "index",
	[DT_PARAM_WAIT] = "wait",   [DT_PARAM_WINDOW] = "window",
	[DT_PARAM_BANDWIDTH] = "bandwidth", [DT_PARAM_DOWNTIME] = "downtime",
	[DT_PARAM_ZERO_FRACTION] = "zero_fraction", [DT_PARAM_MAX_ROUNDS] = "max_rounds",
	[DT_PARAM_TARGET] = "target", [DT_PARAM_CURSOR] = "cursor",
	[DT_PARAM_ENGINE] = "engine", [DT_PARAM_PARALLEL] = "parallel",
	[DT_PARAM_THROUGHPUT] = "throughput",
	[DT_PARAM_FINAL_BANDWIDTH] = "final_bandwidth", [DT_PARAM_ZERO_PAGE_COST] = "zero_page_cost",
	[DT_PARAM_CPU_THROTTLE_INITIAL] = "cpu_throttle_initial",
	[DT_PARAM_CPU_THROTTLE_INCREMENT] = "cpu_throttle_increment",
	[DT_PARAM_THROTTLE_TRIGGER_THRESHOLD] = "throttle_trigger_threshold",
	[DT_PARAM_CPU_THROTTLE_TAILSLOW] = "cpu_throttle_tailslow",
};

static const char *const param_needs[_DT_PARAM_MAX] = {
	[DT_PARAM_BANDWIDTH] = "a bandwidth in bytes per second, such as 125000000, 10Gbit, "
			       "1.25GB or 1GiB/s",
	[DT_PARAM_DOWNTIME] = "the maximum downtime, such as 300ms or 2s",
};

/* A fraction: decimal digits with at most one dot, within 0 .. 1. */
static int parse_fraction(const char *s, double *ret)
{
	bool dot = false, digit = false;
	double v;

	for (const char *c = s; *c; c++) {
		if (*c == '.' && !dot)
			dot = true;
		else if (*c >= '0' && *c <= '9')
			digit = true;
		else
			return -EINVAL;
	}
	if (!digit)
		return -EINVAL;
	v = strtod(s, NULL);
	if (!(v >= 0 && v <= 1))
		return -ERANGE;
	*ret = v;
	return 0;
}

const char *dt_route_name(enum dt_route r)
{
	return r < _DT_ROUTE_MAX ? routes[r].name : "unknown";
}

bool dt_route_needs_epoch(enum dt_route r)
{
	return r < _DT_ROUTE_MAX && routes[r].needs_epoch;
}

bool dt_route_has_vm(enum dt_route r)
{
	return r < _DT_ROUTE_MAX && routes[r].seg[2] && strcmp(routes[r].seg[2], SEG_VM) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dt_url_decode(const char *src, size_t len, char *dst, size_t dstlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = hexval(src[i + 1]);
			lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == 0)
			return -EINVAL;
		if (o + 1 >= dstlen)
			return -E2BIG;
		dst[o++] = c;
	}
	if (dstlen == 0)
		return -E2BIG;
	dst[o] = 0;
	return 0;
}

static int problem(struct dt_url_problem *p, enum dt_url_error e, const char *param,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int problem(struct dt_url_problem *p, enum dt_url_error e, const char *param,
		   const char *fmt, ...)
{
	va_list ap;

	p->error = e;
	snprintf(p->param, sizeof(p->param), "%s", param ? param : "");
	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
	va_end(ap);
	return e == DT_URL_TOO_LONG ? -E2BIG : e == DT_URL_NOT_FOUND ? -ENOENT : -EINVAL;
}

/* A plan's bytes per second (?bandwidth=, ?throughput=, ?final_bandwidth=). */
static int parse_rate(const char *key, const char *val, uint64_t *ret, struct dt_url_problem *p)
{
	int r = dt_parse_bandwidth(val, ret);

	if (r == -ERANGE || (r >= 0 && *ret < DT_PLAN_BANDWIDTH_MIN))
		return problem(p, DT_URL_BAD_PARAM, key,
			       "query parameter '%s' must be from 1Mbit/s (%u bytes per second) "
			       "to 1PB/s",
			       key, DT_PLAN_BANDWIDTH_MIN);
	if (r < 0)
		return problem(p, DT_URL_BAD_PARAM, key,
			       "query parameter '%s' must be bytes per second: a number, or with "
			       "a unit such as 10Gbit, 100Mbit/s, 1.25GB, 500MB or 1GiB",
			       key);
	return 0;
}

/* QEMU's cpu-throttle-initial and -increment: percent, 1 .. 99. */
static int parse_percent(const char *key, const char *val, uint32_t *ret,
			 struct dt_url_problem *p)
{
	uint64_t v;

	if (dt_parse_u64(val, 1, 99, &v) < 0)
		return problem(p, DT_URL_BAD_PARAM, key,
			       "query parameter '%s' must be a percentage from 1 to 99", key);
	*ret = (uint32_t)v;
	return 0;
}

/* One "key=value" of the query against what the route accepts. */
static int parse_param(struct dt_request_target *t, unsigned accepted, const char *kv,
		       size_t len, const struct dt_url_limits *lim, struct dt_url_problem *p)
{
	const char *eq = memchr(kv, '=', len);
	char key[32], val[64];
	unsigned i;
	int r;

	r = dt_url_decode(kv, eq ? (size_t)(eq - kv) : len, key, sizeof(key));
	if (r < 0)
		return problem(p, DT_URL_BAD_PARAM, "", "a query parameter name is malformed");
	for (i = 0; i < _DT_PARAM_MAX; i++)
		if (strcmp(key, param_names[i]) == 0)
			break;
	if (i == _DT_PARAM_MAX || !(accepted & (1u << i)))
		return problem(p, DT_URL_BAD_PARAM, key, "unknown query parameter '%s' for %s",
			       key, dt_route_name(t->route));
	if (t->present & (1u << i))
		return problem(p, DT_URL_BAD_PARAM, key, "query parameter '%s' is repeated", key);
	t->present |= 1u << i;
	if (!eq || dt_url_decode(eq + 1, len - (size_t)(eq + 1 - kv), val, sizeof(val)) < 0 ||
	    !*val)
		return problem(p, DT_URL_BAD_PARAM, key, "query parameter '%s' needs a value", key);

	switch ((enum dt_param)i) {
	case DT_PARAM_SINCE:
		if (dt_parse_u64(val, 0, UINT64_MAX, &t->since) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'since' must be an epoch number");
		break;
	case DT_PARAM_LIMIT:
		if (dt_parse_u64(val, 1, DT_HISTORY_LIMIT_MAX, &t->limit) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'limit' must be an integer from 1 to %u",
				       DT_HISTORY_LIMIT_MAX);
		break;
	case DT_PARAM_INDEX:
		if (dt_parse_u64(val, 0, UINT64_MAX, &t->index) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'index' must be a generation number");
		break;
	case DT_PARAM_WAIT:
		if (dt_parse_duration(val, &t->wait_us) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'wait' must be a duration such as 30s");
		t->wait_us = DT_MIN(t->wait_us, lim->max_wait_us);
		break;
	case DT_PARAM_WINDOW:
		if (dt_parse_duration(val, &t->window_us) < 0 || t->window_us == 0 ||
		    t->window_us > WINDOW_MAX_US)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'window' must be a duration from 1us "
				       "to 24h");
		break;
	case DT_PARAM_BANDWIDTH:
		return parse_rate(key, val, &t->bandwidth, p);
	case DT_PARAM_THROUGHPUT:
		return parse_rate(key, val, &t->throughput, p);
	case DT_PARAM_FINAL_BANDWIDTH:
		return parse_rate(key, val, &t->final_bandwidth, p);
	case DT_PARAM_ZERO_PAGE_COST:
		if (dt_parse_duration(val, &t->zero_page_us) < 0 || t->zero_page_us == 0 ||
		    t->zero_page_us > 1000)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'zero_page_cost' must be a duration from "
				       "1us to 1ms, such as 3us");
		break;
	case DT_PARAM_CPU_THROTTLE_INITIAL:
		return parse_percent(key, val, &t->throttle_initial, p);
	case DT_PARAM_CPU_THROTTLE_INCREMENT:
		return parse_percent(key, val, &t->throttle_increment, p);
	case DT_PARAM_THROTTLE_TRIGGER_THRESHOLD: {
		uint64_t v;

		if (dt_parse_u64(val, 1, 100, &v) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter '%s' must be a percentage from 1 to 100", key);
		t->throttle_trigger = (uint32_t)v;
		break;
	}
	case DT_PARAM_CPU_THROTTLE_TAILSLOW:
		if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter '%s' must be true or false", key);
		t->throttle_tailslow = val[0] == 't';
		break;
	case DT_PARAM_DOWNTIME:
		if (dt_parse_duration(val, &t->downtime_us) < 0 ||
		    t->downtime_us < DT_PLAN_DOWNTIME_MIN_US || t->downtime_us > DT_PLAN_DOWNTIME_MAX_US)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'downtime' must be a duration from 1ms to "
				       "1h, such as 300ms or 2s");
		break;
	case DT_PARAM_ZERO_FRACTION:
		if (parse_fraction(val, &t->zero_fraction) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'zero_fraction' must be a number from 0 "
				       "to 1, such as 0.25");
		break;
	case DT_PARAM_MAX_ROUNDS: {
		uint32_t most = DT_MIN(lim->max_rounds, DT_PLAN_MAX_ROUNDS);
		uint64_t n;

		if (dt_parse_u64(val, 1, most, &n) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'max_rounds' must be an integer from 1 to "
				       "%u",
				       most);
		t->max_rounds = (uint32_t)n;
		break;
	}
	case DT_PARAM_TARGET:
		if (dt_parse_duration(val, &t->target_us) < 0 || t->target_us == 0 ||
		    t->target_us > DT_PLAN_TARGET_MAX_US)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'target' must be a duration from 1us to "
				       "7 days, such as 120s or 10m");
		break;
	case DT_PARAM_CURSOR: {
		uint64_t c;

		if (dt_parse_u64(val, 0, UINT32_MAX, &c) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'cursor' must be an integer from 0 to %u "
				       "(the next_cursor of the previous page)",
				       UINT32_MAX);
		t->cursor = (uint32_t)c;
		break;
	}
	case DT_PARAM_PARALLEL: {
		uint64_t n;

		if (dt_parse_u64(val, 1, DT_EVACUATION_PARALLEL_MAX, &n) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'parallel' must be an integer from 1 to %u",
				       DT_EVACUATION_PARALLEL_MAX);
		t->parallel = (uint32_t)n;
		break;
	}
	case DT_PARAM_ENGINE: {
		enum dt_plan_engine e;

		if (dt_plan_engine_parse(val, &e, &t->engine_version) < 0)
			return problem(p, DT_URL_BAD_PARAM, key,
				       "query parameter 'engine' must be ideal, qemu or qemu-VERSION "
				       "such as qemu-7.2");
		t->engine = e;
		break;
	}
	default:
		break;
	}
	return 0;
}

static bool segment_is(const char *pat, const char *seg, size_t len)
{
	return strlen(pat) == len && memcmp(pat, seg, len) == 0;
}

int dt_url_parse(const char *target, const struct dt_url_limits *lim, struct dt_request_target *ret,
		 struct dt_url_problem *p)
{
	struct dt_request_target t = { .limit = DT_HISTORY_LIMIT_DEFAULT };
	const char *seg[DT_URL_MAX_SEGMENTS + 1];
	size_t seglen[DT_URL_MAX_SEGMENTS + 1];
	size_t len = strnlen(target, DT_URL_MAX + 1), pathlen, n = 0;
	const char *q, *s;
	unsigned i;
	int r;

	*p = (struct dt_url_problem){ 0 };
	if (len > DT_URL_MAX)
		return problem(p, DT_URL_TOO_LONG, NULL, "the request target is longer than %u",
			       DT_URL_MAX);
	if (target[0] != '/')
		return problem(p, DT_URL_BAD_PATH, NULL, "the request target is not a path");
	q = strchr(target, '?');
	pathlen = q ? (size_t)(q - target) : len;

	/* Segments of the path; one trailing slash is tolerated. */
	for (s = target + 1; s <= target + pathlen;) {
		const char *e = memchr(s, '/', (size_t)(target + pathlen - s));
		size_t l = e ? (size_t)(e - s) : (size_t)(target + pathlen - s);

		if (!e && l == 0 && n > 0)
			break;
		if (n == DT_URL_MAX_SEGMENTS)
			return problem(p, DT_URL_NOT_FOUND, NULL, "no such resource");
		seg[n] = s;
		seglen[n++] = l;
		if (!e)
			break;
		s = e + 1;
	}

	for (i = 0; i < _DT_ROUTE_MAX; i++) {
		size_t k;

		for (k = 0; k < n; k++) {
			const char *pat = routes[i].seg[k];

			if (!pat)
				break;
			if (strcmp(pat, SEG_VM) == 0 || strcmp(pat, SEG_N) == 0) {
				if (seglen[k] == 0)
					break;
				continue;
			}
			if (!segment_is(pat, seg[k], seglen[k]))
				break;
		}
		if (k == n && (n == DT_URL_MAX_SEGMENTS || !routes[i].seg[n]))
			break;
	}
	if (i == _DT_ROUTE_MAX)
		return problem(p, DT_URL_NOT_FOUND, NULL, "no such resource");
	t.route = i;

	for (size_t k = 0; k < n; k++) {
		const char *pat = routes[i].seg[k];

		if (strcmp(pat, SEG_VM) == 0) {
			r = dt_url_decode(seg[k], seglen[k], t.vm, sizeof(t.vm));
			if (r == -E2BIG)
				return problem(p, DT_URL_NOT_FOUND, NULL, "no such VM");
			if (r < 0 || strchr(t.vm, '/'))
				return problem(p, DT_URL_BAD_PATH, NULL,
					       "the VM in the path is malformed");
		} else if (strcmp(pat, SEG_N) == 0) {
			char num[24];

			if (dt_url_decode(seg[k], seglen[k], num, sizeof(num)) < 0 ||
			    dt_parse_u64(num, 0, UINT64_MAX, &t.epoch) < 0)
				return problem(p, DT_URL_BAD_EPOCH, "n",
					       "the epoch in the path is not a number");
		}
	}

	/* Query: '&'-separated key=value pairs. */
	for (s = q ? q + 1 : NULL; s && *s;) {
		const char *e = strchr(s, '&');
		size_t l = e ? (size_t)(e - s) : strlen(s);

		if (l > 0) {
			r = parse_param(&t, routes[i].params, s, l, lim, p);
			if (r < 0)
				return r;
		}
		s = e ? e + 1 : NULL;
	}
	for (unsigned k = 0; k < _DT_PARAM_MAX; k++)
		if ((routes[i].required & (1u << k)) && !(t.present & (1u << k)))
			return problem(p, DT_URL_BAD_PARAM, param_names[k],
				       "query parameter '%s' is required: %s", param_names[k],
				       param_needs[k] ? param_needs[k] : "a value");
	if ((t.present & P(WAIT)) && !(t.present & P(INDEX)))
		return problem(p, DT_URL_BAD_PARAM, "wait",
			       "query parameter 'wait' needs 'index' (the generation you have)");
	*ret = t;
	return 0;
}

bool dt_etag_match(const char *header, const char *etag)
{
	size_t elen = strlen(etag);
	const char *s = header;

	while (s && *s) {
		const char *e;
		size_t l;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (!*s)
			break;
		if (*s == '*')
			return true;
		if (s[0] == 'W' && s[1] == '/')
			s += 2;
		e = strchr(s, ',');
		l = e ? (size_t)(e - s) : strlen(s);
		while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
			l--;
		if (l == elen && memcmp(s, etag, l) == 0)
			return true;
		s = e;
	}
	return false;
}
