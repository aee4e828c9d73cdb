/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dirtytrackd attach protocol: wire structs and codec.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET. One message per datagram: a fixed
 * 24-byte header, then a fixed-layout payload whose length must equal the
 * size of the struct for its type exactly. File descriptors ride in one
 * SCM_RIGHTS control message on the same datagram. All integers are
 * little-endian; every struct is naturally aligned with explicit padding,
 * and its size is pinned with static_assert. docs/protocol.md is the
 * normative description; this header must match it.
 *
 * This header and dt_proto.c are shared by the daemon and libdirtytrack;
 * they do not log and do not allocate.
 */
#pragma once

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DT_PROTO_MAGIC 0x4b525444u /* "DTRK" as little-endian bytes */
#define DT_PROTO_VERSION 1
#define DT_MSG_MAX 4096 /* header + payload, hard limit on both ends */
#define DT_MSG_MAX_FDS 2 /* receive buffer capacity; more is MSG_CTRUNC */

#define DT_NAME_MAX 64
#define DT_VMM_MAX 32
#define DT_REASON_MAX 112

enum dt_msg_type {
	DT_MSG_INVALID = 0,
	DT_MSG_HELLO = 1, /* VMM -> daemon */
	DT_MSG_WELCOME = 2, /* daemon -> VMM */
	DT_MSG_REFUSE = 3, /* daemon -> VMM, then the daemon closes */
	DT_MSG_ERROR = 4, /* either way: a request was rejected */
	DT_MSG_ACK = 5, /* daemon -> VMM: a request was accepted */
	DT_MSG_ADD_SLOT = 6, /* VMM -> daemon */
	DT_MSG_REMOVE_SLOT = 7, /* VMM -> daemon */
	DT_MSG_ADD_RING = 8, /* VMM -> daemon, 1 fd */
	DT_MSG_ADD_BITMAP = 9, /* VMM -> daemon, 1 fd */
	DT_MSG_RESET_RINGS = 10, /* daemon -> VMM */
	DT_MSG_RESET_DONE = 11, /* VMM -> daemon */
	DT_MSG_SYNC_BITMAP = 12, /* daemon -> VMM */
	DT_MSG_SYNC_DONE = 13, /* VMM -> daemon */
	DT_MSG_RING_FULL = 14, /* VMM -> daemon */
	DT_MSG_DETACH = 15, /* either way */
	DT_MSG_PING = 16, /* either way */
	DT_MSG_PONG = 17, /* either way */
	DT_MSG_MEMORY_SAMPLE = 18, /* VMM -> daemon: what a sample of guest RAM held */
	_DT_MSG_MAX,
};

enum dt_mode {
	DT_MODE_RING = 1,
	DT_MODE_BITMAP = 2,
	DT_MODE_RING_BITMAP = 3,
	_DT_MODE_MAX,
};

/* HELLO.caps: what the VMM does; informational except where noted. */
#define DT_CAP_RESET_RINGS (1u << 0) /* honours RESET_RINGS (required for ring modes) */
#define DT_CAP_SYNC_BITMAP (1u << 1) /* honours SYNC_BITMAP */
#define DT_CAP_RING_FULL (1u << 2) /* sends RING_FULL on KVM_EXIT_DIRTY_RING_FULL */
#define DT_CAP_RING_ACQ_REL (1u << 3) /* KVM_CAP_DIRTY_LOG_RING_ACQ_REL in use */
#define DT_CAP_RING_WITH_BITMAP (1u << 4) /* KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP in use */
#define DT_CAP_SIMULATED (1u << 5) /* rings/bitmaps are simulated (no KVM) */
/*
 * The log covers writes by vCPUs only: the VMM's own writes to guest memory
 * (device emulation, vhost) are not reported (a VMM that cannot see them,
 * such as stock QEMU under the preload library). Shown as the VM's fidelity.
 */
#define DT_CAP_VCPU_WRITES_ONLY (1u << 6)
#define DT_CAP_ALL ((1u << 7) - 1)

/* DETACH.reason */
enum dt_detach_reason {
	DT_DETACH_NORMAL = 0, /* VMM is done (guest stopped, tracking off) */
	DT_DETACH_SHUTDOWN = 1, /* daemon is stopping */
	DT_DETACH_EVICTED = 2, /* daemon dropped the VM (e.g. protocol error) */
	_DT_DETACH_MAX,
};

/* Ring entry layout, identical to the kernel's struct kvm_dirty_gfn. */
struct dt_ring_entry {
	uint32_t flags;
	uint32_t slot; /* (address space << 16) | slot id */
	uint64_t offset; /* page offset within the slot */
};
static_assert(sizeof(struct dt_ring_entry) == 16, "ring entry");
#define DT_RING_DIRTY (1u << 0) /* KVM_DIRTY_GFN_F_DIRTY */
#define DT_RING_RESET (1u << 1) /* KVM_DIRTY_GFN_F_RESET */
#define DT_RING_MIN_ENTRIES 128 /* KVM's soft-full slack is 64 entries */

