/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One hostile session: connect, HELLO (sometimes wrong), then a random
 * sequence of well-formed messages with plausible but wrong values, now
 * and then a malformed datagram, a half close, a stretch of not reading,
 * and an end at a random point. The session's choices depend only on the
 * seed and its index (the daemon's timing does not feed back into the PRNG
 * except through which replies arrive), so `--session N` replays one.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dtfuzz.h"

#define SESSION_RINGS 8
#define SESSION_BITMAPS 8
#define SESSION_SLOTS 8
#define SESSION_FDS 16
#define UUID_POOL 6 /* shared by all sessions of a seed: reattach, takeover, collisions */

struct fz_ring {
	struct dt_ring_entry *e;
	size_t len;
	uint32_t entries; /* what we told the daemon */
	uint32_t dirty, reset; /* producer and reset indexes */
};

struct fz_bitmap {
	uint64_t *w;
	size_t len;
};

struct fz_slot {
	uint32_t slot;
	uint64_t pages;
};

struct fz {
	const struct dtfuzz_opts *o;
	struct dt_rng g;
	uint64_t index;
	int fd;
	uint32_t seq;
	bool welcomed, closed, wr_shut, rd_shut, deaf; /* deaf: not reading replies */
	struct dt_msg_hello hello;
	uint32_t last_reset_seq, last_sync_seq;
	struct fz_ring rings[SESSION_RINGS];
	unsigned nrings;
	struct fz_bitmap bitmaps[SESSION_BITMAPS];
	unsigned nbitmaps;
	struct fz_slot slots[SESSION_SLOTS];
	unsigned nslots;
	int fds[SESSION_FDS]; /* passed before: sent again (one fd as two rings, ...) */
	unsigned nfds;
};

static uint64_t pick_u64(struct dt_rng *g, const uint64_t *v, size_t n)
{
	return v[dt_rng_below(g, n)];
}
#define PICK(g, ...)                                                                               \
	pick_u64(g, (const uint64_t[]){ __VA_ARGS__ },                                             \
		 sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))

static bool chance(struct dt_rng *g, double p)
{
	return dt_rng_double(g) < p;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Send one well-formed message. false once the connection is gone. */
static bool fz_send(struct fz *s, uint16_t type, const void *payload, int fd)
{
	int r;

	if (s->closed)
		return false;
	for (int tries = 0;; tries++) {
		r = dt_msg_send(s->fd, type, ++s->seq, payload, fd >= 0 ? &fd : NULL, fd >= 0);
		if (r != -EAGAIN || tries == 20)
			break;
		/* The daemon reads at its pace; a session never blocks for long. */
		struct pollfd p = { .fd = s->fd, .events = POLLOUT };
		poll(&p, 1, 50);
	}
	if (r < 0) {
		if (r != -EINVAL) /* -EINVAL: our encoder refused (a value we built wrong) */
			s->closed = true;
		return false;
	}
	atomic_fetch_add(&dtfuzz_stats.execs, 1);
	return true;
}

/* A datagram the decoder must reject: the daemon answers ERROR and closes. */
static void fz_send_raw(struct fz *s)
{
	uint8_t buf[256] = { 0 };
	struct dt_hdr *h = (struct dt_hdr *)buf;
	size_t len = sizeof(*h) + 8;
	int fd = -1;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	union {
		struct cmsghdr align;
		char raw[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	*h = (struct dt_hdr){ .magic = DT_PROTO_MAGIC, .version = 1, .type = DT_MSG_PING,
			      .len = 8, .seq = ++s->seq };
	switch (dt_rng_below(&s->g, 9)) {
	case 0:
		h->magic ^= 1;
		break;
	case 1:
		h->version = 2;
		break;
	case 2:
		h->len = 9;
		break;
	case 3:
		h->flags = 1;
		break;
	case 4:
		h->nfds = 1; /* but none sent */
		break;
	case 5:
		h->type = 99; /* unknown: ERROR EOPNOTSUPP, the connection stays */
		break;
	case 6: /* an fd where none belongs */
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		h->nfds = 1;
		break;
	case 7:
		len = 10; /* short */
		break;
	default: /* a RESET_DONE with a positive result */
		h->type = DT_MSG_RESET_DONE;
		h->len = 16;
		len = sizeof(*h) + 16;
		((struct dt_msg_done *)(h + 1))->result = 5;
	}
	iov.iov_len = len;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.raw;
		mh.msg_controllen = sizeof(control.raw);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
		atomic_fetch_add(&dtfuzz_stats.execs, 1);
		atomic_fetch_add(&dtfuzz_stats.raw_frames, 1);
	}
	if (fd >= 0)
		close(fd);
}

/* KVM_RESET_DIRTY_RINGS, simulated: recycle the entries the daemon marked. */
static uint64_t fz_reset_rings(struct fz *s)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < s->nrings; i++) {
		struct fz_ring *r = &s->rings[i];
		uint32_t cap = (uint32_t)(r->len / sizeof(*r->e));

		while (r->reset != r->dirty) {
			struct dt_ring_entry *e = &r->e[r->reset % cap];

			if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DT_RING_RESET))
				break;
			__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
			r->reset++;
			n++;
		}
	}
	return n;
}

