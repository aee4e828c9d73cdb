/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for stats/: D(T), per-vCPU and per-range WSS, heatmap and
 * history, checked exactly against hand-built sequences and against a
 * brute-force reference that keeps every epoch's dirty set as a plain array.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "dt_lastidx.h"
#include "dt_stats.h"
#include "dt_test.h"
#include "dt_vlog.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct dt_stats *mk(uint32_t horizon, uint32_t recent, uint32_t coarse, uint32_t rp,
			   uint32_t nvcpus)
{
	struct dt_stats_config cfg = {
	    .horizon_epochs = horizon,
	    .recent_epochs = recent,
	    .coarse_epochs = coarse,
	    .region_pages = rp,
	};
	struct dt_stats *s = NULL;
	static const uint32_t w[] = {1, 2, 4, 8, 16, 64, 256, 1024, 3600};

	for (size_t i = 0; i < ARRAY_SIZE(w) && w[i] <= horizon; i++)
		cfg.windows[cfg.nwindows++] = w[i];
	if (dt_stats_new(&cfg, nvcpus, &s) < 0)
		return NULL;
	return s;
}

static void close_ok(struct dt_stats *s, uint64_t us) { CHECK_EQ(dt_stats_close_epoch(s, us, NULL), 0); }

/* Deterministic xorshift so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_config(void)
{
	struct dt_stats_config cfg = {
	    .horizon_epochs = 10, .recent_epochs = 4, .coarse_epochs = 2, .region_pages = 512};
	struct dt_stats *s = NULL;

	CHECK_EQ(dt_stats_new(&cfg, 0, &s), 0);
	CHECK(s != NULL);
	CHECK(dt_stats_config(s)->horizon_epochs == 10);
	CHECK_EQ(dt_stats_wss(s, 1), 0);
	CHECK_EQ(dt_stats_epochs(s), 0);
	s = dt_stats_free(s);
	CHECK(s == NULL);
	CHECK(dt_stats_free(NULL) == NULL);

	cfg.horizon_epochs = 0;
	CHECK_EQ(dt_stats_new(&cfg, 0, &s), -EINVAL);
	cfg.horizon_epochs = 10;
	cfg.coarse_epochs = 0;
	CHECK_EQ(dt_stats_new(&cfg, 0, &s), -EINVAL);
	cfg.coarse_epochs = 2;
	cfg.nwindows = 2;
	cfg.windows[0] = 5;
	cfg.windows[1] = 3; /* not ascending */
	CHECK_EQ(dt_stats_new(&cfg, 0, &s), -EINVAL);
	cfg.windows[1] = 11; /* beyond the horizon */
	CHECK_EQ(dt_stats_new(&cfg, 0, &s), -EINVAL);
	cfg.nwindows = DT_STATS_MAX_WINDOWS + 1;
	CHECK_EQ(dt_stats_new(&cfg, 0, &s), -EINVAL);
}

/* Rewrites of the same pages: D(T) grows slower than T times the rate. */
static void test_rewrites(void)
{
	struct dt_stats *s = mk(100, 4, 3, 512, 0);

	/* epoch 0: {1,2,3}  1: {2,3,4}  2: {}  3: {1,5}  4: {3} (3 added twice) */
	dt_stats_add(s, 1);
	dt_stats_add(s, 2);
	dt_stats_add(s, 3);
	close_ok(s, 10);
	dt_stats_add(s, 4);
	dt_stats_add(s, 3);
	dt_stats_add(s, 2);
	close_ok(s, 20);
	close_ok(s, 30);
	dt_stats_add(s, 5);
	dt_stats_add(s, 1);
	close_ok(s, 40);
	dt_stats_add(s, 3);
	dt_stats_add(s, 3);
	close_ok(s, 50);

	CHECK_EQ(dt_stats_epochs(s), 5);
	CHECK_EQ(dt_stats_wss(s, 0), 0);
	CHECK_EQ(dt_stats_wss(s, 1), 1); /* {3} */
	CHECK_EQ(dt_stats_wss(s, 2), 3); /* {1,3,5} */
	CHECK_EQ(dt_stats_wss(s, 3), 3); /* idle epoch adds nothing */
	CHECK_EQ(dt_stats_wss(s, 4), 5); /* {1,2,3,4,5} */
	CHECK_EQ(dt_stats_wss(s, 5), 5);
	CHECK_EQ(dt_stats_wss(s, 7), 5);       /* unconfigured window */
	CHECK_EQ(dt_stats_wss(s, 100), 5);     /* longer than the history */
	CHECK_EQ(dt_stats_wss(s, 1000000), 5); /* longer than the horizon */
	CHECK_EQ(dt_stats_total_entries(s), 10);
	CHECK_EQ(dt_stats_total_pages(s), 3 + 3 + 0 + 2 + 1);

	struct dt_epoch_record rec[8];
	size_t n = dt_stats_history(s, 0, rec, 8);
	CHECK_EQ(n, 5);
	CHECK_EQ(rec[0].epoch, 0);
	CHECK_EQ(rec[0].pages, 3);
	CHECK_EQ(rec[0].entries, 3);
	CHECK_EQ(rec[2].pages, 0);
	CHECK_EQ(rec[4].epoch, 4);
	CHECK_EQ(rec[4].end_us, 50);
	CHECK_EQ(rec[4].pages, 1);
	CHECK_EQ(rec[4].entries, 2);
	n = dt_stats_history(s, 3, rec, 8);
	CHECK_EQ(n, 2);
	CHECK_EQ(rec[0].epoch, 3);
	n = dt_stats_history(s, 0, rec, 2);
	CHECK_EQ(n, 2);
	CHECK_EQ(rec[1].epoch, 1);
	CHECK_EQ(dt_stats_history(s, 99, rec, 8), 0);

	/* Ranges: [2,4) holds 2 and 3. */
	CHECK_EQ(dt_stats_wss_range(s, 5, 2, 4), 2);
	CHECK_EQ(dt_stats_wss_range(s, 2, 2, 4), 1);
	CHECK_EQ(dt_stats_wss_range(s, 2, 0, 0), 0);
	CHECK_EQ(dt_stats_wss_range(s, 0, 0, 100), 0);
	CHECK_EQ(dt_stats_wss_range(s, 5, 0, UINT32_MAX), 5);
	dt_stats_free(s);
}

