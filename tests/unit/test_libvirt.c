/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dt_lv_parse_stats against virTypedParameter arrays built by hand, shaped
 * as virConnectGetAllDomainStats gives them (no libvirtd): good records,
 * every numeric type libvirt might use, wrong types and absurd values
 * (-EBADMSG, the sample untouched), the rate only counting once measured,
 * the MiB/s and KiB conversions at their limits, missing and unknown fields.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "dt_libvirt.h"
#include "dt_test.h"

#define MAXP 16

struct params {
	virTypedParameter p[MAXP];
	int n;
};

static virTypedParameter *add(struct params *ps, const char *field, int type)
{
	virTypedParameter *p;

	if (ps->n >= MAXP)
		abort();
	p = &ps->p[ps->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->field, sizeof(p->field), "%s", field);
	p->type = type;
	return p;
}

static void add_int(struct params *ps, const char *f, int v)
{
	add(ps, f, VIR_TYPED_PARAM_INT)->value.i = v;
}

static void add_uint(struct params *ps, const char *f, unsigned v)
{
	add(ps, f, VIR_TYPED_PARAM_UINT)->value.ui = v;
}

static void add_llong(struct params *ps, const char *f, long long v)
{
	add(ps, f, VIR_TYPED_PARAM_LLONG)->value.l = v;
}

static void add_ullong(struct params *ps, const char *f, unsigned long long v)
{
	add(ps, f, VIR_TYPED_PARAM_ULLONG)->value.ul = v;
}

static void add_double(struct params *ps, const char *f, double v)
{
	add(ps, f, VIR_TYPED_PARAM_DOUBLE)->value.d = v;
}

static void add_bool(struct params *ps, const char *f, bool v)
{
	add(ps, f, VIR_TYPED_PARAM_BOOLEAN)->value.b = v;
}

static void add_string(struct params *ps, const char *f, const char *v)
{
	/* value.s is char * in the API; the parser only reads it */
	add(ps, f, VIR_TYPED_PARAM_STRING)->value.s = (char *)v;
}

/* A sample as the worker hands it in: identity already filled. */
static struct dt_lv_sample base_sample(void)
{
	struct dt_lv_sample s;

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 16; i++)
		s.uuid[i] = (uint8_t)(0xa0 + i);
	snprintf(s.name, sizeof(s.name), "guest-1");
	s.sample_us = 123456789;
	s.skipped = false;
	return s;
}

/* A poisoned sample: every parsed field set to something recognisable. */
static struct dt_lv_sample poisoned_sample(void)
{
	struct dt_lv_sample s = base_sample();

	s.vcpus = 7;
	s.memory_bytes = 777;
	s.calc_status = DT_LV_MEASURED;
	s.calc_mode = DT_LV_DIRTY_BITMAP;
	s.has_rate = true;
	s.rate_bytes = 7777;
	s.calc_start_time = -7;
	s.calc_period_s = 77;
	return s;
}

/* Field by field (struct padding is not part of the value). */
static bool same_sample(const struct dt_lv_sample *a, const struct dt_lv_sample *b)
{
	return memcmp(a->uuid, b->uuid, sizeof(a->uuid)) == 0 && strcmp(a->name, b->name) == 0 &&
	       a->vcpus == b->vcpus && a->memory_bytes == b->memory_bytes &&
	       a->calc_status == b->calc_status && a->calc_mode == b->calc_mode &&
	       a->has_rate == b->has_rate && a->rate_bytes == b->rate_bytes &&
	       a->calc_start_time == b->calc_start_time && a->calc_period_s == b->calc_period_s &&
	       a->sample_us == b->sample_us && a->skipped == b->skipped;
}

/* Parse ps into a poisoned sample; expect -EBADMSG and nothing changed. */
static int rejected(const struct params *ps)
{
	struct dt_lv_sample s = poisoned_sample(), before = s;
	int r = dt_lv_parse_stats(ps->p, ps->n, &s);

	if (!same_sample(&s, &before)) {
		fprintf(stderr, "  sample changed by a rejected record\n");
		return 1;
	}
	return r;
}

