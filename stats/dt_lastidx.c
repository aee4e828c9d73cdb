/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dt_lastidx.h"
#include "dt_plant.h"

#define CNT_SHIFT 8u /* counts allocated 256 epochs at a time */
#define CNT_SIZE  (1u << CNT_SHIFT)
#define TAB_MIN	  64u
#define INLINE_EP 2u /* blocks with up to 2 pages keep their epochs in the slot */
#define MIGRATE_PER_CLOSE 4096u /* old-table slots moved at each close's end */
#define SHRINK_MAX 16u /* a shrink divides the table by at most this */

struct lslot {
	uint32_t key; /* block (page / 64) + 1; 0 = empty */
	uint32_t cap; /* epochs the slot can hold; 0 = moved to the new table */
	uint64_t mask;
	union {
		uint32_t *ep;
		uint32_t in[INLINE_EP];
	} u;
};

struct dt_lastidx {
	uint32_t horizon;
	uint64_t epochs; /* closed */
	const struct dt_windows *win;

	struct lslot *tab;
	uint32_t tcap, tlg, tused, sweep;
	/*
	 * A rehash in progress: the table before it, whose slots move to tab
	 * a few at a time (pace per insertion, more at each close's end). A
	 * block is in at most one of the two; a moved slot keeps its key, so
	 * the probe chains through it stay whole, with cap 0.
	 */
	struct lslot *otab;
	uint32_t ocap, olg, oleft, opos, pace; /* oleft: slots not yet moved */
	uint8_t plant; /* test builds: 1 = lookups skip otab, 2 = they skip tab */
	uint64_t held;	   /* pages present in the index */
	uint32_t rkey;	   /* reserving: last block of the previous batch... */
	uint64_t rmask;	   /* ...and its pages, for a block split across batches */
	size_t ep_bytes;   /* heap held by out-of-slot epoch arrays */

	uint32_t **cnt;	 /* [nchunks][CNT_SIZE], by epoch % horizon */
	uint64_t *csum;	 /* per chunk */
	uint32_t nchunks, nalloc;
	uint64_t total; /* D(horizon) */
	uint64_t wss[DT_STATS_MAX_WINDOWS];

	/* Close in progress. */
	uint64_t leave[DT_STATS_MAX_WINDOWS], leave_h, dec;
	uint64_t rem[DT_STATS_MAX_WINDOWS + 1];
};

int dt_lastidx_new(uint32_t horizon, const struct dt_windows *win, struct dt_lastidx **ret)
{
	struct dt_lastidx *ls;

	if (horizon == 0)
		return -EINVAL;
	ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->horizon = horizon;
	ls->win = win;
	ls->nchunks = (horizon + CNT_SIZE - 1) / CNT_SIZE;
	ls->plant = dt_plant("rehash-new-only") ? 1 : dt_plant("rehash-old-only") ? 2 : 0;
	*ret = ls;
	return 0;
}

static uint32_t *slot_ep(struct lslot *s) { return s->cap > INLINE_EP ? s->u.ep : s->u.in; }

static const uint32_t *slot_cep(const struct lslot *s)
{
	return s->cap > INLINE_EP ? s->u.ep : s->u.in;
}

static void slot_release(struct dt_lastidx *ls, struct lslot *s)
{
	if (s->cap > INLINE_EP) {
		free(s->u.ep);
		ls->ep_bytes -= s->cap * sizeof(uint32_t);
	}
}

static const struct lslot *slot_next(const struct dt_lastidx *ls, uint64_t *pos);

struct dt_lastidx *dt_lastidx_free(struct dt_lastidx *ls)
{
	const struct lslot *s;

	if (!ls)
		return NULL;
	for (uint64_t pos = 0; (s = slot_next(ls, &pos));)
		slot_release(ls, (struct lslot *)s);
	free(ls->tab);
	free(ls->otab);
	for (uint32_t c = 0; ls->cnt && c < ls->nchunks; c++)
		free(ls->cnt[c]);
	free(ls->cnt);
	free(ls->csum);
	free(ls);
	return NULL;
}

/* ---- the hash of 64-page blocks ------------------------------------------ */

/*
 * Consecutive blocks land in consecutive slots (a VM's page indexes are
 * dense and a close walks them in order, so the walk is sequential in
 * memory); the high bits are mixed in so the index space wraps evenly.
 */
static uint32_t home_in(uint32_t cap, uint32_t lg, uint32_t key)
{
	return (key + (lg < 32 ? key >> lg : 0) * 0x9e3779b1u) & (cap - 1);
}

static uint32_t home(const struct dt_lastidx *ls, uint32_t key)
{
	return home_in(ls->tcap, ls->tlg, key);
}

static struct lslot *probe(struct lslot *tab, uint32_t cap, uint32_t lg, uint32_t key)
{
	if (!cap)
		return NULL;
	for (uint32_t i = home_in(cap, lg, key);; i = (i + 1) & (cap - 1)) {
		if (tab[i].key == key)
			return &tab[i];
		if (tab[i].key == 0)
			return NULL;
	}
}

