/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Saving and loading a VM's statistics, and the journal of closed epochs.
 *
 * What is saved is the state every figure derives from, not the figures:
 * the last-dirty epoch of each page dirtied within the horizon (per VM and
 * per vCPU; the per-epoch counts and the window sums are rebuilt from it),
 * the per-epoch records over the horizon, the exact recent sets and the
 * coarse buckets, and the totals. After a load, D(T) at any window, per
 * range and per vCPU, the history, the heatmap and the epoch page lists
 * equal the saved ones; pages whose dirtying left the horizon (not yet
 * swept from the index) are dropped, which no figure can tell. The open
 * epoch is not saved.
 *
 * Snapshot format, version 1, every integer little-endian:
 *
 *   "DTSTATS\0" u32 version u32 nvcpus
 *   u32 horizon recent coarse region_pages nwindows windows[16]
 *   u64 epochs total_entries total_pages
 *   u32 CRC-32 of the bytes above (checked before the configuration is
 *       compared, so a damaged head is -EBADMSG and a sound one from another
 *       configuration is -ESTALE)
 *   records: min(epochs, horizon) x {u64 epoch end_us pages entries}, oldest first
 *   recent sets: u32 n, n x {u64 epoch, u32 len, len bytes of portable roaring}
 *   buckets: u32 n, n x {u64 id, u32 len, len bytes of portable roaring}
 *   VM index, then per vCPU {u64 entries, index}:
 *       u64 nblocks, nblocks x {u32 block, u64 mask, popcount(mask) x u32 age}
 *       (block = page / 64, mask = its pages, age = epochs since the dirtying)
 *   "DTND"
 *   u32 CRC-32 of everything before it
 *
 * The file is decoded from the bytes the caller read (no I/O here: the
 * daemon reads the file through common/dt_file), through a bounded reader
 * that checks every length against what is left, and checked as it
 * goes: every count against the configuration and the history (an epoch
 * outside the recent range, a duplicate bucket or block, an age beyond the
 * horizon, a set whose cardinality is not its record's), every roaring set
 * through the bounds-checked deserializer and then walked (strictly
 * ascending, cardinality as declared), decoded in place so a lying length
 * meets the end of the buffer and allocates nothing.
 * Anything wrong is -EBADMSG; the final CRC catches what the checks cannot.
 *
 * Size: about 4 bytes per page dirtied within the horizon per index (VM and
 * each vCPU that reported it) plus the roaring sets; see bench figures in
 * tests/unit/test_persist.c's output.
 *
 * Journal frame: "DTJ1" u32 len, len bytes of payload, u32 CRC-32 of the
 * frame so far. Payload: u64 epoch end_us pages entries, u32 setlen,
 * setlen bytes of portable roaring (0 for an idle epoch), u32 nvcpus,
 * nvcpus x {u64 entries (since creation), u32 n, u32 nbytes, nbytes of
 * LEB128 deltas of the vCPU's n sorted pages}. Replaying a frame adds the
 * same pages to the open epoch and closes it with the same record, so the
 * replayed epoch equals the one that was closed, per VM and per vCPU.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dt_buf.h"
#include "dt_stats_int.h"

#define PERSIST_MAGIC	"DTSTATS"
#define PERSIST_VERSION 1u
#define PERSIST_END	0x444e5444u /* "DTND" */
#define JOURNAL_MAGIC	0x314a5444u /* "DTJ1" */
#define MAX_EPOCHS	(UINT64_C(1) << 48)
#define MAX_BLOCKS	((UINT32_MAX >> 6) + UINT64_C(1))
#define MAX_BLOB	(UINT32_C(1) << 30) /* a roaring set or a journal frame */
/* magic, version, nvcpus, 5 + 16 configuration words, epochs, totals: what the head CRC covers */
#define PERSIST_HEAD_LEN (8 + 4 + 4 + 4 * 5 + 4 * DT_STATS_MAX_WINDOWS + 8 * 3)

/* ---- CRC-32 (IEEE), table per call: 256 entries cost nothing next to a file */

static void crc_table(uint32_t *tab)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		tab[i] = c;
	}
}