struct dt_hdr {
	uint32_t magic; /* DT_PROTO_MAGIC */
	uint16_t version; /* DT_PROTO_VERSION */
	uint16_t type; /* enum dt_msg_type */
	uint32_t flags; /* 0 */
	uint32_t len; /* payload bytes after the header */
	uint32_t seq; /* sender's counter; replies name it in ref_seq */
	uint16_t nfds; /* fds attached with SCM_RIGHTS */
	uint16_t reserved; /* 0 */
};
static_assert(sizeof(struct dt_hdr) == 24, "hdr");

struct dt_msg_hello {
	uint16_t min_version; /* lowest protocol version the VMM speaks */
	uint16_t max_version; /* highest */
	uint32_t page_size; /* power of two, 4096 .. 65536 */
	uint32_t vcpus; /* >= 1 */
	uint32_t mode; /* enum dt_mode */
	uint32_t caps; /* DT_CAP_* */
	uint32_t flags; /* 0 */
	uint8_t uuid[16]; /* RFC 4122 binary; all zero = none */
	char vmm[DT_VMM_MAX]; /* NUL-terminated, printable ASCII */
	char name[DT_NAME_MAX]; /* NUL-terminated, printable, non-empty */
};
static_assert(sizeof(struct dt_msg_hello) == 136, "hello");

struct dt_msg_welcome {
	uint16_t version; /* the version chosen for this connection */
	uint16_t reserved;
	uint32_t vm_id; /* the daemon's id for this VM */
	uint64_t epoch_us; /* harvest period */
	uint32_t max_slots;
	uint32_t max_ring_entries;
	uint32_t max_vcpus;
	uint32_t reserved2;
};
static_assert(sizeof(struct dt_msg_welcome) == 32, "welcome");

/* REFUSE and ERROR share one layout. */
struct dt_msg_error {
	int32_t error; /* positive errno value */
	uint16_t ref_type; /* type of the offending message, 0 if none */
	uint16_t reserved;
	uint32_t ref_seq; /* seq of the offending message */
	uint32_t reserved2;
	char reason[DT_REASON_MAX]; /* NUL-terminated, human-readable */
};
static_assert(sizeof(struct dt_msg_error) == 128, "error");

struct dt_msg_ack {
	uint32_t ref_seq;
	uint16_t ref_type;
	uint16_t reserved;
};
static_assert(sizeof(struct dt_msg_ack) == 8, "ack");

struct dt_msg_add_slot {
	uint32_t slot; /* (address space << 16) | slot id, as in ring entries */
	uint32_t flags; /* 0 */
	uint64_t gpa; /* guest-physical base, page aligned */
	uint64_t pages; /* >= 1 */
};
static_assert(sizeof(struct dt_msg_add_slot) == 24, "add_slot");

struct dt_msg_remove_slot {
	uint32_t slot;
	uint32_t reserved;
};
static_assert(sizeof(struct dt_msg_remove_slot) == 8, "remove_slot");

struct dt_msg_add_ring {
	uint32_t vcpu; /* < HELLO.vcpus */
	uint32_t entries; /* power of two */
	uint64_t offset; /* mmap offset of the ring in the fd, page aligned */
	uint32_t fetch_index; /* next entry index to harvest (0 for a new ring) */
	uint32_t flags; /* 0 */
};
static_assert(sizeof(struct dt_msg_add_ring) == 24, "add_ring");

struct dt_msg_add_bitmap {
	uint32_t slot; /* a slot added before */
	uint32_t flags; /* 0 */
	uint64_t offset; /* mmap offset in the memfd, page aligned */
};
static_assert(sizeof(struct dt_msg_add_bitmap) == 16, "add_bitmap");

/* RESET_RINGS and SYNC_BITMAP (daemon -> VMM) */
struct dt_msg_request {
	uint64_t epoch; /* the daemon's epoch counter, informational */
};
static_assert(sizeof(struct dt_msg_request) == 8, "request");

/* RESET_DONE and SYNC_DONE (VMM -> daemon) */
struct dt_msg_done {
	uint32_t ref_seq; /* seq of the request being completed */
	int32_t result; /* 0, or a negative errno */
	uint64_t count; /* entries reset / bitmap words synced, informational */
};
static_assert(sizeof(struct dt_msg_done) == 16, "done");

struct dt_msg_ring_full {
	uint32_t vcpu;
	uint32_t reserved;
};
static_assert(sizeof(struct dt_msg_ring_full) == 8, "ring_full");

struct dt_msg_detach {
	uint32_t reason; /* enum dt_detach_reason */
	uint32_t reserved;
};
static_assert(sizeof(struct dt_msg_detach) == 8, "detach");

