/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ring and bitmap collectors against memfds laid out as KVM lays them out:
 * empty, full and wrapping rings are harvested exactly; invalid entries are
 * counted and dropped; unsuitable fds are refused with a reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dt_collector.h"
#include "dt_stats_int.h"
#include "dt_test.h"

static int sealed_memfd(size_t size, int seals)
{
	int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		abort();
	if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)
		abort();
	return fd;
}

static struct dt_stats *new_stats(uint32_t nvcpus)
{
	struct dt_stats_config sc = { .horizon_epochs = 100, .recent_epochs = 8,
				      .coarse_epochs = 4, .region_pages = 512, .nwindows = 2,
				      .windows = { 1, 100 } };
	struct dt_stats *s;

	if (dt_stats_new(&sc, nvcpus, &s) < 0)
		abort();
	return s;
}

struct fixture {
	struct dt_collector c;
	struct dt_stats *stats;
	struct dt_ring_entry *ring; /* the producer's view */
	uint32_t entries;
	uint32_t push; /* producer index */
	int fd;
};

static void fixture_init(struct fixture *f, uint32_t entries, uint32_t fetch)
{
	char reason[DT_REASON_LEN];
	struct dt_msg_add_ring m = { .vcpu = 1, .entries = entries, .fetch_index = fetch };

	f->stats = new_stats(2);
	CHECK(dt_collector_init(&f->c, DT_MODE_RING, 2, f->stats) == 0);
	CHECK(dt_slots_add(&f->c.slots, 0, 0, 1000, 12, 8, 1 << 20) == 0);
	CHECK(dt_slots_add(&f->c.slots, (1u << 16) | 3, 1ull << 32, 100, 12, 8, 1 << 20) == 0);
	f->entries = entries;
	f->push = fetch;
	f->fd = sealed_memfd(entries * 16, F_SEAL_SHRINK | F_SEAL_GROW);
	f->ring = mmap(NULL, entries * 16, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	CHECK(f->ring != MAP_FAILED);
	CHECK(f->c.ops->add_ring(&f->c, f->fd, &m, reason) == 0);
}

static void fixture_done(struct fixture *f)
{
	munmap(f->ring, f->entries * 16);
	close(f->fd);
	dt_collector_done(&f->c);
	dt_stats_free(f->stats);
}

static void push(struct fixture *f, uint32_t slot, uint64_t offset)
{
	struct dt_ring_entry *e = &f->ring[f->push++ & (f->entries - 1)];

	CHECK(e->flags == 0); /* KVM never pushes onto an un-reset entry */
	e->slot = slot;
	e->offset = offset;
	__atomic_store_n(&e->flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
}

/* What KVM_RESET_DIRTY_RINGS does. */
static uint32_t reset(struct fixture *f, uint32_t *reset_index)
{
	uint32_t n = 0;

	while (n < f->entries) {
		struct dt_ring_entry *e = &f->ring[*reset_index & (f->entries - 1)];
		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DT_RING_RESET))
			break;
		e->flags = 0;
		(*reset_index)++;
		n++;
	}
	return n;
}

static void test_ring_empty(void)
{
	struct fixture f;

	fixture_init(&f, 64, 0);
	CHECK_EQ(f.c.ops->harvest(&f.c), 0);
	CHECK_EQ(f.c.ring_entries, 0);
	fixture_done(&f);
}

static void test_ring_full_and_wrap(void)
{
	struct fixture f;
	uint32_t reset_index = 40;

	/* Start near the end so the full ring wraps. */
	fixture_init(&f, 64, 40);
	for (uint32_t i = 0; i < 64; i++)
		push(&f, 0, i * 7 % 1000);
	CHECK_EQ(f.c.ops->harvest(&f.c), 64);
	CHECK_EQ(f.c.ring_entries, 64);
	for (uint32_t i = 0; i < 64; i++)
		CHECK_EQ(f.ring[i].flags, DT_RING_RESET);
	/* Nothing more until the producer publishes again. */
	CHECK_EQ(f.c.ops->harvest(&f.c), 0);
	CHECK_EQ(reset(&f, &reset_index), 64);
	push(&f, 0, 999);
	CHECK_EQ(f.c.ops->harvest(&f.c), 1);
	CHECK(dt_stats_close_epoch(f.stats, 1, NULL) == 0);
	CHECK_EQ(dt_stats_wss(f.stats, 1), 65); /* 64 distinct multiples of 7, plus 999 */
	CHECK_EQ(dt_stats_vcpu_entries(f.stats, 1), 65);
	CHECK_EQ(dt_stats_vcpu_entries(f.stats, 0), 0);
	fixture_done(&f);
}