/* A page dirtied once leaves D(horizon) exactly horizon epochs later. */
static void test_horizon_expiry(void)
{
	const uint32_t H = 10;
	struct dt_stats *s = mk(H, 3, 4, 512, 1);
	struct dt_epoch_record rec[32];

	dt_stats_add_vcpu(s, 0, 77);
	close_ok(s, 1);
	for (uint32_t i = 1; i < H; i++) {
		CHECK_EQ(dt_stats_wss(s, H), 1);
		CHECK_EQ(dt_stats_wss(s, i), 1); /* epochs 0..i-1 */
		if (i > 1)
			CHECK_EQ(dt_stats_wss(s, i - 1), 0);
		CHECK_EQ(dt_stats_vcpu_wss(s, 0, H), 1);
		close_ok(s, 1 + i);
	}
	CHECK_EQ(dt_stats_epochs(s), H);
	CHECK_EQ(dt_stats_wss(s, H), 1); /* epoch 0 is the oldest in the horizon */
	close_ok(s, 100);
	CHECK_EQ(dt_stats_wss(s, H), 0); /* gone exactly now */
	CHECK_EQ(dt_stats_wss(s, UINT32_MAX), 0);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, H), 0);
	CHECK_EQ(dt_stats_vcpu_entries(s, 0), 1);
	/* The history keeps the last H records. */
	CHECK_EQ(dt_stats_history(s, 0, rec, 32), H);
	CHECK_EQ(dt_stats_history(s, 0, rec, 32) ? rec[0].epoch : 0, 1);
	CHECK_EQ(rec[H - 1].epoch, H);

	/* A page rewritten every 7 epochs never leaves. */
	for (uint32_t i = 0; i < 50; i++) {
		if (i % 7 == 0)
			dt_stats_add(s, 5);
		close_ok(s, 200 + i);
		CHECK_EQ(dt_stats_wss(s, H), 1);
	}
	dt_stats_free(s);
}

static void test_add_word(void)
{
	struct dt_stats *s = mk(16, 4, 4, 64, 0);
	struct dt_heat h[4];

	dt_stats_add_word(s, 0, 0);		       /* nothing */
	dt_stats_add_word(s, 128, 0x5);		       /* pages 128, 130 */
	dt_stats_add_word(s, 192, UINT64_MAX);	       /* 192..255 */
	dt_stats_add_word(s, 256, UINT64_MAX);	       /* 256..319, merged range */
	dt_stats_add_word(s, 640, UINT64_MAX);	       /* 640..703 */
	dt_stats_add_word(s, 0xffffffc0u, UINT64_MAX); /* top of the index space */
	dt_stats_add_word(s, 0xffffff80u, 1ULL << 63); /* 0xffffffbf */
	dt_stats_add(s, 130);			       /* already there */
	close_ok(s, 1);
	CHECK_EQ(dt_stats_wss(s, 1), 2 + 64 + 64 + 64 + 64 + 1);
	CHECK_EQ(dt_stats_total_entries(s), 2 + 64 * 4 + 1 + 1);
	CHECK_EQ(dt_stats_wss_range(s, 1, 0xffffffc0u, UINT32_MAX), 63);
	CHECK_EQ(dt_stats_wss_range(s, 1, 200, 300), 100);
	CHECK_EQ(dt_stats_wss_range(s, 1, 129, 131), 1);

	/* A word whose base is within 64 of 2^32 only names the pages that exist. */
	dt_stats_add_word(s, 0xfffffff0u, UINT64_MAX);
	close_ok(s, 2);
	CHECK_EQ(dt_stats_wss(s, 1), 16);
	CHECK_EQ(dt_stats_total_entries(s), 2 + 64 * 4 + 1 + 1 + 16);
	CHECK_EQ(dt_stats_wss(s, 2), 2 + 64 * 4 + 1);

	/* Heatmap with 64-page regions: the top region counts 64 + 16 dirtyings. */
	int n = dt_stats_heatmap(s, 2, h, 4);
	CHECK_EQ(n, 4);
	CHECK_EQ(h[0].region, 2);
	CHECK_EQ(h[0].pages, 2);
	CHECK_EQ(h[1].region, 3);
	CHECK_EQ(h[1].pages, 64);
	CHECK_EQ(h[2].region, 4);
	CHECK_EQ(h[3].region, 10);
	n = dt_stats_heatmap(s, 2, h, 0);
	CHECK_EQ(n, 0);
	struct dt_heat all[16];
	n = dt_stats_heatmap(s, 2, all, 16);
	CHECK_EQ(n, 6);
	CHECK_EQ(all[5].region, 0xffffffffu / 64);
	CHECK_EQ(all[5].pages, 64);
	CHECK_EQ(all[5].dirtyings, 64 + 16);
	CHECK_EQ(all[4].region, 0xffffff80u / 64);
	CHECK_EQ(all[4].pages, 1);
	dt_stats_free(s);
}