/* The block's slot in whichever table holds it, or NULL. */
static struct lslot *tab_find(const struct dt_lastidx *ls, uint32_t key)
{
	struct lslot *s = ls->plant == 2 && ls->otab ? NULL : probe(ls->tab, ls->tcap, ls->tlg, key);

	if (s || !ls->otab || ls->plant == 1)
		return s;
	s = probe(ls->otab, ls->ocap, ls->olg, key);
	return s && s->cap ? s : NULL; /* a moved slot's block is not in tab: gone since */
}

/*
 * Every slot holding a block, the old table's first: *pos from 0 on,
 * NULL at the end. Iterating while nothing is inserted, moved or deleted.
 */
static const struct lslot *slot_next(const struct dt_lastidx *ls, uint64_t *pos)
{
	for (; *pos < (uint64_t)ls->ocap + ls->tcap; ++*pos) {
		const struct lslot *s = *pos < ls->ocap ? &ls->otab[*pos] : &ls->tab[*pos - ls->ocap];

		if (s->key && s->cap) {
			++*pos;
			return s;
		}
	}
	return NULL;
}

/* Into the new table; the caller made sure it has room. */
static struct lslot *tab_insert(struct dt_lastidx *ls, const struct lslot *s)
{
	uint32_t i = home(ls, s->key);

	while (ls->tab[i].key)
		i = (i + 1) & (ls->tcap - 1);
	ls->tab[i] = *s;
	ls->tused++;
	return &ls->tab[i];
}

/*
 * Move up to n of the old table's slots (empty or not) into the new one;
 * the old table goes once none is left. Slots in the new table stay where
 * they are (insertion moves none).
 */
static void tab_migrate(struct dt_lastidx *ls, uint32_t n)
{
	while (ls->otab && n--) {
		struct lslot *s = &ls->otab[ls->opos++];

		if (s->key && s->cap) {
			tab_insert(ls, s);
			s->cap = 0;
			ls->oleft--;
		}
		if (!ls->oleft || ls->opos == ls->ocap) {
			free(ls->otab);
			ls->otab = NULL;
			ls->ocap = ls->olg = ls->oleft = ls->opos = 0;
		}
	}
}

/*
 * Rehash into a table of cap slots, incrementally: the current table
 * becomes the old one (a rehash still in progress completes first). Its
 * blocks move `pace` slots per insertion, fast enough that the new table
 * is at most half full when the last one has moved: the new table holds
 * at most cap / 2 - oleft more blocks before that, and pace * (that / 2)
 * >= ocap.
 */
static int tab_resize(struct dt_lastidx *ls, uint32_t cap)
{
	struct lslot *tab;
	uint32_t room;

	tab_migrate(ls, UINT32_MAX);
	if (cap / 2 <= ls->tused)
		return -EINVAL; /* not reached: callers keep the new table at most half full */
	tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	if (ls->tused) {
		ls->otab = ls->tab;
		ls->ocap = ls->tcap;
		ls->olg = ls->tlg;
		ls->oleft = ls->tused;
		ls->opos = 0;
	} else {
		free(ls->tab);
	}
	room = cap / 2 - ls->tused;
	ls->pace = (uint32_t)(2 * (uint64_t)ls->ocap / room + 1);
	ls->tab = tab;
	ls->tcap = cap;
	ls->tlg = (uint32_t)__builtin_ctz(cap);
	ls->tused = 0;
	return 0;
}

/* Blocks in either table. */
static uint32_t tab_count(const struct dt_lastidx *ls) { return ls->tused + ls->oleft; }

/* A new block (not in either table), growing the table first if need be. */
static int tab_add(struct dt_lastidx *ls, const struct lslot *s, struct lslot **ret)
{
	/* At most half full: short probes, and an empty slot always ends them. */
	if ((tab_count(ls) + 1) * 2 > ls->tcap) {
		int r = tab_resize(ls, ls->tcap ? ls->tcap * 2 : TAB_MIN);

		if (r < 0)
			return r;
	}
	*ret = tab_insert(ls, s);
	tab_migrate(ls, ls->pace);
	return 0;
}

/* Backward-shift deletion (new table) keeps probe chains intact without tombstones. */
static void tab_delete(struct dt_lastidx *ls, uint32_t i)
{
	uint32_t m = ls->tcap - 1;

	for (uint32_t j = (i + 1) & m; ls->tab[j].key; j = (j + 1) & m) {
		uint32_t h = home(ls, ls->tab[j].key);

		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (((j - h) & m) >= ((j - i) & m)) {
			ls->tab[i] = ls->tab[j];
			i = j;
		}
	}
	ls->tab[i].key = 0;
	ls->tused--;
}