static void test_ring_partial_publish(void)
{
	struct fixture f;

	fixture_init(&f, 64, 0);
	push(&f, 0, 1);
	push(&f, 0, 2);
	/* An entry whose slot/offset were written but flags not yet set. */
	f.ring[2].slot = 0;
	f.ring[2].offset = 3;
	CHECK_EQ(f.c.ops->harvest(&f.c), 2);
	CHECK_EQ(f.ring[2].flags, 0);
	fixture_done(&f);
}

static void test_ring_invalid_entries(void)
{
	struct fixture f;
	uint32_t s1 = (1u << 16) | 3;

	fixture_init(&f, 64, 0);
	push(&f, 0, 999); /* valid: last page of slot 0 */
	push(&f, 0, 1000); /* offset out of range */
	push(&f, 7, 0); /* unknown slot */
	push(&f, s1, 99); /* valid: last page of slot 1 */
	push(&f, s1, 100); /* out of range */
	push(&f, 3, 0); /* same id, wrong address space */
	push(&f, 0, UINT64_MAX);
	CHECK_EQ(f.c.ops->harvest(&f.c), 7);
	CHECK_EQ(f.c.ring_entries, 2);
	CHECK_EQ(f.c.invalid_entries, 5);
	CHECK(dt_stats_close_epoch(f.stats, 1, NULL) == 0);
	CHECK_EQ(dt_stats_wss(f.stats, 1), 2);
	/* Invalid ones are still handed back, or the VMM's ring would stall. */
	for (int i = 0; i < 7; i++)
		CHECK_EQ(f.ring[i].flags, DT_RING_RESET);
	/* A removed slot's entries become invalid. */
	CHECK(dt_collector_remove_slot(&f.c, s1) == 0);
	push(&f, s1, 5);
	CHECK_EQ(f.c.ops->harvest(&f.c), 1);
	CHECK_EQ(f.c.invalid_entries, 6);
	fixture_done(&f);
}

/* A VMM that passed a stale fetch index: a RING_FULL finds our place again. */
static void test_ring_resync(void)
{
	struct fixture f;
	uint32_t reset_index = 10;

	fixture_init(&f, 128, 0);
	/* The producer really is at 10: entries 10.. are published. */
	f.push = 10;
	for (uint32_t i = 0; i < 100; i++)
		push(&f, 0, i);
	CHECK_EQ(f.c.ops->harvest(&f.c), 0); /* stuck at entry 0, never published */
	CHECK_EQ(dt_collector_harvest_vcpu(&f.c, 1), 100);
	CHECK_EQ(f.c.ring_resyncs, 1);
	CHECK_EQ(reset(&f, &reset_index), 100);
	push(&f, 0, 200);
	CHECK_EQ(f.c.ops->harvest(&f.c), 1); /* and stays in step */
	/* In step, with nothing new: no resync. */
	CHECK_EQ(dt_collector_harvest_vcpu(&f.c, 1), 0);
	CHECK_EQ(f.c.ring_resyncs, 1);
	CHECK_EQ(dt_stats_close_epoch(f.stats, 1, NULL), 0);
	CHECK_EQ(dt_stats_wss(f.stats, 1), 101);
	fixture_done(&f);
}

/*
 * A stale fetch index inside the run the producer published (a reattach
 * that passed an index ahead of the VMM's reset index): the first
 * RING_FULL must harvest every entry, let the VMM's reset free them all,
 * and leave the daemon's index at the producer's, so the ring is in step.
 */