/* Per-vCPU sets are fed only by that vCPU's ring pages. */
static void test_vcpu(void)
{
	struct dt_stats *s = mk(8, 2, 2, 512, 2);

	dt_stats_add_vcpu(s, 0, 10);
	dt_stats_add_vcpu(s, 0, 10); /* duplicate entry, one page */
	dt_stats_add_vcpu(s, 0, 11);
	dt_stats_add_vcpu(s, 1, 10);
	dt_stats_add_vcpu(s, 1, 12);
	dt_stats_add_vcpu(s, 9, 13); /* unknown vCPU: VM only */
	dt_stats_add(s, 14);	     /* bitmap page: VM only */
	dt_stats_add_vcpu(s, 0, 15);
	close_ok(s, 1);
	dt_stats_add_vcpu(s, 1, 11);
	close_ok(s, 2);

	CHECK_EQ(dt_stats_wss(s, 1), 1);
	CHECK_EQ(dt_stats_wss(s, 2), 6);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 1), 0);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 2), 3); /* 10 11 15 */
	CHECK_EQ(dt_stats_vcpu_wss(s, 1, 1), 1);
	CHECK_EQ(dt_stats_vcpu_wss(s, 1, 2), 3); /* 10 12 11 */
	CHECK_EQ(dt_stats_vcpu_wss(s, 1, 3), 3); /* unconfigured window */
	CHECK_EQ(dt_stats_vcpu_wss(s, 2, 2), 0); /* out of range */
	CHECK_EQ(dt_stats_vcpu_entries(s, 0), 4);
	CHECK_EQ(dt_stats_vcpu_entries(s, 1), 3);
	CHECK_EQ(dt_stats_vcpu_entries(s, 9), 0);
	CHECK_EQ(dt_stats_total_entries(s), 9);
	dt_stats_free(s);
}

/* Big batches: more than one buffer flush, unsorted, with duplicates. */
static void test_many(void)
{
	struct dt_stats *s = mk(4, 2, 2, 512, 1);

	for (uint32_t i = 0; i < 100000; i++)
		dt_stats_add_vcpu(s, 0, (i * 7919u) % 50000u);
	close_ok(s, 1);
	CHECK_EQ(dt_stats_wss(s, 1), 50000);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 1), 50000);
	for (uint32_t i = 0; i < 60000; i++)
		dt_stats_add(s, 40000 + i);
	close_ok(s, 2);
	CHECK_EQ(dt_stats_wss(s, 1), 60000);
	CHECK_EQ(dt_stats_wss(s, 2), 100000);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 2), 50000);
	dt_stats_free(s);
}

/* ---- brute-force reference ---------------------------------------------- */

#define REF_DENSE  512
#define REF_POOL   900
#define REF_EPOCHS 300
#define REF_VCPUS  3

