/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Harvest benchmark: the real collectors feeding a real dt_stats, each
 * figure printed beside the machine's own streaming memory-read bandwidth
 * measured in the same run.
 *
 *  - ring harvest: memfd rings laid out as KVM lays them out (16-byte
 *    entries, DIRTY/RESET), published by a producer, taken with the
 *    collector's ops->harvest (validation, insertion into the open epoch's
 *    set, RESET store-release); epoch close timed separately;
 *  - bitmap consumption: sealed memfd bitmaps taken with
 *    dt_bitmap_consume (xchg per non-zero word), cold caches;
 *  - memory bandwidth: one core summing 64-bit words over 1 GiB.
 *
 * Prints "name: value unit (ratio x of memory bandwidth)" lines. Single
 * threaded except the concurrent-producer case; about 20-40 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dt_collector.h"
#include "dt_util.h"
#include "dt_stats.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define PAGE_SHIFT 12
#define RING_ENTRIES 65536u /* KVM's maximum here: 1 MiB of entries */
#define SLOT_PAGES (16u << 20) /* one 64 GiB slot for the ring cases */
#define EPOCH_ENTRIES (4u << 20) /* entries harvested per measured epoch */
#define BW_BYTES (1ull << 30)

static double mem_bw; /* bytes per second, one core */
static uint64_t *bw_buf;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_harvest: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Four independent sums so the loop is bound by loads, not by one add chain. */
static uint64_t sum_words(const uint64_t *w, size_t n)
{
	uint64_t a = 0, b = 0, c = 0, d = 0;

	for (size_t i = 0; i + 4 <= n; i += 4) {
		a += w[i];
		b += w[i + 1];
		c += w[i + 2];
		d += w[i + 3];
	}
	return a + b + c + d;
}

static volatile uint64_t sink;

static void measure_bandwidth(void)
{
	size_t n = BW_BYTES / 8;
	double best = 0;

	bw_buf = malloc(BW_BYTES);
	if (!bw_buf)
		die("bandwidth buffer", ENOMEM);
	for (size_t i = 0; i < n; i++)
		bw_buf[i] = i;
	for (int r = 0; r < 5; r++) {
		uint64_t t0 = now_ns();

		sink += sum_words(bw_buf, n);
		double bw = (double)BW_BYTES * 1e9 / (double)(now_ns() - t0);
		if (bw > best)
			best = bw;
	}
	mem_bw = best;
	printf("memory_read_bandwidth_1core: %.2f GiB/s (1.00 x of memory bandwidth)\n",
	       mem_bw / GIB);
}

/* Push the caches out: read 128 MiB of something else (L3 is 32 MiB here). */
static void evict_caches(void)
{
	sink += sum_words(bw_buf + (rnd() % 4) * (BW_BYTES / 8 / 4), (128u << 20) / 8);
}

static struct dt_stats *mk_stats(uint32_t nvcpus)
{
	/* The daemon's defaults at a 1 s epoch. */
	static const uint32_t w[] = { 1, 2, 5, 10, 30, 60, 300, 900, 3600 };
	struct dt_stats_config cfg = {
		.horizon_epochs = 3600,
		.recent_epochs = 64,
		.coarse_epochs = 60,
		.region_pages = 512,
		.nwindows = sizeof(w) / sizeof(w[0]),
	};
	struct dt_stats *s;
	int r;

	memcpy(cfg.windows, w, sizeof(w));
	r = dt_stats_new(&cfg, nvcpus, &s);
	if (r < 0)
		die("dt_stats_new", -r);
	return s;
}

static int sealed_memfd(const char *name, uint64_t bytes, unsigned seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		die("memfd_create", errno);
	if (ftruncate(fd, (off_t)bytes) < 0)
		die("ftruncate", errno);
	if (fcntl(fd, F_ADD_SEALS, seals) < 0)
		die("F_ADD_SEALS", errno);
	return fd;
}

/* ---- ring harvest --------------------------------------------------------- */

enum pattern { RANDOM_1M, RANDOM_16M, SEQUENTIAL };
static const char *const pattern_names[] = { "random_1M", "random_16M", "sequential_16M" };

static void make_offsets(uint32_t *off, uint32_t n, enum pattern p)
{
	static uint32_t cursor;

	for (uint32_t i = 0; i < n; i++)
		switch (p) {
		case RANDOM_1M:
			off[i] = (uint32_t)(rnd() % (1u << 20));
			break;
		case RANDOM_16M:
			off[i] = (uint32_t)(rnd() % SLOT_PAGES);
			break;
		case SEQUENTIAL:
			off[i] = cursor++ % SLOT_PAGES;
			break;
		}
}