static uint32_t crc_update(const uint32_t *tab, uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (n--)
		crc = tab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- writing -------------------------------------------------------------- */

struct pw {
	struct dt_buf *out;
	bool unsealed; /* no CRC now: dt_persist_seal() later */
	uint32_t crc;
	int err;
	uint32_t tab[256];
};

static void pw_bytes(struct pw *w, const void *p, size_t n)
{
	if (w->err || !n)
		return;
	if (!w->unsealed)
		w->crc = crc_update(w->tab, w->crc, p, n);
	dt_buf_put(w->out, p, n);
	w->err = w->out->err;
}

static void pw_u32(struct pw *w, uint32_t v)
{
	uint32_t le = htole32(v);

	pw_bytes(w, &le, sizeof(le));
}

static void pw_u64(struct pw *w, uint64_t v)
{
	uint64_t le = htole64(v);

	pw_bytes(w, &le, sizeof(le));
}

/* Serialized in place, then covered by the CRC. */
static void pw_set(struct pw *w, const roaring_bitmap_t *set)
{
	size_t len = roaring_bitmap_portable_size_in_bytes(set);
	uint8_t *p;

	if (w->err)
		return;
	if (len > MAX_BLOB) {
		w->err = -E2BIG;
		return;
	}
	pw_u32(w, (uint32_t)len);
	p = dt_buf_room(w->out, len);
	if (!p) {
		w->err = w->out->err;
		return;
	}
	roaring_bitmap_portable_serialize(set, (char *)p);
	w->out->len += len;
	if (!w->unsealed)
		w->crc = crc_update(w->tab, w->crc, p, len);
}

static int count_block(uint32_t block, uint64_t mask, const uint32_t *ages, void *ud)
{
	(*(uint64_t *)ud)++;
	return 0;
}

static int write_block(uint32_t block, uint64_t mask, const uint32_t *ages, void *ud)
{
	struct pw *w = ud;
	uint8_t buf[4 + 8 + 64 * 4];
	uint32_t n = (uint32_t)__builtin_popcountll(mask), v = htole32(block);
	uint64_t m = htole64(mask);

	memcpy(buf, &v, 4);
	memcpy(buf + 4, &m, 8);
	for (uint32_t i = 0; i < n; i++) {
		v = htole32(ages[i]);
		memcpy(buf + 12 + 4 * i, &v, 4);
	}
	pw_bytes(w, buf, 12 + 4 * (size_t)n);
	return w->err;
}

static void write_index(struct pw *w, const struct dt_lastidx *ls)
{
	uint64_t nblocks = 0;

	dt_lastidx_walk(ls, count_block, &nblocks);
	pw_u64(w, nblocks);
	if (!w->err)
		dt_lastidx_walk(ls, write_block, w);
}

static int save(const struct dt_stats *s, struct dt_buf *out, bool unsealed)
{
	struct pw w = {.out = out, .unsealed = unsealed};
	uint64_t first, e, rfirst;
	uint32_t n, le;

	dt_stats_settle(s); /* a split close in its update phase, before s->epochs */
	first = s->epochs > s->horizon ? s->epochs - s->horizon : 0;
	crc_table(w.tab);
	pw_bytes(&w, PERSIST_MAGIC, 8);
	pw_u32(&w, PERSIST_VERSION);
	pw_u32(&w, s->nvcpus);
	pw_u32(&w, s->cfg.horizon_epochs);
	pw_u32(&w, s->cfg.recent_epochs);
	pw_u32(&w, s->cfg.coarse_epochs);
	pw_u32(&w, s->cfg.region_pages);
	pw_u32(&w, s->cfg.nwindows);
	for (uint32_t i = 0; i < DT_STATS_MAX_WINDOWS; i++)
		pw_u32(&w, s->cfg.windows[i]);
	pw_u64(&w, s->epochs);
	pw_u64(&w, s->total_entries);
	pw_u64(&w, s->total_pages);
	pw_u32(&w, w.crc);

	for (e = first; e < s->epochs; e++) {
		const struct dt_epoch_record *rec = &s->records[e % s->horizon];

		pw_u64(&w, rec->epoch);
		pw_u64(&w, rec->end_us);
		pw_u64(&w, rec->pages);
		pw_u64(&w, rec->entries);
	}

	rfirst = s->epochs > s->recent ? s->epochs - s->recent : 0;
	n = 0;
	for (e = rfirst; s->recent && e < s->epochs; e++)
		n += s->recent_sets[e % s->recent] != NULL;
	pw_u32(&w, n);
	for (e = rfirst; s->recent && e < s->epochs; e++) {
		const roaring_bitmap_t *set = s->recent_sets[e % s->recent];

		if (!set)
			continue;
		pw_u64(&w, e);
		pw_set(&w, set);
	}

	n = 0;
	for (uint32_t i = 0; i < s->nbuckets; i++)
		n += s->buckets[i].set != NULL;
	pw_u32(&w, n);
	for (uint32_t i = 0; i < s->nbuckets; i++) {
		if (!s->buckets[i].set)
			continue;
		pw_u64(&w, s->buckets[i].id);
		pw_set(&w, s->buckets[i].set);
	}

	write_index(&w, s->ls);
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		pw_u64(&w, s->vcpus[v].entries);
		write_index(&w, s->vcpus[v].ls);
	}
	pw_u32(&w, PERSIST_END);
	/* The CRC itself is outside what it covers. */
	le = htole32(w.crc);
	if (!w.err)
		dt_buf_put(out, &le, sizeof(le));
	return w.err ? w.err : out->err;
}

