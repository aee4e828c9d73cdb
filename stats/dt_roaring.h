/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include <roaring/roaring.h>

/*
 * Heap bytes held by a roaring bitmap (estimate; NULL is 0). libroaring
 * 0.2.66 exposes no heap figure; its statistics give container payload
 * bytes, to which we add the per-container bookkeeping and allocator
 * overhead (checked against mallinfo2() in bench/bench_stats.c).
 */
size_t dt_roaring_memory(const roaring_bitmap_t *r);
