/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dtvm: the reference KVM VMM. A tiny 64-bit guest per vCPU writes the
 * pages the VMM commands, so the VMM knows exactly which pages were
 * dirtied, by which vCPU and when (the ground truth the daemon is checked
 * against).
 *
 * Guest-physical layout:
 *   slot 0 "sys" at GPA 0, never dirty-logged: GDT/TSS, guest code, page
 *          tables (A/D bits preset so the guest never writes them), one
 *          command page and one stack page per vCPU. The guest only reads
 *          this slot, so it cannot pollute the dirty logs.
 *   slot 1 data below 4 GiB (at 1 GiB), slot 2 data at 4 GiB: the
 *          dirty-logged guest RAM the workload writes.
 */
#pragma once

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"
#include "dt_util.h"
#include "libdirtytrack.h"

#ifndef KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP
#define KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP 225
#endif

#define DTVM_PAGE_SIZE 4096u
#define DTVM_PAGE_SHIFT 12
#define DTVM_HUGE_SIZE (2ull << 20)
#define DTVM_MAX_VCPUS 256
#define DTVM_MAX_DATA_SLOTS 2
#define DTVM_EXIT_SKIP 77 /* /dev/kvm (or the requested backing) unusable */
#define DTVM_EXIT_MISMATCH 3 /* self-harvest: KVM's log differs from the truth */

/* sys slot layout (guest-physical == offset in the slot) */
#define DTVM_GDT_GPA 0x0000ull
#define DTVM_TSS_GPA 0x0800ull
#define DTVM_CODE_GPA 0x1000ull
#define DTVM_PML4_GPA 0x2000ull
#define DTVM_PDPT_GPA 0x3000ull
#define DTVM_PD_GPA 0x4000ull /* one 4 KiB PD per GiB of guest-physical space */
#define DTVM_MAX_PDS ((0x100000ull - DTVM_PD_GPA) / DTVM_PAGE_SIZE)
#define DTVM_CMD_GPA 0x100000ull /* per vCPU: command page, then stack page */
#define DTVM_IO_PORT 0x10

/* Command page: written by the VMM, only read by the guest. */
#define DTVM_CMD_HDR 64
#define DTVM_CMD_MAX ((DTVM_PAGE_SIZE - DTVM_CMD_HDR) / 8)
struct dtvm_cmd {
	uint32_t count; /* pages in this batch */
	uint32_t pad;
	uint64_t stamp; /* value the guest writes at page + vcpu * 8 */
	uint8_t reserved[DTVM_CMD_HDR - 16];
	uint64_t pages[DTVM_CMD_MAX]; /* guest page frame numbers */
};

/* Ring batches may never exceed this (see DESIGN.md: ring overflow rule). */
#define DTVM_RING_BATCH_MAX 64
#define DTVM_RING_RSVD 64

enum dtvm_hugepages { DTVM_HP_OFF, DTVM_HP_THP, DTVM_HP_HUGETLB };
enum dtvm_pattern {
	DTVM_PAT_UNIFORM,
	DTVM_PAT_SEQUENTIAL,
	DTVM_PAT_HOTCOLD,
	DTVM_PAT_ZIPF,
	_DTVM_PAT_MAX
};

struct dtvm_opts {
	const char *connect;
	const char *name;
	const char *truth;
	const char *trace;
	uint8_t uuid[16];
	uint64_t memory;
	uint32_t vcpus;
	uint32_t mode; /* enum dt_mode */
	int pattern;
	uint64_t rate; /* writes per second over all vCPUs, 0 = as fast as possible */
	uint64_t wss; /* pages */
	uint64_t duration_us;
	uint64_t seed;
	int hugepages;
	uint32_t ring_entries;
	uint32_t batch; /* pages per guest run, 0 = automatic */
	uint64_t self_harvest_us; /* 0 = attach to the daemon */
	double dma_fraction;
	bool no_tracking;
	bool reconnect;
	bool truth_pages;
	bool verify;
	bool verbose;
};