static void fz_handle(struct fz *s, const struct dt_msg *m)
{
	struct dt_msg_done d = { .ref_seq = m->hdr.seq };

	switch (m->hdr.type) {
	case DT_MSG_WELCOME:
		s->welcomed = true;
		atomic_fetch_add(&dtfuzz_stats.welcomed, 1);
		break;
	case DT_MSG_REFUSE:
		atomic_fetch_add(&dtfuzz_stats.refused, 1);
		break;
	case DT_MSG_ERROR:
		atomic_fetch_add(&dtfuzz_stats.errors, 1);
		break;
	case DT_MSG_ACK:
		atomic_fetch_add(&dtfuzz_stats.acks, 1);
		break;
	case DT_MSG_RESET_RINGS:
		s->last_reset_seq = m->hdr.seq;
		if (chance(&s->g, 0.15))
			break; /* left unanswered */
		d.count = fz_reset_rings(s);
		if (chance(&s->g, 0.1))
			d.ref_seq = (uint32_t)dt_rng_next(&s->g);
		if (chance(&s->g, 0.05))
			d.result = -EIO;
		fz_send(s, DT_MSG_RESET_DONE, &d, -1);
		break;
	case DT_MSG_SYNC_BITMAP:
		s->last_sync_seq = m->hdr.seq;
		if (chance(&s->g, 0.15))
			break;
		if (chance(&s->g, 0.1))
			d.ref_seq = s->last_sync_seq - 1;
		fz_send(s, DT_MSG_SYNC_DONE, &d, -1);
		break;
	case DT_MSG_PING:
		fz_send(s, DT_MSG_PONG, &m->u.ping, -1);
		break;
	default:
		break;
	}
}

/* Read what the daemon sent, up to wait_ms for the first message. */
static void fz_drain(struct fz *s, int wait_ms)
{
	for (int i = 0; i < 256 && !s->closed; i++) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		struct dt_msg m;
		int r;

		if (poll(&p, 1, i == 0 ? wait_ms : 0) <= 0)
			return;
		r = dt_msg_recv(s->fd, &m);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r <= 0) { /* EOF, or the daemon went away */
			s->closed = true;
			return;
		}
		fz_handle(s, &m);
		dt_msg_close_fds(&m);
	}
}

static void fz_remember_fd(struct fz *s, int fd)
{
	if (s->nfds < SESSION_FDS)
		s->fds[s->nfds++] = fd;
	else
		close(fd);
}

static enum dtfuzz_fd_kind pick_fd_kind(struct fz *s)
{
	/* Mostly what the daemon wants, so the session gets somewhere. */
	if (chance(&s->g, 0.6))
		return FD_MEMFD_SEALED;
	return (enum dtfuzz_fd_kind)dt_rng_below(&s->g, _FD_KIND_MAX);
}

