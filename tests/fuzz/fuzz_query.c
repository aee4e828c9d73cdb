/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for the REST request-target parser (api/url.c): the
 * path, its percent escapes, the route table and every query parameter
 * (the plan's figures with units too), plus the If-None-Match list.
 * Checks the invariants the router relies on.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* [api] max_wait and max_plan_rounds at their defaults */
	static const struct dt_url_limits lim = { .max_wait_us = 60000000, .max_rounds = 100 };
	struct dt_request_target t;
	struct dt_url_problem p;
	char *s = malloc(size + 1);
	int r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	r = dt_url_parse(s, &lim, &t, &p);
	if (r == 0) {
		assert(t.route < _DT_ROUTE_MAX);
		assert(strlen(t.vm) < sizeof(t.vm));
		assert(!dt_route_has_vm(t.route) || t.vm[0]);
		assert(t.wait_us <= 60000000);
		assert(t.limit >= 1 && t.limit <= DT_HISTORY_LIMIT_MAX);
		assert(!(t.present & (1u << DT_PARAM_WAIT)) || (t.present & (1u << DT_PARAM_INDEX)));
		/* the plan: both required figures, each within its documented range */
		if (t.route == DT_ROUTE_VM_PLAN) {
			assert(t.present & (1u << DT_PARAM_BANDWIDTH));
			assert(t.present & (1u << DT_PARAM_DOWNTIME));
			assert(t.bandwidth >= 1 && t.bandwidth <= DT_BANDWIDTH_MAX);
			assert(t.downtime_us > 0 && t.downtime_us <= DT_PLAN_DOWNTIME_MAX_US);
			assert(t.zero_fraction >= 0 && t.zero_fraction <= 1);
			assert(t.max_rounds <= lim.max_rounds);
			assert(!(t.present & (1u << DT_PARAM_MAX_ROUNDS)) || t.max_rounds >= 1);
			assert(t.target_us <= DT_PLAN_TARGET_MAX_US);
			assert(!(t.present & (1u << DT_PARAM_TARGET)) || t.target_us >= 1);
		} else {
			assert(!(t.present & (1u << DT_PARAM_BANDWIDTH | 1u << DT_PARAM_DOWNTIME)));
		}
	} else {
		assert(p.error != DT_URL_OK && p.error < _DT_URL_ERROR_MAX);
		assert(memchr(p.detail, 0, sizeof(p.detail)));
		assert(memchr(p.param, 0, sizeof(p.param)));
	}
	(void)dt_etag_match(s, "\"1-2-3\"");
	free(s);
	return 0;
}