static int slot_grow(struct dt_lastidx *ls, struct lslot *s, uint32_t need)
{
	uint32_t cap = (need + 7) & ~7u, *ep;

	if (need <= INLINE_EP) {
		s->cap = INLINE_EP; /* an empty new slot */
		return 0;
	}
	if (cap > 64)
		cap = 64;
	if (s->cap > INLINE_EP) {
		ep = realloc(s->u.ep, cap * sizeof(*ep));
		if (!ep)
			return -ENOMEM;
		ls->ep_bytes -= s->cap * sizeof(*ep);
	} else {
		ep = malloc(cap * sizeof(*ep));
		if (!ep)
			return -ENOMEM;
		memcpy(ep, s->u.in, sizeof(s->u.in));
	}
	ls->ep_bytes += cap * sizeof(*ep);
	s->u.ep = ep;
	s->cap = cap;
	return 0;
}

/* Epochs live in the last `lim` closed epochs: age = epochs - e in [1, lim]. */
static uint64_t block_live(const struct lslot *s, uint64_t mask, uint32_t e32, uint32_t lim)
{
	const uint32_t *ep = slot_cep(s);
	uint64_t m = s->mask, live = 0;

	for (uint32_t r = 0; m; r++, m &= m - 1) {
		uint64_t bit = m & -m;

		if ((mask & bit) && (uint32_t)(e32 - ep[r]) <= lim)
			live |= bit;
	}
	return live;
}

/* ---- per-epoch counts ---------------------------------------------------- */

static uint32_t cnt_get(const struct dt_lastidx *ls, uint64_t epoch)
{
	uint32_t pos = (uint32_t)(epoch % ls->horizon);
	const uint32_t *c = ls->cnt ? ls->cnt[pos >> CNT_SHIFT] : NULL;

	return c ? c[pos & (CNT_SIZE - 1)] : 0;
}

/* ---- closing ------------------------------------------------------------- */

/* One block of the epoch: room for its new pages. */
static int reserve_block(struct dt_lastidx *ls, uint32_t key, uint64_t newmask)
{
	struct lslot *s = tab_find(ls, key);
	uint32_t need;

	if (!s) {
		struct lslot n = {.key = key, .cap = INLINE_EP};
		int r = tab_add(ls, &n, &s);

		if (r < 0)
			return r;
	}
	if (key == ls->rkey)
		newmask |= ls->rmask;
	ls->rkey = key;
	ls->rmask = newmask;
	need = (uint32_t)__builtin_popcountll(s->mask | newmask);
	if (need > s->cap)
		return slot_grow(ls, s, need);
	return 0;
}

int dt_lastidx_reserve(struct dt_lastidx *ls, const uint32_t *pages, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t key = (pages[i] >> 6) + 1;
		uint64_t newmask = 0;
		int r;

		for (; i < n && (pages[i] >> 6) + 1 == key; i++)
			newmask |= UINT64_C(1) << (pages[i] & 63);
		r = reserve_block(ls, key, newmask);
		if (r < 0)
			return r;
	}
	return 0;
}

#define RESERVE_AHEAD 8 /* blocks between prefetching a home slot and probing it */

