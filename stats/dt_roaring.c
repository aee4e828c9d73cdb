/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <roaring/containers/convert.h>

#include "dt_roaring.h"

/*
 * Per container: a 16-byte container struct and its payload, two malloc
 * headers, and a key, a typecode and a pointer in the top-level arrays.
 * Plus the bitmap struct itself and its top-level arrays. O(containers):
 * roaring_bitmap_statistics() would also sum every value.
 */
size_t dt_roaring_memory(const roaring_bitmap_t *r)
{
	const roaring_array_t *ra;
	size_t m;

	if (!r)
		return 0;
	ra = &r->high_low_container;
	m = sizeof(*r) + 32 + (size_t)ra->size * (16 + 2 * 16 + 2 + 1 + 8);
	for (int32_t i = 0; i < ra->size; i++)
		m += (size_t)container_size_in_bytes(ra->containers[i], ra->typecodes[i]);
	return m;
}

int dt_roaring_run_optimize_step(roaring_bitmap_t *r, uint32_t *pos, uint32_t max)
{
	roaring_array_t *ra = &r->high_low_container;

	for (; *pos < (uint32_t)ra->size && max; ++*pos, max--) {
		uint8_t type;

		ra_unshare_container_at_index(ra, (uint16_t)*pos);
		ra->containers[*pos] = convert_run_optimize(ra->containers[*pos],
							    ra->typecodes[*pos], &type);
		ra->typecodes[*pos] = type;
	}
	return *pos < (uint32_t)ra->size;
}

int dt_roaring_append_words(roaring_bitmap_t *r, uint16_t key, const uint64_t *words)
{
	roaring_array_t *ra = &r->high_low_container;
	int32_t card = 0;
	void *c;
	uint8_t type;

	for (uint32_t w = 0; w < DT_ROARING_BLOCKS; w++)
		card += __builtin_popcountll(words[w]);
	if (!card)
		return 0;
	if (!extend_array(ra, 1))
		return -ENOMEM;
	if (card > DEFAULT_MAX_SIZE) {
		bitset_container_t *b = bitset_container_create();

		if (!b)
			return -ENOMEM;
		memcpy(b->array, words, DT_ROARING_BLOCKS * sizeof(uint64_t));
		b->cardinality = card;
		c = b;
		type = BITSET_CONTAINER_TYPE_CODE;
	} else {
		/* Up to 4096 values are an array: libroaring relies on it. */
		bitset_container_t view = { .cardinality = card, .array = (uint64_t *)words };

		c = array_container_from_bitset(&view);
		if (!c)
			return -ENOMEM;
		type = ARRAY_CONTAINER_TYPE_CODE;
	}
	ra_append(ra, key, c, type);
	return 0;
}

uint32_t dt_roaring_ncontainers(const roaring_bitmap_t *r)
{
	return (uint32_t)r->high_low_container.size;
}

/* Set bits [lo, hi) of the blocks in out, merging with the last block given. */
static uint32_t blocks_range(struct dt_block *out, uint32_t n, uint32_t base, uint32_t lo,
			     uint32_t hi)
{
	while (lo < hi) {
		uint32_t b = lo / 64, end = (b + 1) * 64 < hi ? (b + 1) * 64 : hi;
		uint64_t m = (end - lo == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << (end - lo)) - 1))
			     << (lo % 64);

		if (n && out[n - 1].block == base + b)
			out[n - 1].mask |= m;
		else
			out[n++] = (struct dt_block){ .block = base + b, .mask = m };
		lo = end;
	}
	return n;
}

uint32_t dt_roaring_container_blocks(const roaring_bitmap_t *r, uint32_t i,
				     struct dt_block out[DT_ROARING_BLOCKS])
{
	const roaring_array_t *ra = &r->high_low_container;
	const void *c = ra->containers[i];
	uint8_t type = ra->typecodes[i];
	uint32_t base = (uint32_t)ra->keys[i] << 10, n = 0;

	if (type == SHARED_CONTAINER_TYPE_CODE) {
		type = ((const shared_container_t *)c)->typecode;
		c = ((const shared_container_t *)c)->container;
	}
	switch (type) {
	case BITSET_CONTAINER_TYPE_CODE: {
		const uint64_t *w = ((const bitset_container_t *)c)->array;

		for (uint32_t k = 0; k < DT_ROARING_BLOCKS; k++)
			if (w[k])
				out[n++] = (struct dt_block){ .block = base + k, .mask = w[k] };
		break;
	}
	case ARRAY_CONTAINER_TYPE_CODE: {
		const array_container_t *a = c;

		for (int32_t k = 0; k < a->cardinality; k++) {
			uint32_t v = a->array[k], b = base + v / 64;

			if (!n || out[n - 1].block != b)
				out[n++] = (struct dt_block){ .block = b };
			out[n - 1].mask |= UINT64_C(1) << (v % 64);
		}
		break;
	}
	case RUN_CONTAINER_TYPE_CODE: {
		const run_container_t *rc = c;

		for (int32_t k = 0; k < rc->n_runs; k++)
			n = blocks_range(out, n, base, rc->runs[k].value,
					 (uint32_t)rc->runs[k].value + rc->runs[k].length + 1);
		break;
	}
	}
	return n;
}