struct ref {
	uint32_t page[REF_POOL]; /* pool index -> page index, ascending */
	/* [epoch][pool] = 1 + vcpu bitmask << 1 */
	uint8_t dirty[REF_EPOCHS][REF_POOL];
	uint32_t epochs;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool ref_has(const struct ref *r, uint32_t n, uint32_t page)
{
	for (uint32_t i = 0; i < n; i++)
		if (r->page[i] == page)
			return true;
	return false;
}

static void ref_pool_init(struct ref *r)
{
	/*
	 * Pages 0..REF_DENSE-1 (where bitmap words land), then clusters and
	 * scattered pages: heatmap regions with several pages, pages alone in
	 * their roaring container, and the very top of the index space.
	 */
	for (uint32_t i = 0; i < REF_DENSE; i++)
		r->page[i] = i;
	for (uint32_t i = REF_DENSE; i < REF_POOL; i++) {
		uint32_t p;

		do {
			switch (i % 4) {
			case 0:
				p = REF_DENSE + (uint32_t)(rnd() % 3000);
				break;
			case 1:
				p = 0x10000u + (uint32_t)(rnd() % 2000);
				break;
			case 2:
				p = (uint32_t)rnd();
				break;
			default:
				p = 0xffffffffu - (uint32_t)(rnd() % 1500);
				break;
			}
		} while (ref_has(r, i, p));
		r->page[i] = p;
	}
	qsort(r->page, REF_POOL, sizeof(r->page[0]), cmp_u32);
}

/* D(T) as of r->epochs, for the vCPU mask or the VM (mask 1). */
static uint64_t ref_wss(const struct ref *r, uint32_t window, uint32_t horizon, uint8_t mask,
			uint64_t lo, uint64_t hi)
{
	uint64_t n = 0;
	uint32_t first;

	if (window > horizon)
		window = horizon;
	first = window >= r->epochs ? 0 : r->epochs - window;
	if (window == 0)
		return 0;
	for (uint32_t p = 0; p < REF_POOL; p++) {
		if (r->page[p] < lo || r->page[p] >= hi)
			continue;
		for (uint32_t e = first; e < r->epochs; e++)
			if (r->dirty[e][p] & mask) {
				n++;
				break;
			}
	}
	return n;
}

static int ref_heatmap(const struct ref *r, uint32_t window, uint32_t horizon, uint32_t recent,
		       uint32_t coarse, uint32_t rp, struct dt_heat *out, size_t max)
{
	uint32_t first, exact_first;
	size_t n = 0;

	if (window > horizon)
		window = horizon;
	if (window > r->epochs)
		window = r->epochs;
	if (window == 0)
		return 0;
	first = r->epochs - window;
	exact_first = r->epochs > recent ? r->epochs - recent : 0;
	for (uint32_t p = 0; p < REF_POOL; p++) {
		bool in = false;
		uint64_t d = 0;
		uint32_t region = r->page[p] / rp;

		for (uint32_t e = first; e < r->epochs; e++)
			in |= r->dirty[e][p] != 0;
		if (!in)
			continue;
		for (uint32_t e = first > exact_first ? first : exact_first; e < r->epochs; e++)
			d += r->dirty[e][p] != 0;
		/* Buckets overlapping the window before the exact part, once per page. */
		if (first < exact_first) {
			for (uint32_t b = first / coarse; b <= (exact_first - 1) / coarse; b++) {
				uint32_t end = b * coarse + coarse;

				if (end > exact_first)
					end = exact_first;
				for (uint32_t e = b * coarse; e < end; e++)
					if (r->dirty[e][p]) {
						d++;
						break;
					}
			}
		}
		if (n == 0 || out[n - 1].region != region) {
			if (n == max)
				break;
			out[n++] = (struct dt_heat){.region = region};
		}
		out[n - 1].pages++;
		out[n - 1].dirtyings += d;
	}
	return (int)n;
}

static void random_run(uint32_t horizon, uint32_t recent, uint32_t coarse, uint32_t rp,
		       uint32_t density)
{
	static struct ref r;
	struct dt_stats *s = mk(horizon, recent, coarse, rp, REF_VCPUS);
	static struct dt_heat got[REF_POOL], want[REF_POOL];
	uint64_t entries = 0, pages = 0;

	memset(&r, 0, sizeof(r));
	ref_pool_init(&r);
	for (uint32_t e = 0; e < REF_EPOCHS; e++) {
		/* Vary the load: idle epochs, light, heavy, and a hot subset. */
		uint32_t k = (e % 37 == 5) ? 0 : (uint32_t)(rnd() % density);
		uint32_t ep_pages = 0;

		for (uint32_t i = 0; i < k; i++) {
			uint32_t p = (rnd() & 1) ? (uint32_t)(rnd() % 40) * 22
						 : (uint32_t)(rnd() % REF_POOL);
			uint32_t v = (uint32_t)(rnd() % (REF_VCPUS + 2)); /* >= REF_VCPUS: bitmap */
			uint32_t reps = 1 + (uint32_t)(rnd() % 3);

			for (uint32_t t = 0; t < reps; t++) {
				if (v < REF_VCPUS) {
					dt_stats_add_vcpu(s, v, r.page[p]);
					r.dirty[e][p] |= (uint8_t)(1 | (2 << v));
				} else {
					dt_stats_add(s, r.page[p]);
					r.dirty[e][p] |= 1;
				}
				entries++;
			}
		}
		/* And some bitmap words over the first cluster. */
		if (e % 5 == 0) {
			uint32_t base = (uint32_t)(rnd() % (REF_DENSE / 64)) * 64;
			uint64_t bits = rnd() & rnd();

			if (e % 15 == 0)
				bits = UINT64_MAX;
			dt_stats_add_word(s, base, bits);
			entries += (uint64_t)__builtin_popcountll(bits);
			for (uint32_t b = 0; b < 64; b++) {
				if (!(bits >> b & 1))
					continue;
				/* The pool starts with pages 0..REF_DENSE-1. */
				r.dirty[e][base + b] |= 1;
			}
		}
		for (uint32_t p = 0; p < REF_POOL; p++)
			ep_pages += r.dirty[e][p] != 0;

		CHECK_EQ(dt_stats_close_epoch(s, 1000 + e, NULL), 0);
		r.epochs = e + 1;
		pages += ep_pages;

		CHECK_EQ(dt_stats_total_pages(s), pages);
		for (uint32_t q = 0; q < 6; q++) {
			uint32_t w = q == 0 ? horizon : (uint32_t)(rnd() % (horizon + 20));
			uint8_t vm = (uint8_t)(rnd() % (REF_VCPUS + 1));

			CHECK_EQ(dt_stats_wss(s, w), ref_wss(&r, w, horizon, 1, 0, 1ULL << 32));
			if (vm < REF_VCPUS)
				CHECK_EQ(
				    dt_stats_vcpu_wss(s, vm, w),
				    ref_wss(&r, w, horizon, (uint8_t)(2 << vm), 0, 1ULL << 32));
			uint32_t lo = (uint32_t)rnd(), hi = (uint32_t)rnd();
			if (q & 1) {
				lo = (uint32_t)(rnd() % 70000);
				hi = lo + (uint32_t)(rnd() % 70000);
			}
			CHECK_EQ(dt_stats_wss_range(s, w, lo, hi),
				 ref_wss(&r, w, horizon, 1, lo, hi));
			/* The one-pass curve agrees with the reference at every window. */
			const struct dt_stats_config *sc = dt_stats_config(s);
			uint64_t curve[DT_STATS_MAX_WINDOWS];
			dt_stats_wss_range_curve(s, lo, hi, curve);
			for (uint32_t wi = 0; wi < sc->nwindows; wi++)
				CHECK_EQ(curve[wi], ref_wss(&r, sc->windows[wi], horizon, 1, lo, hi));
		}
		if (e % 9 == 0 || e + 1 == REF_EPOCHS) {
			uint32_t w = (uint32_t)(rnd() % (horizon + 10));
			size_t max = (e % 2) ? REF_POOL : 1 + rnd() % 8;
			int n = dt_stats_heatmap(s, w, got, max);
			int m = ref_heatmap(&r, w, horizon, recent, coarse, rp, want, max);

			CHECK_EQ(n, m);
			for (int i = 0; i < n && i < m; i++) {
				CHECK_EQ(got[i].region, want[i].region);
				CHECK_EQ(got[i].pages, want[i].pages);
				CHECK_EQ(got[i].dirtyings, want[i].dirtyings);
			}
		}
	}
	CHECK_EQ(dt_stats_total_entries(s), entries);
	dt_stats_free(s);
}

static void test_random(void)
{
	random_run(50, 8, 5, 16, 30);
	random_run(40, 0, 3, 64, 20); /* every set goes straight to a bucket */
	random_run(30, 30, 7, 8, 25); /* everything exact */
	random_run(64, 4, 1, 512, 40);
	random_run(100, 16, 16, 32, 60);
	random_run(1, 1, 1, 4, 10);
	random_run(7, 3, 2, 1, 200); /* one page per region, dense epochs */
}

/* Coarse buckets: a page rewritten across a bucket boundary, windows at the edges. */
static void test_buckets(void)
{
	/* horizon 20, exact 3, buckets of 4 epochs: [0,3] [4,7] [8,11] ... */
	struct dt_stats *s = mk(20, 3, 4, 8, 0);
	struct dt_heat h[8];
	int n;

	for (uint32_t e = 0; e <= 10; e++) {
		if (e <= 5)
			dt_stats_add(s, 1);
		if (e == 3 || e == 4)
			dt_stats_add(s, 9);
		if (e == 7)
			dt_stats_add(s, 17);
		close_ok(s, e);
	}
	CHECK_EQ(dt_stats_wss(s, 1), 0);
	CHECK_EQ(dt_stats_wss(s, 4), 1);
	CHECK_EQ(dt_stats_wss(s, 5), 1);
	CHECK_EQ(dt_stats_wss(s, 6), 2);
	CHECK_EQ(dt_stats_wss(s, 7), 3);
	CHECK_EQ(dt_stats_wss(s, 11), 3);

	/* Whole history: page 1 is in buckets 0 and 1, once each. */
	n = dt_stats_heatmap(s, 11, h, 8);
	CHECK_EQ(n, 3);
	CHECK_EQ(h[0].region, 0);
	CHECK_EQ(h[0].pages, 1);
	CHECK_EQ(h[0].dirtyings, 2);
	CHECK_EQ(h[1].region, 1);
	CHECK_EQ(h[1].dirtyings, 2);
	CHECK_EQ(h[2].region, 2);
	CHECK_EQ(h[2].dirtyings, 1);

	/* Epochs 6..10: bucket 1 straddles the start; page 1 (last at 5) stays out. */
	n = dt_stats_heatmap(s, 5, h, 8);
	CHECK_EQ(n, 1);
	CHECK_EQ(h[0].region, 2);
	CHECK_EQ(h[0].pages, 1);
	CHECK_EQ(h[0].dirtyings, 1);

	/* Epochs 4..10: bucket 1 only. */
	n = dt_stats_heatmap(s, 7, h, 8);
	CHECK_EQ(n, 3);
	CHECK_EQ(h[0].dirtyings, 1);
	CHECK_EQ(h[1].dirtyings, 1);

	/* Epochs 3..10: bucket 0 overlaps again. */
	n = dt_stats_heatmap(s, 8, h, 8);
	CHECK_EQ(n, 3);
	CHECK_EQ(h[0].dirtyings, 2);
	CHECK_EQ(h[1].dirtyings, 2);
	CHECK_EQ(h[2].dirtyings, 1);

	/* Exact part only: page 1 in every epoch 8..10. */
	for (uint32_t e = 0; e < 3; e++) {
		dt_stats_add(s, 1);
		close_ok(s, 11 + e);
	}
	n = dt_stats_heatmap(s, 3, h, 8);
	CHECK_EQ(n, 1);
	CHECK_EQ(h[0].pages, 1);
	CHECK_EQ(h[0].dirtyings, 3);
	CHECK_EQ(dt_stats_heatmap(s, 0, h, 8), 0);
	dt_stats_free(s);
}

/*
 * Pages scattered over the whole 2^32 index space cost per page, not per
 * guest size; idle epochs add nothing once the record ring is full, and
 * expired history is given back.
 */
static void test_memory(void)
{
	const uint32_t H = 100;
	struct dt_stats *s = mk(H, 8, 10, 512, 4);
	size_t empty, full, idle1, idle2, gone, gone2;
	uint64_t retained;

	empty = dt_stats_memory(s);
	for (uint32_t e = 0; e < 20; e++) {
		for (uint32_t i = 0; i < 5000; i++)
			dt_stats_add_vcpu(s, i % 4, (uint32_t)rnd());
		close_ok(s, e);
	}
	full = dt_stats_memory(s);
	retained = dt_stats_wss(s, H);
	CHECK(retained > 99000);
	fprintf(stderr,
		"    sparse: %zu bytes empty, %zu bytes for %" PRIu64
		" pages over 2^32 (%.1f B/page)\n",
		empty, full, retained, (double)(full - empty) / (double)retained);
	/*
	 * Every page sits in the VM's and its vCPU's L set, in an exact or a
	 * coarse set, mostly alone in its container: a few hundred bytes, where
	 * a flat bitmap of the index space would take 512 MiB.
	 */
	CHECK(full - empty < retained * 400);

	for (uint32_t e = 0; e < H; e++)
		close_ok(s, 100 + e);
	idle1 = dt_stats_memory(s);
	CHECK(idle1 <= full + H * sizeof(struct dt_epoch_record));
	for (uint32_t e = 0; e < H + 10; e++)
		close_ok(s, 1000 + e);
	gone = dt_stats_memory(s);
	CHECK_EQ(dt_stats_wss(s, H), 0);
	CHECK(gone < empty + H * sizeof(struct dt_epoch_record) + 4096);
	for (uint32_t e = 0; e < 5000; e++)
		close_ok(s, 5000 + e);
	idle2 = dt_stats_memory(s);
	CHECK_EQ(idle2, gone);
	fprintf(stderr, "    after expiry: %zu bytes, after 5000 more idle epochs: %zu\n", gone,
		idle2);

	/* A long horizon costs nothing while idle. */
	struct dt_stats *l = mk(36000, 64, 60, 512, 64);
	for (uint32_t e = 0; e < 1000; e++)
		close_ok(l, e);
	gone2 = dt_stats_memory(l);
	fprintf(stderr, "    36000-epoch horizon, 64 vCPUs, 1000 idle epochs: %zu bytes\n", gone2);
	CHECK(gone2 < 200 * 1024);
	dt_stats_free(l);
	dt_stats_free(s);
}

/*
 * The open epoch's paths: chunk bitsets for dense pages, the roaring
 * fallback for pages scattered over the index space (more chunks than the
 * bitset cap, chunks below the promotion threshold), and blocks of the
 * index split across the batches a close walks in (offsets not multiples
 * of 64). All must give the same exact counts.
 */
static void test_open_paths(void)
{
	struct dt_stats *s = mk(8, 4, 2, 512, 2);
	uint64_t want = 0;

	/* 300 chunks, 100 pages each (promoted, until the bitset cap), and 1 page each. */
	for (uint32_t c = 0; c < 300; c++)
		for (uint32_t i = 0; i < 100; i++)
			dt_stats_add_vcpu(s, c & 1, (c << 16) + i * 7 + 3);
	want += 300 * 100;
	for (uint32_t c = 300; c < 900; c++)
		dt_stats_add(s, (c << 16) + 5);
	want += 600;
	/* A dense stretch at an odd offset: blocks straddle the 4096-page batches. */
	for (uint32_t i = 0; i < 20000; i++)
		dt_stats_add(s, 0x7f000000u + 37 + i);
	want += 20000;
	close_ok(s, 1);
	CHECK_EQ(dt_stats_wss(s, 1), want);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 1) + dt_stats_vcpu_wss(s, 1, 1), 30000);
	CHECK_EQ(dt_stats_wss_range(s, 1, 0x7f000000u, 0x7f000000u + 100), 63);
	CHECK_EQ(dt_stats_wss_range(s, 1, 300u << 16, 900u << 16), 600);

	/* The same pages again, shifted by one: rewrites and new pages in every block. */
	for (uint32_t i = 0; i < 20000; i++)
		dt_stats_add(s, 0x7f000000u + 38 + i);
	for (uint32_t c = 0; c < 300; c++)
		dt_stats_add_vcpu(s, 0, (c << 16) + 3);
	close_ok(s, 2);
	CHECK_EQ(dt_stats_wss(s, 1), 20000 + 300);
	CHECK_EQ(dt_stats_wss(s, 2), want + 1);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 1), 300);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, 2), 15000 + 150);
	CHECK_EQ(dt_stats_total_pages(s), want + 20300);
	dt_stats_free(s);
}

