/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for /metrics' Accept negotiation (api/accept.c): any
 * header, terminated or cut anywhere, parses without reading past its end;
 * the answer does not depend on bytes after a NUL, and a header made of
 * the OpenMetrics type alone always selects it.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accept.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	bool r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	r = dt_metrics_wants_openmetrics(s);
	(void)r;
	/* Appending a refused range never turns a "text" answer into OpenMetrics. */
	{
		size_t n = strlen(s);
		char *t = malloc(n + 40);

		if (t) {
			memcpy(t, s, n);
			memcpy(t + n, ",application/openmetrics-text;q=0", 34);
			assert(dt_metrics_wants_openmetrics(t) == r || r);
			free(t);
		}
	}
	assert(dt_metrics_wants_openmetrics("application/openmetrics-text"));
	free(s);
	return 0;
}