/* An fd for bytes at offset: a new one of some kind, or one sent before. */
static int fz_fd(struct fz *s, uint64_t offset, uint64_t bytes, enum dtfuzz_region_kind kind,
		 void **ret_map, size_t *ret_len)
{
	int fd;

	*ret_map = NULL;
	*ret_len = 0;
	if (s->nfds && chance(&s->g, 0.1))
		return s->fds[dt_rng_below(&s->g, s->nfds)];
	fd = dtfuzz_make_fd(pick_fd_kind(s), offset, bytes, ret_map, ret_len);
	if (fd < 0)
		return fd;
	if (*ret_map && dtfuzz_region_add(*ret_map, *ret_len, kind) < 0) {
		munmap(*ret_map, *ret_len);
		*ret_map = NULL;
	}
	fz_remember_fd(s, fd);
	return fd;
}

static uint32_t pick_slot_id(struct fz *s)
{
	if (s->nslots && chance(&s->g, 0.6))
		return s->slots[dt_rng_below(&s->g, s->nslots)].slot;
	return (uint32_t)PICK(&s->g, 0, 1, 2, 3, 0x10000, 0x10001, 0xffff, 0xffffffff);
}

static uint64_t pick_pages(struct fz *s)
{
	return PICK(&s->g, 1, 2, 63, 64, 65, 512, 4096, 65536, 1u << 20, 1u << 24, 0,
		    (1ull << 32) - 1, 1ull << 32, UINT64_MAX, UINT64_MAX >> 12, 100000);
}

static void act_add_slot(struct fz *s)
{
	uint64_t ps = s->hello.page_size ? s->hello.page_size : 4096;
	struct dt_msg_add_slot a = {
		.slot = pick_slot_id(s),
		.gpa = PICK(&s->g, 0, 0, 1ull << 20, 1ull << 30, 1ull << 32, 3ull << 30, 4096, 1,
			    1ull << 63, UINT64_MAX & ~(ps - 1), ps * 100) ,
		.pages = pick_pages(s),
	};

	if (chance(&s->g, 0.3) && s->nslots) { /* overlap a slot we have */
		a.gpa = 0;
		a.slot = (uint32_t)dt_rng_below(&s->g, 8);
	}
	if (fz_send(s, DT_MSG_ADD_SLOT, &a, -1) && s->nslots < SESSION_SLOTS &&
	    a.pages <= (1ull << 32))
		s->slots[s->nslots++] = (struct fz_slot){ .slot = a.slot, .pages = a.pages };
}

static void act_remove_slot(struct fz *s)
{
	struct dt_msg_remove_slot m = { .slot = pick_slot_id(s) };

	fz_send(s, DT_MSG_REMOVE_SLOT, &m, -1);
}

static void act_add_ring(struct fz *s)
{
	struct dt_msg_add_ring a = {
		.vcpu = (uint32_t)PICK(&s->g, 0, 0, 1, 2, s->hello.vcpus - 1, s->hello.vcpus,
				       UINT32_MAX),
		.entries = (uint32_t)(chance(&s->g, 0.75)
					      ? PICK(&s->g, 128, 256, 1024, 4096, 4096, 65536)
					      : PICK(&s->g, 0, 1, 64, 127, 3000, 131072, 1u << 31)),
		.offset = PICK(&s->g, 0, 0, 0, 4096, 8192, 1, 100, 2ull << 20, 1ull << 62,
			       (uint64_t)INT64_MAX & ~4095ull, UINT64_MAX & ~4095ull),
		.fetch_index = (uint32_t)PICK(&s->g, 0, 0, 0, 1, 127, UINT32_MAX, dt_rng_next(&s->g)),
	};
	uint64_t bytes = (uint64_t)a.entries * sizeof(struct dt_ring_entry);
	void *map;
	size_t len;
	int fd = fz_fd(s, a.offset, bytes, REGION_RING, &map, &len);

	if (fd < 0)
		return;
	if (map && s->nrings < SESSION_RINGS) {
		s->rings[s->nrings++] = (struct fz_ring){ .e = map, .len = len, .entries = a.entries,
							   .dirty = a.fetch_index,
							   .reset = a.fetch_index };
	} else if (map) {
		dtfuzz_region_remove(map);
		munmap(map, len);
	}
	fz_send(s, DT_MSG_ADD_RING, &a, fd);
}

