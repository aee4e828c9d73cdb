/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dtsim: a simulated VMM. It has no guest memory, only the metadata KVM
 * keeps for dirty logging: a write-protection bit per guest page, a dirty
 * ring per vCPU laid out in a memfd exactly as KVM lays out
 * struct kvm_dirty_gfn, and per-slot dirty bitmaps. Simulated vCPUs (and,
 * in ring+bitmap mode, a simulated DMA device) write pages chosen by a
 * seeded pattern; every write is also recorded as ground truth.
 *
 * Files: main.c (loop), options.c (command line), attach.c (daemon
 * connection, ops table, reconnect), guest.c (memory layout, protection,
 * writes, bitmap sync), pattern.c (PRNG and write patterns), ring.c (dirty
 * ring), truth.c (ground truth and the truth file), trace.c (write trace).
 */
#pragma once

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"
#include "dt_rng.h"
#include "libdirtytrack.h"

#define DTSIM_MAX_VCPUS	    4096
#define DTSIM_MAX_SLOTS	    512
#define DTSIM_MAX_MEMORY    (1ull << 40) /* 1 TiB: 32 MiB of protection bits at 4 KiB */
#define DTSIM_MAX_RATE	    1e9
#define DTSIM_RING_RSVD	    64 /* KVM_DIRTY_RING_RSVD_ENTRIES: soft-full at entries - 64 */
#define DTSIM_LOW_MEM_TOP   (3ull << 30) /* PC layout: RAM below the PCI hole ends at 3 GiB */
#define DTSIM_HIGH_MEM_BASE (4ull << 30) /* and resumes at 4 GiB */

enum dtsim_pattern_kind {
	DTSIM_UNIFORM,
	DTSIM_SEQUENTIAL,
	DTSIM_HOTCOLD,
	DTSIM_ZIPF,
	DTSIM_BURSTY,
	_DTSIM_PATTERN_MAX,
};

struct dtsim_opts {
	const char *connect;
	const char *name;
	const char *truth_path;
	const char *trace_path;
	uint8_t uuid[16];
	bool have_uuid;
	uint64_t memory_bytes;
	uint32_t page_size;
	uint32_t vcpus;
	uint32_t mode; /* enum dt_mode */
	enum dtsim_pattern_kind pattern;
	double rate;	      /* writes per second, all writers */
	uint64_t wss;	      /* pages */
	uint64_t duration_us; /* 0: until SIGINT/SIGTERM */
	uint64_t seed;
	uint32_t slots;
	uint32_t ring_entries;
	double dma_fraction;
	double dirty_limit;  /* per-vCPU writes per second, 0: none */
	double *vcpu_shares; /* vcpus entries, normalised to sum 1 */
	bool reconnect;
};

/* options.c: returns 0, 1 if --help was printed, or -EINVAL after printing why. */
int dtsim_opts_parse(int argc, char **argv, struct dtsim_opts *ret);
void dtsim_opts_done(struct dtsim_opts *o);
const char *dtsim_pattern_name(enum dtsim_pattern_kind p);

/* pattern.c ------------------------------------------------------------- */

struct dtsim_pattern {
	enum dtsim_pattern_kind kind;
	uint64_t wss;
	uint64_t hot; /* hotcold: pages in the hot set */
	/* zipf (s = 1) by rejection-inversion (Hörmann & Derflinger 1996) */
	double zipf_hx1, zipf_hn, zipf_s;
};

void dtsim_pattern_init(struct dtsim_pattern *p, enum dtsim_pattern_kind kind, uint64_t wss);
uint64_t dtsim_zipf_sample(const struct dtsim_pattern *p, struct dt_rng *r);

/* Next page (index into the working set) for one writer. */
static inline uint64_t dtsim_pattern_next(const struct dtsim_pattern *p, struct dt_rng *r,
					  uint64_t *cursor)
{
	uint64_t pg;

	switch (p->kind) {
	case DTSIM_SEQUENTIAL:
		pg = *cursor;
		*cursor = pg + 1 == p->wss ? 0 : pg + 1;
		return pg;
	case DTSIM_HOTCOLD:
		/* 90% of writes to the hottest 10%, the rest over the rest */
		if (p->hot == p->wss || dt_rng_below(r, 10) < 9)
			return dt_rng_below(r, p->hot);
		return p->hot + dt_rng_below(r, p->wss - p->hot);
	case DTSIM_ZIPF:
		return dtsim_zipf_sample(p, r);
	default:
		return dt_rng_below(r, p->wss);
	}
}

/* ring.c ---------------------------------------------------------------- */