int dt_stats_save(const struct dt_stats *s, struct dt_buf *out)
{
	return save(s, out, false);
}

int dt_stats_save_unsealed(const struct dt_stats *s, struct dt_buf *out)
{
	return save(s, out, true);
}

int dt_persist_seal(uint8_t *p, size_t len)
{
	uint32_t tab[256], crc;

	if (len < PERSIST_HEAD_LEN + 4 + 4)
		return -EINVAL;
	crc_table(tab);
	crc = htole32(crc_update(tab, 0, p, PERSIST_HEAD_LEN));
	memcpy(p + PERSIST_HEAD_LEN, &crc, 4);
	crc = htole32(crc_update(tab, 0, p, len - 4));
	memcpy(p + len - 4, &crc, 4);
	return 0;
}

/* ---- reading -------------------------------------------------------------- */

/*
 * A bounded reader over the bytes of a file the caller read: every read
 * is checked against what is left, so a lying length meets the end of the
 * buffer and nothing is allocated for it.
 */
struct pr {
	struct dt_reader in;
	uint32_t crc;
	int err;
	uint32_t tab[256];
	uint32_t iter[1024];
};

static int pr_fail(struct pr *r, int err)
{
	if (!r->err)
		r->err = err;
	return r->err;
}

/* n bytes from the buffer, not covered by the CRC: a pointer to them, or NULL. */
static const uint8_t *pr_take(struct pr *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	p = dt_reader_take(&r->in, n);
	if (!p)
		pr_fail(r, -EBADMSG);
	return p;
}

static int pr_raw(struct pr *r, void *p, size_t n)
{
	const uint8_t *q = pr_take(r, n);

	if (q && n)
		memcpy(p, q, n);
	return r->err;
}

/* n bytes covered by the CRC, in place. */
static const uint8_t *pr_span(struct pr *r, size_t n)
{
	const uint8_t *q = pr_take(r, n);

	if (q)
		r->crc = crc_update(r->tab, r->crc, q, n);
	return q;
}

static int pr_bytes(struct pr *r, void *p, size_t n)
{
	const uint8_t *q = pr_span(r, n);

	if (q && n)
		memcpy(p, q, n);
	return r->err;
}