static void test_ring_resync_inside_run(void)
{
	struct fixture f;
	uint32_t reset_index = 10;

	fixture_init(&f, 128, 50); /* the daemon believes 50 */
	f.push = 10; /* the producer really is at 10 */
	for (uint32_t i = 0; i < 100; i++)
		push(&f, 0, i);
	/* The epoch tick harvests from 50 only: 50..109. */
	CHECK_EQ(f.c.ops->harvest(&f.c), 60);
	/* RING_FULL (10..109 still occupy the ring): everything else, at once. */
	CHECK_EQ(dt_collector_harvest_vcpu(&f.c, 1), 40);
	CHECK_EQ(f.c.ring_resyncs, 1);
	CHECK_EQ(reset(&f, &reset_index), 100); /* the VMM's reset frees the whole run */
	CHECK_EQ(reset_index, 110);
	push(&f, 0, 200);
	CHECK_EQ(f.c.ops->harvest(&f.c), 1); /* in step: the next entry is read at once */
	CHECK_EQ(dt_collector_harvest_vcpu(&f.c, 1), 0);
	CHECK_EQ(f.c.ring_resyncs, 1);
	CHECK_EQ(dt_stats_close_epoch(f.stats, 1, NULL), 0);
	CHECK_EQ(dt_stats_wss(f.stats, 1), 101);
	fixture_done(&f);
}

static void test_ring_refusals(void)
{
	struct dt_collector c;
	struct dt_stats *s = new_stats(1);
	char reason[DT_REASON_LEN];
	struct dt_msg_add_ring m = { .vcpu = 0, .entries = 64 };
	int fd;

	CHECK(dt_collector_init(&c, DT_MODE_RING, 1, s) == 0);
	fd = sealed_memfd(4096, 0);
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EPERM);
	CHECK(strstr(reason, "shrink") != NULL);
	close(fd);
	fd = sealed_memfd(512, F_SEAL_SHRINK);
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EINVAL);
	close(fd);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EPERM);
	close(fd);
	m.vcpu = 1;
	fd = sealed_memfd(4096, F_SEAL_SHRINK);
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EINVAL);
	m.vcpu = 0;
	/* offset + length wraps (uint64_t, or mmap's signed off_t): refused as such. */
	m.offset = 0xfffffffffffff000ull;
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EINVAL);
	CHECK(strstr(reason, "overflows") != NULL);
	m.offset = 0x8000000000000000ull;
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EINVAL);
	CHECK(strstr(reason, "overflows") != NULL);
	m.offset = 0;
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), 0);
	CHECK_EQ(c.ops->add_ring(&c, fd, &m, reason), -EEXIST);
	close(fd);
	CHECK(c.ops->add_bitmap == NULL);
	dt_collector_done(&c);
	dt_stats_free(s);
}

static void test_bitmap(void)
{
	struct dt_collector c;
	struct dt_stats *s = new_stats(1);
	char reason[DT_REASON_LEN];
	struct dt_msg_add_bitmap m = { .slot = 0 };
	uint64_t *w;
	int fd;

	CHECK(dt_collector_init(&c, DT_MODE_BITMAP, 1, s) == 0);
	CHECK(dt_slots_add(&c.slots, 0, 0, 130, 12, 8, 1 << 20) == 0); /* 3 words, 2 bits in the last */
	fd = sealed_memfd(4096, F_SEAL_SHRINK);
	CHECK_EQ(c.ops->add_bitmap(&c, fd, &m, reason), -EPERM);
	CHECK(strstr(reason, "grow") != NULL);
	close(fd);
	fd = sealed_memfd(16, F_SEAL_SHRINK | F_SEAL_GROW);
	CHECK_EQ(c.ops->add_bitmap(&c, fd, &m, reason), -EINVAL);
	close(fd);
	fd = sealed_memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW);
	m.offset = 0x8000000000000000ull; /* past mmap's signed off_t */
	CHECK_EQ(c.ops->add_bitmap(&c, fd, &m, reason), -EINVAL);
	CHECK(strstr(reason, "overflows") != NULL);
	m.offset = 0;
	close(fd);
	fd = sealed_memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW);
	CHECK_EQ(c.ops->add_bitmap(&c, fd, &m, reason), 0);
	w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	w[0] = 1ull << 63 | 1;
	w[2] = ~0ull; /* only pages 128 and 129 exist */
	CHECK_EQ(c.ops->consume(&c), 4);
	CHECK_EQ(w[0], 0);
	CHECK_EQ(w[2], 0);
	CHECK_EQ(c.ops->consume(&c), 0);
	CHECK(dt_stats_close_epoch(s, 1, NULL) == 0);
	CHECK_EQ(dt_stats_wss(s, 1), 4);
	CHECK_EQ(dt_stats_wss_range(s, 1, 128, 130), 2);
	munmap(w, 4096);
	close(fd);
	dt_collector_done(&c);
	dt_stats_free(s);
}

