/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-VM dirty-page statistics: pure code, no I/O, no globals, no logging.
 *
 * Pages are identified by a dense 32-bit page index assigned by the caller
 * (the daemon maps each memslot to a contiguous index range), so memory
 * depends on the pages dirtied, not on guest-physical layout or size.
 *
 * Time is counted in epochs (harvest ticks). Pages are added to the open
 * epoch; dt_stats_close_epoch() seals it. D(T), the distinct pages dirtied
 * in the last T epochs, is exact for every T up to the horizon.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_buf.h"

#define DT_STATS_MAX_WINDOWS 16

struct dt_stats_config {
	uint32_t horizon_epochs; /* longest window, e.g. 3600 at 1 s */
	uint32_t recent_epochs; /* per-epoch dirty sets kept exactly, e.g. 64 */
	uint32_t coarse_epochs; /* older sets coarsened into buckets of this many epochs */
	uint32_t region_pages; /* heatmap region size in pages (2 MiB / page size) */
	uint32_t nwindows; /* windows whose D(T) is computed at every epoch close */
	uint32_t windows[DT_STATS_MAX_WINDOWS]; /* in epochs, ascending, each <= horizon */
};

/* Figures of one closed epoch. */
struct dt_epoch_record {
	uint64_t epoch; /* 0-based sequence number */
	uint64_t end_us; /* CLOCK_MONOTONIC µs at close, as given by the caller */
	uint64_t pages; /* distinct pages dirtied in this epoch */
	uint64_t entries; /* page dirtyings added (ring entries + bitmap bits) */
};

struct dt_stats;

int dt_stats_new(const struct dt_stats_config *cfg, uint32_t nvcpus, struct dt_stats **ret);
struct dt_stats *dt_stats_free(struct dt_stats *s); /* NULL-safe, returns NULL */

/*
 * Add a dirty page to the open epoch. Hot path: buffered, no allocation
 * per call in the common case. A page from a ring also counts for its
 * vCPU; vcpu >= nvcpus is ignored for the per-vCPU figures.
 */
void dt_stats_add(struct dt_stats *s, uint32_t page);
void dt_stats_add_vcpu(struct dt_stats *s, uint32_t vcpu, uint32_t page);
/* Add the pages of a 64-page bitmap word: bit i set = page base + i. */
void dt_stats_add_word(struct dt_stats *s, uint32_t base, uint64_t bits);

/*
 * Seal the open epoch. Returns 0 or -ENOMEM (nothing recorded is lost then).
 * With ret, *ret is the epoch just closed, handed back whole and owned by
 * the caller: its record, its dirty set, each vCPU's pages and entry count.
 * It shares nothing with s, so any thread may read it (the state writer
 * encodes it as a journal frame, dt_persist_frame) and free it.
 */
struct dt_closed_epoch;
int dt_stats_close_epoch(struct dt_stats *s, uint64_t now_us, struct dt_closed_epoch **ret);

/*
 * The same close split into bounded steps, so that a huge epoch does not
 * hold the caller's event loop. begin seals the open epoch at once (pages
 * added from then on belong to the next one) and returns 0, -EBUSY while
 * another close is in progress, or -ENOMEM. Each step then does about
 * `budget` units of work (a unit is one 64-page block of the epoch's sets,
 * or its share of a chunk) and returns 1 while more remains, 0 when the
 * close is complete (*ret as for dt_stats_close_epoch when begin asked for
 * it, else NULL), or -ENOMEM: the close stays in progress, nothing is lost,
 * and a later step tries again.
 *
 * Until it completes every query answers as of the last closed epoch.
 * Queries that walk the last-dirty index (ranges, heatmap, layout, windows
 * that are not configured, saving) complete it first once its counts have
 * started to move, so their answers are of the new epoch, and exact either
 * way. dt_stats_close_epoch() returns -EBUSY while a split close is in
 * progress.
 */
/* A step's budget that keeps it to a few ms (bench_harvest --close-steps measures it). */
#define DT_STATS_CLOSE_BUDGET 8192u
int dt_stats_close_begin(struct dt_stats *s, uint64_t now_us, bool want_closed);
int dt_stats_close_step(struct dt_stats *s, uint64_t budget, struct dt_closed_epoch **ret);
bool dt_stats_closing(const struct dt_stats *s);
const struct dt_epoch_record *dt_closed_epoch_record(const struct dt_closed_epoch *e);
/* Heap it holds, about what its frame will take. */
size_t dt_closed_epoch_bytes(const struct dt_closed_epoch *e);
struct dt_closed_epoch *dt_closed_epoch_free(struct dt_closed_epoch *e); /* NULL-safe */

uint64_t dt_stats_epochs(const struct dt_stats *s); /* closed epochs */
const struct dt_stats_config *dt_stats_config(const struct dt_stats *s);

/*
 * D(T) for T = window epochs, as of the last closed epoch. Windows longer
 * than the history so far count the whole history. Exact for any window
 * (configured windows are precomputed and O(1)).
 */
uint64_t dt_stats_wss(const struct dt_stats *s, uint32_t window);
/* D(T) restricted to page indexes [lo, hi) (a memslot). */
uint64_t dt_stats_wss_range(const struct dt_stats *s, uint32_t window, uint32_t lo, uint32_t hi);
/* D at each of n (<= 64) ascending windows (epochs), restricted to pages [lo, hi), in one pass. */
int dt_stats_wss_range_at(const struct dt_stats *s, uint64_t lo, uint64_t hi,
			  const uint32_t *windows, uint32_t n, uint64_t *out);
