/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Planted bugs for negative controls: a sanitizer build (make SAN=1, which
 * defines DT_TEST_PLANTS) switches one on with DT_PLANT=name in the
 * daemon's environment, so a test can show that the protocol fuzzer finds a
 * known bug (tests/integration/fuzz-negative.sh). Other builds compile every
 * plant to `false`: no planted code is in what is installed.
 *
 *   bitmap-drop-bit       every 64th non-zero bitmap word taken loses its
 *                         lowest bit (a page silently lost)
 *   remove-slot-stale     REMOVE_SLOT frees the slot's bitmap but leaves it
 *                         in the collector's list (a use after free)
 *   plan-slow             every plan on a planner thread takes 3 s more (a
 *                         planner starved of CPU: [api] plan_timeout)
 *   rehash-new-only       while the last-dirty index's hash rehashes, lookups
 *                         skip the old table (read when an index is made)
 *   rehash-old-only       ... and skip the new one (tests/unit/test_lastidx.c)
 */
#pragma once

#include <stdbool.h>

#ifdef DT_TEST_PLANTS
#include <stdlib.h>
#include <string.h>

/* The plant switched on, or NULL. */
static inline const char *dt_plant_name(void)
{
	const char *p = getenv("DT_PLANT");

	return p && *p ? p : NULL;
}

static inline bool dt_plant(const char *name)
{
	const char *p = dt_plant_name();

	return p && strcmp(p, name) == 0;
}
#else
static inline const char *dt_plant_name(void)
{
	return NULL;
}

static inline bool dt_plant(const char *name)
{
	(void)name;
	return false;
}
#endif