/*
 * A bitmap memfd that is only ftruncated: consuming it counts the bits of
 * the pages the producer wrote and allocates none of the holes (reading a
 * hole through a shared mapping would allocate it).
 */
static void test_bitmap_sparse(void)
{
	struct dt_collector c;
	struct dt_stats *s = new_stats(1);
	char reason[DT_REASON_LEN];
	struct dt_msg_add_bitmap m = { .slot = 0 };
	const uint64_t pages = 1 << 20, bytes = pages / 8;
	struct stat st;
	uint64_t *w;
	int fd;

	CHECK(dt_collector_init(&c, DT_MODE_BITMAP, 1, s) == 0);
	CHECK(dt_slots_add(&c.slots, 0, 0, pages, 12, 8, 1 << 20) == 0);
	fd = sealed_memfd(bytes, F_SEAL_SHRINK | F_SEAL_GROW);
	CHECK_EQ(c.ops->add_bitmap(&c, fd, &m, reason), 0);
	w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(w != MAP_FAILED);
	w[0] = 1;			/* page 0 of the memfd */
	w[17 * 512 + 3] = 3ull << 62;	/* page 17 */
	w[bytes / 8 - 1] = 1ull << 63;	/* the last page */
	CHECK_EQ(c.ops->consume(&c), 4);
	CHECK_EQ(c.ops->consume(&c), 0);
	CHECK(fstat(fd, &st) == 0);
	CHECK_EQ((uint64_t)st.st_blocks * 512, 3 * 4096);
	/* A fallocated page holds no data until written: skipped, then read. */
	CHECK(fallocate(fd, 0, 4096, 8192) == 0);
	CHECK_EQ(c.ops->consume(&c), 0);
	w[512 + 7] = 1;
	CHECK_EQ(c.ops->consume(&c), 1);
	CHECK(dt_stats_close_epoch(s, 1, NULL) == 0);
	CHECK_EQ(dt_stats_wss(s, 1), 5);
	CHECK_EQ(dt_stats_wss_range(s, 1, pages - 1, pages), 1);
	munmap(w, bytes);
	close(fd);
	dt_collector_done(&c);
	dt_stats_free(s);
}

/*
 * The bitmaps consumed in steps of random size, the producer setting bits
 * between steps: a bit set in a word the pass has not reached is in the
 * pass, one set behind it stays for the next, and the pass's pages are
 * exactly those (two bitmaps, the first with holes that stay holes).
 */