struct dtvm_slot {
	uint32_t id; /* KVM slot id (address space 0) */
	uint64_t gpa;
	uint64_t pages;
	uint8_t *hva;
	uint64_t first; /* index of its first page in the data page space */
	uint64_t *kvm_log; /* KVM_GET_DIRTY_LOG buffer */
	struct dt_shared_bitmap *shared; /* bitmap modes */
};

/* A growable vector of u64 (truth records). */
struct dtvm_vec {
	uint64_t *v;
	size_t n, cap;
};

struct dtvm;

struct dtvm_vcpu {
	struct dtvm *vm;
	uint32_t id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	struct dtvm_cmd *cmd; /* hva of the command page */
	pthread_t thread;
	bool started;
	uint64_t rng[2];
	uint64_t seq_pos; /* sequential pattern position */

	/* dirty ring */
	struct kvm_dirty_gfn *ring;
	uint32_t fetch; /* next entry KVM's reset index / our harvest index */
	bool fetch_known;
	bool ring_added; /* registered with the daemon on this connection */

	/* truth, owned by the vCPU thread until it is joined */
	uint64_t writes, batches, dma_writes, ring_full_events, run_us;
	uint64_t *written; /* bitmap over data pages written by this vCPU's guest */
	uint64_t *harvested; /* self-harvest: pages its ring reported */
	struct dtvm_vec rec; /* --truth-pages: t0_us, t_us, flags|count, pages... */
};

struct dtvm {
	struct dtvm_opts o;
	int kvm_fd, vm_fd;
	bool ring, bitmap; /* KVM collection in use */
	bool acq_rel, ring_with_bitmap;
	uint32_t ring_entries;
	int manual_protect;

	uint8_t *sys_hva;
	uint64_t sys_size;
	uint8_t *ram;
	uint64_t ram_size;
	int ram_fd;
	struct dtvm_slot slots[DTVM_MAX_DATA_SLOTS];
	unsigned nslots;
	uint64_t data_pages;
	bool logging; /* KVM_MEM_LOG_DIRTY_PAGES currently set */

	struct dtvm_vcpu *vcpus;

	/* workload */
	double *zipf_cdf;
	uint64_t zipf_n;

	/* truth shared by the vCPU threads (atomics) */
	uint64_t start_us, end_us;
	uint32_t *page_second; /* per data page: last second written + 1 */
	uint64_t *per_second; /* distinct pages per second */
	uint64_t nseconds;
	uint64_t *dma_written; /* bitmap of pages written by "DMA" */
	pthread_mutex_t trace_lock;
	FILE *trace;

	/* harvest state, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t reset_gen;
	uint64_t resets;
	uint64_t ring_full_total;
	struct dt_client *client; /* NULL when detached */
	bool stop;
	uint32_t running; /* vCPU threads not yet finished (atomic) */
	bool detached_by_daemon;
	uint32_t detach_reason;
	uint64_t attachments;
	uint64_t *bm_harvested; /* self-harvest: pages the bitmap(s) reported */
	uint64_t harvest_entries, harvest_invalid, harvest_count;
};

/* main.c */
void dtvm_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void dtvm_log(const struct dtvm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* kvm.c: raw __foo() returns >= 0 or -errno; foo() dies naming the ioctl. */
int __kvm_ioctl(int fd, unsigned long cmd, void *arg);
#define kvm_ioctl(fd, cmd, arg)                                                                    \
	({                                                                                         \
		int _r = __kvm_ioctl((fd), (cmd), (arg));                                          \
		if (_r < 0)                                                                        \
			dtvm_die("%s failed: %s", #cmd, strerror(-_r));                            \
		_r;                                                                                \
	})
int __kvm_open(int *ret_kvm_fd, int *ret_vm_fd);
int kvm_check_cap(int fd, long cap);
int __vm_enable_cap(int vm_fd, uint32_t cap, uint64_t arg0);
int __vm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
				uint64_t size, void *hva);
void vm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
			       uint64_t size, void *hva);
int __vm_create_vcpu(int vm_fd, uint32_t id);
int __vcpu_mmap_run(int kvm_fd, int vcpu_fd, struct kvm_run **ret, size_t *ret_size);
struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd);
int __vm_get_dirty_log(int vm_fd, uint32_t slot, void *bitmap);
int __vm_clear_dirty_log(int vm_fd, uint32_t slot, uint64_t first, uint32_t num, void *bitmap);
int __vm_reset_dirty_rings(int vm_fd);
const char *kvm_exit_reason_str(uint32_t reason);

