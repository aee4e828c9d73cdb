/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /metrics' content negotiation (OpenMetrics when the scraper prefers it)
 * and the [metrics] reference_links key the reference-link gauges read.
 */
#include "config.h"
#include "dt_test.h"
#include "http.h"

#include <errno.h>

static void test_accept(void)
{
	/* What Prometheus 2.x sends by default, and with OpenMetrics turned down. */
	CHECK(dt_metrics_wants_openmetrics(
	    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
	    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
	CHECK(!dt_metrics_wants_openmetrics("text/plain;version=0.0.4;q=1,*/*;q=0.1"));
	CHECK(dt_metrics_wants_openmetrics("application/openmetrics-text"));
	CHECK(dt_metrics_wants_openmetrics("Application/OpenMetrics-Text; version=1.0.0"));
	CHECK(dt_metrics_wants_openmetrics(
	    " application/openmetrics-text ; q=0.9 , text/plain;q=0.5"));
	/* text preferred, a version we do not speak, refused, nothing, garbage */
	CHECK(!dt_metrics_wants_openmetrics("application/openmetrics-text;q=0.5,text/plain"));
	CHECK(!dt_metrics_wants_openmetrics("application/openmetrics-text;version=0.0.1"));
	CHECK(!dt_metrics_wants_openmetrics("application/openmetrics-text;q=0"));
	CHECK(!dt_metrics_wants_openmetrics("application/openmetrics-text;q=2"));
	CHECK(
	    !dt_metrics_wants_openmetrics("application/openmetrics-text;q=0.1234567890123456789"));
	CHECK(!dt_metrics_wants_openmetrics(NULL));
	CHECK(!dt_metrics_wants_openmetrics(""));
	CHECK(!dt_metrics_wants_openmetrics("*/*"));
	CHECK(!dt_metrics_wants_openmetrics(",;,;;q=,application/openmetrics-textx"));
}

static void test_reference_links(void)
{
	struct dt_config c;
	char err[512];

	dt_config_init(&c);
	/* default: one link, 10 Gbit/s with 300 ms */
	CHECK_EQ(c.n_ref_links, 1);
	CHECK_EQ(c.ref_links[0].bandwidth, 1250000000);
	CHECK_EQ(c.ref_links[0].downtime_us, 300000);
	CHECK(strcmp(c.ref_links[0].name, "10Gbit/300ms") == 0);
	CHECK_EQ(dt_config_load_string(&c, "a.conf",
				       "[metrics]\nreference_links = 25Gbit/s/50ms, 1GB/1s\n", err,
				       sizeof(err)),
		 0);
	CHECK_EQ(c.n_ref_links, 2);
	CHECK_EQ(c.ref_links[0].bandwidth, 3125000000);
	CHECK_EQ(c.ref_links[0].downtime_us, 50000);
	CHECK(strcmp(c.ref_links[0].name, "25Gbit/s/50ms") == 0);
	CHECK_EQ(c.ref_links[1].bandwidth, 1000000000);
	CHECK_EQ(c.ref_links[1].downtime_us, 1000000);
	CHECK_EQ(dt_config_load_string(&c, "a.conf", "[metrics]\nreference_links = off\n", err,
				       sizeof(err)),
		 0);
	CHECK_EQ(c.n_ref_links, 0);
	/* bad: no downtime, zero downtime, bad unit, a duplicate, five links, too long a name */
	static const char *const bad[] = {
	    "10Gbit",
	    "10Gbit/0ms",
	    "10Gbat/300ms",
	    "10Gbit/300ms 10Gbit/300ms",
	    "1Gbit/1s 2Gbit/1s 3Gbit/1s 4Gbit/1s 5Gbit/1s",
	    "100000000000000000000000000000Gbit/1s",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), "[metrics]\nreference_links = %s\n", bad[i]);
		CHECK(dt_config_load_string(&c, "b.conf", text, err, sizeof(err)) < 0);
		CHECK(strstr(err, "b.conf:2: [metrics] reference_links"));
		CHECK_EQ(c.n_ref_links, 0); /* unchanged on error */
	}
	dt_config_done(&c);
}

int main(void)
{
	RUN(test_accept);
	RUN(test_reference_links);
	TEST_EXIT();
}
