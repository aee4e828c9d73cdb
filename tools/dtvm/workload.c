/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which page is written next. The working set is --wss pages spread evenly
 * over guest RAM (both slots). It is partitioned between the vCPUs (page k
 * belongs to vCPU k % vcpus), so that the per-vCPU figures a dirty ring
 * gives (a page is logged in the ring of the first vCPU that dirties it
 * in an epoch) are exactly comparable with the truth.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "dtvm.h"

#define ZIPF_S 1.0
#define ZIPF_MAX (16u << 20)

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoroshiro128+ */
uint64_t dtvm_rand(uint64_t s[2])
{
	uint64_t s0 = s[0], s1 = s[1], r = s0 + s1;

	s1 ^= s0;
	s[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
	s[1] = rotl(s1, 37);
	return r;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t s[2], uint64_t n)
{
	return (uint64_t)(((unsigned __int128)dtvm_rand(s) * n) >> 64);
}

static double unit(uint64_t s[2])
{
	return (dtvm_rand(s) >> 11) * 0x1.0p-53;
}

/* Pages of the working set owned by vCPU v. */
static uint64_t vcpu_wss(const struct dtvm *vm, uint32_t v)
{
	uint64_t w = vm->o.wss, n = vm->o.vcpus;

	return v < w ? (w - v + n - 1) / n : 0;
}

int dtvm_workload_init(struct dtvm *vm)
{
	if (vm->o.wss < vm->o.vcpus || vm->o.wss > vm->data_pages)
		return -ERANGE;
	for (uint32_t i = 0; i < vm->o.vcpus; i++) {
		uint64_t x = vm->o.seed * 1000003 + i;

		vm->vcpus[i].rng[0] = splitmix(&x);
		vm->vcpus[i].rng[1] = splitmix(&x);
	}
	if (vm->o.pattern == DTVM_PAT_ZIPF) {
		uint64_t n = vcpu_wss(vm, 0);
		double sum = 0;

		if (n > ZIPF_MAX)
			return -E2BIG;
		vm->zipf_cdf = malloc(n * sizeof(double));
		if (!vm->zipf_cdf)
			return -ENOMEM;
		for (uint64_t i = 0; i < n; i++)
			vm->zipf_cdf[i] = (sum += 1.0 / pow((double)(i + 1), ZIPF_S));
		for (uint64_t i = 0; i < n; i++)
			vm->zipf_cdf[i] /= sum;
		vm->zipf_n = n;
	}
	return 0;
}

static uint64_t zipf(const struct dtvm *vm, uint64_t s[2], uint64_t n)
{
	for (;;) {
		double u = unit(s);
		uint64_t lo = 0, hi = vm->zipf_n - 1;

		while (lo < hi) {
			uint64_t mid = (lo + hi) / 2;

			if (vm->zipf_cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n)
			return lo;
	}
}

/* Next data page index (0 .. data_pages) for vCPU v. */
uint64_t dtvm_workload_next(struct dtvm *vm, struct dtvm_vcpu *v)
{
	uint64_t n = vcpu_wss(vm, v->id), j, k, hot;

	switch (vm->o.pattern) {
	case DTVM_PAT_SEQUENTIAL:
		j = v->seq_pos++ % n;
		break;
	case DTVM_PAT_HOTCOLD:
		/* 90% of writes go to the hottest 10% */
		hot = DT_MAX(n / 10, 1);
		if (hot == n || below(v->rng, 10) < 9)
			j = below(v->rng, hot);
		else
			j = hot + below(v->rng, n - hot);
		break;
	case DTVM_PAT_ZIPF:
		j = zipf(vm, v->rng, n);
		break;
	default:
		j = below(v->rng, n);
		break;
	}
	k = j * vm->o.vcpus + v->id;
	return (uint64_t)(((unsigned __int128)k * vm->data_pages) / vm->o.wss);
}