static void act_add_bitmap(struct fz *s)
{
	struct dt_msg_add_bitmap a = {
		.slot = pick_slot_id(s),
		.offset = PICK(&s->g, 0, 0, 0, 4096, 1, 2ull << 20, 1ull << 62, UINT64_MAX & ~4095ull),
	};
	uint64_t pages = 64;
	void *map;
	size_t len;
	int fd;

	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i].slot == a.slot)
			pages = s->slots[i].pages;
	fd = fz_fd(s, a.offset, dt_bitmap_bytes(pages), REGION_BITMAP, &map, &len);
	if (fd < 0)
		return;
	if (map && s->nbitmaps < SESSION_BITMAPS) {
		s->bitmaps[s->nbitmaps++] = (struct fz_bitmap){ .w = map, .len = len };
	} else if (map) {
		dtfuzz_region_remove(map);
		munmap(map, len);
	}
	fz_send(s, DT_MSG_ADD_BITMAP, &a, fd);
}

/* Publish entries in our rings: mostly valid, some not, sometimes too many. */
static void act_dirty(struct fz *s)
{
	if (s->nrings) {
		struct fz_ring *r = &s->rings[dt_rng_below(&s->g, s->nrings)];
		uint32_t cap = (uint32_t)(r->len / sizeof(*r->e));
		uint32_t n = (uint32_t)PICK(&s->g, 1, 10, 100, 1000, cap);

		for (uint32_t i = 0; i < n && cap; i++) {
			struct dt_ring_entry *e = &r->e[r->dirty % cap];
			struct fz_slot *sl = s->nslots ? &s->slots[dt_rng_below(&s->g, s->nslots)] : NULL;

			if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) && chance(&s->g, 0.9))
				break; /* not reset yet: a well-behaved producer stops */
			e->slot = sl && chance(&s->g, 0.9) ? sl->slot : (uint32_t)dt_rng_next(&s->g);
			e->offset = sl && chance(&s->g, 0.9) ? dt_rng_below(&s->g, sl->pages)
							      : dt_rng_next(&s->g);
			__atomic_store_n(&e->flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
			r->dirty++;
		}
	}
	if (s->nbitmaps) {
		struct fz_bitmap *b = &s->bitmaps[dt_rng_below(&s->g, s->nbitmaps)];
		size_t n = b->len / 8;

		for (unsigned i = 0; i < 16 && n; i++)
			__atomic_fetch_or(&b->w[dt_rng_below(&s->g, n)], dt_rng_next(&s->g),
					  __ATOMIC_RELEASE);
	}
}

