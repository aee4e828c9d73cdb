/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdirtytrack: the VMM side of the attach protocol. Blocking and
 * synchronous for the VMM's own requests; daemon requests (RESET_RINGS,
 * SYNC_BITMAP, PING) that arrive while a request waits for its reply are
 * served on the spot, so the daemon never waits on a VMM that waits on it.
 * Linked standalone by VMMs: depends only on dt_proto.c and libc.
 */
#include "libdirtytrack.h"

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

struct dt_client {
	int fd;
	struct dt_client_ops ops;
	void *userdata;
	uint32_t seq; /* atomic: dt_client_ring_full() runs on vCPU threads */
	uint32_t vm_id;
	int timeout_ms;
	uint64_t ping_token;
	bool welcomed;
	bool closed; /* REFUSE or DETACH seen, EOF, or we detached */
	bool in_callback;
	char last_error[DT_REASON_MAX];
};

/* What a blocked request is waiting for. */
struct reply_wait {
	uint16_t type;			/* the request's type */
	uint32_t seq;			/* the request's seq */
	uint64_t token;			/* PING only */
	struct dt_msg_welcome *welcome; /* HELLO only */
	bool done;
	int result;
};

static uint32_t client_next_seq(struct dt_client *c)
{
	return __atomic_add_fetch(&c->seq, 1, __ATOMIC_RELAXED);
}

static void client_save_error(struct dt_client *c, const struct dt_msg_error *e)
{
	/* decode guaranteed the NUL inside the field */
	memcpy(c->last_error, e->reason, sizeof(c->last_error));
}

static int client_reply_error(struct dt_client *c, int error, const struct dt_hdr *ref,
			      const char *reason)
{
	struct dt_msg_error e;

	dt_msg_error_init(&e, error, ref, "%s", reason);
	return dt_msg_send(c->fd, DT_MSG_ERROR, client_next_seq(c), &e, NULL, 0);
}

/* RESET_RINGS / SYNC_BITMAP: run the op, answer with its result. */
static int client_serve_request(struct dt_client *c, const struct dt_msg *m)
{
	int (*op)(void *) =
	    m->hdr.type == DT_MSG_RESET_RINGS ? c->ops.reset_rings : c->ops.sync_bitmap;
	uint16_t reply = m->hdr.type == DT_MSG_RESET_RINGS ? DT_MSG_RESET_DONE : DT_MSG_SYNC_DONE;
	struct dt_msg_done d = {.ref_seq = m->hdr.seq};
	int r = -EOPNOTSUPP;

	if (op) {
		c->in_callback = true;
		r = op(c->userdata);
		c->in_callback = false;
	}
	if (r < 0)
		d.result = r;
	else
		d.count = (uint64_t)r;
	return dt_msg_send(c->fd, reply, client_next_seq(c), &d, NULL, 0);
}

/* Handle one decoded message; w is NULL when only dispatching. */
static int client_handle(struct dt_client *c, const struct dt_msg *m, struct reply_wait *w)
{
	switch (m->hdr.type) {
	case DT_MSG_RESET_RINGS:
	case DT_MSG_SYNC_BITMAP:
		return client_serve_request(c, m);
	case DT_MSG_PING:
		return dt_msg_send(c->fd, DT_MSG_PONG, client_next_seq(c), &m->u.ping, NULL, 0);
	case DT_MSG_PONG:
		if (w && w->type == DT_MSG_PING && m->u.ping.token == w->token) {
			w->done = true;
			w->result = 0;
		}
		return 0;
	case DT_MSG_ACK:
		if (w && m->u.ack.ref_seq == w->seq && m->u.ack.ref_type == w->type) {
			w->done = true;
			w->result = 0;
		}
		/* an ACK for nothing we wait for is stale: drop it */
		return 0;
	case DT_MSG_ERROR:
		/* Unsolicited errors (e.g. about a RING_FULL) still leave a reason. */
		client_save_error(c, &m->u.error);
		if (w && m->u.error.ref_seq == w->seq && m->u.error.ref_type == w->type) {
			w->done = true;
			w->result = -m->u.error.error;
		}
		return 0;
	case DT_MSG_REFUSE:
		/* The daemon closes after a REFUSE, whatever we were waiting for. */
		client_save_error(c, &m->u.error);
		c->closed = true;
		if (w) {
			w->done = true;
			w->result = -m->u.error.error;
			return 0;
		}
		return -m->u.error.error;
	case DT_MSG_WELCOME:
		if (w && w->type == DT_MSG_HELLO) {
			w->done = true;
			if (m->u.welcome.version != DT_PROTO_VERSION) {
				w->result = -EPROTONOSUPPORT;
				return 0;
			}
			w->result = 0;
			c->welcomed = true;
			c->vm_id = m->u.welcome.vm_id;
			if (w->welcome)
				*w->welcome = m->u.welcome;
		}
		return 0;
	case DT_MSG_DETACH:
		/* The daemon closes next; a waiting request then sees EOF. */
		c->closed = true;
		if (c->ops.detached) {
			c->in_callback = true;
			c->ops.detached(c->userdata, m->u.detach.reason);
			c->in_callback = false;
		}
		return 0;
	default:
		/* VMM -> daemon types coming back are a daemon bug: ignore them. */
		return 0;
	}
}