/* The producer's side of KVM's protocol: fill slot and offset, publish DIRTY. */
static void ring_publish(struct dt_ring_entry *e, uint32_t slot, uint64_t offset)
{
	e->slot = slot;
	e->offset = offset;
	__atomic_store_n(&e->flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
}

static void setup_collector(struct dt_collector *c, struct dt_stats *s, uint32_t nvcpus,
			    int *fds)
{
	char reason[DT_REASON_LEN] = "";
	int r;

	r = dt_collector_init(c, DT_MODE_RING, nvcpus, s);
	if (r < 0)
		die("dt_collector_init", -r);
	r = dt_slots_add(&c->slots, 0, 1ull << 32, SLOT_PAGES, PAGE_SHIFT, 512, UINT64_MAX);
	if (r < 0)
		die("dt_slots_add", -r);
	for (uint32_t v = 0; v < nvcpus; v++) {
		struct dt_msg_add_ring m = { .vcpu = v, .entries = RING_ENTRIES };

		fds[v] = sealed_memfd("ring", RING_ENTRIES * sizeof(struct dt_ring_entry),
				      F_SEAL_SHRINK);
		r = c->ops->add_ring(c, fds[v], &m, reason);
		if (r < 0) {
			fprintf(stderr, "bench_harvest: add_ring: %s\n", reason);
			exit(1);
		}
	}
}

static void teardown_collector(struct dt_collector *c, int *fds, uint32_t nvcpus)
{
	dt_collector_done(c);
	for (uint32_t v = 0; v < nvcpus; v++)
		close(fds[v]);
}

/*
 * Each measured epoch: the vCPUs' rings are filled (not timed) and
 * harvested (timed) until EPOCH_ENTRIES entries went through, then the
 * epoch is closed (timed apart). Best epoch for the rate: the machine is
 * shared and interference only slows down.
 */
static void bench_ring(enum pattern p, uint32_t nvcpus, uint32_t *off)
{
	struct dt_stats *s = mk_stats(nvcpus);
	struct dt_collector c;
	int fds[8];
	const uint32_t epochs = 4;
	double best = 0;
	uint64_t close_sum = 0, close_max = 0, pos[8] = { 0 };

	setup_collector(&c, s, nvcpus, fds);
	for (uint32_t e = 0; e < epochs; e++) {
		uint64_t t_harvest = 0, n = 0;

		make_offsets(off, EPOCH_ENTRIES, p);
		for (uint32_t done = 0; done < EPOCH_ENTRIES;) {
			/* Each vCPU publishes its next share, at most a ring's worth. */
			uint32_t per = (EPOCH_ENTRIES - done) / nvcpus;

			if (per > RING_ENTRIES)
				per = RING_ENTRIES;
			for (uint32_t v = 0; v < nvcpus; v++) {
				struct dt_ring *r = c.rings[v];

				for (uint32_t i = 0; i < per; i++)
					ring_publish(&r->entries[(pos[v] + i) & (RING_ENTRIES - 1)],
						     0, off[done + v * per + i]);
				pos[v] += per;
			}
			uint64_t t0 = now_ns();
			n += c.ops->harvest(&c);
			t_harvest += now_ns() - t0;
			done += per * nvcpus;
		}
		if (n != EPOCH_ENTRIES || c.invalid_entries) {
			fprintf(stderr, "bench_harvest: harvested %llu of %u entries (%llu invalid)\n",
				(unsigned long long)n, EPOCH_ENTRIES,
				(unsigned long long)c.invalid_entries);
			exit(1);
		}
		double rate = (double)n * 1e9 / (double)t_harvest;
		if (rate > best)
			best = rate;
		uint64_t t0 = now_ns();
		if (dt_stats_close_epoch(s, e, NULL) < 0)
			die("dt_stats_close_epoch", ENOMEM);
		uint64_t dt = now_ns() - t0;
		if (e > 0) {
			close_sum += dt;
			if (dt > close_max)
				close_max = dt;
		}
	}
	printf("ring_harvest_%s_%uvcpu: %.1f Mentries/s/core (%.3f x of memory bandwidth)"
	       " [target >= 200: %s]\n",
	       pattern_names[p], nvcpus, best / 1e6, best * 16 / mem_bw,
	       best >= 200e6 ? "met" : "MISSED");
	printf("ring_epoch_close_%s_%uvcpu_4M_entries: avg %.1f ms, max %.1f ms "
	       "(%llu distinct pages in the last epoch)\n",
	       pattern_names[p], nvcpus, (double)close_sum / (epochs - 1) / 1e6,
	       (double)close_max / 1e6, (unsigned long long)dt_stats_wss(s, 1));
	teardown_collector(&c, fds, nvcpus);
	dt_stats_free(s);
}

/*
 * A producer thread on another core publishing into one ring while the
 * harvester takes entries as they come: the entries cross between cores'
 * caches as they do between a vCPU thread and the daemon.
 */
struct producer {
	struct dt_ring_entry *entries;
	const uint32_t *off;
	uint32_t n;
};

static void *producer_run(void *arg)
{
	struct producer *pr = arg;

	for (uint32_t i = 0; i < pr->n; i++) {
		struct dt_ring_entry *e = &pr->entries[i & (RING_ENTRIES - 1)];

		/* KVM never overwrites an entry the harvester has not taken. */
		while (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DT_RING_DIRTY)
			__builtin_ia32_pause();
		ring_publish(e, 0, pr->off[i]);
	}
	return NULL;
}

static void bench_ring_concurrent(uint32_t *off)
{
	struct dt_stats *s = mk_stats(1);
	struct dt_collector c;
	struct producer pr;
	pthread_t th;
	int fds[1];
	double best = 0;

	setup_collector(&c, s, 1, fds);
	for (int e = 0; e < 3; e++) {
		uint64_t n = 0, t0;

		make_offsets(off, EPOCH_ENTRIES, RANDOM_1M);
		/* The ring may hold RESET entries from the last round: the producer reuses them. */
		pr = (struct producer){ .entries = c.rings[0]->entries, .off = off,
					.n = EPOCH_ENTRIES };
		t0 = now_ns();
		if (pthread_create(&th, NULL, producer_run, &pr) != 0)
			die("pthread_create", EAGAIN);
		while (n < EPOCH_ENTRIES)
			n += c.ops->harvest(&c);
		double rate = (double)n * 1e9 / (double)(now_ns() - t0);
		pthread_join(th, NULL);
		if (rate > best)
			best = rate;
		dt_stats_close_epoch(s, (uint64_t)e, NULL);
	}
	printf("ring_harvest_random_1M_1vcpu_concurrent_producer: %.1f Mentries/s/core "
	       "(%.3f x of memory bandwidth)\n",
	       best / 1e6, best * 16 / mem_bw);
	teardown_collector(&c, fds, 1);
	dt_stats_free(s);
}

/* ---- bitmap consumption --------------------------------------------------- */

enum fill { EMPTY, ONE_PER_4096_WORDS, PERMILLE, HALF, FULL, HOLES };
static const char *const fill_names[] = { "empty", "sparse_1bit_per_4096words",
					  "sparse_0.1pct", "dense_50pct", "dense_100pct",
					  "holes_1page_per_16_written" };

static uint64_t fill_bitmap(uint64_t *w, uint64_t nwords, enum fill f)
{
	uint64_t bits = 0;

	switch (f) {
	case HOLES:
		/*
		 * A memfd only ftruncated: one bit in one page of every 16 (8192
		 * words), the other pages never touched, so they stay holes.
		 */
		for (uint64_t i = 0; i < nwords; i += 8192, bits++)
			w[i] |= 1;
		return bits;
	case EMPTY:
		break;
	case ONE_PER_4096_WORDS:
		for (uint64_t i = 0; i < nwords; i += 4096)
			w[i] |= 1ull << (rnd() % 64);
		break;
	case PERMILLE:
		for (uint64_t k = nwords * 64 / 1000; k; k--) {
			uint64_t b = rnd() % (nwords * 64);
			w[b / 64] |= 1ull << (b % 64);
		}
		break;
	case HALF:
		for (uint64_t i = 0; i < nwords; i++)
			w[i] = rnd();
		break;
	case FULL:
		memset(w, 0xff, nwords * 8);
		break;
	}
	for (uint64_t i = 0; i < nwords; i++)
		bits += (uint64_t)__builtin_popcountll(w[i]);
	return bits;
}

/* dt_bitmap_consume's loop with the stats call replaced by a popcount. */
static uint64_t bitmap_xchg_only(uint64_t *w, uint64_t n)
{
	uint64_t pages = 0;

	for (uint64_t i = 0; i < n; i++) {
		if (!__atomic_load_n(&w[i], __ATOMIC_RELAXED))
			continue;
		pages += (uint64_t)__builtin_popcountll(
		    __atomic_exchange_n(&w[i], 0, __ATOMIC_ACQ_REL));
	}
	return pages;
}

/* Zero test one 64-byte line at a time: one branch per 8 words. */
static uint64_t bitmap_xchg_line_or(uint64_t *w, uint64_t n)
{
	uint64_t pages = 0;

	for (uint64_t i = 0; i + 8 <= n; i += 8) {
		uint64_t any = 0;

		for (int k = 0; k < 8; k++)
			any |= __atomic_load_n(&w[i + k], __ATOMIC_RELAXED);
		if (!any)
			continue;
		for (int k = 0; k < 8; k++)
			if (__atomic_load_n(&w[i + k], __ATOMIC_RELAXED))
				pages += (uint64_t)__builtin_popcountll(
				    __atomic_exchange_n(&w[i + k], 0, __ATOMIC_ACQ_REL));
	}
	return pages;
}

/*
 * Consume with the collector (NULL loop) or with a reference loop that
 * leaves out the insertion into the stats core.
 */
static void bench_bitmap(uint64_t guest_bytes, const char *guest_name, enum fill f, int reps,
			 uint64_t (*ref_loop)(uint64_t *, uint64_t), const char *ref_name)
{
	uint64_t pages = guest_bytes >> PAGE_SHIFT;
	struct dt_slot_table slots = { 0 };
	struct dt_stats *s = mk_stats(1);
	struct dt_bitmap *b;
	char reason[DT_REASON_LEN] = "";
	uint64_t best = UINT64_MAX, close_sum = 0;
	int fd, r;

	r = dt_slots_add(&slots, 0, 1ull << 32, pages, PAGE_SHIFT, 512, UINT64_MAX);
	if (r < 0)
		die("dt_slots_add", -r);
	fd = sealed_memfd("bitmap", dt_bitmap_bytes(pages), F_SEAL_SHRINK | F_SEAL_GROW);
	r = dt_bitmap_map(fd, 0, dt_slots_find(&slots, 0), &b, reason);
	if (r < 0) {
		fprintf(stderr, "bench_harvest: dt_bitmap_map: %s\n", reason);
		exit(1);
	}
	for (int i = 0; i < reps; i++) {
		uint64_t bits = fill_bitmap(b->words, b->nwords, f), got, t0, dt;

		evict_caches();
		t0 = now_ns();
		got = ref_loop ? ref_loop(b->words, b->nwords) : dt_bitmap_consume(b, s);
		dt = now_ns() - t0;
		if (got != bits) {
			fprintf(stderr, "bench_harvest: consumed %llu of %llu bits\n",
				(unsigned long long)got, (unsigned long long)bits);
			exit(1);
		}
		if (dt < best)
			best = dt;
		t0 = now_ns();
		dt_stats_close_epoch(s, (uint64_t)i, NULL);
		close_sum += now_ns() - t0;
	}
	double bytes_per_s = (double)b->nwords * 8 * 1e9 / (double)best;
	bool sparse = f == ONE_PER_4096_WORDS || f == PERMILLE || f == HOLES;
	if (ref_loop) {
		printf("reference_bitmap_%s_without_insertion_%s_%s: %.3f ms per consume "
		       "(%.3f x of memory bandwidth)\n",
		       ref_name, guest_name, fill_names[f], (double)best / 1e6,
		       bytes_per_s / mem_bw);
	} else {
		printf("bitmap_consume_%s_%s: %.1f GiB of guest/s, %.3f ms per consume "
		       "(%.3f x of memory bandwidth)%s%s\n",
		       guest_name, fill_names[f], (double)guest_bytes * 1e9 / (double)best / GIB,
		       (double)best / 1e6, bytes_per_s / mem_bw,
		       guest_bytes == 1ull << 40 && sparse ? " [target 1 TiB sparse < 5 ms: " : "",
		       guest_bytes == 1ull << 40 && sparse ? (best < 5000000 ? "met]" : "MISSED]")
							    : "");
		if (f != EMPTY)
			printf("bitmap_epoch_close_%s_%s: avg %.2f ms\n", guest_name, fill_names[f],
			       (double)close_sum / reps / 1e6);
	}
	dt_bitmap_unmap(b);
	close(fd);
	dt_slots_free(&slots);
	dt_stats_free(s);
}

/* ---- scaling table: guest size x dirty fraction --------------------------- */

/*
 * One bitmap-mode VM per cell: a sealed memfd bitmap for the whole guest,
 * filled (not timed) with the cell's fraction of dirty pages, caches
 * evicted, consumed and its epoch closed (both timed). The first epoch of
 * a cell warms the index up and is not counted; the best later epoch is.
 * Each figure sits beside the floor the memory bandwidth sets: the bitmap
 * scan at mem_bw, spread over the dirty pages.
 */
struct scale_size {
	const char *name;
	uint64_t pages;
	uint32_t max_ppm; /* largest fraction run (parts per million): memory */
};

struct scale_frac {
	const char *name;
	uint32_t ppm; /* 500000 = random words, 1000000 = every bit */
};

static uint64_t fill_fraction(uint64_t *w, uint64_t nwords, uint64_t pages, uint32_t ppm)
{
	uint64_t bits = 0;

	if (ppm == 1000000) {
		memset(w, 0xff, nwords * 8);
	} else if (ppm == 500000) {
		for (uint64_t i = 0; i < nwords; i++)
			w[i] = rnd();
	} else {
		for (uint64_t k = pages / 1000000 * ppm + pages % 1000000 * ppm / 1000000; k; k--) {
			uint64_t b = rnd() % pages;
			w[b / 64] |= 1ull << (b % 64);
		}
	}
	if (pages % 64)
		w[nwords - 1] &= (1ull << (pages % 64)) - 1;
	for (uint64_t i = 0; i < nwords; i++)
		bits += (uint64_t)__builtin_popcountll(w[i]);
	return bits;
}

struct scale_cell {
	double consume_ms, close_ms, ns_per_page, floor_ns, bytes_per_page;
	double step_max_ms; /* split close: the longest step */
	uint64_t pages, steps;
};

/* Close in steps of `budget` (0: whole); the longest step into *max_ns. */
static uint64_t close_timed(struct dt_stats *s, uint64_t now, uint64_t budget, uint64_t *max_ns,
			    uint64_t *steps)
{
	uint64_t t0 = now_ns(), t;
	int r;

	if (!budget) {
		if (dt_stats_close_epoch(s, now, NULL) < 0)
			die("dt_stats_close_epoch", ENOMEM);
		t = now_ns() - t0;
		*max_ns = t;
		*steps = 1;
		return t;
	}
	*max_ns = *steps = 0;
	if (dt_stats_close_begin(s, now, false) < 0)
		die("dt_stats_close_begin", ENOMEM);
	do {
		/* CPU time: on a loaded host a step's wall time counts other processes' turns. */
		uint64_t s0 = cpu_ns();

		r = dt_stats_close_step(s, budget, NULL);
		if (r < 0)
			die("dt_stats_close_step", -r);
		if (cpu_ns() - s0 > *max_ns)
			*max_ns = cpu_ns() - s0;
		++*steps;
	} while (r > 0);
	return now_ns() - t0;
}

static void bench_scale_cell(const struct scale_size *sz, const struct scale_frac *fr, int reps,
			     uint64_t budget, struct scale_cell *out)
{
	uint64_t best_step = 0, best_steps = 0;
	struct dt_slot_table slots = { 0 };
	struct dt_stats *s = mk_stats(1);
	struct dt_bitmap *b;
	char reason[DT_REASON_LEN] = "";
	uint64_t best_c = UINT64_MAX, best_x = UINT64_MAX, pages = 0;
	int fd, r;

	r = dt_slots_add(&slots, 0, 1ull << 32, sz->pages, PAGE_SHIFT, 512, UINT64_MAX);
	if (r < 0)
		die("dt_slots_add", -r);
	fd = sealed_memfd("bitmap", dt_bitmap_bytes(sz->pages), F_SEAL_SHRINK | F_SEAL_GROW);
	r = dt_bitmap_map(fd, 0, dt_slots_find(&slots, 0), &b, reason);
	if (r < 0) {
		fprintf(stderr, "bench_harvest: dt_bitmap_map: %s\n", reason);
		exit(1);
	}
	for (int i = 0; i <= reps; i++) {
		uint64_t bits = fill_fraction(b->words, b->nwords, sz->pages, fr->ppm), got, t0, tc,
			 tx;

		evict_caches();
		t0 = now_ns();
		got = dt_bitmap_consume(b, s);
		tc = now_ns() - t0;
		if (got != bits) {
			fprintf(stderr, "bench_harvest: consumed %llu of %llu bits\n",
				(unsigned long long)got, (unsigned long long)bits);
			exit(1);
		}
		uint64_t step, steps;

		/* The warm-up epoch closes whole in every mode. */
		tx = close_timed(s, (uint64_t)i, i ? budget : 0, &step, &steps);
		if (dt_stats_wss(s, 1) != bits) {
			fprintf(stderr, "bench_harvest: epoch holds %llu of %llu pages\n",
				(unsigned long long)dt_stats_wss(s, 1), (unsigned long long)bits);
			exit(1);
		}
		if (i == 0)
			continue; /* warm-up */
		if (tc + tx < best_c + best_x) {
			best_c = tc;
			best_x = tx;
			pages = bits;
			best_step = step;
			best_steps = steps;
		}
	}
	out->pages = pages;
	out->steps = best_steps;
	out->step_max_ms = (double)best_step / 1e6;
	out->consume_ms = (double)best_c / 1e6;
	out->close_ms = (double)best_x / 1e6;
	out->ns_per_page = pages ? (double)(best_c + best_x) / (double)pages : 0;
	out->floor_ns = pages ? (double)b->nwords * 8 / mem_bw * 1e9 / (double)pages : 0;
	out->bytes_per_page = (double)dt_stats_memory(s) / (double)dt_stats_wss(s, 3600);
	dt_bitmap_unmap(b);
	close(fd);
	dt_slots_free(&slots);
	dt_stats_free(s);
}

static void bench_scaling(const char *only)
{
	static const struct scale_size sizes[] = {
		{ "1GiB", 1ull << 18, 1000000 },
		{ "64GiB", 1ull << 24, 1000000 },
		{ "1TiB", 1ull << 28, 1000000 },
		/* The whole 32-bit index space less one 2 MiB region; dense does not fit in RAM. */
		{ "16TiB", (1ull << 32) - DT_SLOT_ALIGN, 10000 },
	};
	static const struct scale_frac fracs[] = {
		{ "0.01pct", 100 },   { "0.1pct", 1000 },    { "1pct", 10000 },
		{ "10pct", 100000 },  { "50pct", 500000 },   { "100pct", 1000000 },
	};
	double worst = 0, worst_excess = 0;
	const char *worst_at = "", *worst_frac = "";

	printf("scaling table (bitmap mode, 1 VM, 1 s epochs; floor = bitmap scan at the "
	       "measured memory bandwidth, per dirty page)\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t j = 0; j < sizeof(fracs) / sizeof(fracs[0]); j++) {
			struct scale_cell c;
			char cell[64];
			int reps = sizes[i].pages >= (1ull << 28) ? 1 : 3;

			snprintf(cell, sizeof(cell), "%s_%s", sizes[i].name, fracs[j].name);
			if (only && strcmp(only, cell))
				continue;
			if (fracs[j].ppm > sizes[i].max_ppm) {
				printf("scaling_%s_%s: not run (the retained set would not fit in "
				       "this machine's memory)\n",
				       sizes[i].name, fracs[j].name);
				continue;
			}
			bench_scale_cell(&sizes[i], &fracs[j], reps, 0, &c);
			printf("scaling_%s_%s: consume %.3f ms, close %.3f ms, %.2f ns/dirty page "
			       "(floor %.2f), %.1f B retained/dirty page, %llu pages "
			       "(%.3f x of memory bandwidth)\n",
			       sizes[i].name, fracs[j].name, c.consume_ms, c.close_ms, c.ns_per_page,
			       c.floor_ns, c.bytes_per_page, (unsigned long long)c.pages,
			       c.floor_ns / c.ns_per_page);
			if (c.ns_per_page > worst) {
				worst = c.ns_per_page;
				worst_at = sizes[i].name;
				worst_frac = fracs[j].name;
			}
			if (c.ns_per_page - c.floor_ns > worst_excess)
				worst_excess = c.ns_per_page - c.floor_ns;
		}
	}
	printf("scaling_worst_ns_per_dirty_page: %.2f ns at %s %s [target <= 10: %s]; "
	       "worst beyond the bandwidth floor: %.2f ns\n",
	       worst, worst_at, worst_frac, worst <= 10 ? "met" : "MISSED", worst_excess);
}