/*
 * Dense epochs against a brute-force reference: vCPUs writing thousands of
 * pages per chunk (their sets get bitsets), VM bitmap words (partial and
 * full, the range path), chunks far apart (the chunk directory grows),
 * idle epochs (it is given back), rewrites of the same pages. The VM's
 * and each vCPU's D(T) at every window, and the journal replayed into a
 * fresh copy, must match the reference page for page.
 */
#define DREF_CHUNKS 3
#define DREF_PAGES  (DREF_CHUNKS * 65536u)
#define DREF_EPOCHS 24
#define DREF_VCPUS  2

static uint32_t dref_page(uint32_t i)
{
	static const uint32_t chunk[DREF_CHUNKS] = { 0, 5, 900 };

	return (chunk[i >> 16] << 16) | (i & 0xffff);
}

static void dref_check(struct dt_stats *s, int32_t (*last)[DREF_PAGES], uint32_t epochs,
		       uint32_t horizon)
{
	for (uint32_t m = 0; m <= DREF_VCPUS; m++) {
		uint64_t hist[64] = { 0 }, sum = 0;

		for (uint32_t i = 0; i < DREF_PAGES; i++)
			if (last[m][i] >= 0 && epochs - (uint32_t)last[m][i] <= horizon)
				hist[epochs - (uint32_t)last[m][i]]++;
		for (uint32_t w = 1; w <= horizon + 2; w++) {
			sum += w <= horizon ? hist[w] : 0;
			if (m == 0)
				CHECK_EQ(dt_stats_wss(s, w), sum);
			else
				CHECK_EQ(dt_stats_vcpu_wss(s, m - 1, w), sum);
		}
	}
}