struct dtsim_ring {
	struct dt_ring_entry *gfns; /* shared with the daemon */
	uint32_t entries;	    /* power of two */
	uint32_t dirty_index;	    /* next entry the "vCPU" pushes */
	uint32_t reset_index;	    /* next entry the "VMM" resets */
	int fd;			    /* sealed memfd */
	uint64_t pushes;
};

int dtsim_ring_new(uint32_t vcpu, uint32_t entries, struct dtsim_ring **ret);
struct dtsim_ring *dtsim_ring_free(struct dtsim_ring *r);
/* Un-reset entries in the ring. */
static inline uint32_t dtsim_ring_used(const struct dtsim_ring *r)
{
	return r->dirty_index - r->reset_index;
}
static inline bool dtsim_ring_soft_full(const struct dtsim_ring *r)
{
	return dtsim_ring_used(r) >= r->entries - DTSIM_RING_RSVD;
}
void dtsim_ring_bug(const struct dtsim_ring *r, const char *what) __attribute__((noreturn));

/* Push one dirty gfn, as kvm_dirty_ring_push() does. */
static inline void dtsim_ring_push(struct dtsim_ring *r, uint32_t slot, uint64_t offset)
{
	struct dt_ring_entry *e = &r->gfns[r->dirty_index & (r->entries - 1)];

	/* never overwrite: the caller stops at soft-full, so this is a bug */
	if (dtsim_ring_used(r) >= r->entries || __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) != 0)
		dtsim_ring_bug(r, "push onto an entry that is not free");
	e->slot = slot;
	e->offset = offset;
	__atomic_store_n(&e->flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
	r->dirty_index++;
	r->pushes++;
}

/* The daemon's harvest position: first entry from reset_index not flagged RESET. */
uint32_t dtsim_ring_fetch_index(const struct dtsim_ring *r);

/* guest.c --------------------------------------------------------------- */

struct dtsim_slot {
	uint32_t id; /* (as_id << 16) | slot id; as_id is always 0 */
	uint64_t gpa;
	uint64_t pages;
	uint64_t first;			 /* index of its first page in guest memory order */
	uint64_t *wp;			 /* 1 = write-protected (tracking armed) */
	uint64_t *log;			 /* bitmap mode: KVM's private dirty bitmap */
	struct dt_shared_bitmap *shared; /* bitmap modes */
};

struct dtsim_guest {
	uint32_t page_size;
	uint32_t mode;
	uint64_t pages; /* total guest pages */
	struct dtsim_slot *slots;
	uint32_t nslots;
	uint32_t *lookup; /* page >> lookup_shift -> slot holding that chunk's first page */
	unsigned lookup_shift;
	uint64_t bugs; /* invalid entries met while resetting */
};

int dtsim_guest_new(const struct dtsim_opts *o, struct dtsim_guest **ret);
struct dtsim_guest *dtsim_guest_free(struct dtsim_guest *g);

static inline struct dtsim_slot *dtsim_guest_slot(const struct dtsim_guest *g, uint64_t page)
{
	uint32_t s = g->lookup[page >> g->lookup_shift];

	while (s + 1 < g->nslots && page >= g->slots[s + 1].first)
		s++;
	return &g->slots[s];
}

static inline bool dtsim_test_and_clear(uint64_t *bits, uint64_t i)
{
	uint64_t m = 1ull << (i % 64);
	bool was = bits[i / 64] & m;

	bits[i / 64] &= ~m;
	return was;
}
static inline bool dtsim_test_and_set(uint64_t *bits, uint64_t i)
{
	uint64_t m = 1ull << (i % 64);
	bool was = bits[i / 64] & m;

	bits[i / 64] |= m;
	return was;
}

/* KVM_RESET_DIRTY_RINGS for one ring: returns entries reset. */
uint64_t dtsim_guest_reset_ring(struct dtsim_guest *g, struct dtsim_ring *r);
/* KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG into the shared bitmaps: words synced. */
uint64_t dtsim_guest_sync_bitmap(struct dtsim_guest *g);

/* trace.c --------------------------------------------------------------- */

struct dtsim_trace;
int dtsim_trace_open(const char *path, struct dtsim_trace **ret);
int dtsim_trace_close(struct dtsim_trace *t); /* flushes; NULL-safe */
int dtsim_trace_flush(struct dtsim_trace *t);

struct dtsim_trace_rec {
	uint64_t us;
	uint64_t gpa_page;
};
struct dtsim_trace {
	int fd;
	int error; /* first write error, sticky */
	size_t n, cap;
	struct dtsim_trace_rec *buf;
	uint64_t records;
};
static inline void dtsim_trace_add(struct dtsim_trace *t, uint64_t us, uint64_t gpa_page)
{
	if (t->n == t->cap)
		dtsim_trace_flush(t);
	/* x86-64 and aarch64 are little-endian, which the format fixes */
	t->buf[t->n].us = htole64(us);
	t->buf[t->n].gpa_page = htole64(gpa_page);
	t->n++;
	t->records++;
}

