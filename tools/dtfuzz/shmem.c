/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fds a hostile VMM passes (memfds sealed and not, too small, sparse,
 * hugetlb, and things that are no memfd at all), and the scribbler: a
 * thread that rewrites the rings and bitmaps the daemon has mapped while
 * it reads them (garbage entries, RESET flags flipped, bits outside slots).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dtfuzz.h"

#define MAP_MAX (64ull << 20) /* the fuzzer maps at most this much of one fd */
#define REGIONS_MAX 4096

static const char *const kind_names[_FD_KIND_MAX] = {
	[FD_MEMFD_SEALED] = "memfd-sealed",   [FD_MEMFD_UNSEALED] = "memfd-unsealed",
	[FD_MEMFD_SHRINK_ONLY] = "memfd-shrink-sealed", [FD_MEMFD_SMALL] = "memfd-small",
	[FD_MEMFD_EMPTY] = "memfd-empty",     [FD_MEMFD_HUGE_SPARSE] = "memfd-sparse",
	[FD_MEMFD_HUGETLB] = "memfd-hugetlb", [FD_PIPE] = "pipe",
	[FD_DEVNULL] = "/dev/null",	      [FD_EVENTFD] = "eventfd",
	[FD_SOCKET] = "socket",		      [FD_TMPFILE] = "tmpfile",
	[FD_DIR] = "directory",
};

const char *dtfuzz_fd_kind_name(enum dtfuzz_fd_kind k)
{
	return k < _FD_KIND_MAX ? kind_names[k] : "?";
}

static int memfd(unsigned flags, uint64_t size, int seals)
{
	int fd = memfd_create("dtfuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING | flags);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 || (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void map_fd(int fd, uint64_t offset, uint64_t bytes, uint64_t size, void **ret_map,
		   size_t *ret_len)
{
	void *m;

	*ret_map = NULL;
	*ret_len = 0;
	if (bytes == 0 || bytes > MAP_MAX || offset % 4096 || offset + bytes > size ||
	    offset + bytes < offset)
		return;
	m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (m == MAP_FAILED)
		return;
	*ret_map = m;
	*ret_len = bytes;
}

int dtfuzz_make_fd(enum dtfuzz_fd_kind k, uint64_t offset, uint64_t bytes, void **ret_map,
		   size_t *ret_len)
{
	const int all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	uint64_t size = offset + bytes;
	int fd, p[2];

	*ret_map = NULL;
	*ret_len = 0;
	if (size < offset || size > (1ull << 40))
		size = 1ull << 40; /* sparse: a memfd costs what is written */
	switch (k) {
	case FD_MEMFD_SEALED:
	case FD_MEMFD_UNSEALED:
	case FD_MEMFD_SHRINK_ONLY:
		fd = memfd(0, size, k == FD_MEMFD_SEALED ? all : k == FD_MEMFD_SHRINK_ONLY ? F_SEAL_SHRINK : 0);
		if (fd >= 0)
			map_fd(fd, offset, bytes, size, ret_map, ret_len);
		return fd;
	case FD_MEMFD_SMALL:
		size = size > 4096 ? size - 4096 : 0;
		return memfd(0, size, all);
	case FD_MEMFD_EMPTY:
		return memfd(0, 0, all);
	case FD_MEMFD_HUGE_SPARSE:
		fd = memfd(0, size + (1ull << 30), all);
		if (fd >= 0)
			map_fd(fd, offset, bytes, size, ret_map, ret_len);
		return fd;
	case FD_MEMFD_HUGETLB: {
		uint64_t huge = 2ull << 20, hsize = (size + huge - 1) / huge * huge;

		fd = memfd(MFD_HUGETLB, hsize, F_SEAL_SHRINK | F_SEAL_GROW);
		if (fd < 0) /* no huge pages here: a plain sealed memfd */
			return dtfuzz_make_fd(FD_MEMFD_SEALED, offset, bytes, ret_map, ret_len);
		if (offset % huge == 0)
			map_fd(fd, offset, bytes, hsize, ret_map, ret_len);
		return fd;
	}
	case FD_PIPE:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		close(p[1]);
		return p[0];
	case FD_DEVNULL:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	case FD_EVENTFD:
		fd = eventfd(0, EFD_CLOEXEC);
		return fd < 0 ? -errno : fd;
	case FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			return -errno;
		close(p[1]);
		return p[0];
	case FD_TMPFILE:
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)DT_MIN(size, 1ull << 30)) < 0) {
			close(fd);
			return -errno;
		}
		return fd;
	case FD_DIR:
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	default:
		return -EINVAL;
	}
}

/* --- the scribbler ------------------------------------------------------- */

struct region {
	void *map;
	size_t len;
	enum dtfuzz_region_kind kind;
};

static pthread_mutex_t regions_lock = PTHREAD_MUTEX_INITIALIZER;
static struct region regions[REGIONS_MAX];
static unsigned nregions;

