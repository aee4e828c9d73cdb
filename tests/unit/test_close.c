/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The split epoch close (dt_stats_close_begin/step) against the whole one:
 * two stats fed the same pages, one closed at once, the other in steps of
 * random small budgets while the next epoch's pages keep arriving. Between
 * steps every O(1) figure must still be the last closed epoch's; an index
 * query must answer either as of that epoch (build and reserve phases) or
 * as of the new one (it completed the close); when the close completes,
 * its closed epoch (record, set, each vCPU's pages) and then every figure
 * and the saved state must be the whole close's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_buf.h"
#include "dt_stats.h"
#include "dt_stats_int.h"
#include "dt_test.h"

#define VCPUS	 3
#define EPOCHS	 60
#define MAXOPS	 3000
#define NRANGES	 3

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct dt_stats *mk(void)
{
	static const uint32_t w[] = { 1, 2, 5, 10, 40 };
	struct dt_stats_config cfg = {
		.horizon_epochs = 40,
		.recent_epochs = 8,
		.coarse_epochs = 4,
		.region_pages = 64,
		.nwindows = 5,
	};
	struct dt_stats *s = NULL;

	memcpy(cfg.windows, w, sizeof(w));
	CHECK_EQ(dt_stats_new(&cfg, VCPUS, &s), 0);
	return s;
}

struct op {
	uint8_t kind; /* 0 page, 1 vCPU page, 2 word */
	uint32_t vcpu, page;
	uint64_t bits;
};

/* Dense chunks (bitsets), scattered pages (log), full words (ranges). */
static uint32_t gen(struct op *ops)
{
	uint32_t n = (uint32_t)(rnd() % MAXOPS), dense = (uint32_t)(rnd() % 4);

	if (rnd() % 9 == 0)
		return 0; /* idle */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = (uint32_t)(rnd() % 10), page;

		switch (rnd() % 4) {
		case 0:
			page = (uint32_t)rnd();
			break;
		case 1:
			page = 0x30000u + (uint32_t)(rnd() % 300000);
			break;
		default:
			page = dense * 0x10000u + (uint32_t)(rnd() % 0x10000);
			break;
		}
		if (k < 5)
			ops[i] = (struct op){ .kind = 1, .vcpu = (uint32_t)(rnd() % VCPUS), .page = page };
		else if (k < 8)
			ops[i] = (struct op){ .kind = 0, .page = page };
		else
			ops[i] = (struct op){ .kind = 2,
					      .page = page & ~63u,
					      .bits = k == 9 ? UINT64_MAX : rnd() & rnd() };
	}
	return n;
}

static void apply(struct dt_stats *s, const struct op *ops, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		if (ops[i].kind == 0)
			dt_stats_add(s, ops[i].page);
		else if (ops[i].kind == 1)
			dt_stats_add_vcpu(s, ops[i].vcpu, ops[i].page);
		else
			dt_stats_add_word(s, ops[i].page, ops[i].bits);
	}
}

struct figures {
	uint64_t epochs, total_pages, wss[5], vwss[VCPUS][5], curve[NRANGES][DT_STATS_MAX_WINDOWS];
	uint64_t odd; /* a window that is not configured: counted from the index */
};

static const uint64_t ranges[NRANGES][2] = {
	{ 0, UINT64_C(1) << 32 }, { 0x8000, 0x40000 }, { 0x1000000, 0x90000000 }
};

/* O(1) figures only: they never complete a close. */
static void figures_o1(const struct dt_stats *s, struct figures *f)
{
	static const uint32_t w[] = { 1, 2, 5, 10, 40 };

	memset(f, 0, sizeof(*f));
	f->epochs = dt_stats_epochs(s);
	f->total_pages = dt_stats_total_pages(s);
	for (uint32_t i = 0; i < 5; i++) {
		f->wss[i] = dt_stats_wss(s, w[i]);
		for (uint32_t v = 0; v < VCPUS; v++)
			f->vwss[v][i] = dt_stats_vcpu_wss(s, v, w[i]);
	}
}

/* Index queries first: one that completes the close moves the O(1) figures too. */
static void figures_all(const struct dt_stats *s, struct figures *f)
{
	uint64_t curve[NRANGES][DT_STATS_MAX_WINDOWS] = { { 0 } }, odd;

	for (uint32_t r = 0; r < NRANGES; r++)
		dt_stats_wss_range_curve(s, (uint32_t)ranges[r][0],
					 (uint32_t)(ranges[r][1] > UINT32_MAX ? UINT32_MAX
									     : ranges[r][1]),
					 curve[r]);
	odd = dt_stats_wss(s, 7);
	figures_o1(s, f);
	memcpy(f->curve, curve, sizeof(curve));
	f->odd = odd;
}

static bool same(const struct figures *a, const struct figures *b)
{
	const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;

	for (size_t i = 0; i < sizeof(*a) / 8; i++)
		if (x[i] != y[i]) {
			fprintf(stderr, "figure %zu: %llu != %llu\n", i, (unsigned long long)x[i],
				(unsigned long long)y[i]);
			return false;
		}
	return true;
}

static void check_saved_equal(const struct dt_stats *a, const struct dt_stats *b)
{
	struct dt_buf x = { 0 }, y = { 0 };

	CHECK_EQ(dt_stats_save(a, &x), 0);
	CHECK_EQ(dt_stats_save(b, &y), 0);
	CHECK_EQ(x.len, y.len);
	CHECK(x.len == y.len && !memcmp(x.p, y.p, x.len));
	dt_buf_done(&x);
	dt_buf_done(&y);
}

