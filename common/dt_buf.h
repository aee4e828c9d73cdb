/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A growable byte buffer for encoders: appends never fail on the spot; the
 * first failure (-ENOMEM, or -E2BIG beyond max when set) sticks in err and
 * later appends do nothing, so an encoder checks once at the end.
 */
#pragma once

#include <stdbool.h>
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

/*
 * A bounded reader over a const buffer (decoders of files and frames):
 * a take beyond what is left reads nothing and sets bad, which sticks, so
 * a decoder checks once; every length is checked against the buffer, none
 * is trusted for an allocation.
 */
struct dt_reader {
	const uint8_t *p;
	size_t n; /* bytes left */
	bool bad;
};

/* The next n bytes in place, or NULL (bad set) when fewer are left. Inline: decoders' hot path. */
static inline const uint8_t *dt_reader_take(struct dt_reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || n > r->n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->n -= n;
	return p;
}
/* Copy the next n bytes to out (zeros when fewer are left); false then. */
bool dt_reader_get(struct dt_reader *r, void *out, size_t n);
uint32_t dt_reader_u32le(struct dt_reader *r); /* 0 when bad */
uint64_t dt_reader_u64le(struct dt_reader *r);
