/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_buf.h"

uint8_t *dt_buf_room(struct dt_buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > SIZE_MAX / 2 - b->len || (b->max && b->len + n > b->max)) {
		b->err = -E2BIG;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

void dt_buf_put(struct dt_buf *b, const void *p, size_t n)
{
	uint8_t *d;

	if (!n)
		return;
	d = dt_buf_room(b, n);
	if (!d)
		return;
	memcpy(d, p, n);
	b->len += n;
}

void dt_buf_put_u32le(struct dt_buf *b, uint32_t v)
{
	v = htole32(v);
	dt_buf_put(b, &v, sizeof(v));
}

void dt_buf_put_u64le(struct dt_buf *b, uint64_t v)
{
	v = htole64(v);
	dt_buf_put(b, &v, sizeof(v));
}

void dt_buf_done(struct dt_buf *b)
{
	free(b->p);
	*b = (struct dt_buf){ 0 };
}

bool dt_reader_get(struct dt_reader *r, void *out, size_t n)
{
	const uint8_t *p = dt_reader_take(r, n);

	if (!p) {
		memset(out, 0, n);
		return false;
	}
	memcpy(out, p, n);
	return true;
}

uint32_t dt_reader_u32le(struct dt_reader *r)
{
	uint32_t v;

	dt_reader_get(r, &v, sizeof(v));
	return le32toh(v);
}

uint64_t dt_reader_u64le(struct dt_reader *r)
{
	uint64_t v;

	dt_reader_get(r, &v, sizeof(v));
	return le64toh(v);
}
