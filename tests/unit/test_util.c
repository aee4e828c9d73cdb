/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/dt_util.c parsers with units (bandwidth, duration) and the plan
 * route's query parameters in api/url.c, which are built on them.
 */
#include "dt_test.h"
#include "dt_util.h"
#include "url.h"

static void test_bandwidth_units(void)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} ok[] = {
		{ "125000000", 125000000 },
		{ "125000000/s", 125000000 },
		{ "1", 1 },
		{ "100Mbit", 12500000 },
		{ "100Mbit/s", 12500000 },
		{ "10Gbit", 1250000000 },
		{ "25Gbit", 3125000000 },
		{ "25Gbps", 3125000000 },
		{ "1Gbit/s", 125000000 },
		{ "1000kbit", 125000 },
		{ "1000Kbit", 125000 },
		{ "8bit", 1 },
		{ "1.25GB", 1250000000 },
		{ "1.25GB/s", 1250000000 },
		{ "500MB", 500000000 },
		{ "500MBps", 500000000 },
		{ "1GiB", 1073741824 },
		{ "1GiB/s", 1073741824 },
		{ "1.5MiB", 1572864 },
		{ "100Mibit", 13107200 },
		{ "2TB", 2000000000000 },
		{ "1.4", 1 }, /* rounded to the byte */
		{ "12bit", 2 },
		{ "1000TB", DT_BANDWIDTH_MAX },
	};
	static const char *const bad[] = {
		"",	  "Gbit",   "10 Gbit", " 10Gbit", "10Gbit ", "-1",	"+1",
		"-10Gbit", "nan",    "NaN",	   "inf",     "0x10",	 "1e9",	"10gbit",
		"10Xbit",  "10mbit", "10GBit",   "10Gb",    "10G",	 "10Gbit/", "10Gbit/h",
		"10Gbit/s/s", "10/s/s", "1.2.3",   "10Gibbs", "10 MB",	 "Mbit/s",
	};
	static const char *const range[] = {
		"0", "0Gbit", "0.0", "0/s", "0.5", "1bit", "7bit", "1001TB", "99999999999999999999",
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		v = 0;
		if (dt_parse_bandwidth(ok[i].s, &v) != 0 || v != ok[i].bytes) {
			fprintf(stderr, "'%s' -> %" PRIu64 ", want %" PRIu64 "\n", ok[i].s, v,
				ok[i].bytes);
			dt_test_failures++;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = dt_parse_bandwidth(bad[i], &v);

		if (r != -EINVAL) {
			fprintf(stderr, "'%s' -> %d, want -EINVAL\n", bad[i], r);
			dt_test_failures++;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(range); i++) {
		int r = dt_parse_bandwidth(range[i], &v);

		if (r != -ERANGE) {
			fprintf(stderr, "'%s' -> %d, want -ERANGE\n", range[i], r);
			dt_test_failures++;
		}
	}
	CHECK_EQ(dt_parse_bandwidth(NULL, &v), -EINVAL);
}

static void test_duration_units(void)
{
	uint64_t us = 0;

	CHECK(dt_parse_duration("300ms", &us) == 0 && us == 300000);
	CHECK(dt_parse_duration("2s", &us) == 0 && us == 2000000);
	CHECK(dt_parse_duration("50ms", &us) == 0 && us == 50000);
	CHECK(dt_parse_duration("1.5", &us) == 0 && us == 1500000);
	CHECK_EQ(dt_parse_duration("nan", &us), -EINVAL);
	CHECK_EQ(dt_parse_duration("-1s", &us), -EINVAL);
	CHECK_EQ(dt_parse_duration("3 ms", &us), -EINVAL);
}

static int parse(const char *target, struct dt_request_target *t, struct dt_url_problem *p)
{
	return dt_url_parse(target, &(struct dt_url_limits){ 60000000, 100 }, t, p);
}

static void check_bad(const char *target, const char *param)
{
	struct dt_request_target t;
	struct dt_url_problem p;

	if (parse(target, &t, &p) != -EINVAL || p.error != DT_URL_BAD_PARAM ||
	    strcmp(p.param, param) != 0 || !strstr(p.detail, param)) {
		fprintf(stderr, "%s: not a 400 naming '%s': error %d param '%s' detail '%s'\n",
			target, param, p.error, p.param, p.detail);
		dt_test_failures++;
	}
}

static void test_plan_route(void)
{
	struct dt_request_target t;
	struct dt_url_problem p;

	CHECK_EQ(parse("/v1/vms/web/plan?bandwidth=10Gbit&downtime=300ms", &t, &p), 0);
	CHECK_EQ(t.route, DT_ROUTE_VM_PLAN);
	CHECK(strcmp(t.vm, "web") == 0);
	CHECK_EQ(t.bandwidth, 1250000000);
	CHECK_EQ(t.downtime_us, 300000);
	CHECK(t.zero_fraction == 0);
	CHECK_EQ(t.max_rounds, 0); /* the planner's default */
	CHECK_EQ(t.target_us, 0);
	CHECK(dt_route_needs_epoch(DT_ROUTE_VM_PLAN));
	CHECK(dt_route_has_vm(DT_ROUTE_VM_PLAN));

	CHECK_EQ(parse("/v1/vms/7/plan/?downtime=2s&bandwidth=1.25GB%2Fs&zero_fraction=0.25&"
		       "max_rounds=5&target=2m&index=3",
		       &t, &p),
		 0);
	CHECK_EQ(t.bandwidth, 1250000000);
	CHECK_EQ(t.downtime_us, 2000000);
	CHECK(t.zero_fraction == 0.25);
	CHECK_EQ(t.max_rounds, 5);
	CHECK_EQ(t.target_us, 120000000);
	CHECK_EQ(parse("/v1/vms/7/plan?bandwidth=100Mbit/s&downtime=50ms&zero_fraction=1", &t, &p),
		 0);
	CHECK(t.zero_fraction == 1);

	/* missing */
	check_bad("/v1/vms/web/plan", "bandwidth");
	check_bad("/v1/vms/web/plan?downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit", "downtime");
	/* bandwidth */
	check_bad("/v1/vms/web/plan?bandwidth=0&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=124999&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=999us", "downtime");
	check_bad("/v1/vms/web/plan?bandwidth=-10Gbit&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=NaN&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=inf&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=10Xbit&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=10parsecs&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth&downtime=300ms", "bandwidth");
	check_bad("/v1/vms/web/plan?bandwidth=1Gbit&bandwidth=2Gbit&downtime=300ms", "bandwidth");
	/* downtime */
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=0", "downtime");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=0ms", "downtime");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=-1s", "downtime");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=nan", "downtime");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=3fortnights", "downtime");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=2h", "downtime");
	/* optional ones */
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&zero_fraction=1.5",
		  "zero_fraction");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&zero_fraction=-0.1",
		  "zero_fraction");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&zero_fraction=nan",
		  "zero_fraction");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&zero_fraction=50%25",
		  "zero_fraction");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&max_rounds=0", "max_rounds");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&max_rounds=101", "max_rounds");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&max_rounds=1.5", "max_rounds");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&target=0", "target");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&target=soon", "target");
	check_bad("/v1/vms/web/plan?bandwidth=10Gbit&downtime=1s&window=1s", "window");
	/* the plan parameters belong to the plan route only */
	check_bad("/v1/vms/web/wss?bandwidth=10Gbit", "bandwidth");
	check_bad("/v1/vms/web/history?downtime=1s", "downtime");
}

int main(void)
{
	RUN(test_bandwidth_units);
	RUN(test_duration_units);
	RUN(test_plan_route);
	TEST_EXIT();
}
