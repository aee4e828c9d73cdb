/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stats core benchmark: insertion throughput, epoch-close cost and memory
 * per retained dirty page. Prints "name: value unit" lines. Runs in about
 * 30 s on one core.
 *
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): the machine is
 * shared, and wall time mostly measured the neighbours.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dt_stats.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static struct dt_stats *mk(uint32_t horizon, uint32_t recent, uint32_t coarse, uint32_t nvcpus)
{
	struct dt_stats_config cfg = {
	    .horizon_epochs = horizon,
	    .recent_epochs = recent,
	    .coarse_epochs = coarse,
	    .region_pages = 512,
	};
	static const uint32_t w[] = {1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600, 36000};
	struct dt_stats *s;

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]) && w[i] <= horizon; i++)
		cfg.windows[cfg.nwindows++] = w[i];
	if (dt_stats_new(&cfg, nvcpus, &s) < 0) {
		fprintf(stderr, "dt_stats_new failed\n");
		exit(1);
	}
	return s;
}

#define NPAGES (4u << 20)

/*
 * Entries per second for dt_stats_add (vcpus 0) or dt_stats_add_vcpu over a
 * prepared page sequence, harvested ring by ring (4096 entries per vCPU in
 * turn), with an epoch closed every `per_epoch` entries. Returns the best
 * epoch's insertion rate; *with_close gets the rate over all epochs with
 * the close included (the per-vCPU sorting happens there).
 */
static double insert_rate2(const uint32_t *pages, uint32_t n, uint32_t rounds, uint32_t per_epoch,
			   uint32_t vcpus, double *with_close)
{
	struct dt_stats *s = mk(3600, 64, 60, vcpus);
	double best = 0;
	uint64_t total = 0, entries = 0;

	for (uint32_t r = 0; r < rounds; r++) {
		for (uint32_t off = 0; off < n; off += per_epoch) {
			uint32_t end = off + per_epoch < n ? off + per_epoch : n;
			uint64_t t0 = now_ns();

			if (vcpus)
				for (uint32_t i = off; i < end; i++)
					dt_stats_add_vcpu(s, (i >> 12) % vcpus, pages[i]);
			else
				for (uint32_t i = off; i < end; i++)
					dt_stats_add(s, pages[i]);
			uint64_t t1 = now_ns();
			double rate = (double)(end - off) * 1e9 / (double)(t1 - t0);

			/* Best epoch: the machine is shared, interference only slows down. */
			if (rate > best)
				best = rate;
			dt_stats_close_epoch(s, 0, NULL);
			total += now_ns() - t0;
			entries += end - off;
		}
	}
	dt_stats_free(s);
	if (with_close)
		*with_close = (double)entries * 1e9 / (double)total;
	return best;
}

static double insert_rate(const uint32_t *pages, uint32_t n, uint32_t rounds, uint32_t per_epoch,
			  int vcpus)
{
	return insert_rate2(pages, n, rounds, per_epoch, vcpus ? 8 : 0, NULL);
}

static void print_ring(const char *name, const uint32_t *p, uint32_t n, uint32_t vcpus)
{
	double with_close, r = insert_rate2(p, n, 2, 1u << 20, vcpus, &with_close);

	printf("ring_%s_%uvcpus: %.1f Mentries/s (with epoch close: %.1f)\n", name, vcpus, r / 1e6,
	       with_close / 1e6);
}