int dt_lastidx_reserve_blocks(struct dt_lastidx *ls, const struct dt_block *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r;

		/* Scattered blocks miss the cache in the hash: start the next misses now. */
		if (i + RESERVE_AHEAD < n && ls->tcap)
			__builtin_prefetch(&ls->tab[home(ls, b[i + RESERVE_AHEAD].block + 1)], 1);
		r = reserve_block(ls, b[i].block + 1, b[i].mask);

		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Make sure count chunk c exists, and the chunk table with it (both are
 * given back while nothing is retained).
 */
static int cnt_chunk(struct dt_lastidx *ls, uint32_t c)
{
	if (!ls->cnt) {
		ls->cnt = calloc(ls->nchunks, sizeof(*ls->cnt));
		ls->csum = calloc(ls->nchunks, sizeof(*ls->csum));
		if (!ls->cnt || !ls->csum) {
			free(ls->cnt);
			free(ls->csum);
			ls->cnt = NULL;
			ls->csum = NULL;
			return -ENOMEM;
		}
	}
	if (ls->cnt[c])
		return 0;
	ls->cnt[c] = calloc(CNT_SIZE, sizeof(**ls->cnt));
	if (!ls->cnt[c])
		return -ENOMEM;
	ls->nalloc++;
	return 0;
}

int dt_lastidx_reserve_epoch(struct dt_lastidx *ls, uint64_t npages)
{
	uint32_t c = (uint32_t)(ls->epochs % ls->horizon) >> CNT_SHIFT;

	ls->rkey = 0; /* the epoch's pages are all reserved */
	if (!npages)
		return 0;
	return cnt_chunk(ls, c);
}

void dt_lastidx_begin(struct dt_lastidx *ls)
{
	uint64_t now = ls->epochs;

	for (uint32_t i = 0; i < ls->win->n; i++)
		ls->leave[i] = now >= ls->win->w[i] ? cnt_get(ls, now - ls->win->w[i]) : 0;
	ls->leave_h = now >= ls->horizon ? cnt_get(ls, now - ls->horizon) : 0;
	memset(ls->rem, 0, sizeof(ls->rem));
	ls->dec = 0;
}

/*
 * Pages of one block dirtied in epoch `now`: move their counts to `now`.
 * One pass over the block's pages, old and new, ascending: the epochs are
 * rebuilt in rank order in a local array (reading the old ones while
 * writing the new ones in place stalls on the overlap) and copied back.
 * Dirty masks are random, so nothing branches per page. The slot has room
 * for every page (reserved).
 */
static void block_update_dense(struct dt_lastidx *ls, struct lslot *s, uint64_t newmask,
			       uint64_t now, uint32_t now_pos)
{
	const uint8_t *k = ls->win->k;
	uint32_t now32 = (uint32_t)now, h = ls->horizon, *ep = slot_ep(s), out[64];
	uint64_t old = s->mask, all = old | newmask, dec = 0;
	uint32_t ro = 0, n = 0;

	for (uint64_t m = all; m; m &= m - 1, n++) {
		int b = __builtin_ctzll(m);
		uint32_t inold = (uint32_t)(old >> b) & 1, innew = (uint32_t)(newmask >> b) & 1;
		/* Masks, not ?: the compiler turns those into branches here. */
		uint32_t e = (ep[ro < s->cap ? ro : 0] & -inold) | (now32 & (inold - 1));
		uint32_t age = now32 - e;
		/*
		 * Only a page that was present and is dirty again moves its
		 * count; age 0 = already moved to this epoch (a guard, the
		 * input is distinct); a dirtying that left the horizon is no
		 * longer counted anywhere. Not live: a zero change at this
		 * epoch's count, which is reserved (the epoch has pages).
		 */
		uint32_t live = inold & innew & (age != 0) & (age < h);
		uint32_t a = age & -live, pos = now_pos - a + (h & -(uint32_t)(now_pos < a));

		ls->cnt[pos >> CNT_SHIFT][pos & (CNT_SIZE - 1)] -= live;
		ls->csum[pos >> CNT_SHIFT] -= live;
		ls->rem[k[a]] += live;
		dec += live;
		out[n] = (now32 & -innew) | (e & (innew - 1));
		ro += inold;
	}
	memcpy(ep, out, n * sizeof(*ep));
	ls->dec += dec;
	ls->held += n - ro;
	s->mask = all;
}

/*
 * The same for a block holding many more pages than the epoch dirtied in
 * it (a sparse epoch over a long history): only the dirtied pages are
 * visited, each found by its rank; a new page moves the epochs above it
 * up by one. Work per dirty page, not per retained page.
 */
static void block_update_sparse(struct dt_lastidx *ls, struct lslot *s, uint64_t newmask,
				uint64_t now, uint32_t now_pos)
{
	const uint8_t *k = ls->win->k;
	uint32_t now32 = (uint32_t)now, h = ls->horizon, *ep = slot_ep(s);
	uint64_t mask = s->mask;
	uint32_t n = (uint32_t)__builtin_popcountll(mask);

	for (uint64_t m = newmask; m; m &= m - 1) {
		uint64_t bit = m & -m;
		uint32_t r = (uint32_t)__builtin_popcountll(mask & (bit - 1));

		if (!(mask & bit)) {
			memmove(ep + r + 1, ep + r, (n - r) * sizeof(*ep));
			ep[r] = now32;
			mask |= bit;
			n++;
			ls->held++;
			continue;
		}
		uint32_t age = now32 - ep[r];

		ep[r] = now32;
		/* As in the dense pass: age 0 is a guard, past the horizon counts nowhere. */
		if (age == 0 || age >= h)
			continue;
		uint32_t pos = now_pos >= age ? now_pos - age : now_pos + h - age;

		ls->cnt[pos >> CNT_SHIFT][pos & (CNT_SIZE - 1)]--;
		ls->csum[pos >> CNT_SHIFT]--;
		ls->rem[k[age]]++;
		ls->dec++;
	}
	s->mask = mask;
}

/* The dense pass is branch-free per page, the sparse one costs a rank per page. */
#define SPARSE_RATIO 4u

static void block_update(struct dt_lastidx *ls, struct lslot *s, uint64_t newmask, uint64_t now,
			 uint32_t now_pos)
{
	uint32_t nnew = (uint32_t)__builtin_popcountll(newmask);

	if (nnew * SPARSE_RATIO < (uint32_t)__builtin_popcountll(s->mask))
		block_update_sparse(ls, s, newmask, now, now_pos);
	else
		block_update_dense(ls, s, newmask, now, now_pos);
}

#define UPDATE_AHEAD 32 /* blocks looked up at once */
#define PREFETCH_DIST 8	 /* blocks between prefetching epochs and using them */

static void prefetch_ep(const struct lslot *s)
{
	for (uint32_t c = 0; s->cap > INLINE_EP && c < s->cap; c += 16)
		__builtin_prefetch(s->u.ep + c, 1);
}

/*
 * Each block's epochs are a cache miss of their own: look up a batch of
 * blocks (independent loads that overlap), then prefetch each block's
 * epochs PREFETCH_DIST blocks before updating it, so the misses overlap
 * instead of queueing one behind the other.
 */
static void update_batch(struct dt_lastidx *ls, const struct dt_block *b, uint32_t n)
{
	struct lslot *q[UPDATE_AHEAD];
	uint64_t now = ls->epochs;
	uint32_t now_pos = (uint32_t)(now % ls->horizon);

	for (uint32_t j = 0; j < n; j++)
		__builtin_prefetch(&ls->tab[home(ls, b[j].block + 1)]);
	for (uint32_t j = 0; j < n; j++)
		q[j] = tab_find(ls, b[j].block + 1); /* reserved */
	for (uint32_t j = 0; j < n && j < PREFETCH_DIST; j++)
		prefetch_ep(q[j]);
	for (uint32_t j = 0; j < n; j++) {
		if (j + PREFETCH_DIST < n)
			prefetch_ep(q[j + PREFETCH_DIST]);
		block_update(ls, q[j], b[j].mask, now, now_pos);
	}
}

void dt_lastidx_update_blocks(struct dt_lastidx *ls, const struct dt_block *b, size_t n)
{
	for (size_t i = 0; i < n; i += UPDATE_AHEAD)
		update_batch(ls, b + i, n - i < UPDATE_AHEAD ? (uint32_t)(n - i) : UPDATE_AHEAD);
}

void dt_lastidx_update(struct dt_lastidx *ls, const uint32_t *pages, size_t n)
{
	struct dt_block b[UPDATE_AHEAD];

	for (size_t i = 0; i < n;) {
		uint32_t nb = 0;

		for (; nb < UPDATE_AHEAD && i < n; nb++) {
			b[nb] = (struct dt_block){ .block = pages[i] >> 6 };
			for (; i < n && pages[i] >> 6 == b[nb].block; i++)
				b[nb].mask |= UINT64_C(1) << (pages[i] & 63);
		}
		update_batch(ls, b, nb);
	}
}

/*
 * Advance the sweep (over the new table: the old one's blocks are swept
 * once they have moved); at the end of a pass, shrink a mostly empty
 * table. Only then: rehashing reorders the slots, and a pass cut short by
 * it would leave stale pages behind for another pass. The new table is
 * left at most a quarter full (room for the old one's slots to move at a
 * bounded pace) and at least 1/SHRINK_MAX of the old. Returns true at the end.
 */
static bool sweep_next(struct dt_lastidx *ls)
{
	if (++ls->sweep < ls->tcap)
		return false;
	ls->sweep = 0;
	if (!ls->otab && ls->tcap > TAB_MIN && ls->tused * 8 < ls->tcap) {
		uint32_t cap = ls->tcap;

		while (cap / 2 >= TAB_MIN && ls->tused * 4 <= cap / 2 && cap / 2 >= ls->tcap / SHRINK_MAX)
			cap /= 2;
		tab_resize(ls, cap); /* failure keeps the larger table */
	}
	return true;
}

/* Free the stale pages of a slice of the hash; called once per close. */
static void sweep(struct dt_lastidx *ls)
{
	uint32_t e32 = (uint32_t)ls->epochs, budget, quarter = ls->horizon / 4;

	if (!ls->tcap)
		return;
	budget = ls->tcap / (quarter ? quarter : 1) + 8;
	while (budget-- && ls->tused) {
		uint32_t i = ls->sweep;
		struct lslot *s = &ls->tab[i];
		uint64_t live;
		uint32_t *ep, n = 0;

		if (!s->key) {
			if (sweep_next(ls))
				break;
			continue;
		}
		ep = slot_ep(s);
		live = block_live(s, ~UINT64_C(0), e32, ls->horizon);
		if (live != s->mask) {
			for (uint64_t m = s->mask, r = 0; m; r++, m &= m - 1)
				if (live & (m & -m))
					ep[n++] = ep[r];
			ls->held -= (uint64_t)(__builtin_popcountll(s->mask) - (int)n);
			s->mask = live;
			if (n <= INLINE_EP && s->cap > INLINE_EP) {
				uint32_t *heap = s->u.ep;

				memcpy(s->u.in, heap, sizeof(s->u.in));
				free(heap);
				ls->ep_bytes -= s->cap * sizeof(uint32_t);
				s->cap = INLINE_EP;
			}
		}
		if (!s->mask) {
			slot_release(ls, s);
			tab_delete(ls, i); /* a later slot may have moved into i: look again */
			continue;
		}
		if (sweep_next(ls))
			break;
	}
	if (!tab_count(ls)) {
		free(ls->tab);
		ls->tab = NULL;
		ls->tcap = ls->tlg = 0;
		ls->sweep = 0;
	}
}

void dt_lastidx_end(struct dt_lastidx *ls, uint64_t npages)
{
	uint32_t pos = (uint32_t)(ls->epochs % ls->horizon), c = pos >> CNT_SHIFT;
	uint64_t cum = 0;

	if (ls->cnt && ls->cnt[c]) {
		/* The slot held the epoch that just left the horizon. */
		ls->csum[c] += npages - ls->cnt[c][pos & (CNT_SIZE - 1)];
		ls->cnt[c][pos & (CNT_SIZE - 1)] = (uint32_t)npages; /* reserved if npages */
	}
	ls->total = ls->total - ls->leave_h - ls->dec + npages;
	for (uint32_t i = 0; i < ls->win->n; i++) {
		cum += ls->rem[i];
		ls->wss[i] = ls->wss[i] - ls->leave[i] - cum + npages;
	}
	ls->epochs++;
	tab_migrate(ls, MIGRATE_PER_CLOSE); /* a table rehashing with few insertions */
	for (uint32_t i = 0; ls->nalloc && i < ls->nchunks; i++) {
		if (ls->cnt[i] && !ls->csum[i]) {
			free(ls->cnt[i]);
			ls->cnt[i] = NULL;
			ls->nalloc--;
		}
	}
	if (ls->cnt && !ls->nalloc) {
		free(ls->cnt);
		free(ls->csum);
		ls->cnt = NULL;
		ls->csum = NULL;
	}
	sweep(ls);
}

/* ---- queries ------------------------------------------------------------- */

uint64_t dt_lastidx_epochs(const struct dt_lastidx *ls) { return ls->epochs; }

uint64_t dt_lastidx_wss(const struct dt_lastidx *ls, uint32_t i) { return ls->wss[i]; }

uint64_t dt_lastidx_held(const struct dt_lastidx *ls) { return ls->held; }

bool dt_lastidx_rehashing(const struct dt_lastidx *ls) { return ls->otab != NULL; }

uint64_t dt_lastidx_count(const struct dt_lastidx *ls, uint32_t window)
{
	uint64_t sum = 0;

	if (window == 0)
		return 0;
	if (window >= ls->horizon || window >= ls->epochs)
		return ls->total;
	for (uint64_t e = ls->epochs - window; e < ls->epochs; e++)
		sum += cnt_get(ls, e);
	return sum;
}

static uint64_t range_mask(uint64_t block, uint64_t lo, uint64_t hi)
{
	uint64_t first = block * 64, m = ~UINT64_C(0);

	if (lo > first)
		m &= ~UINT64_C(0) << (lo - first);
	if (hi < first + 64)
		m &= (UINT64_C(1) << (hi - first)) - 1;
	return m;
}

/* Count a block's pages in range into hist[first limit not below its age]. */
static void block_hist(const struct lslot *s, uint64_t mask, uint32_t e32, const uint32_t *lim,
		       uint32_t n, uint64_t *hist)
{
	const uint32_t *ep = slot_cep(s);
	uint64_t m = s->mask;

	for (uint32_t r = 0; m; r++, m &= m - 1) {
		uint32_t age = e32 - ep[r], j = 0;

		if (!(mask & m & -m))
			continue;
		while (j < n && age > lim[j])
			j++;
		hist[j]++;
	}
}

/*
 * Pages [lo, hi) by age, in one pass: hist[j] counts those whose age fits
 * lim[j] but not lim[j-1] (ascending limits), hist[n] the older ones.
 */
static void range_hist(const struct dt_lastidx *ls, uint64_t lo, uint64_t hi, const uint32_t *lim,
		       uint32_t n, uint64_t *hist)
{
	uint32_t e32 = (uint32_t)ls->epochs;
	const struct lslot *sl;
	uint64_t blo, bhi;

	memset(hist, 0, (n + 1) * sizeof(*hist));
	if (lo >= hi || !tab_count(ls))
		return;
	if (hi > (UINT64_C(1) << 32))
		hi = UINT64_C(1) << 32;
	blo = lo / 64;
	bhi = (hi - 1) / 64;
	/* Probe the range's blocks, or scan the table, whichever is shorter. */
	if (bhi - blo < ls->tcap) {
		for (uint64_t b = blo; b <= bhi; b++) {
			sl = tab_find(ls, (uint32_t)b + 1);
			if (sl)
				block_hist(sl, range_mask(b, lo, hi), e32, lim, n, hist);
		}
		return;
	}
	for (uint64_t pos = 0; (sl = slot_next(ls, &pos));) {
		uint64_t b = sl->key - 1;

		if (b >= blo && b <= bhi)
			block_hist(sl, range_mask(b, lo, hi), e32, lim, n, hist);
	}
}

uint64_t dt_lastidx_count_range(const struct dt_lastidx *ls, uint32_t window, uint64_t lo,
				uint64_t hi)
{
	uint32_t lim = window < ls->horizon ? window : ls->horizon;
	uint64_t hist[2];

	if (window == 0)
		return 0;
	range_hist(ls, lo, hi, &lim, 1, hist);
	return hist[0];
}

/* Each window's age limit (ascending windows, at most DT_LASTIDX_MAX_AT). */
static int windows_lim(const struct dt_lastidx *ls, const uint32_t *windows, uint32_t n,
		       uint32_t *lim)
{
	if (n > DT_LASTIDX_MAX_AT)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0 && windows[i] < windows[i - 1])
			return -EINVAL;
		lim[i] = windows[i] < ls->horizon ? windows[i] : ls->horizon;
	}
	return 0;
}

