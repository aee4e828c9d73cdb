/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Saving and loading statistics: exact round trips of randomized histories
 * (every figure, and the figures after more epochs on both copies), the
 * journal (replay, skip, torn tail), truncated and corrupted files.
 * DT_PERSIST_BENCH=1 also times a VM with 1M dirty pages per epoch.
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "dt_stats.h"
#include "dt_test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

#define NVCPUS 3
#define SPACE  6000u

static struct dt_stats_config config(uint32_t horizon, uint32_t recent, uint32_t coarse)
{
	static const uint32_t w[] = {1, 2, 3, 5, 8, 13, 30, 60, 100};
	struct dt_stats_config cfg = {
	    .horizon_epochs = horizon,
	    .recent_epochs = recent,
	    .coarse_epochs = coarse,
	    .region_pages = 64,
	};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]) && w[i] <= horizon; i++)
		cfg.windows[cfg.nwindows++] = w[i];
	return cfg;
}

/* One random epoch on one or two copies (the same pages on each); a's handed back with ret. */
static void epoch_ex(struct dt_stats *a, struct dt_stats *b, uint64_t us,
		     struct dt_closed_epoch **ret)
{
	uint32_t n = (uint32_t)(rnd() % 4 == 0 ? 0 : rnd() % 400);
	uint32_t hot = (uint32_t)(rnd() % SPACE);

	for (uint32_t i = 0; i < n; i++) {
		uint32_t page =
		    rnd() % 3 ? (hot + (uint32_t)(rnd() % 300)) % SPACE : (uint32_t)(rnd() % SPACE);
		uint32_t kind = (uint32_t)(rnd() % 4);
		uint32_t vcpu = (uint32_t)(rnd() % (NVCPUS + 1)); /* NVCPUS: none */
		uint64_t bits = rnd() & rnd();

		for (struct dt_stats *s = a; s; s = s == a ? b : NULL) {
			if (kind == 0)
				dt_stats_add_word(s, page & ~63u, bits);
			else if (vcpu < NVCPUS)
				dt_stats_add_vcpu(s, vcpu, page);
			else
				dt_stats_add(s, page);
		}
	}
	CHECK_EQ(dt_stats_close_epoch(a, us, ret), 0);
	if (b)
		CHECK_EQ(dt_stats_close_epoch(b, us, NULL), 0);
}

static void epoch(struct dt_stats *a, struct dt_stats *b, uint64_t us)
{
	epoch_ex(a, b, us, NULL);
}

/* The frame of a closed epoch, appended to j; its length. */
static size_t frame_to(struct dt_closed_epoch *ce, FILE *j)
{
	struct dt_buf fb = {0};
	size_t len;

	CHECK(ce != NULL);
	CHECK_EQ(dt_persist_frame(ce, &fb), 0);
	len = fb.len;
	if (j)
		fwrite(fb.p, 1, fb.len, j);
	dt_buf_done(&fb);
	dt_closed_epoch_free(ce);
	return len;
}

struct runs {
	uint32_t a[8192];
	size_t n;
};

static int collect(uint32_t first, uint32_t count, void *ud)
{
	struct runs *r = ud;

	if (r->n + 2 > sizeof(r->a) / sizeof(r->a[0]))
		return -ENOSPC;
	r->a[r->n++] = first;
	r->a[r->n++] = count;
	return 0;
}