/* What libvirt's QEMU driver emits for a measured page-sampling calc. */
static void good_record(struct params *ps)
{
	add_string(ps, "state.state", "running"); /* other groups: ignored */
	add_int(ps, "state.reason", 1);
	add_uint(ps, "vcpu.current", 4);
	add_uint(ps, "vcpu.maximum", 8);
	add_ullong(ps, "balloon.current", 1048576);
	add_ullong(ps, "balloon.maximum", 2097152); /* KiB: 2 GiB */
	add_int(ps, "dirtyrate.calc_status", 2);
	add_llong(ps, "dirtyrate.calc_start_time", 1234567);
	add_int(ps, "dirtyrate.calc_period", 1);
	add_string(ps, "dirtyrate.calc_mode", "page-sampling");
	add_llong(ps, "dirtyrate.megabytes_per_second", 125);
}

static void test_good(void)
{
	struct params ps = { .n = 0 };
	struct dt_lv_sample s = base_sample(), b = base_sample();

	good_record(&ps);
	CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
	CHECK_EQ(s.vcpus, 4);
	CHECK(s.memory_bytes == 2ULL << 30);
	CHECK_EQ(s.calc_status, DT_LV_MEASURED);
	CHECK_EQ(s.calc_mode, DT_LV_PAGE_SAMPLING);
	CHECK(s.has_rate);
	CHECK(s.rate_bytes == 125ULL << 20);
	CHECK_EQ(s.calc_start_time, 1234567);
	CHECK_EQ(s.calc_period_s, 1);
	/* the fields the stats do not carry are left alone */
	CHECK(memcmp(s.uuid, b.uuid, sizeof(s.uuid)) == 0);
	CHECK(strcmp(s.name, "guest-1") == 0);
	CHECK(s.sample_us == 123456789);
	CHECK(!s.skipped);
}

static void test_modes(void)
{
	static const struct {
		const char *name;
		enum dt_lv_calc_mode mode;
	} modes[] = {
		{ "page-sampling", DT_LV_PAGE_SAMPLING },
		{ "dirty-bitmap", DT_LV_DIRTY_BITMAP },
		{ "dirty-ring", DT_LV_DIRTY_RING },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct params ps = { .n = 0 };
		struct dt_lv_sample s = poisoned_sample();

		add_string(&ps, "dirtyrate.calc_mode", modes[i].name);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK_EQ(s.calc_mode, modes[i].mode);
		CHECK(strcmp(dt_lv_calc_mode_name(s.calc_mode), modes[i].name) == 0);
	}
	CHECK(strcmp(dt_lv_calc_mode_name(_DT_LV_CALC_MODE_MAX), "unknown") == 0);
	CHECK(strcmp(dt_lv_calc_mode_name((enum dt_lv_calc_mode)1000), "unknown") == 0);
}

/* Order does not matter: the rate may come before the status. */
static void test_order(void)
{
	struct params ps = { .n = 0 };
	struct dt_lv_sample s = base_sample();

	add_llong(&ps, "dirtyrate.megabytes_per_second", 3);
	add_string(&ps, "dirtyrate.calc_mode", "dirty-ring");
	add_int(&ps, "dirtyrate.calc_status", 2);
	CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
	CHECK(s.has_rate);
	CHECK(s.rate_bytes == 3ULL << 20);
	CHECK_EQ(s.calc_mode, DT_LV_DIRTY_RING);

	/* a repeated field: the last one wins */
	ps.n = 0;
	add_uint(&ps, "vcpu.current", 2);
	add_uint(&ps, "vcpu.current", 5);
	CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
	CHECK_EQ(s.vcpus, 5);
}

/* The numeric fields take any of libvirt's integer types. */
static void test_integer_types(void)
{
	static const char *const fields[] = {
		"dirtyrate.calc_status", "dirtyrate.calc_period", "dirtyrate.megabytes_per_second",
		"vcpu.current", "balloon.maximum",
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		for (int t = 0; t < 4; t++) {
			struct params ps = { .n = 0 };
			struct dt_lv_sample s = base_sample();

			if (strcmp(fields[i], "dirtyrate.calc_status") != 0)
				add_int(&ps, "dirtyrate.calc_status", 2);
			switch (t) {
			case 0:
				add_int(&ps, fields[i], 2);
				break;
			case 1:
				add_uint(&ps, fields[i], 2);
				break;
			case 2:
				add_llong(&ps, fields[i], 2);
				break;
			default:
				add_ullong(&ps, fields[i], 2);
				break;
			}
			CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
			CHECK_EQ(s.calc_status, DT_LV_MEASURED);
			if (i == 1)
				CHECK_EQ(s.calc_period_s, 2);
			if (i == 2) {
				CHECK(s.has_rate);
				CHECK(s.rate_bytes == 2ULL << 20);
			}
			if (i == 3)
				CHECK_EQ(s.vcpus, 2);
			if (i == 4)
				CHECK(s.memory_bytes == 2048);
		}
	}
}