static void test_dense_reference(void)
{
	const uint32_t horizon = 10;
	static int32_t last[DREF_VCPUS + 1][DREF_PAGES]; /* 0: the VM */
	struct dt_stats *s = mk(horizon, 4, 3, 512, DREF_VCPUS), *b = mk(horizon, 4, 3, 512,
									  DREF_VCPUS);
	char *jbuf = NULL;
	size_t jlen = 0;
	uint64_t applied = 0;
	FILE *j = open_memstream(&jbuf, &jlen);

	memset(last, 0xff, sizeof(last));
	for (uint32_t e = 0; e < DREF_EPOCHS; e++) {
		uint32_t mode = e % 6;

		for (uint32_t v = 0; mode != 5 && v < DREF_VCPUS; v++) {
			/* Thousands of pages in one chunk, a few everywhere. */
			uint32_t base = (uint32_t)(rnd() % DREF_CHUNKS) << 16;
			uint32_t n = mode == 0 ? 20000 : mode == 1 ? 300 : 6000;

			for (uint32_t k = 0; k < n; k++) {
				uint32_t i = (k % 8 == 0) ? (uint32_t)(rnd() % DREF_PAGES)
							   : base + (uint32_t)(rnd() % 65536);

				dt_stats_add_vcpu(s, v, dref_page(i));
				last[0][i] = last[v + 1][i] = (int32_t)e;
			}
		}
		if (mode == 2 || mode == 3) {
			/* Bitmap words: random, and a stretch of full ones. */
			uint32_t base = (uint32_t)(rnd() % DREF_CHUNKS) << 16;

			for (uint32_t w = 0; w < 1024; w++) {
				uint64_t bits = (w >= 200 && w < 400) ? UINT64_MAX : rnd() & rnd();
				uint32_t i0 = base + w * 64;

				dt_stats_add_word(s, dref_page(i0), bits);
				for (uint32_t bt = 0; bt < 64; bt++)
					if (bits >> bt & 1)
						last[0][i0 + bt] = (int32_t)e;
			}
		}
		struct dt_closed_epoch *ce = NULL;
		struct dt_buf fb = {0};

		CHECK_EQ(dt_stats_close_epoch(s, 1000 + e, &ce), 0);
		CHECK(ce != NULL);
		CHECK_EQ(dt_persist_frame(ce, &fb), 0);
		fwrite(fb.p, 1, fb.len, j);
		dt_buf_done(&fb);
		dt_closed_epoch_free(ce);
		dref_check(s, last, e + 1, horizon);
	}
	fclose(j);
	CHECK_EQ(dt_stats_journal_replay(jbuf, jlen, b, &applied), 0);
	CHECK_EQ(applied, DREF_EPOCHS);
	dref_check(b, last, DREF_EPOCHS, horizon);
	CHECK_EQ(dt_stats_total_pages(b), dt_stats_total_pages(s));
	free(jbuf);
	dt_stats_free(s);
	dt_stats_free(b);
}