/* Receive and handle one message that poll() said is there. */
static int client_recv_one(struct dt_client *c, struct reply_wait *w)
{
	struct dt_msg m;
	int r;

	r = dt_msg_recv(c->fd, &m);
	if (r == 0) {
		c->closed = true;
		if (w && w->type == DT_MSG_DETACH) {
			/* the daemon may close instead of acknowledging */
			w->done = true;
			w->result = 0;
			return 0;
		}
		return -ECONNRESET;
	}
	if (r == -EOPNOTSUPP)
		/* A newer daemon's message type: say so and carry on. */
		return client_reply_error(c, EOPNOTSUPP, &m.hdr, "unknown message type");
	if (r < 0)
		return r;
	/* no daemon -> VMM type carries fds, and decode enforced that */
	dt_msg_close_fds(&m);
	return client_handle(c, &m, w);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait for POLLIN up to timeout_ms (-1 forever). 1 ready, 0 timeout, -errno. */
static int client_poll(struct dt_client *c, int timeout_ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r > 0;
}

static int client_check(struct dt_client *c, bool need_welcome)
{
	if (!c)
		return -EINVAL;
	if (c->in_callback)
		return -EDEADLK;
	if (c->closed)
		return -ECONNRESET;
	if (need_welcome && !c->welcomed)
		return -ENOTCONN;
	return 0;
}

/* Send a request and serve the daemon until its reply comes. */
static int client_request(struct dt_client *c, uint16_t type, const void *payload, const int *fds,
			  unsigned nfds, struct reply_wait *w)
{
	uint64_t deadline = c->timeout_ms >= 0 ? now_ms() + (uint64_t)c->timeout_ms : 0;
	int r;

	w->type = type;
	w->seq = client_next_seq(c);
	w->done = false;
	r = dt_msg_send(c->fd, type, w->seq, payload, fds, nfds);
	if (r < 0)
		return r == -EPIPE ? -ECONNRESET : r;

	while (!w->done) {
		int left = -1;

		if (c->timeout_ms >= 0) {
			uint64_t now = now_ms();

			if (now >= deadline)
				return -ETIMEDOUT;
			left = (int)(deadline - now);
		}
		r = client_poll(c, left);
		if (r < 0)
			return r;
		if (r == 0)
			return -ETIMEDOUT;
		r = client_recv_one(c, w);
		if (r < 0)
			return r == -EPIPE ? -ECONNRESET : r;
	}
	return w->result;
}

int dt_client_connect(const char *path, const struct dt_client_ops *ops, void *userdata,
		      struct dt_client **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct dt_client *c;
	size_t len;
	int fd, r;

	if (!ret)
		return -EINVAL;
	if (!path)
		path = DT_ATTACH_SOCKET_DEFAULT;
	len = strlen(path);
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len + 1);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		free(c);
		return r;
	}
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		free(c);
		return r;
	}
	c->fd = fd;
	if (ops)
		c->ops = *ops;
	c->userdata = userdata;
	c->timeout_ms = DT_CLIENT_TIMEOUT_MS_DEFAULT;
	*ret = c;
	return 0;
}