/*
 * The split close the daemon runs (one step of DT_STATS_CLOSE_BUDGET per
 * loop turn) on the heaviest cells, beside the whole close in the same
 * run: the longest step is how long a close holds the event loop.
 */
static void bench_close_steps(void)
{
	static const struct scale_size sz[] = { { "64GiB", 1ull << 24, 1000000 },
						{ "1TiB", 1ull << 28, 1000000 } };
	static const struct scale_frac fr[] = { { "10pct", 100000 }, { "50pct", 500000 },
						{ "100pct", 1000000 } };

	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++)
		for (size_t j = 0; j < sizeof(fr) / sizeof(fr[0]); j++) {
			struct scale_cell whole, split;

			bench_scale_cell(&sz[i], &fr[j], 1, 0, &whole);
			bench_scale_cell(&sz[i], &fr[j], 1, DT_STATS_CLOSE_BUDGET, &split);
			printf("close_steps_%s_%s: whole close %.1f ms; split (budget %u): %llu "
			       "steps, longest %.2f ms CPU (%.4f x the whole close), total %.1f ms\n",
			       sz[i].name, fr[j].name, whole.close_ms, DT_STATS_CLOSE_BUDGET,
			       (unsigned long long)split.steps, split.step_max_ms,
			       split.step_max_ms / whole.close_ms, split.close_ms);
		}
}