/* A known field of the wrong type is -EBADMSG and the sample is untouched. */
static void test_wrong_types(void)
{
	static const char *const numeric[] = {
		"dirtyrate.calc_status", "dirtyrate.calc_period", "dirtyrate.megabytes_per_second",
		"vcpu.current", "balloon.maximum",
	};
	struct params ps;

	for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
		ps.n = 0;
		add_string(&ps, numeric[i], "2");
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_double(&ps, numeric[i], 2.0);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_bool(&ps, numeric[i], true);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add(&ps, numeric[i], 0)->value.ul = 2; /* type 0: not a type */
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add(&ps, numeric[i], 99)->value.ul = 2;
		CHECK_EQ(rejected(&ps), -EBADMSG);
	}

	/* calc_start_time is LLONG and nothing else */
	ps.n = 0;
	add_int(&ps, "dirtyrate.calc_start_time", 5);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_ullong(&ps, "dirtyrate.calc_start_time", 5);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_string(&ps, "dirtyrate.calc_start_time", "5");
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_double(&ps, "dirtyrate.calc_start_time", 5.0);
	CHECK_EQ(rejected(&ps), -EBADMSG);

	/* calc_mode is a known string */
	ps.n = 0;
	add_int(&ps, "dirtyrate.calc_mode", DT_LV_DIRTY_RING);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_string(&ps, "dirtyrate.calc_mode", NULL);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_string(&ps, "dirtyrate.calc_mode", "");
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_string(&ps, "dirtyrate.calc_mode", "Page-Sampling");
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_string(&ps, "dirtyrate.calc_mode", "dirty-ring ");
	CHECK_EQ(rejected(&ps), -EBADMSG);

	/* one bad field after good ones: nothing of the record is kept */
	ps.n = 0;
	good_record(&ps);
	add_string(&ps, "vcpu.current", "four");
	CHECK_EQ(rejected(&ps), -EBADMSG);

	/* unknown fields of any type, even similar names, are ignored */
	{
		struct dt_lv_sample s = poisoned_sample(), before = s;

		ps.n = 0;
		add_string(&ps, "dirtyrate.vcpu.0.megabytes_per_second", "x");
		add_double(&ps, "dirtyrate.calc_status_x", 1.5);
		add_string(&ps, "vcpu.current.x", NULL);
		add_bool(&ps, "Vcpu.current", true);
		add_string(&ps, "balloon.maximum ", "x");
		add_int(&ps, "", -1);
		add(&ps, "dirtyrate", 99);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK(same_sample(&s, &before));
	}
}

/* The rate counts only once the calc status says measured. */
static void test_rate_gating(void)
{
	for (int st = 0; st < 3; st++) {
		struct params ps = { .n = 0 };
		struct dt_lv_sample s = base_sample();

		add_int(&ps, "dirtyrate.calc_status", st);
		add_llong(&ps, "dirtyrate.megabytes_per_second", 10);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK_EQ(s.calc_status, st);
		CHECK_EQ(s.has_rate, st == DT_LV_MEASURED);
		if (st == DT_LV_MEASURED)
			CHECK(s.rate_bytes == 10ULL << 20);
	}

	/* a rate without any status (unstarted as far as we know): not counted */
	{
		struct params ps = { .n = 0 };
		struct dt_lv_sample s = base_sample();

		add_llong(&ps, "dirtyrate.megabytes_per_second", 10);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK(!s.has_rate);
	}

	/* an earlier measured rate stops counting when a new calc starts */
	{
		struct params ps = { .n = 0 };
		struct dt_lv_sample s = poisoned_sample();

		add_int(&ps, "dirtyrate.calc_status", DT_LV_MEASURING);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK_EQ(s.calc_status, DT_LV_MEASURING);
		CHECK(!s.has_rate);
	}

	/* measured, but libvirt gave no rate: none from a zeroed sample */
	{
		struct params ps = { .n = 0 };
		struct dt_lv_sample s = base_sample();

		add_int(&ps, "dirtyrate.calc_status", DT_LV_MEASURED);
		add_string(&ps, "dirtyrate.calc_mode", "dirty-ring");
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK_EQ(s.calc_status, DT_LV_MEASURED);
		CHECK(!s.has_rate);
	}

	/* a measured rate of zero is a rate */
	{
		struct params ps = { .n = 0 };
		struct dt_lv_sample s = base_sample();

		add_int(&ps, "dirtyrate.calc_status", DT_LV_MEASURED);
		add_llong(&ps, "dirtyrate.megabytes_per_second", 0);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK(s.has_rate);
		CHECK(s.rate_bytes == 0);
	}
}

