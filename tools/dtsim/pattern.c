/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seeded PRNG and the write patterns that pick pages from the working set. */
#include <math.h>

#include "dtsim.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Each writer gets its own stream, so its page sequence depends only on the seed. */
void dtsim_rng_seed(struct dtsim_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
	/* all-zero state is the one xoshiro cannot leave; splitmix never yields it, but be sure */
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1;
}

void dtsim_pattern_init(struct dtsim_pattern *p, enum dtsim_pattern_kind kind, uint64_t wss)
{
	*p = (struct dtsim_pattern){.kind = kind, .wss = wss};
	p->hot = (wss + 9) / 10; /* ceil(10%), at least one page */
	/*
	 * Zipf with exponent 1 over ranks 1..wss: H(x) = log x is the integral
	 * of h(x) = 1/x; sample x = H^-1(u) with u uniform over
	 * [H(wss + 1/2), H(3/2) - h(1)] and accept rank k = round(x) if it lies
	 * under the histogram (Hörmann & Derflinger, "Rejection-inversion to
	 * generate variates from monotone discrete distributions", 1996).
	 * O(1) expected per sample, no table.
	 */
	p->zipf_hx1 = log(1.5) - 1.0;
	p->zipf_hn = log((double)wss + 0.5);
	p->zipf_s = 2.0 - exp(log(2.5) - 0.5);
}

/* Rank k (1 = hottest) maps to working-set page k - 1. */
uint64_t dtsim_zipf_sample(const struct dtsim_pattern *p, struct dtsim_rng *r)
{
	for (;;) {
		double u = p->zipf_hn + dtsim_rng_double(r) * (p->zipf_hx1 - p->zipf_hn);
		double x = exp(u);
		double kd = floor(x + 0.5);
		uint64_t k;

		if (kd < 1.0)
			kd = 1.0;
		else if (kd > (double)p->wss)
			kd = (double)p->wss;
		k = (uint64_t)kd;
		if (kd - x <= p->zipf_s || u >= log(kd + 0.5) - 1.0 / kd)
			return k - 1;
	}
}
