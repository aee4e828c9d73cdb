/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "dt_roaring.h"

size_t dt_roaring_memory(const roaring_bitmap_t *r)
{
	roaring_statistics_t st;

	if (!r)
		return 0;
	roaring_bitmap_statistics(r, &st);
	/*
	 * Per container: a 16-byte container struct and its payload, two
	 * malloc headers, and a key, a typecode and a pointer in the top-level
	 * arrays. Plus the bitmap struct itself and its top-level arrays.
	 */
	return sizeof(*r) + 32 + (size_t)st.n_bytes_array_containers + st.n_bytes_run_containers +
	       st.n_bytes_bitset_containers + (size_t)st.n_containers * (16 + 2 * 16 + 2 + 1 + 8);
}