static int same(const struct dt_stats *a, const struct dt_stats *b)
{
	const struct dt_stats_config *cfg = dt_stats_config(a);
	uint32_t h = cfg->horizon_epochs;
	static struct dt_epoch_record ra[4096], rb[4096];
	static struct dt_heat ha[512], hb[512];
	static struct runs pa, pb;
	int before = dt_test_failures;
	uint64_t ca[DT_STATS_MAX_WINDOWS], cb[DT_STATS_MAX_WINDOWS];
	size_t na, nb;

	CHECK_EQ(dt_stats_epochs(a), dt_stats_epochs(b));
	CHECK_EQ(dt_stats_total_entries(a), dt_stats_total_entries(b));
	CHECK_EQ(dt_stats_total_pages(a), dt_stats_total_pages(b));
	for (uint32_t w = 0; w <= h + 2; w++) {
		CHECK_EQ(dt_stats_wss(a, w), dt_stats_wss(b, w));
		for (uint32_t v = 0; v <= NVCPUS; v++)
			CHECK_EQ(dt_stats_vcpu_wss(a, v, w), dt_stats_vcpu_wss(b, v, w));
	}
	for (uint32_t i = 0; i < cfg->nwindows; i++)
		CHECK_EQ(dt_stats_wss(a, cfg->windows[i]), dt_stats_wss(b, cfg->windows[i]));
	for (uint32_t v = 0; v <= NVCPUS; v++)
		CHECK_EQ(dt_stats_vcpu_entries(a, v), dt_stats_vcpu_entries(b, v));
	for (int k = 0; k < 8; k++) {
		uint32_t lo = (uint32_t)(rnd() % SPACE), hi = lo + (uint32_t)(rnd() % SPACE);
		uint32_t w = (uint32_t)(rnd() % (h + 2));

		CHECK_EQ(dt_stats_wss_range(a, w, lo, hi), dt_stats_wss_range(b, w, lo, hi));
		dt_stats_wss_range_curve(a, lo, hi, ca);
		dt_stats_wss_range_curve(b, lo, hi, cb);
		for (uint32_t i = 0; i < cfg->nwindows; i++)
			CHECK_EQ(ca[i], cb[i]);
	}
	na = dt_stats_history(a, 0, ra, 4096);
	nb = dt_stats_history(b, 0, rb, 4096);
	CHECK_EQ(na, nb);
	CHECK(na == nb && memcmp(ra, rb, na * sizeof(ra[0])) == 0);
	for (uint32_t w = 1; w <= h + 1; w += 1 + w / 4) {
		int x = dt_stats_heatmap(a, w, ha, 512), y = dt_stats_heatmap(b, w, hb, 512);

		CHECK_EQ(x, y);
		CHECK(x == y && x >= 0 && memcmp(ha, hb, (size_t)x * sizeof(ha[0])) == 0);
	}
	for (uint64_t e = dt_stats_epochs(a) > h + 2 ? dt_stats_epochs(a) - h - 2 : 0;
	     e <= dt_stats_epochs(a); e++) {
		pa.n = pb.n = 0;
		CHECK_EQ(dt_stats_epoch_pages(a, e, collect, &pa),
			 dt_stats_epoch_pages(b, e, collect, &pb));
		CHECK(pa.n == pb.n && memcmp(pa.a, pb.a, pa.n * sizeof(pa.a[0])) == 0);
	}
	return dt_test_failures == before;
}

static char *save(const struct dt_stats *s, size_t *len)
{
	struct dt_buf b = {0};

	CHECK_EQ(dt_stats_save(s, &b), 0);
	*len = b.len;
	return (char *)b.p;
}

static int load(const char *buf, size_t len, const struct dt_stats_config *cfg, uint32_t nvcpus,
		struct dt_stats **ret)
{
	return dt_stats_load(buf, len, NULL, cfg, nvcpus, ret);
}

static void test_round_trip(void)
{
	static const uint32_t shapes[][3] = {
	    {50, 8, 5}, {30, 0, 4}, {100, 64, 60}, {7, 7, 3}, {1, 1, 1},
	};

	for (int round = 0; round < 40; round++) {
		const uint32_t *sh = shapes[round % 5];
		struct dt_stats_config cfg = config(sh[0], sh[1], sh[2]);
		struct dt_stats *a, *b = NULL;
		uint32_t n = (uint32_t)(rnd() % 260);
		size_t len;
		char *buf;

		CHECK_EQ(dt_stats_new(&cfg, NVCPUS, &a), 0);
		for (uint32_t e = 0; e < n; e++)
			epoch(a, NULL, 1000 + e);
		buf = save(a, &len);
		/* Sealed later (on the state writer's thread): the same bytes. */
		struct dt_buf u = {0};
		CHECK_EQ(dt_stats_save_unsealed(a, &u), 0);
		CHECK_EQ(u.len, len);
		CHECK_EQ(dt_persist_seal(u.p, u.len), 0);
		CHECK(u.len == len && memcmp(u.p, buf, len) == 0);
		dt_buf_done(&u);
		CHECK_EQ(load(buf, len, &cfg, NVCPUS, &b), 0);
		if (!b) {
			free(buf);
			dt_stats_free(a);
			continue;
		}
		if (!same(a, b))
			fprintf(stderr,
				"  round %d: horizon %u, %u epochs: loaded figures differ\n", round,
				sh[0], n);
		/* The loaded copy goes on exactly as the original. */
		for (uint32_t e = 0; e < 1 + rnd() % 120; e++)
			epoch(a, b, 5000 + e);
		if (!same(a, b))
			fprintf(stderr, "  round %d: figures differ after more epochs\n", round);
		dt_stats_free(b);
		/* Another configuration or vCPU count: a sound file, not ours. */
		cfg.region_pages++;
		CHECK_EQ(load(buf, len, &cfg, NVCPUS, &b), -ESTALE);
		cfg.region_pages--;
		CHECK_EQ(load(buf, len, &cfg, NVCPUS + 1, &b), -ESTALE);
		free(buf);
		dt_stats_free(a);
	}
}

