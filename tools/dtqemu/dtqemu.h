/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdtqemu: a preload library that puts an unmodified QEMU under
 * dirtytrackd. Loaded with LD_PRELOAD, it sees QEMU's KVM ioctls, keeps
 * KVM's dirty log on for every writable guest RAM slot, harvests it on the
 * daemon's SYNC_BITMAP requests into shared bitmaps (bitmap mode of the
 * attach protocol, through libdirtytrack), and shows QEMU the dirty log
 * exactly as KVM would have shown it had QEMU been alone.
 *
 * Parts: preload.c (the ioctl and close interposers), kvmlog.c (the slot
 * table, the harvest and the emulation of KVM for QEMU's own dirty
 * logging), agent.c (the thread that talks to the daemon), identity.c (who
 * this VM is: QEMU's -name, -uuid and -smp, and the environment), sample.c
 * (the share of zero pages in guest RAM, for the daemon's plans).
 *
 * The library never writes to QEMU's stdout or stderr unless
 * DIRTYTRACK_LOG=stderr; it never makes QEMU fail: any error of its own
 * leaves QEMU's calls as they would have been without it.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "libdirtytrack.h"

#define DTQ_SLOTS_MAX 512 /* KVM_USER_MEM_SLOTS on x86 is 509 per address space */
#define DTQ_ZERO_SAMPLE_DEFAULT 4096 /* pages per zero-page sample: +-1.6 % at 2 sigma */
#define DTQ_ZERO_SAMPLE_MAX 65536
/* every 2 s while the share moves beyond the sampling error, backing off to 16 s */
#define DTQ_ZERO_SAMPLE_MIN_MS 2000
#define DTQ_ZERO_SAMPLE_MAX_MS 16000
#define DTQ_DYING_MAX 128 /* removals the agent has not told the daemon yet */

/* The daemon-side life of a slot, shared by the slot and the agent. */
struct dtq_decl {
	uint32_t id; /* (as_id << 16) | slot */
	uint64_t gpa;
	uint64_t pages;
	struct dt_shared_bitmap *shared; /* what the daemon consumes */
	bool declared; /* the daemon has the slot and its bitmap */
};

struct dtq_slot {
	bool used;
	uint32_t id;
	uint64_t gpa, size, hva, pages;
	bool managed; /* we keep KVM's log on for it (writable, address space 0) */
	bool qemu_log; /* QEMU has logging on: view is live */
	uint64_t *view; /* QEMU's dirty log, as KVM would hold it */
	uint64_t *scratch; /* KVM_GET_DIRTY_LOG buffer */
	struct dtq_decl *decl; /* NULL until the agent creates it */
};

struct dtq_config {
	char socket[108];
	char name[DT_NAME_MAX];
	uint8_t uuid[16];
	bool uuid_given; /* from -uuid or DIRTYTRACK_UUID; else random per process */
	uint32_t smp; /* from -smp, 0 if not given */
	bool disabled; /* DIRTYTRACK_DISABLE=1 */
	bool hide_from_qemu; /* DIRTYTRACK_TEST_HIDE_FROM_QEMU=1: negative control only */
	unsigned zero_sample; /* DIRTYTRACK_ZERO_SAMPLE: pages per sample, 0: none (default 4096) */
};

struct dtq {
	pthread_mutex_t lock; /* everything below */
	int vmfd; /* -1 until KVM_CREATE_VM, again after close */
	bool manual_protect; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 bit 0 */
	bool initially_set; /* ... bit 1 */
	bool stood_down; /* dirty ring in use, or disabled: pass everything through */
	bool vm_closed;
	uint32_t vcpus_created;
	struct dtq_slot slots[DTQ_SLOTS_MAX];
	struct dtq_decl *dying[DTQ_DYING_MAX];
	unsigned ndying;
	uint64_t lost_removals; /* dying overflowed: the daemon missed a slot's last bits */
	uint64_t harvested_pages;
	uint64_t syncs, sync_ns, sync_slot_pages; /* the daemon's SYNC_BITMAPs: count, time, pages walked */
	uint64_t samples, sample_ns; /* agent only: zero-page samples taken, their time */
	bool changed; /* slots changed since the agent last looked */
	int wake_fd; /* eventfd: wakes the agent */
	bool agent_started;
	int last_connect_error; /* agent only: the last connect failure logged */
	struct dtq_config cfg;
};

extern struct dtq dtq_state;
/* Set by the first KVM_RUN (all boot vCPUs exist by then). */
extern int dtq_seen_run;

/* preload.c: the real libc functions. */
int dtq_real_ioctl(int fd, unsigned long req, void *arg);

/* identity.c */
void dtq_config_load(struct dtq_config *cfg);
/* "qemu-7.2.22" (QEMU's version, asked of QEMU itself) or "qemu": HELLO's vmm. */
void dtq_vmm_name(char *buf, size_t cap);
void dtq_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * kvmlog.c: each dtq_vm_* function handles one intercepted ioctl on the VM
 * fd and returns what ioctl() returns (-1 with errno set on error). Called
 * with the lock not held.
 */
int dtq_vm_create(int kvmfd, unsigned long req, void *arg);
int dtq_vm_enable_cap(int fd, unsigned long req, void *arg);
int dtq_vm_set_region(int fd, unsigned long req, void *arg);
int dtq_vm_get_log(int fd, unsigned long req, void *arg);
int dtq_vm_clear_log(int fd, unsigned long req, void *arg);
void dtq_vm_closed(int fd);
/* The agent's harvest of every declared slot into its shared bitmap (lock held). */
int dtq_harvest_all_locked(struct dtq *q);

/* sample.c: of n pages drawn from the tracked slots, how many are zero. */
struct dtq_zero_sample {
	uint64_t sampled, zero, pages;
};
int dtq_sample_zero(struct dtq *q, unsigned n, struct dtq_zero_sample *ret);

/* agent.c */
void dtq_agent_start(struct dtq *q); /* lock held */
void dtq_agent_wake(struct dtq *q);