/* Per-age-limit counts (hist, n + 1) into D at each window (out, n). */
static void hist_windows(const uint64_t *hist, const uint32_t *windows, uint32_t n, uint64_t *out)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++) {
		sum += hist[i];
		out[i] = windows[i] ? sum : 0;
	}
}

int dt_lastidx_count_range_at(const struct dt_lastidx *ls, uint64_t lo, uint64_t hi,
			      const uint32_t *windows, uint32_t n, uint64_t *out)
{
	uint32_t lim[DT_LASTIDX_MAX_AT] = {0};
	uint64_t hist[DT_LASTIDX_MAX_AT + 1];
	int r = windows_lim(ls, windows, n, lim);

	if (r < 0)
		return r;
	range_hist(ls, lo, hi, lim, n, hist);
	hist_windows(hist, windows, n, out);
	return 0;
}

int dt_lastidx_count_parts_at(const struct dt_lastidx *ls, const uint64_t *bounds,
			      uint32_t nparts, const uint32_t *windows, uint32_t n, uint64_t *out)
{
	uint32_t lim[DT_LASTIDX_MAX_AT] = {0}, e32 = (uint32_t)ls->epochs;
	uint64_t *hist;
	const struct lslot *sl;
	int r = windows_lim(ls, windows, n, lim);

	if (r < 0)
		return r;
	for (uint32_t p = 0; p < nparts; p++)
		if (bounds[p + 1] < bounds[p])
			return -EINVAL;
	hist = calloc((size_t)nparts * (n + 1), sizeof(*hist));
	if (!hist)
		return -ENOMEM;
	/* One scan in table order: each block adds to the parts it overlaps (mostly one). */
	for (uint64_t pos = 0; nparts && (sl = slot_next(ls, &pos));) {
		uint64_t first = (uint64_t)(sl->key - 1) * 64, lo = 0, hi = nparts;

		if (first + 64 <= bounds[0] || first >= bounds[nparts])
			continue;
		/* The last part starting at or below the block's first page. */
		while (hi - lo > 1) {
			uint64_t mid = (lo + hi) / 2;

			if (bounds[mid] <= first)
				lo = mid;
			else
				hi = mid;
		}
		for (uint64_t p = lo; p < nparts && bounds[p] < first + 64; p++)
			if (bounds[p + 1] > bounds[p] && bounds[p + 1] > first)
				block_hist(sl, range_mask(first / 64, bounds[p], bounds[p + 1]), e32,
					   lim, n, hist + p * (n + 1));
	}
	for (uint32_t p = 0; p < nparts; p++)
		hist_windows(hist + (size_t)p * (n + 1), windows, n, out + (size_t)p * n);
	free(hist);
	return 0;
}