struct dt_client *dt_client_free(struct dt_client *c)
{
	if (!c)
		return NULL;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return NULL;
}

int dt_client_set_timeout(struct dt_client *c, int timeout_ms)
{
	if (!c || timeout_ms < -1)
		return -EINVAL;
	c->timeout_ms = timeout_ms;
	return 0;
}

static int copy_field(char *dst, size_t size, const char *src, bool nonempty)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size || (nonempty && n == 0))
		return -EINVAL;
	memcpy(dst, src ? src : "", n);
	return 0;
}

int dt_client_hello(struct dt_client *c, const struct dt_client_hello *h,
		    struct dt_msg_welcome *ret_welcome)
{
	struct dt_msg_welcome welcome;
	struct reply_wait w = {.welcome = &welcome};
	struct dt_msg_hello m = {
	    .min_version = DT_PROTO_VERSION,
	    .max_version = DT_PROTO_VERSION,
	};
	int r;

	r = client_check(c, false);
	if (r < 0)
		return r;
	if (c->welcomed)
		return -EALREADY;
	if (!h)
		return -EINVAL;
	m.page_size = h->page_size;
	m.vcpus = h->vcpus;
	m.mode = h->mode;
	m.caps = h->caps;
	memcpy(m.uuid, h->uuid, sizeof(m.uuid));
	r = copy_field(m.name, sizeof(m.name), h->name, true);
	if (r < 0)
		return r;
	r = copy_field(m.vmm, sizeof(m.vmm), h->vmm, false);
	if (r < 0)
		return r;
	c->last_error[0] = '\0';

	/* encode refuses unprintable names and bad modes with -EINVAL */
	r = client_request(c, DT_MSG_HELLO, &m, NULL, 0, &w);
	if (r < 0)
		return r;
	if (ret_welcome)
		*ret_welcome = welcome;
	return 0;
}

int dt_client_add_slot(struct dt_client *c, uint32_t slot, uint64_t gpa, uint64_t pages)
{
	struct dt_msg_add_slot m = {.slot = slot, .gpa = gpa, .pages = pages};
	struct reply_wait w = {0};
	int r = client_check(c, true);

	if (r < 0)
		return r;
	return client_request(c, DT_MSG_ADD_SLOT, &m, NULL, 0, &w);
}

int dt_client_remove_slot(struct dt_client *c, uint32_t slot)
{
	struct dt_msg_remove_slot m = {.slot = slot};
	struct reply_wait w = {0};
	int r = client_check(c, true);

	if (r < 0)
		return r;
	return client_request(c, DT_MSG_REMOVE_SLOT, &m, NULL, 0, &w);
}

int dt_client_add_ring(struct dt_client *c, uint32_t vcpu, int fd, uint64_t offset,
		       uint32_t entries, uint32_t fetch_index)
{
	struct dt_msg_add_ring m = {
	    .vcpu = vcpu,
	    .entries = entries,
	    .offset = offset,
	    .fetch_index = fetch_index,
	};
	struct reply_wait w = {0};
	int r = client_check(c, true);

	if (r < 0)
		return r;
	if (fd < 0)
		return -EBADF;
	return client_request(c, DT_MSG_ADD_RING, &m, &fd, 1, &w);
}

int dt_client_add_bitmap(struct dt_client *c, uint32_t slot, int fd, uint64_t offset)
{
	struct dt_msg_add_bitmap m = {.slot = slot, .offset = offset};
	struct reply_wait w = {0};
	int r = client_check(c, true);

	if (r < 0)
		return r;
	if (fd < 0)
		return -EBADF;
	return client_request(c, DT_MSG_ADD_BITMAP, &m, &fd, 1, &w);
}