/* D(T) restricted to [lo, hi) at every configured window (out[nwindows]), in one pass. */
void dt_stats_wss_range_curve(const struct dt_stats *s, uint32_t lo, uint32_t hi, uint64_t *out);
/* D(T) of the pages a vCPU's ring reported. */
uint64_t dt_stats_vcpu_wss(const struct dt_stats *s, uint32_t vcpu, uint32_t window);
/* Ring entries a vCPU reported since creation. */
uint64_t dt_stats_vcpu_entries(const struct dt_stats *s, uint32_t vcpu);
/* Totals since creation. */
uint64_t dt_stats_total_entries(const struct dt_stats *s);
uint64_t dt_stats_total_pages(const struct dt_stats *s); /* sum of per-epoch distinct pages */

/*
 * Per-epoch records, oldest first, for epochs >= since (the history keeps
 * the last horizon_epochs). Writes up to max and returns the number written.
 */
size_t dt_stats_history(const struct dt_stats *s, uint64_t since, struct dt_epoch_record *out,
			size_t max);

/*
 * Heatmap over the last `window` epochs: for each region (page index /
 * region_pages) with any dirtying, the distinct pages dirtied and the
 * number of (epoch, page) dirtyings. Regions in ascending order; returns
 * the number of regions written (up to max), or -ENOMEM.
 * Uses the exact recent sets and, beyond them, the coarsened buckets
 * (where a bucket counts once per page).
 */
struct dt_heat {
	uint32_t region;
	uint32_t pages;
	uint64_t dirtyings;
};
int dt_stats_heatmap(const struct dt_stats *s, uint32_t window, struct dt_heat *out, size_t max);
/* The same from region `from` on (a cursor: the region after the last one seen). */
int dt_stats_heatmap_from(const struct dt_stats *s, uint32_t window, uint32_t from,
			  struct dt_heat *out, size_t max);

/*
 * Where the pages dirtied in the last `window` epochs lie: out[i] = the
 * page of rank floor(i D / n) among the D distinct pages, ascending (n
 * parts with as many dirtied pages each). -ENODATA when none was dirtied.
 */
int dt_stats_page_quantiles(const struct dt_stats *s, uint32_t window, uint32_t n, uint64_t *out);

/*
 * The planner's layout by window: memory [0, memory) cut into nparts at
 * quantiles of the pages dirtied within the last (longest) window, bounds
 * (nparts + 1) from 0 to memory; parts[b * n + j] = distinct pages of part
 * b dirtied within windows[j] (ascending, epochs, n <= 64).
 */
int dt_stats_layout(const struct dt_stats *s, const uint32_t *windows, uint32_t n, uint64_t memory,
		    uint32_t nparts, uint64_t *bounds, uint64_t *parts);

/* Bytes of heap held by the history (for the memory benchmark and metrics). */
size_t dt_stats_memory(const struct dt_stats *s);

/*
 * The exact dirty set of a closed epoch still held in the recent sets, as
 * runs of consecutive page indexes in ascending order: fn(first, count, ud)
 * is called once per run and may stop the walk by returning < 0 (which is
 * then returned). -ENOENT if the epoch is not (or no longer) held exactly.
 */
int dt_stats_epoch_pages(const struct dt_stats *s, uint64_t epoch,
			 int (*fn)(uint32_t first, uint32_t count, void *ud), void *ud);
/* The same from page index `from` on (a run across it starts at it). */
int dt_stats_epoch_pages_from(const struct dt_stats *s, uint64_t epoch, uint32_t from,
			      int (*fn)(uint32_t first, uint32_t count, void *ud), void *ud);

/*
 * Persistence (dt_persist.c; see there for the format): encoding to and
 * decoding from bytes, no file is touched here. The closed epochs are
 * saved, not the open one (the daemon closes it before saving).
 *
 * dt_stats_save() appends the history to out (-ENOMEM, -E2BIG as out says).
 * dt_stats_load() decodes what dt_stats_save() wrote, the len bytes at p,
 * into new statistics for cfg and nvcpus: -EBADMSG for a truncated,
 * corrupt or inconsistent save, -ESTALE for a sound save made under
 * another configuration or vCPU count, -ENOMEM. With ret_used, bytes after
 * the save are left and *ret_used says where it ended; without, they are
 * -EBADMSG. Every figure equals the saved one after a load.
 */
int dt_stats_save(const struct dt_stats *s, struct dt_buf *out);
/*
 * The same without its two CRCs (zeros in their place), for a caller that
 * seals it on another thread: dt_persist_seal(p, len) on exactly the bytes
 * dt_stats_save_unsealed() appended makes them what dt_stats_save() writes
 * (-EINVAL when too short to be a save).
 */
int dt_stats_save_unsealed(const struct dt_stats *s, struct dt_buf *out);
int dt_persist_seal(uint8_t *p, size_t len);
int dt_stats_load(const void *p, size_t len, size_t *ret_used, const struct dt_stats_config *cfg,
		  uint32_t nvcpus, struct dt_stats **ret);

/*
 * Journal of closed epochs, for crash recovery between two saves.
 * dt_persist_frame() appends a closed epoch (dt_stats_close_epoch's *ret)
 * to out as one self-checking frame; it reads only e, so it runs on any
 * thread. dt_stats_journal_replay() applies the frames in the len bytes at
 * p that continue s (frames of epochs s already holds are skipped) until
 * their end or the first frame that is torn, corrupt or does not continue
 * s; returns 0 at a clean end, -EBADMSG when it stopped early (a torn tail
 * after a crash is expected), -ENOMEM; *ret_applied counts the epochs
 * applied in any case. A replayed epoch is exactly the epoch that was
 * closed.
 */
int dt_persist_frame(const struct dt_closed_epoch *e, struct dt_buf *out);
int dt_stats_journal_replay(const void *p, size_t len, struct dt_stats *s,
			    uint64_t *ret_applied);