/*
 * The last-dirty index forgets pages that left the horizon: counts drop at
 * once, the memory within a few sweeps, and a page dirtied again after
 * expiry counts as new (never twice).
 */
static void test_index_expiry(void)
{
	const uint32_t H = 40;
	struct dt_stats *s = mk(H, 4, 4, 512, 1);
	size_t empty = dt_stats_memory(s), held;

	for (uint32_t i = 0; i < 50000; i++)
		dt_stats_add_vcpu(s, 0, i * 3);
	close_ok(s, 0);
	held = dt_stats_memory(s);
	CHECK(held > empty + 50000 * 4);
	for (uint32_t e = 1; e < H; e++)
		close_ok(s, e);
	CHECK_EQ(dt_stats_wss(s, H), 50000);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, H), 50000);
	close_ok(s, H);
	CHECK_EQ(dt_stats_wss(s, H), 0);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, H), 0);
	CHECK_EQ(dt_stats_wss_range(s, H, 0, 1u << 20), 0);
	/* Stale entries are still held: dirtying them again counts them once. */
	for (uint32_t i = 0; i < 1000; i++)
		dt_stats_add_vcpu(s, 0, i * 3);
	close_ok(s, H + 1);
	CHECK_EQ(dt_stats_wss(s, 1), 1000);
	CHECK_EQ(dt_stats_wss(s, H), 1000);
	CHECK_EQ(dt_stats_wss(s, 3), 1000);
	CHECK_EQ(dt_stats_vcpu_wss(s, 0, H), 1000);
	/* Two sweeps (a pass every H/4 epochs) give the stale pages back. */
	for (uint32_t e = 0; e < H / 2 + 2; e++)
		close_ok(s, H + 2 + e);
	CHECK(dt_stats_memory(s) < empty + (held - empty) / 10);
	CHECK_EQ(dt_stats_wss(s, H), 1000);
	for (uint32_t e = 0; e < 2 * H; e++)
		close_ok(s, 1000 + e);
	CHECK_EQ(dt_stats_wss(s, H), 0);
	CHECK(dt_stats_memory(s) < empty + H * sizeof(struct dt_epoch_record) + 1024);
	dt_stats_free(s);
}

