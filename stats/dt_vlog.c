/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "dt_vlog.h"

#define VLOG_MIN    4096u
#define RADIX_BITS  11u
#define RADIX_SIZE  (1u << RADIX_BITS)
#define RADIX_BITS_SHORT 8u
#define SMALL_SORT  48u

static void insertion_sort(uint32_t *a, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint32_t x = a[i], j = i;

		for (; j > 0 && a[j - 1] > x; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/*
 * LSD radix sort over only the bits that vary, 11 bits per pass: a VM's
 * dense page indexes of up to 4M pages (22 bits) sort in two passes. A pass
 * costs its 2^bits counters too, so short inputs take narrower digits (a
 * sparse epoch's few pages would pay 8 KiB of counters per pass), and the
 * shortest an insertion sort.
 */
void dt_radix_sort(uint32_t *a, uint32_t *tmp, uint32_t n)
{
	uint32_t cnt[RADIX_SIZE], *src = a, *dst = tmp, diff = 0, base, width, mask;
	unsigned int bits, shift;

	if (n < 2)
		return;
	if (n <= SMALL_SORT) {
		insertion_sort(a, n);
		return;
	}
	base = a[0];
	for (uint32_t i = 1; i < n; i++)
		diff |= a[i] ^ base;
	if (!diff)
		return;
	bits = 32 - (unsigned int)__builtin_clz(diff);
	width = n < RADIX_SIZE * 2 ? RADIX_BITS_SHORT : RADIX_BITS;
	mask = (1u << width) - 1;
	for (shift = 0; shift < bits; shift += width) {
		uint32_t sum = 0, *t;

		memset(cnt, 0, (mask + 1) * sizeof(*cnt));
		for (uint32_t i = 0; i < n; i++)
			cnt[(src[i] >> shift) & mask]++;
		for (uint32_t b = 0; b <= mask; b++) {
			uint32_t k = cnt[b];

			cnt[b] = sum;
			sum += k;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[cnt[(src[i] >> shift) & mask]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

uint32_t dt_dedup(uint32_t *a, uint32_t n)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < n; i++)
		if (j == 0 || a[i] != a[j - 1])
			a[j++] = a[i];
	return j;
}

/* Sort the unsorted tail and merge it into the sorted prefix, dropping repeats. */
static void vlog_sort(struct dt_vlog *l)
{
	uint32_t *a = l->a, *tmp = l->a + l->cap, i = 0, j, k = 0, ns = l->nsorted, n = l->n;

	if (ns == n)
		return;
	dt_radix_sort(a + ns, tmp, n - ns);
	n = ns + dt_dedup(a + ns, n - ns);
	if (ns == 0) {
		l->n = l->nsorted = n;
		return;
	}
	/* Merge into the scratch half, then copy back. */
	j = ns;
	while (i < ns && j < n) {
		uint32_t x = a[i] <= a[j] ? a[i] : a[j];

		if (a[i] == x)
			i++;
		if (a[j] == x)
			j++;
		tmp[k++] = x;
	}
	while (i < ns)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, k * sizeof(*a));
	l->n = l->nsorted = k;
}

static int vlog_resize(struct dt_vlog *l, uint32_t cap)
{
	uint32_t *a = malloc((size_t)cap * 2 * sizeof(*a));

	if (!a)
		return -1;
	if (l->n)
		memcpy(a, l->a, l->n * sizeof(*a));
	free(l->a);
	l->a = a;
	l->cap = cap;
	return 0;
}

void dt_vlog_compact(struct dt_vlog *l)
{
	if (!l->a) {
		vlog_resize(l, VLOG_MIN);
		return;
	}
	vlog_sort(l);
	/* Keep at least half the log free so compaction stays amortised O(1). */
	if (l->n > l->cap / 2 && l->cap < UINT32_MAX / 4)
		vlog_resize(l, l->cap * 2); /* failure: the caller sees a full log */
}

uint32_t dt_vlog_finish(struct dt_vlog *l)
{
	if (l->a)
		vlog_sort(l);
	return l->n;
}

void dt_vlog_reset(struct dt_vlog *l)
{
	uint32_t used = l->n;

	l->n = l->nsorted = 0;
	l->last = 0;
	/* A log four times larger than the epoch's pages shrinks back (to nothing when idle). */
	if (!l->a || used * 4 > l->cap)
		return;
	if (used == 0 || l->cap <= VLOG_MIN) {
		if (used == 0) {
			free(l->a);
			l->a = NULL;
			l->cap = 0;
		}
		return;
	}
	vlog_resize(l, l->cap / 2); /* failure keeps the larger log, which is fine */
}

void dt_vlog_fini(struct dt_vlog *l)
{
	free(l->a);
	*l = (struct dt_vlog){0};
}

size_t dt_vlog_memory(const struct dt_vlog *l) { return (size_t)l->cap * 2 * sizeof(*l->a); }