static void test_bitmap_steps(void)
{
	const uint64_t pages[2] = { 1 << 20, 4687 * 64 };
	uint64_t *w[2], bytes[2], rng = 0x9e3779b97f4a7c15ull, later = 0, ahead = 0;
	struct dt_closed_epoch *closed = NULL;
	char reason[DT_REASON_LEN];
	struct dt_collector c;
	struct dt_stats *s = new_stats(1);
	roaring_bitmap_t *want = roaring_bitmap_create();
	uint32_t base[2], steps = 0;
	struct stat st;
	int fd[2], r;

	CHECK(dt_collector_init(&c, DT_MODE_BITMAP, 1, s) == 0);
	for (uint32_t i = 0; i < 2; i++) {
		struct dt_msg_add_bitmap m = { .slot = i };

		CHECK(dt_slots_add(&c.slots, i, (uint64_t)i << 40, pages[i], 12, 8, 1 << 22) == 0);
		base[i] = dt_slots_find(&c.slots, i)->base;
		bytes[i] = pages[i] / 8;
		fd[i] = sealed_memfd(bytes[i], F_SEAL_SHRINK | F_SEAL_GROW);
		CHECK_EQ(c.ops->add_bitmap(&c, fd[i], &m, reason), 0);
		w[i] = mmap(NULL, bytes[i], PROT_READ | PROT_WRITE, MAP_SHARED, fd[i], 0);
		CHECK(w[i] != MAP_FAILED);
	}
	/* Bitmap 0: only every 4th page of it written, the others holes. */
	for (uint64_t k = 0; k < 3000; k++) {
		uint32_t i = k % 2;
		uint64_t word = (rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33;
		uint64_t bit = rng >> 58;

		word %= pages[i] / 64;
		if (i == 0)
			word = word / 512 / 4 * 4 * 512 + word % 512;
		w[i][word] |= 1ull << bit;
		roaring_bitmap_add(want, base[i] + (uint32_t)(word * 64 + bit));
	}
	CHECK(fstat(fd[0], &st) == 0);
	dt_collector_consume_begin(&c);
	do {
		uint64_t budget = (rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 54;

		r = dt_collector_consume_step(&c, budget);
		steps++;
		/* The producer, between steps: a few bits behind the pass and ahead of it. */
		for (int k = 0; r > 0 && k < 8; k++) {
			uint32_t i = (uint32_t)((rng = rng * 6364136223846793005ull + 1) >> 63);
			uint64_t word = (rng >> 20) % (pages[i] / 64), bit = rng >> 58;
			uint32_t page = base[i] + (uint32_t)(word * 64 + bit);
			bool behind = i < c.consume_map || (i == c.consume_map && word < c.consume_word);

			if (i == 0)
				continue; /* keep bitmap 0's holes */
			if (w[i][word] & (1ull << bit))
				continue;
			w[i][word] |= 1ull << bit;
			if (behind) {
				later++;
			} else {
				ahead++;
				roaring_bitmap_add(want, page);
			}
		}
	} while (r > 0);
	CHECK_EQ(r, 0);
	CHECK(steps > 20);
	CHECK(later > 0 && ahead > 0); /* both sides of the cursor were tried */
	CHECK_EQ(c.bitmap_pages, roaring_bitmap_get_cardinality(want));
	CHECK(dt_stats_close_epoch(s, 1, &closed) == 0);
	CHECK(closed && closed->set && roaring_bitmap_equals(closed->set, want));
	dt_closed_epoch_free(closed);
	/* What was set behind the pass is there for the next. */
	CHECK_EQ(c.ops->consume(&c), later);
	CHECK_EQ(dt_collector_consume_step(&c, 1), 0);
	{
		struct stat st2;

		CHECK(fstat(fd[0], &st2) == 0);
		CHECK_EQ(st2.st_blocks, st.st_blocks); /* no hole read in */
	}
	for (uint32_t i = 0; i < 2; i++) {
		munmap(w[i], bytes[i]);
		close(fd[i]);
	}
	roaring_bitmap_free(want);
	dt_collector_done(&c);
	dt_stats_free(s);
}

static void test_slots(void)
{
	struct dt_slot_table t = { 0 };

	CHECK_EQ(dt_slots_add(&t, 1, 0, 100, 12, 2, 1000), 0);
	CHECK_EQ(dt_slots_add(&t, 2, 50 * 4096, 100, 12, 2, 1000), -EEXIST); /* overlap */
	CHECK_EQ(dt_slots_add(&t, (1u << 16) | 2, 50 * 4096, 100, 12, 2, 1000), 0); /* other AS */
	CHECK_EQ(dt_slots_add(&t, 3, 1 << 30, 100, 12, 2, 1000), -ENOSPC);
	CHECK_EQ(dt_slots_remove(&t, 1), 0);
	CHECK_EQ(dt_slots_add(&t, 3, 1 << 30, 901, 12, 2, 1000), -E2BIG);
	CHECK_EQ(dt_slots_add(&t, 3, UINT64_MAX - 4095, 2, 12, 2, 1000), -EINVAL);
	/* Re-adding the same geometry gets the same page indexes back. */
	uint32_t base = t.slots[0].base;
	CHECK_EQ(dt_slots_add(&t, 1, 0, 100, 12, 2, 1000), 0);
	CHECK_EQ(dt_slots_find(&t, 1)->base, base);
	CHECK_EQ(dt_slots_find(&t, (1u << 16) | 2)->base % DT_SLOT_ALIGN, 0);
	dt_slots_free(&t);
}

int main(void)
{
	RUN(test_ring_empty);
	RUN(test_ring_full_and_wrap);
	RUN(test_ring_partial_publish);
	RUN(test_ring_invalid_entries);
	RUN(test_ring_resync);
	RUN(test_ring_resync_inside_run);
	RUN(test_ring_refusals);
	RUN(test_bitmap);
	RUN(test_bitmap_sparse);
	RUN(test_bitmap_steps);
	RUN(test_slots);
	TEST_EXIT();
}