/*
 * What one loop turn holds for a young VM (its index empty, so the close
 * grows the last-dirty hash from nothing): the bitmap consumed whole and
 * in the daemon's steps, then the first epoch closed in steps; CPU time.
 */
static void bench_young_steps(void)
{
	static const struct scale_size sz[] = { { "64GiB", 1ull << 24, 1000000 },
						{ "1TiB", 1ull << 28, 1000000 } };
	static const struct scale_frac fr[] = { { "10pct", 100000 }, { "50pct", 500000 } };

	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++)
		for (size_t j = 0; j < sizeof(fr) / sizeof(fr[0]); j++) {
			struct dt_slot_table slots = { 0 };
			struct dt_stats *s = mk_stats(1);
			char reason[DT_REASON_LEN] = "";
			uint64_t whole, longest = 0, nsteps = 0, step, csteps, t0;
			struct dt_bitmap *b;
			int fd, r;

			r = dt_slots_add(&slots, 0, 1ull << 32, sz[i].pages, PAGE_SHIFT, 512, UINT64_MAX);
			if (r < 0)
				die("dt_slots_add", -r);
			fd = sealed_memfd("bitmap", dt_bitmap_bytes(sz[i].pages),
					  F_SEAL_SHRINK | F_SEAL_GROW);
			if (dt_bitmap_map(fd, 0, dt_slots_find(&slots, 0), &b, reason) < 0) {
				fprintf(stderr, "bench_harvest: dt_bitmap_map: %s\n", reason);
				exit(1);
			}
			/* The whole pass (one loop turn before the split), into a stats thrown away. */
			struct dt_stats *scratch = mk_stats(1);
			fill_fraction(b->words, b->nwords, sz[i].pages, fr[j].ppm);
			evict_caches();
			t0 = cpu_ns();
			dt_bitmap_consume(b, scratch);
			whole = cpu_ns() - t0;
			dt_stats_free(scratch);
			fill_fraction(b->words, b->nwords, sz[i].pages, fr[j].ppm);
			evict_caches();
#ifdef DT_COLLECTOR_CONSUME_STEP_WORDS
			for (uint64_t w = 0; w < b->nwords; w += DT_COLLECTOR_CONSUME_STEP_WORDS) {
				t0 = cpu_ns();
				dt_bitmap_consume_range(b, w, w + DT_COLLECTOR_CONSUME_STEP_WORDS, s);
				longest = DT_MAX(longest, cpu_ns() - t0);
				nsteps++;
			}
#else
			dt_bitmap_consume(b, s);
#endif
			close_timed(s, 0, DT_STATS_CLOSE_BUDGET, &step, &csteps);
			/* A plan's (or a reference-link gauge's) gather: the layout by window, on the loop. */
			static const uint32_t lw[] = { 1 };
			uint64_t bounds[64 + 1], parts[64];
			t0 = cpu_ns();
			r = dt_stats_layout(s, lw, 1, sz[i].pages, 64, bounds, parts);
			uint64_t layout = cpu_ns() - t0;
			if (r < 0)
				die("dt_stats_layout", -r);
			printf("young_steps_%s_%s: consume whole %.2f ms, in %llu steps longest %.2f "
			       "ms; first close in %llu steps, longest %.2f ms CPU; layout %.1f ms\n",
			       sz[i].name, fr[j].name, (double)whole / 1e6,
			       (unsigned long long)nsteps, (double)longest / 1e6,
			       (unsigned long long)csteps, (double)step / 1e6, (double)layout / 1e6);
			dt_bitmap_unmap(b);
			close(fd);
			dt_slots_free(&slots);
			dt_stats_free(s);
		}
}

