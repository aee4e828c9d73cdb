/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared dirty bitmap collector. Producers (the VMM copying KVM's dirty log,
 * or device emulation) set bits with atomic OR; we take each non-zero word
 * with an atomic exchange to zero, so a bit set concurrently is either in
 * the word we took or stays for the next epoch: none is lost.
 *
 * We read only the pages of the bitmap that hold data. A VMM may declare a
 * huge slot and pass a memfd it only ftruncated: its holes read as zero, but
 * a read through our shared mapping allocates each one (shmem faults a page
 * in for a MAP_SHARED read), so reading all of it cost us the bitmap's whole
 * size in RSS and a scan of it every epoch. mincore() tells which pages are
 * in the memfd's page cache and written (up to date); a hole or a page only
 * fallocated is zero by definition and skipped. A page written after the
 * check is as a bit set after we passed its word: it is read next epoch.
 * Swapped-out pages read as absent to mincore(), so we first ask for them
 * back with MADV_WILLNEED (for shmem that swaps in only swapped pages and
 * allocates no hole) and read them once they are in. hugetlbfs mappings are
 * read whole: mincore() there looks only at our page tables, and their pages
 * come from the pool the administrator reserved.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dt_collector.h"
#include "dt_fdcheck.h"
#include "dt_plant.h"
#include "dt_util.h"

int dt_bitmap_map(int fd, uint64_t offset, const struct dt_slot *slot, struct dt_bitmap **ret,
		  char reason[DT_REASON_LEN])
{
	uint64_t bytes = dt_bitmap_bytes(slot->pages);
	size_t granule = dt_fd_map_granule(fd), map_len;
	struct dt_bitmap *b;
	void *map;
	int r;

	if (offset % granule) {
		snprintf(reason, DT_REASON_LEN,
			 "bitmap offset %llu is not aligned to the fd's %zu-byte pages",
			 (unsigned long long)offset, granule);
		return -EINVAL;
	}
	/* mmap takes a signed off_t: offset + bytes must not wrap it either. */
	if (bytes > (uint64_t)INT64_MAX || offset > (uint64_t)INT64_MAX - bytes) {
		snprintf(reason, DT_REASON_LEN, "bitmap offset %llu overflows",
			 (unsigned long long)offset);
		return -EINVAL;
	}
	r = dt_fd_check_mappable(fd, offset + bytes, DT_FD_MEMFD_NO_SHRINK | DT_FD_MEMFD_NO_GROW,
				 reason);
	if (r < 0)
		return r;
	map_len = dt_map_length(bytes, granule);
	map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		r = -errno;
		snprintf(reason, DT_REASON_LEN, "cannot map bitmap: %s", strerror(errno));
		return r;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		munmap(map, map_len);
		snprintf(reason, DT_REASON_LEN, "out of memory");
		return -ENOMEM;
	}
	b->map = map;
	b->map_len = map_len;
	b->words = map;
	b->nwords = bytes / 8;
	b->page_words = granule == (size_t)sysconf(_SC_PAGESIZE) ? granule / 8 : 0;
	b->pages = slot->pages;
	b->last_mask = (slot->pages % 64) ? (1ull << (slot->pages % 64)) - 1 : ~0ull;
	b->slot = slot->slot;
	b->base = slot->base;
	*ret = b;
	return 0;
}

struct dt_bitmap *dt_bitmap_unmap(struct dt_bitmap *b)
{
	if (b) {
		munmap(b->map, b->map_len);
		free(b);
	}
	return NULL;
}

static inline uint64_t take_word(struct dt_bitmap *b, uint64_t i, struct dt_stats *stats)
{
	uint64_t bits = __atomic_exchange_n(&b->words[i], 0, __ATOMIC_ACQ_REL);

	if (i == b->nwords - 1)
		bits &= b->last_mask;
	if (!bits)
		return 0;
	if (dt_plant("bitmap-drop-bit")) {
		static unsigned taken;

		if (++taken % 64 == 0 && !(bits &= bits - 1))
			return 0;
	}
	dt_stats_add_word(stats, b->base + (uint32_t)(i * 64), bits);
	return (uint64_t)__builtin_popcountll(bits);
}

/* Take the set bits of words [i, n). */
static uint64_t consume_words(struct dt_bitmap *b, uint64_t i, uint64_t n, struct dt_stats *stats)
{
	uint64_t *w = b->words, pages = 0;

	/*
	 * Plain relaxed loads find the zero words cheaply (sparse bitmaps are
	 * mostly zero), a cache line of eight at a time; only non-zero words
	 * pay for the locked exchange.
	 */
	for (; i + 8 <= n; i += 8) {
		uint64_t any = 0;

		for (unsigned j = 0; j < 8; j++)
			any |= __atomic_load_n(&w[i + j], __ATOMIC_RELAXED);
		if (!any)
			continue;
		for (unsigned j = 0; j < 8; j++)
			if (__atomic_load_n(&w[i + j], __ATOMIC_RELAXED))
				pages += take_word(b, i + j, stats);
	}
	for (; i < n; i++)
		if (__atomic_load_n(&w[i], __ATOMIC_RELAXED))
			pages += take_word(b, i, stats);
	return pages;
}

/* Pages per mincore() call: its vector (one byte a page) stays on the stack. */
#define RESIDENCY_CHUNK 4096

/* Take the set bits of the pages of words [w0, w1) that hold data; the others are zero. */
static uint64_t consume_resident(struct dt_bitmap *b, uint64_t w0, uint64_t w1,
				 struct dt_stats *stats)
{
	uint64_t pw = b->page_words, last = (w1 + pw - 1) / pw, pages = 0;
	unsigned char vec[RESIDENCY_CHUNK];

	for (uint64_t p0 = w0 / pw; p0 < last; p0 += RESIDENCY_CHUNK) {
		uint64_t np = last - p0 < RESIDENCY_CHUNK ? last - p0 : RESIDENCY_CHUNK;

		if (dt_map_resident((char *)b->map + p0 * pw * 8, np * pw * 8, vec) < 0)
			memset(vec, 1, np); /* cannot tell: read them */
		for (uint64_t k = 0, e; k < np; k = e) {
			if (!(vec[k] & 1)) {
				e = k + 1;
				continue;
			}
			for (e = k + 1; e < np && (vec[e] & 1); e++)
				;
			pages += consume_words(b, DT_MAX((p0 + k) * pw, w0), DT_MIN((p0 + e) * pw, w1),
					       stats);
		}
	}
	return pages;
}

uint64_t dt_bitmap_consume_range(struct dt_bitmap *b, uint64_t w0, uint64_t w1,
				 struct dt_stats *stats)
{
	uint64_t pages;

	w1 = DT_MIN(w1, b->nwords);
	if (w0 >= w1)
		return 0;
	pages = b->page_words ? consume_resident(b, w0, w1, stats) : consume_words(b, w0, w1, stats);
	b->consumed += pages;
	return pages;
}

uint64_t dt_bitmap_consume(struct dt_bitmap *b, struct dt_stats *stats)
{
	return dt_bitmap_consume_range(b, 0, b->nwords, stats);
}