/* guest.c */
void dtvm_guest_setup_sys(struct dtvm *vm);
void dtvm_guest_setup_vcpu(struct dtvm *vm, struct dtvm_vcpu *v, const struct kvm_cpuid2 *cpuid);
uint64_t dtvm_cmd_gpa(uint32_t vcpu);

/* memory.c */
int dtvm_memory_setup(struct dtvm *vm);
int dtvm_memory_set_logging(struct dtvm *vm, bool on);
void dtvm_memory_teardown(struct dtvm *vm);
/* Data page index -> guest page frame number / host address. */
uint64_t dtvm_page_gfn(const struct dtvm *vm, uint64_t page);
uint8_t *dtvm_page_hva(const struct dtvm *vm, uint64_t page);
/* (slot id, offset) of a ring entry -> data page index, or -EINVAL. */
int64_t dtvm_slot_page(const struct dtvm *vm, uint32_t slot, uint64_t offset);
void dtvm_memory_describe(const struct dtvm *vm);

/* dirty.c: these take vm->lock themselves, except dtvm_dirty_locate() */
int dtvm_dirty_setup_vm(struct dtvm *vm); /* before vCPUs and memslots */
int dtvm_dirty_setup_vcpu(struct dtvm *vm, struct dtvm_vcpu *v);
/* Daemon's RESET_RINGS: KVM_RESET_DIRTY_RINGS, keeping our fetch indexes. */
int dtvm_dirty_reset_rings(struct dtvm *vm);
/* Daemon's SYNC_BITMAP: KVM log -> shared bitmaps. Returns words. */
int dtvm_dirty_sync_bitmaps(struct dtvm *vm);
/*
 * Harvest everything ourselves (self-harvest mode, or detached): rings
 * (then reset), KVM bitmaps and shared bitmaps. record: fold the pages
 * into the harvested bitmaps for verification. Returns pages seen.
 */
int64_t dtvm_dirty_self_harvest(struct dtvm *vm, bool record);
/* Locate a ring's fetch index when it is not known (returns known?). */
bool dtvm_dirty_locate(struct dtvm *vm, struct dtvm_vcpu *v);
/* Compare self-harvested pages with the truth. Returns mismatches. */
uint64_t dtvm_dirty_verify(struct dtvm *vm);

/* workload.c */
int dtvm_workload_init(struct dtvm *vm);
uint64_t dtvm_workload_next(struct dtvm *vm, struct dtvm_vcpu *v);
uint64_t dtvm_rand(uint64_t s[2]);

/* vcpu.c */
int dtvm_vcpus_create(struct dtvm *vm);
int dtvm_vcpus_start(struct dtvm *vm);
void dtvm_vcpus_stop(struct dtvm *vm);
void dtvm_vcpus_join(struct dtvm *vm);

/* attach.c (main thread) */
int dtvm_attach(struct dtvm *vm);
void dtvm_attach_lost(struct dtvm *vm, int error);
int dtvm_attach_poll(struct dtvm *vm); /* register deferred rings */
void dtvm_detach(struct dtvm *vm);

/* truth.c */
int dtvm_truth_init(struct dtvm *vm);
void dtvm_truth_record(struct dtvm *vm, struct dtvm_vcpu *v, uint64_t t0_us, uint64_t t_us,
		       const uint64_t *pages, uint32_t n, bool dma);
int dtvm_truth_write(struct dtvm *vm);

/* bitmap helpers */
static inline void dtvm_bit_set_atomic(uint64_t *map, uint64_t bit)
{
	__atomic_fetch_or(&map[bit / 64], 1ull << (bit % 64), __ATOMIC_RELAXED);
}
static inline bool dtvm_bit_test(const uint64_t *map, uint64_t bit)
{
	return map[bit / 64] & (1ull << (bit % 64));
}
static inline uint64_t dtvm_bitmap_words(uint64_t bits)
{
	return (bits + 63) / 64;
}
uint64_t dtvm_bitmap_count(const uint64_t *map, uint64_t bits);