static void act_message(struct fz *s)
{
	union {
		struct dt_msg_ring_full rf;
		struct dt_msg_done d;
		struct dt_msg_detach det;
		struct dt_msg_ping p;
		struct dt_msg_request req;
		struct dt_msg_ack ack;
		struct dt_msg_error e;
		struct dt_msg_welcome w;
		struct dt_msg_memory_sample ms;
	} u;

	memset(&u, 0, sizeof(u));
	switch (dt_rng_below(&s->g, 11)) {
	case 0:
	case 1:
		u.rf.vcpu = (uint32_t)PICK(&s->g, 0, 0, 1, s->hello.vcpus, UINT32_MAX);
		fz_send(s, DT_MSG_RING_FULL, &u.rf, -1);
		break;
	case 2:
		u.d = (struct dt_msg_done){ .ref_seq = chance(&s->g, 0.5) ? s->last_reset_seq
									: (uint32_t)dt_rng_next(&s->g),
					    .result = (int32_t)PICK(&s->g, 0, 0, -5, -22) };
		fz_send(s, DT_MSG_RESET_DONE, &u.d, -1);
		break;
	case 3:
		u.d = (struct dt_msg_done){ .ref_seq = chance(&s->g, 0.5) ? s->last_sync_seq
									: (uint32_t)dt_rng_next(&s->g),
					    .count = dt_rng_next(&s->g) };
		fz_send(s, DT_MSG_SYNC_DONE, &u.d, -1);
		break;
	case 4:
		u.p.token = dt_rng_next(&s->g);
		fz_send(s, chance(&s->g, 0.7) ? DT_MSG_PING : DT_MSG_PONG, &u.p, -1);
		break;
	case 5: /* wrong direction */
		fz_send(s, (uint16_t)PICK(&s->g, DT_MSG_RESET_RINGS, DT_MSG_SYNC_BITMAP),
			&u.req, -1);
		break;
	case 6:
		u.ack.ref_seq = 1;
		u.ack.ref_type = DT_MSG_HELLO;
		fz_send(s, DT_MSG_ACK, &u.ack, -1);
		break;
	case 7:
		dt_msg_error_init(&u.e, (int)PICK(&s->g, EIO, EOPNOTSUPP, EPERM), NULL, "fuzz");
		fz_send(s, chance(&s->g, 0.8) ? DT_MSG_ERROR : DT_MSG_REFUSE, &u.e, -1);
		break;
	case 8:
		u.w.version = 1;
		fz_send(s, DT_MSG_WELCOME, &u.w, -1);
		break;
	case 9: /* mostly consistent; sometimes zero > sampled, 0, or beyond any memory */
		u.ms.sampled = PICK(&s->g, 4096, 4096, 1, 0, 1u << 20, (1u << 20) + 1, UINT64_MAX);
		u.ms.zero = chance(&s->g, 0.8) && u.ms.sampled ? dt_rng_below(&s->g, u.ms.sampled)
							       : dt_rng_next(&s->g);
		u.ms.pages = PICK(&s->g, 65536, 65536, 1, 0, 1ull << 40, UINT64_MAX);
		fz_send(s, DT_MSG_MEMORY_SAMPLE, &u.ms, -1);
		break;
	default:
		if (chance(&s->g, 0.3))
			fz_send(s, DT_MSG_HELLO, &s->hello, -1); /* a second HELLO */
	}
}

static void build_hello(struct fz *s, const uint8_t *bystander_uuid)
{
	struct dt_msg_hello *h = &s->hello;
	uint32_t mode = (uint32_t)(1 + dt_rng_below(&s->g, 3));

	*h = (struct dt_msg_hello){
		.min_version = 1,
		.max_version = 1,
		.page_size = 4096,
		.vcpus = (uint32_t)PICK(&s->g, 1, 1, 2, 4, 8),
		.mode = mode,
		.caps = DT_CAP_SIMULATED | DT_CAP_RING_FULL |
			(mode & DT_MODE_RING ? DT_CAP_RESET_RINGS : 0) |
			(mode & DT_MODE_BITMAP ? DT_CAP_SYNC_BITMAP : 0),
	};
	snprintf(h->vmm, sizeof(h->vmm), "dtfuzz");
	snprintf(h->name, sizeof(h->name), "fz-%llu", (unsigned long long)s->index);
	if (chance(&s->g, 0.07))
		h->page_size = (uint32_t)PICK(&s->g, 8192, 65536, 0, 2048, 131072, 12288);
	if (chance(&s->g, 0.05))
		h->vcpus = (uint32_t)PICK(&s->g, 0, 512, 513, UINT32_MAX);
	if (chance(&s->g, 0.03))
		h->caps |= 1u << 20;
	if (chance(&s->g, 0.03))
		h->min_version = 2, h->max_version = 3;
	switch (dt_rng_below(&s->g, 16)) {
	case 0 ... 5: /* no uuid */
		break;
	case 6: /* the bystander's: EEXIST, and nothing of it may change */
		if (bystander_uuid)
			memcpy(h->uuid, bystander_uuid, 16);
		break;
	case 7 ... 10: /* a fresh one */
		for (int i = 0; i < 16; i++)
			h->uuid[i] = (uint8_t)dt_rng_next(&s->g);
		break;
	default: { /* from the seed's pool: reattach with the same or another geometry */
		struct dt_rng pool;

		dt_rng_seed(&pool, s->o->seed, 0xbadc0ffee + dt_rng_below(&s->g, UUID_POOL));
		for (int i = 0; i < 16; i++)
			h->uuid[i] = (uint8_t)dt_rng_next(&pool);
	}
	}
}