static uint32_t pr_u32(struct pr *r)
{
	uint32_t le = 0;

	pr_bytes(r, &le, sizeof(le));
	return r->err ? 0 : le32toh(le);
}

static uint64_t pr_u64(struct pr *r)
{
	uint64_t le = 0;

	pr_bytes(r, &le, sizeof(le));
	return r->err ? 0 : le64toh(le);
}

/* A deserialized set is walked once: ascending, and as many pages as it says. */
static bool set_sound(const roaring_bitmap_t *set, uint32_t *buf, uint32_t nbuf)
{
	roaring_uint32_iterator_t it;
	uint64_t n = 0;
	int64_t last = -1;
	uint32_t got;

	roaring_init_iterator(set, &it);
	while ((got = roaring_read_uint32_iterator(&it, buf, nbuf)) > 0) {
		for (uint32_t i = 0; i < got; i++) {
			if ((int64_t)buf[i] <= last)
				return false;
			last = buf[i];
		}
		n += got;
	}
	return n == roaring_bitmap_get_cardinality(set);
}

static roaring_bitmap_t *set_decode(const uint8_t *p, size_t len, uint32_t *buf, uint32_t nbuf)
{
	roaring_bitmap_t *set = roaring_bitmap_portable_deserialize_safe((const char *)p, len);

	if (!set)
		return NULL;
	if (roaring_bitmap_portable_size_in_bytes(set) != len || !set_sound(set, buf, nbuf)) {
		roaring_bitmap_free(set);
		return NULL;
	}
	return set;
}

static roaring_bitmap_t *pr_set(struct pr *r)
{
	uint32_t len = pr_u32(r);
	roaring_bitmap_t *set;

	const uint8_t *p;

	if (len == 0 || len > MAX_BLOB)
		pr_fail(r, -EBADMSG); /* idle epochs and buckets are not saved */
	p = pr_span(r, len);
	if (!p)
		return NULL;
	set = set_decode(p, len, r->iter, sizeof(r->iter) / sizeof(r->iter[0]));
	if (!set)
		pr_fail(r, -EBADMSG);
	return set;
}

static int read_index(struct pr *r, struct dt_lastidx *ls, uint64_t epochs)
{
	uint64_t nblocks = pr_u64(r);
	uint32_t ages[64];

	if (!r->err && nblocks > MAX_BLOCKS)
		return pr_fail(r, -EBADMSG);
	dt_lastidx_restore_begin(ls, epochs);
	for (uint64_t b = 0; b < nblocks && !r->err; b++) {
		uint32_t block = pr_u32(r), n;
		uint64_t mask = pr_u64(r);
		int rr;

		n = (uint32_t)__builtin_popcountll(mask);
		if (pr_bytes(r, ages, n * sizeof(uint32_t)) < 0)
			break;
		for (uint32_t i = 0; i < n; i++)
			ages[i] = le32toh(ages[i]);
		rr = dt_lastidx_restore_block(ls, block, mask, ages);
		if (rr < 0)
			return pr_fail(r, rr);
	}
	dt_lastidx_restore_end(ls);
	return r->err;
}

static int read_sets(struct pr *r, struct dt_stats *s)
{
	uint64_t rfirst = s->epochs > s->recent ? s->epochs - s->recent : 0, next = rfirst;
	uint32_t n = pr_u32(r);

	if (!r->err && n > s->recent)
		return pr_fail(r, -EBADMSG);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint64_t e = pr_u64(r);
		roaring_bitmap_t *set;

		if (r->err)
			break;
		/* Ascending within the recent range; its record says how many pages. */
		if (e < next || e >= s->epochs)
			return pr_fail(r, -EBADMSG);
		next = e + 1;
		set = pr_set(r);
		if (!set)
			break;
		s->recent_sets[e % s->recent] = set;
		if (roaring_bitmap_get_cardinality(set) != s->records[e % s->horizon].pages)
			return pr_fail(r, -EBADMSG);
	}

	n = pr_u32(r);
	if (!r->err && n > s->nbuckets)
		return pr_fail(r, -EBADMSG);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint64_t id = pr_u64(r);
		struct dt_bucket *b;

		if (r->err)
			break;
		if (s->epochs == 0 || id > (s->epochs - 1) / s->coarse)
			return pr_fail(r, -EBADMSG);
		b = &s->buckets[id % s->nbuckets];
		if (b->set)
			return pr_fail(r, -EBADMSG);
		b->set = pr_set(r);
		b->id = id;
	}
	return r->err;
}

