/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seeded PRNG and the write patterns that pick pages from the working set. */
#include <math.h>

#include "dtsim.h"

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
uint64_t dtsim_zipf_sample(const struct dtsim_pattern *p, struct dt_rng *r)
{
	for (;;) {
		double u = p->zipf_hn + dt_rng_double(r) * (p->zipf_hx1 - p->zipf_hn);
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