void dt_lastidx_count_range_windows(const struct dt_lastidx *ls, uint64_t lo, uint64_t hi,
				    uint64_t *out)
{
	dt_lastidx_count_range_at(ls, lo, hi, ls->win->w, ls->win->n, out);
}

roaring_bitmap_t *dt_lastidx_union(const struct dt_lastidx *ls, uint32_t window)
{
	uint32_t e32 = (uint32_t)ls->epochs, lim = window < ls->horizon ? window : ls->horizon;
	roaring_bitmap_t *u = roaring_bitmap_create();
	uint32_t buf[1024], n = 0;
	const struct lslot *s;

	if (!u || window == 0)
		return u;
	for (uint64_t pos = 0; (s = slot_next(ls, &pos));) {
		uint64_t live;

		live = block_live(s, ~UINT64_C(0), e32, lim);
		if (n + 64 > sizeof(buf) / sizeof(buf[0])) {
			roaring_bitmap_add_many(u, n, buf);
			n = 0;
		}
		for (; live; live &= live - 1)
			buf[n++] = (s->key - 1) * 64 + (uint32_t)__builtin_ctzll(live);
	}
	roaring_bitmap_add_many(u, n, buf);
	return u;
}

#define QCHUNK_SHIFT 10u /* blocks per chunk of the quantile count: 64 Ki pages */

