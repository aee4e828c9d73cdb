/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small reproducible PRNG for the simulators and the fuzzer:
 * xoshiro256**, seeded through splitmix64. Not for anything secret.
 */
#pragma once

#include <stdint.h>

struct dt_rng {
	uint64_t s[4];
};

/* One seed gives independent streams (a vCPU, a fuzz session) by number. */
void dt_rng_seed(struct dt_rng *r, uint64_t seed, uint64_t stream);

static inline uint64_t dt_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t dt_rng_next(struct dt_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = dt_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = dt_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n), n >= 1, unbiased (Lemire). */
static inline uint64_t dt_rng_below(struct dt_rng *r, uint64_t n)
{
	unsigned __int128 m = (unsigned __int128)dt_rng_next(r) * n;
	uint64_t low = (uint64_t)m;

	if (low < n) {
		uint64_t threshold = -n % n;
		while (low < threshold) {
			m = (unsigned __int128)dt_rng_next(r) * n;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double dt_rng_double(struct dt_rng *r)
{
	return (double)(dt_rng_next(r) >> 11) * 0x1.0p-53;
}