int dtfuzz_region_add(void *map, size_t len, enum dtfuzz_region_kind kind)
{
	int r = -ENOSPC;

	pthread_mutex_lock(&regions_lock);
	if (nregions < REGIONS_MAX) {
		regions[nregions++] = (struct region){ .map = map, .len = len, .kind = kind };
		r = 0;
	}
	pthread_mutex_unlock(&regions_lock);
	return r;
}

void dtfuzz_region_remove(void *map)
{
	pthread_mutex_lock(&regions_lock);
	for (unsigned i = 0; i < nregions; i++)
		if (regions[i].map == map) {
			regions[i] = regions[--nregions];
			break;
		}
	pthread_mutex_unlock(&regions_lock);
}

static const uint32_t flag_values[] = { 0, DT_RING_DIRTY, DT_RING_RESET,
					DT_RING_DIRTY | DT_RING_RESET, 0xffffffffu, 4, 5 };

static void scribble_ring(struct dt_rng *g, struct region *rg)
{
	struct dt_ring_entry *e = rg->map;
	size_t n = rg->len / sizeof(*e), i = dt_rng_below(g, n);
	uint32_t slot_values[] = { 0, 1, 2, 0x10000, 0xffffffffu, (uint32_t)dt_rng_next(g) };
	uint64_t off_values[] = { 0, 1, 63, 64, 4095, 1ull << 32, UINT64_MAX, dt_rng_next(g) };

	switch (dt_rng_below(g, 5)) {
	case 0: /* flip RESET under the daemon */
		__atomic_fetch_xor(&e[i].flags, DT_RING_RESET, __ATOMIC_RELAXED);
		break;
	case 1: /* a garbage entry, published */
		__atomic_store_n(&e[i].slot, slot_values[dt_rng_below(g, ARRAY_SIZE(slot_values))],
				 __ATOMIC_RELAXED);
		__atomic_store_n(&e[i].offset, off_values[dt_rng_below(g, ARRAY_SIZE(off_values))],
				 __ATOMIC_RELAXED);
		__atomic_store_n(&e[i].flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
		break;
	case 2: /* any flags */
		__atomic_store_n(&e[i].flags, flag_values[dt_rng_below(g, ARRAY_SIZE(flag_values))],
				 __ATOMIC_RELEASE);
		break;
	case 3: { /* the whole ring DIRTY: a harvest that never ends if unbounded */
		for (size_t j = 0; j < n; j++)
			__atomic_store_n(&e[j].flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
		break;
	}
	default: /* rewrite slot and offset of a published entry while it is read */
		for (unsigned j = 0; j < 64; j++) {
			size_t k = (i + j) % n;
			__atomic_store_n(&e[k].offset, dt_rng_next(g) & 0xffff, __ATOMIC_RELAXED);
			__atomic_store_n(&e[k].slot, (uint32_t)dt_rng_below(g, 3), __ATOMIC_RELAXED);
		}
	}
}

static void scribble_bitmap(struct dt_rng *g, struct region *rg)
{
	uint64_t *w = rg->map;
	size_t n = rg->len / 8, i;

	if (n == 0)
		return;
	i = dt_rng_below(g, 4) == 0 ? n - 1 : dt_rng_below(g, n); /* the last word: bits past the slot */
	switch (dt_rng_below(g, 4)) {
	case 0:
		__atomic_store_n(&w[i], ~0ull, __ATOMIC_RELAXED); /* a plain store, not an OR */
		break;
	case 1:
		__atomic_store_n(&w[i], 0, __ATOMIC_RELAXED); /* clearing bits: forbidden */
		break;
	case 2:
		for (size_t j = 0; j < DT_MIN(n, 512u); j++)
			__atomic_fetch_or(&w[(i + j) % n], dt_rng_next(g), __ATOMIC_RELEASE);
		break;
	default:
		__atomic_fetch_or(&w[i], 1ull << dt_rng_below(g, 64), __ATOMIC_RELEASE);
	}
}

void *dtfuzz_scribbler(void *arg)
{
	struct dt_rng g;
	const struct timespec pause = { .tv_nsec = 200000 };

	dt_rng_seed(&g, *(uint64_t *)arg, 0x5c1bb1e5);
	while (!atomic_load(&dtfuzz_stop)) {
		pthread_mutex_lock(&regions_lock);
		for (unsigned k = 0; k < 8 && nregions; k++) {
			struct region *rg = &regions[dt_rng_below(&g, nregions)];

			if (rg->kind == REGION_RING)
				scribble_ring(&g, rg);
			else
				scribble_bitmap(&g, rg);
			atomic_fetch_add(&dtfuzz_stats.scribbles, 1);
		}
		pthread_mutex_unlock(&regions_lock);
		nanosleep(&pause, NULL);
	}
	return NULL;
}