/*
 * The planner's layout: cuts at quantiles of the pages dirtied within the
 * longest window, and each part's distinct pages within every window,
 * against a count by hand (random pages over 2000 epochs' worth of history).
 */
static void test_layout(void)
{
	enum { MEM = 5000, EPOCHS = 40, PARTS = 8 };
	static const uint32_t windows[] = {1, 2, 5, 10, 40};
	static uint32_t last[MEM]; /* epoch + 1 of each page's last dirtying, 0: never */
	struct dt_stats *s = mk(100, 40, 10, 512, 0);
	uint64_t bounds[PARTS + 1], parts[PARTS * 5], seed = 7, want;
	uint32_t d = 0, rank = 0;

	for (uint32_t e = 0; e < EPOCHS; e++) {
		for (int i = 0; i < 200; i++) {
			uint32_t page;

			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			/* pages 0..999 hot, 1000..3999 cold, 4000.. never */
			page = (uint32_t)(seed >> 33) % 4 ? (uint32_t)(seed >> 20) % 1000
							  : 1000 + (uint32_t)(seed >> 20) % 3000;
			dt_stats_add(s, page);
			last[page] = e + 1;
		}
		close_ok(s, (e + 1) * 10);
	}
	CHECK_EQ(dt_stats_layout(s, windows, 5, MEM, PARTS, bounds, parts), 0);
	CHECK_EQ(bounds[0], 0);
	CHECK_EQ(bounds[PARTS], MEM);
	/* bound b is the dirtied page of rank D b / PARTS */
	for (uint32_t p = 0; p < MEM; p++)
		d += last[p] > 0;
	for (uint32_t p = 0, b = 1; p < MEM && b < PARTS; p++) {
		if (!last[p])
			continue;
		if (rank == (uint64_t)d * b / PARTS) {
			CHECK_EQ(bounds[b], p);
			b++;
		}
		rank++;
	}
	for (uint32_t b = 0; b < PARTS; b++)
		for (uint32_t j = 0; j < 5; j++) {
			want = 0;
			for (uint64_t p = bounds[b]; p < bounds[b + 1]; p++)
				want += last[p] > 0 && last[p] + windows[j] > EPOCHS;
			CHECK_EQ(parts[b * 5 + j], want);
		}
	CHECK_EQ(dt_stats_layout(s, windows, 5, PARTS - 1, PARTS, bounds, parts), -EINVAL);
	CHECK_EQ(dt_stats_layout(s, windows, 5, 3000, PARTS, bounds, parts), -EINVAL); /* pages beyond */
	dt_stats_free(s);
}

/*
 * dt_radix_sort against qsort at every length where its method changes
 * (insertion sort, narrow digits, wide digits), over narrow and full ranges.
 */
static void test_radix_sort(void)
{
	static const uint32_t lens[] = { 0, 1, 2, 3, 47, 48, 49, 50, 255, 4095, 4096, 4097, 20000 };
	static uint32_t a[20000], b[20000], tmp[20000];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (uint32_t range = 0; range < 3; range++) {
			uint32_t n = lens[i];

			for (uint32_t j = 0; j < n; j++) {
				uint32_t x = (uint32_t)rnd();

				a[j] = b[j] = range == 0 ? x % 7 : range == 1 ? 70000 + x % 300000 : x;
			}
			dt_radix_sort(a, tmp, n);
			qsort(b, n, sizeof(b[0]), cmp_u32);
			for (uint32_t j = 0; j < n; j++)
				CHECK_EQ(a[j], b[j]);
		}
}

int main(void)
{
	RUN(test_config);
	RUN(test_rewrites);
	RUN(test_horizon_expiry);
	RUN(test_add_word);
	RUN(test_vcpu);
	RUN(test_many);
	RUN(test_open_paths);
	RUN(test_dense_reference);
	RUN(test_index_expiry);
	RUN(test_buckets);
	RUN(test_random);
	RUN(test_radix_sort);
	RUN(test_memory);
	RUN(test_layout);
	TEST_EXIT();
}