static bool config_equal(const struct dt_stats_config *a, const struct dt_stats_config *b)
{
	if (a->horizon_epochs != b->horizon_epochs || a->recent_epochs != b->recent_epochs ||
	    a->coarse_epochs != b->coarse_epochs || a->region_pages != b->region_pages ||
	    a->nwindows != b->nwindows || a->nwindows > DT_STATS_MAX_WINDOWS)
		return false;
	return memcmp(a->windows, b->windows, a->nwindows * sizeof(a->windows[0])) == 0;
}

int dt_stats_load(const void *p, size_t len, size_t *ret_used, const struct dt_stats_config *cfg,
		  uint32_t nvcpus, struct dt_stats **ret)
{
	struct pr r = {.in = {.p = p, .n = len}};
	struct dt_stats_config fc = {0};
	struct dt_stats *s = NULL;
	uint64_t epochs, tentries, tpages, first;
	uint32_t version, fvcpus, head_crc, crc, le = 0;
	char magic[8];
	int err;

	crc_table(r.tab);
	pr_bytes(&r, magic, sizeof(magic));
	version = pr_u32(&r);
	fvcpus = pr_u32(&r);
	fc.horizon_epochs = pr_u32(&r);
	fc.recent_epochs = pr_u32(&r);
	fc.coarse_epochs = pr_u32(&r);
	fc.region_pages = pr_u32(&r);
	fc.nwindows = pr_u32(&r);
	for (uint32_t i = 0; i < DT_STATS_MAX_WINDOWS; i++)
		fc.windows[i] = pr_u32(&r);
	epochs = pr_u64(&r);
	tentries = pr_u64(&r);
	tpages = pr_u64(&r);
	head_crc = r.crc;
	crc = pr_u32(&r);
	if (r.err)
		goto out;
	if (memcmp(magic, PERSIST_MAGIC, 8) != 0 || version != PERSIST_VERSION || crc != head_crc ||
	    epochs > MAX_EPOCHS) {
		pr_fail(&r, -EBADMSG);
		goto out;
	}
	if (fvcpus != nvcpus || !config_equal(&fc, cfg)) {
		pr_fail(&r, -ESTALE);
		goto out;
	}
	err = dt_stats_new(cfg, nvcpus, &s);
	if (err < 0) {
		pr_fail(&r, err);
		goto out;
	}
	s->epochs = epochs;
	s->total_entries = tentries;
	s->total_pages = tpages;

	first = epochs > s->horizon ? epochs - s->horizon : 0;
	if (epochs) {
		size_t alloc = epochs >= s->horizon ? s->horizon : epochs < 64 ? 64 : epochs;

		if (alloc > s->horizon)
			alloc = s->horizon;
		s->records = calloc(alloc, sizeof(*s->records));
		if (!s->records) {
			pr_fail(&r, -ENOMEM);
			goto out;
		}
		s->records_alloc = alloc;
	}
	for (uint64_t e = first; e < epochs && !r.err; e++) {
		struct dt_epoch_record *rec = &s->records[e % s->horizon];

		rec->epoch = pr_u64(&r);
		rec->end_us = pr_u64(&r);
		rec->pages = pr_u64(&r);
		rec->entries = pr_u64(&r);
		if (!r.err && (rec->epoch != e || rec->pages > UINT32_MAX + UINT64_C(1)))
			pr_fail(&r, -EBADMSG);
	}
	if (read_sets(&r, s) < 0 || read_index(&r, s->ls, epochs) < 0)
		goto out;
	for (uint32_t v = 0; v < nvcpus; v++) {
		s->vcpus[v].entries = pr_u64(&r);
		if (read_index(&r, s->vcpus[v].ls, epochs) < 0)
			goto out;
	}
	if (pr_u32(&r) != PERSIST_END && !r.err)
		pr_fail(&r, -EBADMSG);
	crc = r.crc;
	if (pr_raw(&r, &le, sizeof(le)) < 0)
		goto out;
	if (le32toh(le) != crc || (!ret_used && r.in.n))
		pr_fail(&r, -EBADMSG);
out:
	if (r.err) {
		dt_stats_free(s);
		return r.err;
	}
	if (ret_used)
		*ret_used = len - r.in.n;
	*ret = s;
	return 0;
}