int dt_client_ring_full(struct dt_client *c, uint32_t vcpu)
{
	struct dt_msg_ring_full m = {.vcpu = vcpu};
	int r;

	/*
	 * Runs on vCPU threads while the owner thread may be sending too: it
	 * touches only the fd and the atomic seq, and one SEQPACKET sendmsg is
	 * one indivisible datagram.
	 */
	if (!c)
		return -EINVAL;
	r = dt_msg_send(c->fd, DT_MSG_RING_FULL, client_next_seq(c), &m, NULL, 0);
	return r == -EPIPE ? -ECONNRESET : r;
}

int dt_client_memory_sample(struct dt_client *c, uint64_t sampled, uint64_t zero,
			    uint64_t pages)
{
	struct dt_msg_memory_sample m = { .sampled = sampled, .zero = zero, .pages = pages };
	struct reply_wait w;

	if (!c)
		return -EINVAL;
	return client_request(c, DT_MSG_MEMORY_SAMPLE, &m, NULL, 0, &w);
}

int dt_client_ping(struct dt_client *c)
{
	struct dt_msg_ping m;
	struct reply_wait w = {0};
	int r = client_check(c, true);

	if (r < 0)
		return r;
	m.token = w.token = ++c->ping_token;
	return client_request(c, DT_MSG_PING, &m, NULL, 0, &w);
}

int dt_client_detach(struct dt_client *c)
{
	struct dt_msg_detach m = {.reason = DT_DETACH_NORMAL};
	struct reply_wait w = {0};
	int r = client_check(c, true);

	if (r < 0)
		return r;
	r = client_request(c, DT_MSG_DETACH, &m, NULL, 0, &w);
	c->closed = true;
	return r;
}

int dt_client_fd(const struct dt_client *c) { return c ? c->fd : -EINVAL; }

int dt_client_dispatch_wait(struct dt_client *c, int timeout_ms)
{
	int n = 0, r;

	if (!c)
		return -EINVAL;
	if (c->in_callback)
		return -EDEADLK;
	for (;;) {
		/* block for the first message only, then drain what is queued */
		r = client_poll(c, n == 0 ? timeout_ms : 0);
		if (r <= 0)
			return r < 0 ? r : n;
		r = client_recv_one(c, NULL);
		if (r < 0)
			return r == -EPIPE ? -ECONNRESET : r;
		n++;
	}
}

int dt_client_dispatch(struct dt_client *c) { return dt_client_dispatch_wait(c, 0); }

const char *dt_client_last_error(const struct dt_client *c) { return c ? c->last_error : ""; }

uint32_t dt_client_vm_id(const struct dt_client *c) { return c ? c->vm_id : 0; }

int dt_shared_bitmap_new(uint64_t pages, struct dt_shared_bitmap **ret)
{
	struct dt_shared_bitmap *b;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t bytes;
	void *p;
	int fd, r;

	if (!ret || pages == 0)
		return -EINVAL;
	if (page <= 0)
		page = 4096;
	/* 2^48 pages is far past any guest; it also keeps the sums below exact */
	if (pages > (1ull << 48))
		return -E2BIG;
	bytes = (dt_bitmap_bytes(pages) + (uint64_t)page - 1) & ~((uint64_t)page - 1);

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	fd = memfd_create("dirtytrack-bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		r = -errno;
		goto fail_free;
	}
	if (ftruncate(fd, (off_t)bytes) < 0) {
		r = -errno;
		goto fail_close;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail_close;
	}
	/*
	 * The daemon maps this too: without SHRINK a truncate would SIGBUS it,
	 * and it refuses such memfds; SEAL keeps anyone from undoing that.
	 */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		munmap(p, bytes);
		goto fail_close;
	}
	b->words = p;
	b->pages = pages;
	b->bytes = bytes; /* what is mapped: dt_bitmap_bytes() rounded to pages */
	b->fd = fd;
	*ret = b;
	return 0;

fail_close:
	close(fd);
fail_free:
	free(b);
	return r;
}

struct dt_shared_bitmap *dt_shared_bitmap_free(struct dt_shared_bitmap *b)
{
	if (!b)
		return NULL;
	if (b->words)
		munmap(b->words, b->bytes);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	return NULL;
}