static int fz_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void fz_free(struct fz *s)
{
	for (unsigned i = 0; i < s->nrings; i++) {
		dtfuzz_region_remove(s->rings[i].e);
		munmap(s->rings[i].e, s->rings[i].len);
	}
	for (unsigned i = 0; i < s->nbitmaps; i++) {
		dtfuzz_region_remove(s->bitmaps[i].w);
		munmap(s->bitmaps[i].w, s->bitmaps[i].len);
	}
	for (unsigned i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	if (s->fd >= 0)
		close(s->fd);
}

void dtfuzz_session_run(const struct dtfuzz_opts *o, uint64_t index, const uint8_t *bystander_uuid)
{
	struct fz s = { .o = o, .index = index, .fd = -1 };
	unsigned steps;

	dt_rng_seed(&s.g, o->seed, index + 1);
	s.seq = (uint32_t)dt_rng_next(&s.g); /* any starting value */
	atomic_fetch_add(&dtfuzz_stats.sequences, 1);
	s.fd = fz_connect(o->attach_sock);
	if (s.fd < 0)
		return;
	build_hello(&s, bystander_uuid);
	if (chance(&s.g, 0.03)) /* something before HELLO: ERROR EPROTO, closed */
		act_message(&s);
	if (chance(&s.g, 0.02))
		sleep_ms((unsigned)dt_rng_below(&s.g, 300)); /* slow to say HELLO */
	fz_send(&s, DT_MSG_HELLO, &s.hello, -1);
	fz_drain(&s, 2000);
	steps = (unsigned)PICK(&s.g, 1, 5, 20, 50, 100, 200, 400);
	for (unsigned i = 0; i < steps && !s.closed && !atomic_load(&dtfuzz_stop); i++) {
		uint64_t a = dt_rng_below(&s.g, 100);

		if (a < 14)
			act_add_slot(&s);
		else if (a < 18)
			act_remove_slot(&s);
		else if (a < 44) {
			/* Mostly what the mode takes, so sessions get deep. */
			bool ring = s.hello.mode == DT_MODE_RING_BITMAP ? chance(&s.g, 0.5)
								       : s.hello.mode == DT_MODE_RING;

			if (chance(&s.g, 0.15))
				ring = !ring;
			if (ring)
				act_add_ring(&s);
			else
				act_add_bitmap(&s);
		} else if (a < 68)
			act_dirty(&s);
		else if (a < 90)
			act_message(&s);
		else if (a < 91 && chance(&s.g, 0.5))
			fz_send_raw(&s);
		else if (a < 92 && chance(&s.g, 0.5)) {
			/* Half close: the daemon sees EOF (WR) or fails to send (RD). */
			int how = chance(&s.g, 0.5) ? SHUT_RD : SHUT_WR;

			shutdown(s.fd, how);
			s.wr_shut |= how == SHUT_WR;
			s.rd_shut |= how == SHUT_RD;
			atomic_fetch_add(&dtfuzz_stats.half_closes, 1);
		} else if (a < 95) {
			s.deaf = !s.deaf; /* stop (or start again) reading replies */
		} else if (a < 99) {
			sleep_ms((unsigned)PICK(&s.g, 1, 10, 50, 120, 300)); /* let ticks pass */
		} else if (chance(&s.g, 0.5)) {
			struct dt_msg_detach d = { .reason = (uint32_t)dt_rng_below(&s.g, 3) };

			fz_send(&s, DT_MSG_DETACH, &d, -1);
		}
		if (!s.deaf && !s.rd_shut)
			fz_drain(&s, chance(&s.g, 0.3) ? 20 : 0);
	}
	/* The end: at once, after a while unread, or after a DETACH and its ACK. */
	switch (dt_rng_below(&s.g, 4)) {
	case 0:
		break;
	case 1:
		sleep_ms((unsigned)dt_rng_below(&s.g, 500));
		break;
	case 2: {
		struct dt_msg_detach d = { 0 };

		if (fz_send(&s, DT_MSG_DETACH, &d, -1))
			fz_drain(&s, 1000);
		break;
	}
	default:
		for (int i = 0; i < 10 && !s.closed; i++)
			fz_drain(&s, 100);
	}
	if (s.closed)
		atomic_fetch_add(&dtfuzz_stats.dropped, 1);
	fz_free(&s);
}
