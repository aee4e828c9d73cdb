/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A growable byte buffer for encoders: appends never fail on the spot; the
 * first failure (-ENOMEM, or -E2BIG beyond max when set) sticks in err and
 * later appends do nothing, so an encoder checks once at the end.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct dt_buf {
	uint8_t *p;
	size_t len, cap;
	size_t max; /* 0: no limit */
	int err;
};

/* Room for n more bytes at p + len: a pointer to them, or NULL (err set). */
uint8_t *dt_buf_room(struct dt_buf *b, size_t n);
void dt_buf_put(struct dt_buf *b, const void *p, size_t n);
void dt_buf_put_u32le(struct dt_buf *b, uint32_t v);
void dt_buf_put_u64le(struct dt_buf *b, uint64_t v);
void dt_buf_done(struct dt_buf *b); /* frees, back to empty */