static void test_journal(void)
{
	struct dt_stats_config cfg = config(40, 6, 5);
	struct dt_stats *a, *b = NULL, *c = NULL;
	char *snap = NULL, *jbuf = NULL;
	size_t snaplen = 0, jlen = 0, last_len = 0;
	uint64_t applied = 0;
	FILE *j;

	CHECK_EQ(dt_stats_new(&cfg, NVCPUS, &a), 0);
	j = open_memstream(&jbuf, &jlen);
	for (uint32_t e = 0; e < 90; e++) {
		struct dt_closed_epoch *ce = NULL;

		if (e == 60)
			snap = save(a, &snaplen);
		epoch_ex(a, NULL, 100 + e, &ce);
		/* The journal holds epochs from before the snapshot too: skipped. */
		last_len = frame_to(ce, e >= 50 ? j : NULL);
	}
	fclose(j);

	CHECK_EQ(load(snap, snaplen, &cfg, NVCPUS, &b), 0);
	CHECK_EQ(dt_stats_journal_replay(jbuf, jlen, b, &applied), 0);
	CHECK_EQ(applied, 30);
	CHECK(same(a, b));

	/* A torn last frame (a crash during the write): every epoch but the last. */
	CHECK_EQ(load(snap, snaplen, &cfg, NVCPUS, &c), 0);
	CHECK_EQ(dt_stats_journal_replay(jbuf, jlen - last_len / 2, c, &applied), -EBADMSG);
	CHECK_EQ(applied, 29);
	CHECK_EQ(dt_stats_epochs(c), 89);

	/* Replayed copies go on as the original. */
	for (uint32_t e = 0; e < 20; e++)
		epoch(a, b, 900 + e);
	CHECK(same(a, b));
	dt_stats_free(a);
	dt_stats_free(b);
	dt_stats_free(c);

	/* Bit flips in the journal: replay stops, never crashes. */
	for (int k = 0; k < 300; k++) {
		char *copy = malloc(jlen);
		size_t bit = rnd() % (jlen * 8);

		memcpy(copy, jbuf, jlen);
		copy[bit / 8] ^= (char)(1 << (bit % 8));
		CHECK_EQ(load(snap, snaplen, &cfg, NVCPUS, &c), 0);
		CHECK_EQ(dt_stats_journal_replay(copy, jlen, c, &applied), -EBADMSG);
		CHECK(applied < 30);
		dt_stats_free(c);
		free(copy);
	}
	free(snap);
	free(jbuf);
}