struct dt_msg_ping {
	uint64_t token; /* echoed in PONG */
};
static_assert(sizeof(struct dt_msg_ping) == 8, "ping");

/*
 * A sample of the guest's RAM, taken by the VMM (which maps it): of
 * `sampled` pages drawn at random from `pages` tracked pages, `zero` were
 * all zero. A migration engine sends zero pages as a header only.
 */
struct dt_msg_memory_sample {
	uint64_t sampled; /* 1 .. 2^20 (drawn with replacement: may exceed pages) */
	uint64_t zero; /* 0 .. sampled */
	uint64_t pages; /* the tracked pages the sample was drawn from */
	uint64_t reserved;
};
static_assert(sizeof(struct dt_msg_memory_sample) == 32, "memory_sample");

/* A decoded message. Owns fds[0..nfds) until they are taken (set to -1). */
struct dt_msg {
	struct dt_hdr hdr;
	union {
		struct dt_msg_hello hello;
		struct dt_msg_welcome welcome;
		struct dt_msg_error error; /* REFUSE, ERROR */
		struct dt_msg_ack ack;
		struct dt_msg_add_slot add_slot;
		struct dt_msg_remove_slot remove_slot;
		struct dt_msg_add_ring add_ring;
		struct dt_msg_add_bitmap add_bitmap;
		struct dt_msg_request request; /* RESET_RINGS, SYNC_BITMAP */
		struct dt_msg_done done; /* RESET_DONE, SYNC_DONE */
		struct dt_msg_ring_full ring_full;
		struct dt_msg_detach detach;
		struct dt_msg_ping ping; /* PING, PONG */
		struct dt_msg_memory_sample memory_sample;
		uint8_t raw[DT_MSG_MAX];
	} u;
	int fds[DT_MSG_MAX_FDS];
	unsigned nfds;
};

/* Payload size for a type, or -EINVAL for an unknown type. */
int dt_msg_payload_size(uint16_t type);
/* Number of fds a type carries (exact), or -EINVAL for unknown. */
int dt_msg_fd_count(uint16_t type);
const char *dt_msg_type_name(uint16_t type);
const char *dt_mode_name(uint32_t mode);

/*
 * Validate and decode one datagram of len bytes that arrived with nfds fds
 * (already stored by the caller in ret->fds; decode sets ret->nfds and never
 * closes them). On success fills ret->hdr and ret->u and returns 0. On error
 * ret->u is untouched; ret->hdr holds the received header whenever its magic
 * was right (so an ERROR reply can name ref_type and ref_seq). Errors:
 *   -EBADMSG  shorter than a header, or bad magic
 *   -EPROTONOSUPPORT  unknown version
 *   -EOPNOTSUPP unknown type (header otherwise valid: the receiver answers
 *             ERROR and may keep the connection, for forward compatibility)
 *   -EPROTO   nonzero reserved/flags fields, bad enum values,
 *             strings not NUL-terminated or not printable
 *   -EMSGSIZE payload length does not match the type, or > DT_MSG_MAX
 *   -EBADF    number of fds does not match the header or the type
 * Field-level semantic checks (ranges against daemon limits) are the
 * receiver's job; this checks only what the wire format itself fixes.
 */
int dt_msg_decode(const void *buf, size_t len, unsigned nfds, struct dt_msg *ret);

/*
 * Encode header+payload into buf (cap bytes). Returns total length or -errno:
 * -EINVAL for an unknown type, a wrong nfds, or a payload the peer's decoder
 * would reject; -ENOBUFS when cap is too small.
 */
int dt_msg_encode(void *buf, size_t cap, uint16_t type, uint32_t seq, const void *payload,
		  unsigned nfds);

/*
 * Send one message with optional fds (nfds must equal dt_msg_fd_count(type)).
 * MSG_NOSIGNAL, retries EINTR. Returns 0 or -errno (-EAGAIN on a full
 * non-blocking socket).
 */
int dt_msg_send(int sock, uint16_t type, uint32_t seq, const void *payload, const int *fds,
		unsigned nfds);

/*
 * Receive and decode one message. fds are received with MSG_CMSG_CLOEXEC.
 * Returns 1 with *ret filled, 0 on orderly EOF, or -errno (including
 * -EAGAIN, and the decode errors above; -EMSGSIZE also for MSG_TRUNC,
 * -EBADF for MSG_CTRUNC). On any error every received fd is closed.
 */
int dt_msg_recv(int sock, struct dt_msg *ret);

/* Close fds still owned by m (those not set to -1). */
void dt_msg_close_fds(struct dt_msg *m);

/* Fill an ERROR/REFUSE payload. */
void dt_msg_error_init(struct dt_msg_error *e, int error, const struct dt_hdr *ref,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Bitmap bytes the daemon maps for a slot of `pages` pages. */
static inline uint64_t dt_bitmap_bytes(uint64_t pages)
{
	return ((pages + 63) / 64) * 8;
}
