/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Codec and socket I/O for the attach protocol (see dt_proto.h and
 * docs/protocol.md). Shared by the daemon and libdirtytrack, which VMMs link
 * on its own: no includes from common/, no logging, no allocation.
 */
#include "dt_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The wire format is little-endian and the structs are copied as they are;
 * a big-endian port would need byte swapping in encode and decode.
 */
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host required");

static const struct {
	const char *name;
	uint16_t size;
	uint8_t nfds;
} msg_types[_DT_MSG_MAX] = {
    [DT_MSG_HELLO] = {"HELLO", sizeof(struct dt_msg_hello), 0},
    [DT_MSG_WELCOME] = {"WELCOME", sizeof(struct dt_msg_welcome), 0},
    [DT_MSG_REFUSE] = {"REFUSE", sizeof(struct dt_msg_error), 0},
    [DT_MSG_ERROR] = {"ERROR", sizeof(struct dt_msg_error), 0},
    [DT_MSG_ACK] = {"ACK", sizeof(struct dt_msg_ack), 0},
    [DT_MSG_ADD_SLOT] = {"ADD_SLOT", sizeof(struct dt_msg_add_slot), 0},
    [DT_MSG_REMOVE_SLOT] = {"REMOVE_SLOT", sizeof(struct dt_msg_remove_slot), 0},
    [DT_MSG_ADD_RING] = {"ADD_RING", sizeof(struct dt_msg_add_ring), 1},
    [DT_MSG_ADD_BITMAP] = {"ADD_BITMAP", sizeof(struct dt_msg_add_bitmap), 1},
    [DT_MSG_RESET_RINGS] = {"RESET_RINGS", sizeof(struct dt_msg_request), 0},
    [DT_MSG_RESET_DONE] = {"RESET_DONE", sizeof(struct dt_msg_done), 0},
    [DT_MSG_SYNC_BITMAP] = {"SYNC_BITMAP", sizeof(struct dt_msg_request), 0},
    [DT_MSG_SYNC_DONE] = {"SYNC_DONE", sizeof(struct dt_msg_done), 0},
    [DT_MSG_RING_FULL] = {"RING_FULL", sizeof(struct dt_msg_ring_full), 0},
    [DT_MSG_DETACH] = {"DETACH", sizeof(struct dt_msg_detach), 0},
    [DT_MSG_PING] = {"PING", sizeof(struct dt_msg_ping), 0},
    [DT_MSG_PONG] = {"PONG", sizeof(struct dt_msg_ping), 0},
    [DT_MSG_MEMORY_SAMPLE] = {"MEMORY_SAMPLE", sizeof(struct dt_msg_memory_sample), 0},
};

/* The largest payload of any type: what the send buffer must hold. */
#define MSG_PAYLOAD_MAX sizeof(struct dt_msg_hello)

static bool type_known(uint16_t type) { return type < _DT_MSG_MAX && msg_types[type].name; }

int dt_msg_payload_size(uint16_t type) { return type_known(type) ? msg_types[type].size : -EINVAL; }

int dt_msg_fd_count(uint16_t type) { return type_known(type) ? msg_types[type].nfds : -EINVAL; }

const char *dt_msg_type_name(uint16_t type)
{
	return type_known(type) ? msg_types[type].name : "UNKNOWN";
}

const char *dt_mode_name(uint32_t mode)
{
	switch (mode) {
	case DT_MODE_RING:
		return "ring";
	case DT_MODE_BITMAP:
		return "bitmap";
	case DT_MODE_RING_BITMAP:
		return "ring+bitmap";
	default:
		return "invalid";
	}
}

/*
 * A string field from the peer: NUL-terminated inside the field (so the
 * receiver may use it as a C string) and printable ASCII before the NUL
 * (so it can go into logs, JSON and D-Bus without escaping surprises).
 * Bytes after the NUL are ignored.
 */