/* ---- journal ------------------------------------------------------------- */

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
	return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
	return p + 8;
}

static uint8_t *put_leb(uint8_t *p, uint32_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

int dt_persist_frame(const struct dt_closed_epoch *e, struct dt_buf *out)
{
	size_t setlen = e->set ? roaring_bitmap_portable_size_in_bytes(e->set) : 0, need, start;
	uint32_t tab[256];
	uint8_t *base, *p;

	need = 8 + 32 + 4 + setlen + 4 + 4;
	for (uint32_t v = 0; v < e->nvcpus; v++)
		need += 16 + (size_t)e->vcpus[v].n * 5;
	if (setlen > MAX_BLOB || need - 12 > MAX_BLOB)
		return -E2BIG;
	start = out->len;
	base = dt_buf_room(out, need);
	if (!base)
		return out->err;
	p = put_u32(base, JOURNAL_MAGIC);
	p += 4; /* length, below */
	p = put_u64(p, e->rec.epoch);
	p = put_u64(p, e->rec.end_us);
	p = put_u64(p, e->rec.pages);
	p = put_u64(p, e->rec.entries);
	p = put_u32(p, (uint32_t)setlen);
	if (setlen)
		p += roaring_bitmap_portable_serialize(e->set, (char *)p);
	p = put_u32(p, e->nvcpus);
	for (uint32_t v = 0; v < e->nvcpus; v++) {
		const struct dt_closed_vcpu *vc = &e->vcpus[v];
		uint8_t *len_at, *vstart;
		uint32_t prev = 0;

		p = put_u64(p, vc->entries);
		p = put_u32(p, vc->n);
		len_at = p;
		p += 4;
		vstart = p;
		for (uint32_t i = 0; i < vc->n; i++) {
			p = put_leb(p, vc->pages[i] - prev);
			prev = vc->pages[i];
		}
		put_u32(len_at, (uint32_t)(p - vstart));
	}
	put_u32(base + 4, (uint32_t)(p - base - 8));
	crc_table(tab);
	p = put_u32(p, crc_update(tab, 0, base, (size_t)(p - base)));
	out->len = start + (size_t)(p - base);
	return 0;
}

/* The next of n ascending pages from LEB128 deltas; false when malformed. */
static bool leb_next(struct dt_reader *c, uint32_t i, uint32_t *page)
{
	uint64_t d = 0;

	for (unsigned shift = 0;; shift += 7) {
		const uint8_t *b = dt_reader_take(c, 1);

		if (!b || shift > 28)
			return false;
		d |= (uint64_t)(*b & 0x7f) << shift;
		if (!(*b & 0x80))
			break;
	}
	if ((i > 0 && d == 0) || (uint64_t)*page + d > UINT32_MAX)
		return false;
	*page = (uint32_t)(*page + d);
	return true;
}

/* Check a frame's payload entirely, then apply it: nothing half-applied. */
static int journal_apply(struct dt_stats *s, const uint8_t *payload, size_t len)
{
	struct dt_reader c = {.p = payload, .n = len};
	struct dt_epoch_record rec;
	roaring_bitmap_t *set = NULL;
	const uint8_t *vstart;
	size_t vlen;
	uint32_t setlen;

	rec.epoch = dt_reader_u64le(&c);
	rec.end_us = dt_reader_u64le(&c);
	rec.pages = dt_reader_u64le(&c);
	rec.entries = dt_reader_u64le(&c);
	setlen = dt_reader_u32le(&c);
	if (c.bad || rec.epoch != s->epochs || setlen > c.n || (rec.pages == 0) != (setlen == 0))
		return -EBADMSG;
	if (setlen) {
		set = set_decode(c.p, setlen, s->iter, sizeof(s->iter) / sizeof(s->iter[0]));
		if (!set || roaring_bitmap_get_cardinality(set) != rec.pages)
			goto bad;
		dt_reader_take(&c, setlen);
	}
	if (dt_reader_u32le(&c) != s->nvcpus || c.bad)
		goto bad;
	vstart = c.p;
	vlen = c.n;
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		uint32_t n, nbytes, page = 0;
		struct dt_reader vc;

		dt_reader_u64le(&c);
		n = dt_reader_u32le(&c);
		nbytes = dt_reader_u32le(&c);
		if (c.bad || nbytes > c.n || n > nbytes)
			goto bad;
		vc = (struct dt_reader){.p = c.p, .n = nbytes};
		for (uint32_t i = 0; i < n; i++)
			if (!leb_next(&vc, i, &page))
				goto bad;
		if (vc.n)
			goto bad;
		dt_reader_take(&c, nbytes);
	}
	if (c.n)
		goto bad;

	/* Apply: the same pages into the open epoch, closed with the same record. */
	if (set) {
		roaring_uint32_iterator_t it;
		uint32_t got;

		roaring_init_iterator(set, &it);
		while ((got = roaring_read_uint32_iterator(&it, s->iter, 4096)) > 0)
			for (uint32_t i = 0; i < got; i++)
				dt_open_add(s->open, s->iter[i]);
		roaring_bitmap_free(set);
	}
	c = (struct dt_reader){.p = vstart, .n = vlen};
	for (uint32_t v = 0; v < s->nvcpus; v++) {
		struct dt_vcpu_stats *vcs = &s->vcpus[v];
		uint32_t n, page = 0;

		vcs->entries = dt_reader_u64le(&c);
		n = dt_reader_u32le(&c);
		dt_reader_u32le(&c);
		for (uint32_t i = 0; i < n; i++) {
			leb_next(&c, i, &page);
			dt_open_add(&vcs->open, page);
		}
	}
	s->open_entries = rec.entries;
	return dt_stats_close_epoch(s, rec.end_us, NULL);
bad:
	if (set)
		roaring_bitmap_free(set);
	return -EBADMSG;
}