static uint64_t parse_rate(unsigned long long mib, int *r)
{
	struct params ps = { .n = 0 };
	struct dt_lv_sample s = base_sample();

	add_int(&ps, "dirtyrate.calc_status", DT_LV_MEASURED);
	add_ullong(&ps, "dirtyrate.megabytes_per_second", mib);
	*r = dt_lv_parse_stats(ps.p, ps.n, &s);
	return s.has_rate ? s.rate_bytes : UINT64_MAX;
}

static uint64_t parse_mem(unsigned long long kib, int *r)
{
	struct params ps = { .n = 0 };
	struct dt_lv_sample s = base_sample();

	add_ullong(&ps, "balloon.maximum", kib);
	*r = dt_lv_parse_stats(ps.p, ps.n, &s);
	return s.memory_bytes;
}

/* MiB/s (1 << 20, not 10^6) and KiB (1 << 10), up to what fits in 64 bits. */
static void test_conversions(void)
{
	int r;

	CHECK(parse_rate(1, &r) == 1048576);
	CHECK_EQ(r, 0);
	CHECK(parse_rate(1000, &r) == 1000ULL * 1048576);
	CHECK_EQ(r, 0);
	CHECK(parse_rate(UINT64_MAX >> 20, &r) == ((UINT64_MAX >> 20) << 20));
	CHECK_EQ(r, 0);
	CHECK(parse_rate((UINT64_MAX >> 20) + 1, &r) == UINT64_MAX); /* no rate */
	CHECK_EQ(r, -EBADMSG);
	CHECK(parse_rate(ULLONG_MAX, &r) == UINT64_MAX);
	CHECK_EQ(r, -EBADMSG);

	CHECK(parse_mem(1, &r) == 1024);
	CHECK_EQ(r, 0);
	CHECK(parse_mem(4ULL << 20, &r) == 4ULL << 30); /* 4 GiB */
	CHECK_EQ(r, 0);
	CHECK(parse_mem(UINT64_MAX >> 10, &r) == ((UINT64_MAX >> 10) << 10));
	CHECK_EQ(r, 0);
	CHECK(parse_mem((UINT64_MAX >> 10) + 1, &r) == 0);
	CHECK_EQ(r, -EBADMSG);
	CHECK(parse_mem(ULLONG_MAX, &r) == 0);
	CHECK_EQ(r, -EBADMSG);
	CHECK(parse_mem(0, &r) == 0); /* 0: unknown, as documented */
	CHECK_EQ(r, 0);

	/* the largest LLONG rate does not fit once in bytes */
	{
		struct params ps = { .n = 0 };

		add_int(&ps, "dirtyrate.calc_status", DT_LV_MEASURED);
		add_llong(&ps, "dirtyrate.megabytes_per_second", LLONG_MAX);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_llong(&ps, "balloon.maximum", LLONG_MAX);
		CHECK_EQ(rejected(&ps), -EBADMSG);
	}
}

/* Missing fields leave the sample's values alone. */
static void test_missing(void)
{
	struct params ps = { .n = 0 };
	struct dt_lv_sample s = poisoned_sample(), before = s;

	/* nothing at all (a domain whose stats group failed) */
	CHECK_EQ(dt_lv_parse_stats(NULL, 0, &s), 0);
	CHECK(same_sample(&s, &before));
	CHECK_EQ(dt_lv_parse_stats(ps.p, 0, &s), 0);
	CHECK(same_sample(&s, &before));
	CHECK_EQ(dt_lv_parse_stats(NULL, -1, &s), 0);
	CHECK(same_sample(&s, &before));

	/* only the vcpu count: everything else stays */
	add_uint(&ps, "vcpu.current", 3);
	CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
	CHECK_EQ(s.vcpus, 3);
	CHECK(s.memory_bytes == 777);
	CHECK_EQ(s.calc_status, DT_LV_MEASURED);
	CHECK_EQ(s.calc_mode, DT_LV_DIRTY_BITMAP);
	CHECK(s.has_rate);
	CHECK(s.rate_bytes == 7777);
	CHECK_EQ(s.calc_start_time, -7);
	CHECK_EQ(s.calc_period_s, 77);

	/* an unstarted calc (libvirt gives the status alone): no rate, no mode */
	{
		struct dt_lv_sample z = base_sample();

		ps.n = 0;
		add_int(&ps, "dirtyrate.calc_status", 0);
		add_uint(&ps, "vcpu.current", 1);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &z), 0);
		CHECK_EQ(z.calc_status, DT_LV_UNSTARTED);
		CHECK(!z.has_rate);
		CHECK_EQ(z.calc_period_s, 0);
		CHECK_EQ(z.calc_start_time, 0);
		CHECK(z.memory_bytes == 0);
		CHECK_EQ(z.vcpus, 1);
	}
}