/* ---- references: what the collector loops cost without the stats core ---- */

/*
 * The ring walk of dt_ring_harvest (acquire load, field loads, slot range
 * check, RESET store-release) with the page summed instead of inserted: the
 * gap to ring_harvest_* is the insertion into the epoch set.
 */
static uint64_t ring_walk_only(struct dt_ring *r, uint64_t slot_pages)
{
	const uint32_t mask = r->size - 1;
	uint64_t acc = 0;
	uint32_t n;

	for (n = 0; n < r->size; n++) {
		struct dt_ring_entry *e = &r->entries[(r->fetch + n) & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if ((flags & (DT_RING_DIRTY | DT_RING_RESET)) != DT_RING_DIRTY)
			break;
		uint32_t slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
		uint64_t offset = __atomic_load_n(&e->offset, __ATOMIC_RELAXED);
		if (slot == 0 && offset < slot_pages)
			acc += offset;
		__atomic_store_n(&e->flags, DT_RING_RESET, __ATOMIC_RELEASE);
	}
	r->fetch += n;
	sink += acc;
	return n;
}

static void bench_ring_reference(uint32_t *off)
{
	struct dt_stats *s = mk_stats(1);
	struct dt_collector c;
	int fds[1];
	double best = 0;

	setup_collector(&c, s, 1, fds);
	for (int e = 0; e < 3; e++) {
		uint64_t t = 0, n = 0;

		make_offsets(off, EPOCH_ENTRIES, RANDOM_1M);
		for (uint32_t done = 0; done < EPOCH_ENTRIES; done += RING_ENTRIES) {
			for (uint32_t i = 0; i < RING_ENTRIES; i++)
				ring_publish(&c.rings[0]->entries[i], 0, off[done + i]);
			uint64_t t0 = now_ns();
			n += ring_walk_only(c.rings[0], SLOT_PAGES);
			t += now_ns() - t0;
		}
		double rate = (double)n * 1e9 / (double)t;
		if (rate > best)
			best = rate;
	}
	printf("reference_ring_walk_without_insertion_1vcpu: %.1f Mentries/s/core "
	       "(%.3f x of memory bandwidth)\n",
	       best / 1e6, best * 16 / mem_bw);
	teardown_collector(&c, fds, 1);
	dt_stats_free(s);
}

int main(int argc, char **argv)
{
	bool only_scaling = argc > 1 && !strcmp(argv[1], "--scaling");
	static const enum pattern patterns[] = { RANDOM_1M, RANDOM_16M, SEQUENTIAL };
	uint32_t *off = malloc(EPOCH_ENTRIES * sizeof(*off));

	if (!off)
		die("offsets", ENOMEM);
	setvbuf(stdout, NULL, _IOLBF, 0);
	measure_bandwidth();
	if (argc > 1 && !strcmp(argv[1], "--young-steps")) {
		bench_young_steps();
		free(off);
		free(bw_buf);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--close-steps")) {
		bench_close_steps();
		free(off);
		free(bw_buf);
		return 0;
	}
	if (only_scaling) {
		bench_scaling(argc > 2 ? argv[2] : NULL);
		free(off);
		free(bw_buf);
		return 0;
	}

	if (argc > 1 && !strcmp(argv[1], "--bitmap"))
		goto bitmaps;
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		bench_ring(patterns[i], 1, off);
		bench_ring(patterns[i], 8, off);
	}
	bench_ring_concurrent(off);
	bench_ring_reference(off);
	if (argc > 1 && !strcmp(argv[1], "--ring")) {
		free(off);
		free(bw_buf);
		return 0;
	}

bitmaps:
	bench_bitmap(1ull << 40, "1TiB", EMPTY, 5, NULL, NULL);
	bench_bitmap(1ull << 40, "1TiB", HOLES, 5, NULL, NULL);
	bench_bitmap(1ull << 40, "1TiB", ONE_PER_4096_WORDS, 5, NULL, NULL);
	bench_bitmap(1ull << 40, "1TiB", PERMILLE, 5, NULL, NULL);
	bench_bitmap(64ull << 30, "64GiB", HALF, 3, NULL, NULL);
	bench_bitmap(64ull << 30, "64GiB", FULL, 3, NULL, NULL);
	bench_bitmap(1ull << 40, "1TiB", HALF, 2, NULL, NULL);
	bench_bitmap(1ull << 40, "1TiB", FULL, 2, NULL, NULL);
	bench_bitmap(1ull << 40, "1TiB", EMPTY, 5, bitmap_xchg_only, "xchg_per_word");
	bench_bitmap(1ull << 40, "1TiB", EMPTY, 5, bitmap_xchg_line_or, "xchg_line_or");
	bench_bitmap(1ull << 40, "1TiB", PERMILLE, 5, bitmap_xchg_only, "xchg_per_word");
	bench_bitmap(1ull << 40, "1TiB", PERMILLE, 5, bitmap_xchg_line_or, "xchg_line_or");
	if (argc > 1 && !strcmp(argv[1], "--bitmap")) {
		free(off);
		free(bw_buf);
		return 0;
	}
	bench_scaling(NULL);
	bench_close_steps();
	free(off);
	free(bw_buf);
	return 0;
}