static void test_corrupt(void)
{
	struct dt_stats_config cfg = config(12, 4, 3);
	struct dt_stats *a, *b;
	size_t len;
	char *buf, *copy;

	CHECK_EQ(dt_stats_new(&cfg, NVCPUS, &a), 0);
	for (uint32_t e = 0; e < 20; e++)
		epoch(a, NULL, e);
	buf = save(a, &len);
	fprintf(stderr, "  small file: %zu bytes, every truncation\n", len);
	for (size_t l = 0; l < len; l++) {
		b = NULL;
		CHECK_EQ(load(buf, l, &cfg, NVCPUS, &b), -EBADMSG);
		CHECK(b == NULL);
	}
	copy = malloc(len);
	for (int k = 0; k < 3000; k++) {
		size_t bit = rnd() % (len * 8);
		int flips = 1 + (int)(rnd() % 3);

		memcpy(copy, buf, len);
		for (int i = 0; i < flips; i++) {
			copy[bit / 8] ^= (char)(1 << (bit % 8));
			bit = rnd() % (len * 8);
		}
		b = NULL;
		CHECK_EQ(load(copy, len, &cfg, NVCPUS, &b), -EBADMSG);
		dt_stats_free(b);
	}
	/* Random bytes after a sound head: checked, not trusted. */
	for (int k = 0; k < 500; k++) {
		memcpy(copy, buf, len);
		for (size_t i = 128 + rnd() % (len - 128); i < len; i++)
			copy[i] = (char)rnd();
		b = NULL;
		CHECK_EQ(load(copy, len, &cfg, NVCPUS, &b), -EBADMSG);
		dt_stats_free(b);
	}
	free(copy);
	free(buf);
	dt_stats_free(a);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* 1M random pages of a 4M-page VM per epoch, through 4 vCPU rings. */
static void bench(void)
{
	struct dt_stats_config cfg = config(3600, 64, 60);
	struct dt_stats *a, *b = NULL;
	uint64_t t, tclose = 0, tclosed = 0, tenc = 0, jbytes = 0, tsync = 0;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const int epochs = 10;
	char jpath[4096];
	int fd;
	size_t len, flen;
	char *buf;

	snprintf(jpath, sizeof(jpath), "%s/dt-bench-journal.XXXXXX", dir);
	fd = mkstemp(jpath);
	CHECK(fd >= 0);
	CHECK_EQ(dt_stats_new(&cfg, 4, &a), 0);
	for (int e = 0; e < epochs; e++) {
		for (uint32_t i = 0; i < 1000000; i++)
			dt_stats_add_vcpu(a, i & 3, (uint32_t)(rnd() % (4u << 20)));
		struct dt_closed_epoch *ce = NULL;
		struct dt_buf fb = {0};

		t = now_ns();
		CHECK_EQ(dt_stats_close_epoch(a, (uint64_t)e, e % 2 ? &ce : NULL), 0);
		t = now_ns() - t;
		if (e % 2) {
			tclosed += t;
			t = now_ns();
			CHECK_EQ(dt_persist_frame(ce, &fb), 0);
			tenc += now_ns() - t;
			flen = fb.len;
			jbytes += flen;
			t = now_ns();
			CHECK_EQ(write(fd, fb.p, flen), (ssize_t)flen);
			CHECK_EQ(fdatasync(fd), 0);
			tsync += now_ns() - t;
			dt_buf_done(&fb);
			dt_closed_epoch_free(ce);
		} else {
			tclose += t;
		}
	}
	fprintf(stderr,
		"  bench: close %.1f ms/epoch, handing the epoch back %.1f ms; frame encoding "
		"(writer thread) %.1f ms, frame %.1f MB\n",
		tclose / 1e6 / (epochs / 2), tclosed / 1e6 / (epochs / 2), tenc / 1e6 / (epochs / 2),
		jbytes / 1e6 / (epochs / 2));
	fprintf(stderr, "  bench: journal write + fdatasync in %s: %.1f ms/epoch\n", dir,
		tsync / 1e6 / (epochs / 2));
	close(fd);
	unlink(jpath);
	t = now_ns();
	buf = save(a, &len);
	fprintf(stderr, "  bench: save %.1f ms, %.1f MB (%u epochs of ~1M pages)\n",
		(now_ns() - t) / 1e6, len / 1e6, epochs);
	/* Decoding only (the daemon reads the file first): the least CPU time of 5 loads. */
	uint64_t best = UINT64_MAX;
	for (int k = 0; k < 5; k++) {
		struct timespec c0, c1;

		dt_stats_free(b);
		b = NULL;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
		CHECK_EQ(load(buf, len, &cfg, 4, &b), 0);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
		t = (uint64_t)(c1.tv_sec - c0.tv_sec) * 1000000000u + (uint64_t)c1.tv_nsec - (uint64_t)c0.tv_nsec;
		best = t < best ? t : best;
	}
	fprintf(stderr, "  bench: load %.1f ms CPU (least of 5)\n", best / 1e6);
	CHECK_EQ(dt_stats_wss(a, 3600), dt_stats_wss(b, 3600));
	free(buf);
	dt_stats_free(a);
	dt_stats_free(b);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_journal);
	RUN(test_corrupt);
	if (getenv("DT_PERSIST_BENCH"))
		RUN(bench);
	TEST_EXIT();
}