static void bench_insert(void)
{
	uint32_t *p = malloc(NPAGES * sizeof(*p));

	if (!p)
		exit(1);
	for (uint32_t i = 0; i < NPAGES; i++)
		p[i] = (uint32_t)(rnd() % (1u << 20));
	printf("insert_random_1M_wss: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 3, 1u << 20, 0) / 1e6);
	print_ring("random_1M", p, NPAGES, 8);
	print_ring("random_1M", p, NPAGES, 64);
	printf("insert_random_1M_wss_vcpu: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 3, 1u << 20, 1) / 1e6);
	for (uint32_t i = 0; i < NPAGES; i++)
		p[i] = (uint32_t)(rnd() % (1u << 16));
	printf("insert_random_64k_wss: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 3, 1u << 20, 0) / 1e6);
	for (uint32_t i = 0; i < NPAGES; i++)
		p[i] = (uint32_t)(rnd() % (16u << 20));
	printf("insert_random_16M_space: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 2, 1u << 20, 0) / 1e6);
	print_ring("random_16M", p, NPAGES, 8);
	print_ring("random_16M", p, NPAGES, 64);
	printf("insert_random_16M_space_vcpu: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 2, 1u << 20, 1) / 1e6);
	/* Pages scattered over the whole index space: one container per page. */
	for (uint32_t i = 0; i < NPAGES; i++)
		p[i] = (uint32_t)rnd();
	printf("insert_random_2^32_space: %.1f Mentries/s\n",
	       insert_rate(p, 1u << 18, 2, 1u << 18, 0) / 1e6);
	for (uint32_t i = 0; i < NPAGES; i++)
		p[i] = i;
	printf("insert_sequential: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 3, 1u << 20, 0) / 1e6);
	printf("insert_sequential_vcpu: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 3, 1u << 20, 1) / 1e6);
	/* A ring reporting most pages twice in a row. */
	for (uint32_t i = 0; i < NPAGES; i++)
		p[i] = (i & 1) ? p[i - 1] : (uint32_t)(rnd() % (1u << 20));
	printf("insert_random_pairs_1M_wss: %.1f Mentries/s\n",
	       insert_rate(p, NPAGES, 3, 1u << 20, 0) / 1e6);
	free(p);
}

/* Words of a bitmap: 1/8 fully dirty, the rest with a few bits. */
static void bench_words(void)
{
	struct dt_stats *s = mk(3600, 64, 60, 0);
	uint64_t t0, bits = 0;
	const uint32_t nwords = 1u << 18; /* 16M pages */

	t0 = now_ns();
	for (uint32_t r = 0; r < 4; r++) {
		for (uint32_t w = 0; w < nwords; w++) {
			uint64_t word = (w & 7) == 0 ? UINT64_MAX : (rnd() & rnd() & rnd());

			bits += (uint64_t)__builtin_popcountll(word);
			dt_stats_add_word(s, w * 64, word);
		}
		dt_stats_close_epoch(s, 0, NULL);
	}
	printf("insert_words_bits: %.1f Mbits/s\n", (double)bits * 1e3 / (double)(now_ns() - t0));
	dt_stats_free(s);
}

struct close_case {
	const char *name;
	uint32_t horizon, recent, coarse;
	uint32_t wss, per_epoch, warm, measured;
	int sequential;
	uint32_t vcpus; /* pages spread over this many rings */
};

static void bench_close(const struct close_case *c, int report_memory)
{
	size_t heap0 = heap_used();
	struct dt_stats *s = mk(c->horizon, c->recent, c->coarse, c->vcpus);
	uint64_t tsum = 0, tmax = 0, cursor = 0;

	for (uint32_t e = 0; e < c->warm + c->measured; e++) {
		uint64_t t0, dt;

		for (uint32_t i = 0; i < c->per_epoch; i++) {
			uint32_t page = c->sequential ? (uint32_t)(cursor++ % c->wss)
						      : (uint32_t)(rnd() % c->wss);

			if (c->vcpus)
				dt_stats_add_vcpu(s, (i >> 9) % c->vcpus, page);
			else
				dt_stats_add(s, page);
		}
		t0 = now_ns();
		dt_stats_close_epoch(s, e, NULL);
		dt = now_ns() - t0;
		if (e >= c->warm) {
			tsum += dt;
			if (dt > tmax)
				tmax = dt;
		}
	}
	printf("close_%s_avg: %.1f us\n", c->name, (double)tsum / c->measured / 1e3);
	printf("close_%s_max: %.1f us\n", c->name, (double)tmax / 1e3);
	if (report_memory) {
		size_t mem = dt_stats_memory(s), heap = heap_used() - heap0;
		uint64_t d = dt_stats_wss(s, c->horizon);

		printf("memory_%s_reported: %zu bytes\n", c->name, mem);
		printf("memory_%s_heap: %zu bytes\n", c->name, heap);
		printf("memory_%s_retained_pages: %llu pages\n", c->name, (unsigned long long)d);
		printf("memory_%s_per_retained_page: %.2f bytes\n", c->name,
		       (double)heap / (double)d);
	}
	dt_stats_free(s);
}

/*
 * The L-set structure alone: a long tail of epochs that each leave a few
 * pages behind, so thousands of L sets stay non-empty and every close walks
 * them all.
 */
static void bench_long_tail(void)
{
	struct dt_stats *s = mk(36000, 64, 600, 0);
	uint64_t t0, tsum = 0;
	const uint32_t epochs = 3000, measured = 300;

	for (uint32_t e = 0; e < epochs; e++) {
		/* A hot set rewritten every epoch, and 20 fresh pages. */
		for (uint32_t i = 0; i < 2000; i++)
			dt_stats_add(s, (uint32_t)(rnd() % 4096));
		for (uint32_t i = 0; i < 20; i++)
			dt_stats_add(s, 1u << 20 | (uint32_t)(rnd() % (64u << 20)));
		t0 = now_ns();
		dt_stats_close_epoch(s, e, NULL);
		if (e >= epochs - measured)
			tsum += now_ns() - t0;
	}
	printf("close_long_tail_3000_live_sets_avg: %.1f us\n", (double)tsum / measured / 1e3);
	printf("memory_long_tail_reported: %zu bytes\n", dt_stats_memory(s));
	printf("memory_long_tail_per_retained_page: %.2f bytes\n",
	       (double)dt_stats_memory(s) / (double)dt_stats_wss(s, 36000));
	dt_stats_free(s);
}

int main(void)
{
	static const struct close_case uniform = {
	    .name = "1s_h3600_uniform_100k_of_1M",
	    .horizon = 3600,
	    .recent = 64,
	    .coarse = 60,
	    .wss = 1u << 20,
	    .per_epoch = 100000,
	    .warm = 200,
	    .measured = 100,
	};
	static const struct close_case seq = {
	    .name = "1s_h3600_sequential_100k_of_1M",
	    .horizon = 3600,
	    .recent = 64,
	    .coarse = 60,
	    .wss = 1u << 20,
	    .per_epoch = 100000,
	    .warm = 200,
	    .measured = 100,
	    .sequential = 1,
	};
	static const struct close_case fast = {
	    .name = "100ms_h36000_uniform_10k_of_1M",
	    .horizon = 36000,
	    .recent = 64,
	    .coarse = 60,
	    .wss = 1u << 20,
	    .per_epoch = 10000,
	    .warm = 500,
	    .measured = 100,
	};

	bench_insert();
	bench_words();
	struct close_case fast8 = fast, fast64 = fast, uniform8 = uniform, uniform64 = uniform;

	fast8.name = "100ms_h36000_uniform_10k_of_1M_8vcpus";
	fast8.vcpus = 8;
	fast64.name = "100ms_h36000_uniform_10k_of_1M_64vcpus";
	fast64.vcpus = 64;
	uniform8.name = "1s_h3600_uniform_100k_of_1M_8vcpus";
	uniform8.vcpus = 8;
	uniform64.name = "1s_h3600_uniform_100k_of_1M_64vcpus";
	uniform64.vcpus = 64;

	bench_close(&uniform, 1);
	bench_close(&uniform8, 1);
	bench_close(&uniform64, 0);
	bench_close(&seq, 1);
	bench_close(&fast, 1);
	bench_close(&fast8, 0);
	bench_close(&fast64, 1);
	bench_long_tail();
	return 0;
}