int dt_stats_journal_replay(const void *p, size_t len, struct dt_stats *s,
			    uint64_t *ret_applied)
{
	struct pr r = {.in = {.p = p, .n = len}};
	uint64_t applied = 0;

	crc_table(r.tab);
	while (r.in.n > 0) {
		uint32_t head[2], flen, crc, le = 0;
		const uint8_t *payload;
		uint64_t epoch;

		r.crc = 0;
		if (pr_bytes(&r, head, sizeof(head)) < 0)
			break; /* a torn head */
		flen = le32toh(head[1]);
		if (le32toh(head[0]) != JOURNAL_MAGIC || flen < 40 || flen > MAX_BLOB) {
			pr_fail(&r, -EBADMSG);
			break;
		}
		payload = pr_span(&r, flen);
		crc = r.crc;
		if (!payload || pr_raw(&r, &le, sizeof(le)) < 0)
			break;
		if (le32toh(le) != crc) {
			pr_fail(&r, -EBADMSG);
			break;
		}
		memcpy(&epoch, payload, 8);
		epoch = le64toh(epoch);
		if (epoch < s->epochs)
			continue; /* already in the snapshot */
		if (pr_fail(&r, journal_apply(s, payload, flen)) < 0)
			break;
		applied++;
	}
	*ret_applied = applied;
	return r.err;
}