/* truth.c --------------------------------------------------------------- */

struct dtsim_writer_truth {
	uint64_t writes;
	uint64_t distinct;
	uint64_t logged; /* ring entries pushed / bitmap bits logged / DMA marks */
	uint64_t *seen;	 /* wss bits */
};

struct dtsim_truth {
	uint64_t wss;
	uint64_t *ever;	       /* wss bits */
	uint64_t *this_second; /* wss bits */
	uint64_t distinct;
	uint64_t second_distinct;
	uint64_t second;      /* current second of the run, from run_start_us */
	uint64_t seconds_max; /* ceil(--duration), 0: open-ended */
	uint64_t *per_second;
	size_t n_per_second, cap_per_second;
	bool started;
	uint64_t start_us, end_us;
	uint64_t writes;
	uint32_t nwriters; /* vcpus, plus the DMA device last */
	struct dtsim_writer_truth *w;
	/* counters */
	uint64_t ring_full_events;
	uint64_t resets; /* RESET_RINGS requests honoured */
	uint64_t entries_reset;
	uint64_t syncs; /* SYNC_BITMAP requests honoured */
	uint64_t words_synced;
	uint64_t skipped_writes; /* dropped by the catch-up cap */
	uint64_t reconnects;
	uint64_t run_start_us, run_end_us;
};

int dtsim_truth_init(struct dtsim_truth *t, uint64_t wss, uint32_t nwriters);
void dtsim_truth_done(struct dtsim_truth *t);
/*
 * Advance to the second that holds `now` (call before recording writes at
 * `now`; set run_start_us and seconds_max first).
 */
int dtsim_truth_tick(struct dtsim_truth *t, uint64_t now);
/* The run's first write happens at `now` (no-op once started). */
static inline void dtsim_truth_begin(struct dtsim_truth *t, uint64_t now)
{
	if (!t->started) {
		t->started = true;
		t->start_us = now;
	}
}
static inline void dtsim_truth_record(struct dtsim_truth *t, uint32_t writer, uint64_t page,
				      uint64_t now)
{
	struct dtsim_writer_truth *w = &t->w[writer];

	t->writes++;
	w->writes++;
	t->end_us = now;
	if (!dtsim_test_and_set(t->ever, page))
		t->distinct++;
	if (!dtsim_test_and_set(t->this_second, page))
		t->second_distinct++;
	if (!dtsim_test_and_set(w->seen, page))
		w->distinct++;
}
int dtsim_truth_write(struct dtsim_truth *t, const struct dtsim_opts *o,
		      const struct dtsim_guest *g, const char *uuid_text);

/* attach.c -------------------------------------------------------------- */

struct dtsim_writer {
	struct dt_rng rng;
	uint64_t cursor; /* sequential pattern */
	double rate;	 /* writes per second while active */
	bool bursty;
	uint64_t done;	/* scheduled writes consumed (made or skipped) */
	uint64_t cap;	/* most writes one tick may catch up: one second's worth */
	uint32_t index; /* truth index; vCPU number for vCPUs */
	bool dma;
	struct dtsim_ring *ring; /* ring modes, vCPUs only */
	bool stalled;		 /* soft-full: waiting for a reset */
	bool full_sent;		 /* RING_FULL sent for this stall */
};

struct dtsim {
	struct dtsim_opts *opts;
	struct dtsim_guest *guest;
	struct dtsim_pattern pattern;
	struct dtsim_writer *writers;
	uint32_t nwriters;
	struct dtsim_truth truth;
	struct dtsim_trace *trace;
	uint8_t uuid[16];
	char uuid_text[37];

	struct dt_client *client;
	bool attached;
	bool lost; /* daemon went away or detached us */
	uint32_t detach_reason;
	uint64_t next_attach_us;
	char last_refusal[DT_REASON_MAX];
};

/*
 * Connect, HELLO and declare slots, rings and bitmaps. Returns 0, or -errno;
 * *ret_refused is set when the daemon refused (dt_client_last_error() text in
 * sim->last_refusal).
 */
int dtsim_attach(struct dtsim *sim, bool *ret_refused);
void dtsim_disconnect(struct dtsim *sim);
/* Tell the daemon about a soft-full ring (if attached). */
void dtsim_ring_full(struct dtsim *sim, struct dtsim_writer *w);

/* guest.c: make up to n writes for a writer at `now`; returns writes made. */
uint64_t dtsim_guest_write(struct dtsim *sim, struct dtsim_writer *w, uint64_t n, uint64_t now);