int64_t dt_lastidx_quantiles(const struct dt_lastidx *ls, uint32_t window, uint32_t n,
			     uint64_t *out)
{
	uint32_t e32 = (uint32_t)ls->epochs, lim = window < ls->horizon ? window : ls->horizon;
	uint32_t *chunk;
	uint64_t card = 0, cum = 0, c = 0;
	const struct lslot *s;

	if (!window)
		return 0;
	chunk = calloc(1u << (26 - QCHUNK_SHIFT), sizeof(*chunk));
	if (!chunk)
		return -ENOMEM;
	for (uint64_t pos = 0; (s = slot_next(ls, &pos));) {
		uint32_t k = (uint32_t)__builtin_popcountll(block_live(s, ~UINT64_C(0), e32, lim));

		chunk[(s->key - 1) >> QCHUNK_SHIFT] += k;
		card += k;
	}
	for (uint32_t i = 0; card && i < n; i++) {
		uint64_t rank = card * i / n;

		/* Ranks ascend: the chunks are walked forward once. */
		while (cum + chunk[c] <= rank)
			cum += chunk[c++];
		uint64_t left = rank - cum;

		for (uint32_t b = (uint32_t)c << QCHUNK_SHIFT;; b++) {
			const struct lslot *sl = tab_find(ls, b + 1);
			uint64_t live = sl ? block_live(sl, ~UINT64_C(0), e32, lim) : 0;
			uint32_t k = (uint32_t)__builtin_popcountll(live);

			if (left < k) {
				for (; left; left--)
					live &= live - 1;
				out[i] = (uint64_t)b * 64 + (uint32_t)__builtin_ctzll(live);
				break;
			}
			left -= k;
		}
	}
	free(chunk);
	return (int64_t)card;
}