/*
 * The closed epochs hold the same record, set and per-vCPU pages. (Their
 * frames may differ in bytes: which chunks had spare bitsets when pages
 * came in depends on when the buffers were cleared, and so does the
 * roaring container type a chunk's pages end up in.)
 */
static void check_closed_equal(const struct dt_closed_epoch *a, const struct dt_closed_epoch *b)
{
	CHECK(a && b);
	if (!a || !b)
		return;
	CHECK(!memcmp(&a->rec, &b->rec, sizeof(a->rec)));
	CHECK((a->set == NULL) == (b->set == NULL));
	if (a->set && b->set)
		CHECK(roaring_bitmap_equals(a->set, b->set));
	CHECK_EQ(a->nvcpus, b->nvcpus);
	for (uint32_t v = 0; v < a->nvcpus && v < b->nvcpus; v++) {
		CHECK_EQ(a->vcpus[v].entries, b->vcpus[v].entries);
		CHECK_EQ(a->vcpus[v].n, b->vcpus[v].n);
		if (a->vcpus[v].n == b->vcpus[v].n)
			CHECK(!memcmp(a->vcpus[v].pages, b->vcpus[v].pages,
				      a->vcpus[v].n * sizeof(uint32_t)));
	}
}

static void test_split_matches_whole(void)
{
	static struct op ops[2][MAXOPS];
	struct dt_stats *whole = mk(), *split = mk();
	struct figures before, before_o1, after, after_o1, now;
	uint32_t n[2], cur = 0, steps_total = 0, settled = 0;

	n[cur] = gen(ops[cur]);
	apply(split, ops[cur], 0, n[cur]);
	for (uint32_t e = 0; e < EPOCHS; e++) {
		struct dt_closed_epoch *cw = NULL, *cs = NULL;
		uint32_t nxt = cur ^ 1, fed = 0;
		int r;

		figures_all(whole, &before);
		figures_o1(whole, &before_o1);
		apply(whole, ops[cur], 0, n[cur]);
		/* Both hold the same open epoch now (vCPU entry counts include it). */
		if (e % 10 == 9)
			check_saved_equal(whole, split);
		CHECK_EQ(dt_stats_close_epoch(whole, 1000 + e, &cw), 0);
		figures_all(whole, &after);
		figures_o1(whole, &after_o1);

		n[nxt] = gen(ops[nxt]);
		CHECK_EQ(dt_stats_close_begin(split, 1000 + e, true), 0);
		CHECK_EQ(dt_stats_close_begin(split, 1000 + e, true), -EBUSY);
		CHECK_EQ(dt_stats_close_epoch(split, 1000 + e, NULL), -EBUSY);
		CHECK(dt_stats_closing(split));
		do {
			uint32_t part = n[nxt] ? (uint32_t)(rnd() % (n[nxt] / 8 + 1)) : 0;

			r = dt_stats_close_step(split, 1 + rnd() % 64, &cs);
			CHECK(r >= 0);
			steps_total++;
			if (r == 0)
				break;
			/* The next epoch's pages arrive during the close. */
			if (fed + part > n[nxt])
				part = n[nxt] - fed;
			apply(split, ops[nxt], fed, fed + part);
			fed += part;
			/*
			 * Between steps the O(1) figures are the last closed epoch's,
			 * or all the new one's once applied (the buffers' clearing
			 * can take further steps).
			 */
			figures_o1(split, &now);
			CHECK(same(&now, dt_stats_epochs(split) == e ? &before_o1 : &after_o1));
			if (rnd() % 3 == 0) {
				/* An index query: the old epoch, or the new one if it settled. */
				uint64_t curve[DT_STATS_MAX_WINDOWS] = { 0 }, odd = 0;
				const struct figures *want;
				bool by_curve = rnd() % 2;

				if (by_curve)
					dt_stats_wss_range_curve(split, (uint32_t)ranges[1][0],
								 (uint32_t)ranges[1][1], curve);
				else
					odd = dt_stats_wss(split, 7);
				figures_o1(split, &now);
				want = dt_stats_epochs(split) == e + 1 ? &after : &before;
				settled += want == &after;
				if (by_curve)
					CHECK(!memcmp(curve, want->curve[1], sizeof(curve)));
				else
					CHECK_EQ(odd, want->odd);
				CHECK_EQ(now.epochs, want->epochs);
				CHECK(!memcmp(now.wss, want->wss, sizeof(now.wss)));
			}
		} while (r > 0);
		CHECK(!dt_stats_closing(split));
		check_closed_equal(cw, cs);
		figures_all(split, &now);
		CHECK(same(&now, &after));
		apply(split, ops[nxt], fed, n[nxt]);
		dt_closed_epoch_free(cw);
		dt_closed_epoch_free(cs);
		cur = nxt;
	}
	/* The random budgets split closes everywhere, and some were settled by queries. */
	CHECK(steps_total > 2 * EPOCHS);
	CHECK(settled > 0);
	dt_stats_free(whole);
	dt_stats_free(split);
}

/* A stats freed in the middle of a close holds nothing (ASan checks the leaks). */
static void test_free_midway(void)
{
	static struct op ops[MAXOPS];
	struct dt_stats *s = mk();
	uint32_t n;

	do
		n = gen(ops);
	while (n < 1000);
	apply(s, ops, 0, n);
	CHECK_EQ(dt_stats_close_begin(s, 1, true), 0);
	CHECK_EQ(dt_stats_close_step(s, 5, NULL), 1);
	apply(s, ops, 0, n / 2);
	dt_stats_free(s);
}

int main(void)
{
	RUN(test_split_matches_whole);
	RUN(test_free_midway);
	TEST_EXIT();
}