/* Negative and out-of-range values are -EBADMSG, the sample untouched. */
static void test_absurd(void)
{
	static const char *const numeric[] = {
		"dirtyrate.calc_status", "dirtyrate.calc_period", "dirtyrate.megabytes_per_second",
		"vcpu.current", "balloon.maximum",
	};
	struct params ps;

	for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
		ps.n = 0;
		add_int(&ps, numeric[i], -1);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_int(&ps, numeric[i], INT_MIN);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_llong(&ps, numeric[i], -1);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_llong(&ps, numeric[i], LLONG_MIN);
		CHECK_EQ(rejected(&ps), -EBADMSG);
		ps.n = 0;
		add_ullong(&ps, numeric[i], ULLONG_MAX);
		CHECK_EQ(rejected(&ps), -EBADMSG);
	}

	/* status: libvirt's 0..2 only */
	ps.n = 0;
	add_int(&ps, "dirtyrate.calc_status", 3);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_uint(&ps, "dirtyrate.calc_status", UINT_MAX);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_ullong(&ps, "dirtyrate.calc_status", 1ULL << 32); /* not 0 when truncated */
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_ullong(&ps, "dirtyrate.calc_status", (1ULL << 32) | 2);
	CHECK_EQ(rejected(&ps), -EBADMSG);

	/* 32-bit fields: UINT32_MAX fits, one more does not */
	{
		struct dt_lv_sample s = base_sample();

		ps.n = 0;
		add_uint(&ps, "vcpu.current", UINT_MAX);
		add_llong(&ps, "dirtyrate.calc_period", UINT32_MAX);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK(s.vcpus == UINT32_MAX);
		CHECK(s.calc_period_s == UINT32_MAX);
	}
	ps.n = 0;
	add_ullong(&ps, "vcpu.current", (uint64_t)UINT32_MAX + 1);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_llong(&ps, "vcpu.current", (long long)UINT32_MAX + 1);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_ullong(&ps, "dirtyrate.calc_period", (uint64_t)UINT32_MAX + 1);
	CHECK_EQ(rejected(&ps), -EBADMSG);
	ps.n = 0;
	add_llong(&ps, "dirtyrate.calc_period", LLONG_MAX);
	CHECK_EQ(rejected(&ps), -EBADMSG);

	/*
	 * calc_start_time is kept as libvirt gives it (QEMU's clock, only
	 * passed on): the extremes are copied, not refused, and not computed on.
	 */
	{
		struct dt_lv_sample s = base_sample();

		ps.n = 0;
		add_llong(&ps, "dirtyrate.calc_start_time", LLONG_MIN);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK(s.calc_start_time == INT64_MIN);
		ps.n = 0;
		add_llong(&ps, "dirtyrate.calc_start_time", LLONG_MAX);
		CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
		CHECK(s.calc_start_time == INT64_MAX);
	}
}

/* A field name that fills the whole array (no NUL) is still just unknown. */
static void test_unterminated_field(void)
{
	struct params ps = { .n = 1 };
	struct dt_lv_sample s = poisoned_sample(), before = s;
	static const char name[] = "vcpu.current";

	memset(&ps.p[0], 0, sizeof(ps.p[0]));
	memset(ps.p[0].field, 'x', sizeof(ps.p[0].field));
	memcpy(ps.p[0].field, name, sizeof(name) - 1); /* "vcpu.currentxxx..." */
	ps.p[0].type = VIR_TYPED_PARAM_UINT;
	ps.p[0].value.ui = 1;
	CHECK_EQ(dt_lv_parse_stats(ps.p, ps.n, &s), 0);
	CHECK(same_sample(&s, &before));
}

int main(void)
{
	RUN(test_good);
	RUN(test_modes);
	RUN(test_order);
	RUN(test_integer_types);
	RUN(test_wrong_types);
	RUN(test_rate_gating);
	RUN(test_conversions);
	RUN(test_missing);
	RUN(test_absurd);
	RUN(test_unterminated_field);
	TEST_EXIT();
}
