/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine a plan predicts for: its name and its parsing (dt_plan.h); pure, no planner. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_plan.h"

const char *dt_plan_engine_name(enum dt_plan_engine e)
{
	static const char *const names[_DT_PLAN_ENGINE_MAX] = {
	    [DT_PLAN_ENGINE_IDEAL] = "ideal",
	    [DT_PLAN_ENGINE_QEMU] = "qemu",
	};
	return e < _DT_PLAN_ENGINE_MAX ? names[e] : "?";
}

/* "qemu-7.2" or "qemu-8.0.1": the version as major * 10000 + minor * 100 + micro. */
static int parse_version(const char *s, uint32_t *ret)
{
	unsigned long part[3] = {0, 0, 0};
	int n = 0;

	while (n < 3) {
		char *end;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		part[n++] = strtoul(s, &end, 10);
		if (part[n - 1] > 99 || end - s > 2)
			return -EINVAL;
		s = end;
		if (*s == 0)
			break;
		if (*s++ != '.')
			return -EINVAL;
	}
	if (*s || n < 2 || part[0] == 0)
		return -EINVAL;
	*ret = (uint32_t)(part[0] * 10000 + part[1] * 100 + part[2]);
	return 0;
}

int dt_plan_engine_parse(const char *s, enum dt_plan_engine *e, uint32_t *version)
{
	*version = 0;
	if (strcmp(s, "ideal") == 0) {
		*e = DT_PLAN_ENGINE_IDEAL;
		return 0;
	}
	if (strncmp(s, "qemu", 4) != 0)
		return -EINVAL;
	*e = DT_PLAN_ENGINE_QEMU;
	if (s[4] == 0)
		return 0;
	if (s[4] != '-')
		return -EINVAL;
	return parse_version(s + 5, version);
}
