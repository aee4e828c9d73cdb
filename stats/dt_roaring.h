/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

/*
 * Heap bytes held by a roaring bitmap (estimate; NULL is 0). libroaring
 * 0.2.66 exposes no heap figure; its statistics give container payload
 * bytes, to which we add the per-container bookkeeping and allocator
 * overhead (checked against mallinfo2() in bench/bench_stats.c).
 */
size_t dt_roaring_memory(const roaring_bitmap_t *r);

/*
 * Container-level access (libroaring's documented container headers), so
 * that a dense epoch moves as 64-page words instead of page by page.
 */

/* 64 pages starting at block * 64: bit i = page block * 64 + i. */
struct dt_block {
	uint32_t block;
	uint64_t mask;
};
#define DT_ROARING_BLOCKS 1024u /* blocks of one container */

/*
 * Append the 64k values of `key` given as 1024 words (a chunk bitset) as
 * one container; key must be above every key of r. Nothing for no bits.
 * -ENOMEM leaves r as it was.
 */
int dt_roaring_append_words(roaring_bitmap_t *r, uint16_t key, const uint64_t *words);
/*
 * roaring_bitmap_run_optimize() a share at a time: containers [*pos,
 * *pos + max) become runs where that is smaller; 1 while more remain.
 */
int dt_roaring_run_optimize_step(roaring_bitmap_t *r, uint32_t *pos, uint32_t max);
/* Containers of r; the non-empty blocks of container i, ascending, into out. */
uint32_t dt_roaring_ncontainers(const roaring_bitmap_t *r);
uint32_t dt_roaring_container_blocks(const roaring_bitmap_t *r, uint32_t i,
				     struct dt_block out[DT_ROARING_BLOCKS]);
