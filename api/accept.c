/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * HTTP Accept negotiation for /metrics (RFC 9110 media ranges with q):
 * pure code on an untrusted header, bounded by its length, no allocation.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "accept.h"

/* The q of one media range's parameters (";q=0.5;version=1.0.0"); -1: a version we do not speak. */
static double media_q(const char *p, const char *end, const char *version)
{
	double q = 1;

	while (p < end) {
		const char *next = memchr(p, ';', (size_t)(end - p));
		size_t n;

		if (!next)
			next = end;
		while (p < next && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		n = (size_t)(next - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
			char tmp[16];
			char *e;

			if (n - 2 >= sizeof(tmp))
				return 0;
			memcpy(tmp, p + 2, n - 2);
			tmp[n - 2] = '\0';
			q = strtod(tmp, &e);
			if (*e || !(q >= 0 && q <= 1))
				return 0;
		} else if (version && n > 8 && strncasecmp(p, "version=", 8) == 0) {
			if (n - 8 != strlen(version) || memcmp(p + 8, version, n - 8) != 0)
				return -1;
		}
		p = next + 1;
	}
	return q;
}

bool dt_metrics_wants_openmetrics(const char *accept)
{
	double om = 0, text = 0;

	if (!accept)
		return false;
	for (const char *p = accept; *p;) {
		const char *end = strchr(p, ',');
		const char *semi;
		size_t n;

		if (!end)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		semi = memchr(p, ';', (size_t)(end - p));
		if (!semi)
			semi = end;
		n = (size_t)(semi - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == strlen("application/openmetrics-text") &&
		    strncasecmp(p, "application/openmetrics-text", n) == 0) {
			double q = media_q(semi, end, "1.0.0");

			if (q > om)
				om = q;
		} else if ((n == strlen("text/plain") && strncasecmp(p, "text/plain", n) == 0) ||
			   (n == 3 && memcmp(p, "*/*", 3) == 0) ||
			   (n == 6 && strncasecmp(p, "text/*", 6) == 0)) {
			double q = media_q(semi, end, NULL);

			if (q > text)
				text = q;
		}
		p = *end ? end + 1 : end;
	}
	return om > 0 && om >= text;
}
