/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The share of zero pages in guest RAM, from a random sample: what a
 * migration engine sends as a header only (QEMU's bulk round tests every
 * page for zero). The daemon cannot see guest memory; QEMU's process maps
 * it, so the library samples it and reports MEMORY_SAMPLE.
 *
 * Each drawn page is first looked up in /proc/self/pagemap: a page not
 * present and not swapped was never touched (or was discarded) and reads
 * as zero without being read; a swapped page is left out (reading it would
 * swap it in); a present page is copied with process_vm_readv, which fails
 * with EFAULT rather than faulting if the mapping went away, and tested.
 * The slot table's lock is held per batch, so QEMU's slot updates wait for
 * one batch at most, and a slot being deleted is never read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dtqemu.h"

#define PAGE 4096u
#define BATCH 256u
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: a sample needs spread, not secrecy */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static bool page_is_zero(const uint64_t *p)
{
	uint64_t any = 0;

	for (unsigned i = 0; i < PAGE / 8; i++)
		any |= p[i];
	return any == 0;
}

/* Tracked pages of the table (lock held). */
static uint64_t tracked_pages(const struct dtq *q)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++)
		if (q->slots[i].used && q->slots[i].managed)
			n += q->slots[i].pages;
	return n;
}

/* The address of tracked page k of the table (lock held), 0 if none. */
static uint64_t page_address(const struct dtq *q, uint64_t k)
{
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++) {
		const struct dtq_slot *s = &q->slots[i];

		if (!s->used || !s->managed)
			continue;
		if (k < s->pages)
			return s->hva + k * PAGE;
		k -= s->pages;
	}
	return 0;
}

/* One drawn page: 1 zero, 0 not zero, -errno left out. */
static int sample_page(int pagemap, uint64_t addr, uint64_t *buf)
{
	uint64_t e;
	struct iovec local = { .iov_base = buf, .iov_len = PAGE };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = PAGE };

	if (pread(pagemap, &e, sizeof(e), (off_t)(addr / PAGE * sizeof(e))) != sizeof(e))
		return -EIO;
	if (!(e & PM_PRESENT))
		return e & PM_SWAPPED ? -EAGAIN : 1;
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)PAGE)
		return -EFAULT;
	return page_is_zero(buf);
}

int dtq_sample_zero(struct dtq *q, unsigned n, struct dtq_zero_sample *ret)
{
	static uint64_t seed;
	uint64_t *buf;
	int pagemap, r = 0;

	*ret = (struct dtq_zero_sample){ 0 };
	if (!seed) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap < 0)
		return -errno;
	buf = aligned_alloc(64, PAGE);
	if (!buf) {
		close(pagemap);
		return -ENOMEM;
	}
	for (unsigned done = 0; done < n && r == 0; done += BATCH) {
		pthread_mutex_lock(&q->lock);
		uint64_t total = tracked_pages(q);

		if (total == 0 || q->vm_closed)
			r = -ENODATA;
		for (unsigned i = 0; r == 0 && i < BATCH && done + i < n; i++) {
			uint64_t addr = page_address(q, rng_next(&seed) % total);
			int z = addr ? sample_page(pagemap, addr, buf) : -ENOENT;

			if (z < 0)
				continue;
			ret->sampled++;
			ret->zero += (unsigned)z;
		}
		ret->pages = total;
		pthread_mutex_unlock(&q->lock);
	}
	free(buf);
	close(pagemap);
	if (r == 0 && ret->sampled == 0)
		r = -ENODATA;
	return r;
}