static bool field_string_ok(const char *s, size_t size, bool nonempty)
{
	const char *nul = memchr(s, '\0', size);

	if (!nul || (nonempty && nul == s))
		return false;
	for (const char *p = s; p < nul; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/*
 * Checks of a payload that the wire format itself fixes: reserved fields,
 * enums, strings. The payload is an aligned copy of exactly
 * dt_msg_payload_size(type) bytes. Returns 0 or -EPROTO.
 */
static int payload_validate(uint16_t type, const void *payload)
{
	const union {
		struct dt_msg_hello hello;
		struct dt_msg_welcome welcome;
		struct dt_msg_error error;
		struct dt_msg_ack ack;
		struct dt_msg_add_slot add_slot;
		struct dt_msg_remove_slot remove_slot;
		struct dt_msg_add_ring add_ring;
		struct dt_msg_add_bitmap add_bitmap;
		struct dt_msg_done done;
		struct dt_msg_ring_full ring_full;
		struct dt_msg_detach detach;
		struct dt_msg_memory_sample memory_sample;
	} *p = payload;
	bool ok = true;

	switch (type) {
	case DT_MSG_HELLO:
		ok = p->hello.flags == 0 && p->hello.mode >= DT_MODE_RING &&
		     p->hello.mode < _DT_MODE_MAX &&
		     field_string_ok(p->hello.vmm, sizeof(p->hello.vmm), false) &&
		     field_string_ok(p->hello.name, sizeof(p->hello.name), true);
		break;
	case DT_MSG_WELCOME:
		ok = p->welcome.reserved == 0 && p->welcome.reserved2 == 0;
		break;
	case DT_MSG_REFUSE:
	case DT_MSG_ERROR:
		ok = p->error.error > 0 && p->error.reserved == 0 && p->error.reserved2 == 0 &&
		     field_string_ok(p->error.reason, sizeof(p->error.reason), false);
		break;
	case DT_MSG_ACK:
		ok = p->ack.reserved == 0;
		break;
	case DT_MSG_ADD_SLOT:
		ok = p->add_slot.flags == 0;
		break;
	case DT_MSG_REMOVE_SLOT:
		ok = p->remove_slot.reserved == 0;
		break;
	case DT_MSG_ADD_RING:
		ok = p->add_ring.flags == 0;
		break;
	case DT_MSG_ADD_BITMAP:
		ok = p->add_bitmap.flags == 0;
		break;
	case DT_MSG_RESET_DONE:
	case DT_MSG_SYNC_DONE:
		/* result is 0 or a negative errno; a count rides in .count */
		ok = p->done.result <= 0;
		break;
	case DT_MSG_RING_FULL:
		ok = p->ring_full.reserved == 0;
		break;
	case DT_MSG_DETACH:
		ok = p->detach.reason < _DT_DETACH_MAX && p->detach.reserved == 0;
		break;
	case DT_MSG_MEMORY_SAMPLE:
		ok = p->memory_sample.reserved == 0;
		break;
	default:
		/* RESET_RINGS, SYNC_BITMAP, PING, PONG: every value is valid */
		break;
	}
	return ok ? 0 : -EPROTO;
}

int dt_msg_decode(const void *buf, size_t len, unsigned nfds, struct dt_msg *ret)
{
	/* aligned scratch copy: the datagram buffer may be at any address */
	union {
		uint8_t raw[MSG_PAYLOAD_MAX];
		uint64_t align;
	} payload;
	struct dt_hdr h;
	int size, r;

	if (nfds <= DT_MSG_MAX_FDS)
		ret->nfds = nfds;
	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != DT_PROTO_MAGIC)
		return -EBADMSG;
	/* From here on the header names a message: let the receiver cite it. */
	ret->hdr = h;
	if (h.version != DT_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (len > DT_MSG_MAX || h.len != len - sizeof(h))
		return -EMSGSIZE;
	if (h.flags != 0 || h.reserved != 0)
		return -EPROTO;
	if (nfds > DT_MSG_MAX_FDS || h.nfds != nfds)
		return -EBADF;
	if (!type_known(h.type))
		return -EOPNOTSUPP;
	size = msg_types[h.type].size;
	if (h.len != (uint32_t)size)
		return -EMSGSIZE;
	if (nfds != msg_types[h.type].nfds)
		return -EBADF;
	memcpy(payload.raw, (const uint8_t *)buf + sizeof(h), size);
	r = payload_validate(h.type, payload.raw);
	if (r < 0)
		return r;
	memcpy(ret->u.raw, payload.raw, size);
	return 0;
}

int dt_msg_encode(void *buf, size_t cap, uint16_t type, uint32_t seq, const void *payload,
		  unsigned nfds)
{
	union {
		uint8_t raw[MSG_PAYLOAD_MAX];
		uint64_t align;
	} copy;
	struct dt_hdr h;
	int size;

	if (!type_known(type) || !payload || nfds != msg_types[type].nfds)
		return -EINVAL;
	size = msg_types[type].size;
	/* Never put on the wire what the peer's decoder would reject. */
	memcpy(copy.raw, payload, size);
	if (payload_validate(type, copy.raw) < 0)
		return -EINVAL;
	if (cap < sizeof(h) + size)
		return -ENOBUFS;
	h = (struct dt_hdr){
	    .magic = DT_PROTO_MAGIC,
	    .version = DT_PROTO_VERSION,
	    .type = type,
	    .len = size,
	    .seq = seq,
	    .nfds = nfds,
	};
	memcpy(buf, &h, sizeof(h));
	memcpy((uint8_t *)buf + sizeof(h), copy.raw, size);
	return sizeof(h) + size;
}

int dt_msg_send(int sock, uint16_t type, uint32_t seq, const void *payload, const int *fds,
		unsigned nfds)
{
	union {
		uint8_t raw[sizeof(struct dt_hdr) + MSG_PAYLOAD_MAX];
		uint64_t align;
	} buf;
	union {
		struct cmsghdr align;
		char raw[CMSG_SPACE(sizeof(int) * DT_MSG_MAX_FDS)];
	} control;
	struct iovec iov;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;
	int len;

	if (nfds > DT_MSG_MAX_FDS || (nfds && !fds))
		return -EINVAL;
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return -EBADF;
	len = dt_msg_encode(buf.raw, sizeof(buf.raw), type, seq, payload, nfds);
	if (len < 0)
		return len;
	iov = (struct iovec){.iov_base = buf.raw, .iov_len = len};
	if (nfds) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.raw;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SOCK_SEQPACKET sends a datagram whole or not at all */
	return n == len ? 0 : -EIO;
}

static void close_fd_array(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int dt_msg_recv(int sock, struct dt_msg *ret)
{
	union {
		uint8_t raw[DT_MSG_MAX];
		uint64_t align;
	} buf;
	union {
		struct cmsghdr align;
		char raw[CMSG_SPACE(sizeof(int) * DT_MSG_MAX_FDS)];
	} control;
	struct iovec iov = {.iov_base = buf.raw, .iov_len = sizeof(buf.raw)};
	struct msghdr mh;
	int fds[DT_MSG_MAX_FDS];
	unsigned nfds = 0;
	ssize_t n;
	int r;

	for (;;) {
		mh = (struct msghdr){
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = control.raw,
		    .msg_controllen = sizeof(control.raw),
		};
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}

	/*
	 * Collect every fd the kernel installed before looking at anything
	 * else, so that each error path below can close them all. The buffer
	 * holds DT_MSG_MAX_FDS fds; with more the kernel installs what fits,
	 * drops the rest and sets MSG_CTRUNC.
	 */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (nfds < DT_MSG_MAX_FDS)
				fds[nfds++] = fd;
			else
				close(fd); /* cannot happen with our buffer size */
		}
	}

	if (n == 0) {
		/* orderly shutdown (a zero-length datagram is not a message) */
		close_fd_array(fds, nfds);
		return 0;
	}
	if (mh.msg_flags & MSG_TRUNC) {
		close_fd_array(fds, nfds);
		return -EMSGSIZE;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		close_fd_array(fds, nfds);
		return -EBADF;
	}

	memcpy(ret->fds, fds, sizeof(int) * nfds);
	for (unsigned i = nfds; i < DT_MSG_MAX_FDS; i++)
		ret->fds[i] = -1;
	r = dt_msg_decode(buf.raw, n, nfds, ret);
	if (r < 0) {
		close_fd_array(ret->fds, nfds);
		ret->nfds = 0;
		return r;
	}
	return 1;
}

void dt_msg_close_fds(struct dt_msg *m)
{
	if (!m)
		return;
	close_fd_array(m->fds, m->nfds <= DT_MSG_MAX_FDS ? m->nfds : DT_MSG_MAX_FDS);
}

void dt_msg_error_init(struct dt_msg_error *e, int error, const struct dt_hdr *ref, const char *fmt,
		       ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	/* Accept either sign; 0 would make an invalid ERROR, so say EIO. */
	e->error = error < 0 ? -error : error > 0 ? error : EIO;
	if (ref) {
		e->ref_type = ref->type;
		e->ref_seq = ref->seq;
	}
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
		va_end(ap);
	}
	/*
	 * The reason may quote peer input; keep it printable so the message
	 * passes the peer's decoder and is safe to log.
	 */
	for (char *p = e->reason; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}
