/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdirtytrack: the client library a VMM links to attach its VMs to
 * dirtytrackd. See docs/protocol.md for the protocol underneath.
 *
 * Threading: one thread owns a dt_client and calls everything except
 * dt_client_ring_full(), which any thread (a vCPU thread) may call.
 * Every function returns >= 0 on success or a negative errno; on a refusal
 * or error reply from the daemon, dt_client_last_error() has its reason.
 * The library never logs and never raises signals (MSG_NOSIGNAL).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dt_proto.h"

struct dt_client;

struct dt_client_ops {
	/*
	 * The daemon harvested ring entries and asks the VMM to re-protect
	 * them (KVM_RESET_DIRTY_RINGS). Return entries reset (>= 0) or -errno.
	 */
	int (*reset_rings)(void *userdata);
	/*
	 * The daemon asks for the dirty log to be fetched into the shared
	 * bitmaps (KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG, ORed in with
	 * dt_shared_bitmap_or_word()). Return words synced (>= 0) or -errno.
	 */
	int (*sync_bitmap)(void *userdata);
	/* The daemon detached us (reason: enum dt_detach_reason). Optional. */
	void (*detached)(void *userdata, uint32_t reason);
};

struct dt_client_hello {
	const char *name; /* required, printable, < DT_NAME_MAX */
	const char *vmm; /* e.g. "dtsim"; < DT_VMM_MAX */
	uint8_t uuid[16]; /* all zero: none */
	uint32_t page_size;
	uint32_t vcpus;
	uint32_t mode; /* enum dt_mode */
	uint32_t caps; /* DT_CAP_* */
};

/* The daemon's attach socket when systemd's RuntimeDirectory is /run/dirtytrackd. */
#define DT_ATTACH_SOCKET_DEFAULT "/run/dirtytrackd/attach.sock"
/* How long a request waits for its reply unless dt_client_set_timeout() says otherwise. */
#define DT_CLIENT_TIMEOUT_MS_DEFAULT 30000

/*
 * Connect to the attach socket (SOCK_SEQPACKET, CLOEXEC, blocking); path NULL
 * means DT_ATTACH_SOCKET_DEFAULT. ops may be NULL; it is copied. The ops are
 * called from inside dt_client_* calls and must not call back into this
 * client (except dt_client_ring_full()).
 */
int dt_client_connect(const char *path, const struct dt_client_ops *ops, void *userdata,
		      struct dt_client **ret);
struct dt_client *dt_client_free(struct dt_client *c); /* closes; NULL-safe */

/* Send HELLO, wait for WELCOME (0) or REFUSE (-errno from the daemon). */
int dt_client_hello(struct dt_client *c, const struct dt_client_hello *h,
		    struct dt_msg_welcome *ret_welcome);

/* Declare a memslot; slot = (as_id << 16) | id. Waits for the ACK. */
int dt_client_add_slot(struct dt_client *c, uint32_t slot, uint64_t gpa, uint64_t pages);
int dt_client_remove_slot(struct dt_client *c, uint32_t slot);
/*
 * Pass a vCPU's dirty ring: fd is a KVM vCPU fd (offset
 * KVM_DIRTY_LOG_PAGE_OFFSET * page size) or a sealed memfd laid out as
 * KVM does (dtsim). The fd is duplicated by the kernel; the caller keeps
 * its own. fetch_index: first entry the daemon should read.
 */
int dt_client_add_ring(struct dt_client *c, uint32_t vcpu, int fd, uint64_t offset,
		       uint32_t entries, uint32_t fetch_index);
/* Pass a slot's shared bitmap (a dt_shared_bitmap's fd, or any sealed memfd). */
int dt_client_add_bitmap(struct dt_client *c, uint32_t slot, int fd, uint64_t offset);
/* Tell the daemon a vCPU's ring is (soft-)full. Thread-safe, does not wait. */
int dt_client_ring_full(struct dt_client *c, uint32_t vcpu);
/*
 * Report a sample of guest RAM (MEMORY_SAMPLE): of sampled pages drawn at
 * random from pages tracked pages, zero were all zero. Waits for the ACK;
 * -EOPNOTSUPP from a daemon that predates the message.
 */
int dt_client_memory_sample(struct dt_client *c, uint64_t sampled, uint64_t zero,
			    uint64_t pages);
/* Round trip PING/PONG. */
int dt_client_ping(struct dt_client *c);
/* Send DETACH and wait for the ACK (or EOF). */
int dt_client_detach(struct dt_client *c);

/* The socket, for poll()/epoll (POLLIN means call dt_client_dispatch). */
int dt_client_fd(const struct dt_client *c);
/*
 * Handle every message already queued on the socket without blocking,
 * calling the ops for RESET_RINGS and SYNC_BITMAP and replying to them.
 * Returns the number handled (>= 0), -ECONNRESET when the daemon went away,
 * or -errno.
 */
int dt_client_dispatch(struct dt_client *c);
/* Like dispatch but waits up to timeout_ms (-1: forever) for one message. */
int dt_client_dispatch_wait(struct dt_client *c, int timeout_ms);
/*
 * Upper bound on how long a request (hello, add_*, remove_slot, ping, detach)
 * waits for its reply; -1 waits forever. Past it the call returns -ETIMEDOUT.
 */
int dt_client_set_timeout(struct dt_client *c, int timeout_ms);
/* Reason text of the last REFUSE/ERROR received, "" if none. */
const char *dt_client_last_error(const struct dt_client *c);
uint32_t dt_client_vm_id(const struct dt_client *c);

/*
 * A shared dirty bitmap: a memfd (CLOEXEC, sealed against shrink, grow and
 * further sealing) of dt_bitmap_bytes(pages) bytes, mapped shared.
 * Producers set bits with atomic OR; the daemon takes words with atomic
 * exchange, so no bit is lost between them.
 */
struct dt_shared_bitmap {
	uint64_t *words;
	uint64_t pages;
	uint64_t bytes;
	int fd;
};
int dt_shared_bitmap_new(uint64_t pages, struct dt_shared_bitmap **ret);
struct dt_shared_bitmap *dt_shared_bitmap_free(struct dt_shared_bitmap *b);
static inline void dt_shared_bitmap_mark(struct dt_shared_bitmap *b, uint64_t page)
{
	if (page < b->pages)
		__atomic_fetch_or(&b->words[page / 64], 1ull << (page % 64), __ATOMIC_RELEASE);
}
static inline void dt_shared_bitmap_or_word(struct dt_shared_bitmap *b, uint64_t word,
					    uint64_t bits)
{
	if (bits && word < (b->pages + 63) / 64)
		__atomic_fetch_or(&b->words[word], bits, __ATOMIC_RELEASE);
}