size_t dt_lastidx_memory(const struct dt_lastidx *ls)
{
	return sizeof(*ls) + ((size_t)ls->tcap + ls->ocap) * sizeof(*ls->tab) + ls->ep_bytes +
	       (ls->cnt ? ls->nchunks * (sizeof(*ls->cnt) + sizeof(*ls->csum)) : 0) +
	       (size_t)ls->nalloc * CNT_SIZE * sizeof(**ls->cnt);
}

/* ---- persistence ---------------------------------------------------------- */

int dt_lastidx_walk(const struct dt_lastidx *ls,
		    int (*fn)(uint32_t block, uint64_t mask, const uint32_t *ages, void *ud),
		    void *ud)
{
	uint32_t e32 = (uint32_t)ls->epochs, ages[64];
	const struct lslot *s;

	for (uint64_t pos = 0; (s = slot_next(ls, &pos));) {
		const uint32_t *ep;
		uint64_t live;
		uint32_t n = 0;
		int r;

		live = block_live(s, ~UINT64_C(0), e32, ls->horizon);
		if (!live)
			continue;
		ep = slot_cep(s);
		for (uint64_t m = s->mask, rk = 0; m; rk++, m &= m - 1)
			if (live & (m & -m))
				ages[n++] = e32 - ep[rk];
		r = fn(s->key - 1, live, ages, ud);
		if (r < 0)
			return r;
	}
	return 0;
}

void dt_lastidx_restore_begin(struct dt_lastidx *ls, uint64_t epochs) { ls->epochs = epochs; }

int dt_lastidx_restore_block(struct dt_lastidx *ls, uint32_t block, uint64_t mask,
			     const uint32_t *ages)
{
	uint64_t lim = ls->epochs < ls->horizon ? ls->epochs : ls->horizon;
	uint32_t n = (uint32_t)__builtin_popcountll(mask), e32 = (uint32_t)ls->epochs, *ep;
	struct lslot sl, *s;
	int r;

	if (!mask || block > (UINT32_MAX >> 6))
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++)
		if (ages[i] < 1 || ages[i] > lim)
			return -EBADMSG;
	if (tab_find(ls, block + 1))
		return -EBADMSG;
	/* Counts first: a failure then leaves no half-inserted block behind. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pos = (uint32_t)((ls->epochs - ages[i]) % ls->horizon);

		r = cnt_chunk(ls, pos >> CNT_SHIFT);
		if (r < 0)
			return r;
	}
	sl = (struct lslot){ .key = block + 1, .cap = INLINE_EP };
	r = slot_grow(ls, &sl, n);
	if (r < 0)
		return r;
	sl.mask = mask;
	ep = slot_ep(&sl);
	for (uint32_t i = 0; i < n; i++)
		ep[i] = e32 - ages[i];
	r = tab_add(ls, &sl, &s);
	if (r < 0) {
		slot_release(ls, &sl);
		return r;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pos = (uint32_t)((ls->epochs - ages[i]) % ls->horizon);

		ls->cnt[pos >> CNT_SHIFT][pos & (CNT_SIZE - 1)]++;
		ls->csum[pos >> CNT_SHIFT]++;
		ls->total++;
		/* Window i holds an age q when w[i] >= q: k[q - 1] is the first such. */
		for (uint32_t w = ls->win->k[ages[i] - 1]; w < ls->win->n; w++)
			ls->wss[w]++;
	}
	ls->held += n;
	return 0;
}

void dt_lastidx_restore_end(struct dt_lastidx *ls) { ls->sweep = 0; }
