/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The attach protocol codec, its socket I/O, the shared bitmap and the
 * client library against a fake daemon in a child process. Every malformed
 * input must give its documented errno and leak no fd.
 */
#include "dt_proto.h"
#include "dt_test.h"
#include "libdirtytrack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

union payload {
	struct dt_msg_hello hello;
	struct dt_msg_welcome welcome;
	struct dt_msg_error error;
	struct dt_msg_ack ack;
	struct dt_msg_add_slot add_slot;
	struct dt_msg_remove_slot remove_slot;
	struct dt_msg_add_ring add_ring;
	struct dt_msg_add_bitmap add_bitmap;
	struct dt_msg_request request;
	struct dt_msg_done done;
	struct dt_msg_ring_full ring_full;
	struct dt_msg_detach detach;
	struct dt_msg_ping ping;
	struct dt_msg_memory_sample memory_sample;
	uint8_t raw[256];
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static void seqpacket_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
}

static int memfd_of(size_t size)
{
	int fd = memfd_create("test", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, size) < 0) {
		perror("memfd");
		exit(1);
	}
	return fd;
}

/* A valid payload for every type, with distinctive values. */
static void sample_payload(uint16_t type, union payload *p)
{
	memset(p, 0, sizeof(*p));
	switch (type) {
	case DT_MSG_HELLO:
		p->hello = (struct dt_msg_hello){.min_version = 1,
						 .max_version = 1,
						 .page_size = 4096,
						 .vcpus = 4,
						 .mode = DT_MODE_RING_BITMAP,
						 .caps = DT_CAP_RESET_RINGS | DT_CAP_SIMULATED};
		for (int i = 0; i < 16; i++)
			p->hello.uuid[i] = 0x10 + i;
		strcpy(p->hello.vmm, "dtsim");
		strcpy(p->hello.name, "guest-1");
		break;
	case DT_MSG_WELCOME:
		p->welcome = (struct dt_msg_welcome){.version = 1,
						     .vm_id = 7,
						     .epoch_us = 1000000,
						     .max_slots = 512,
						     .max_ring_entries = 65536,
						     .max_vcpus = 512};
		break;
	case DT_MSG_REFUSE:
	case DT_MSG_ERROR:
		p->error = (struct dt_msg_error){
		    .error = EEXIST, .ref_type = DT_MSG_ADD_SLOT, .ref_seq = 0xdeadbeef};
		strcpy(p->error.reason, "slot overlaps slot 3");
		break;
	case DT_MSG_ACK:
		p->ack = (struct dt_msg_ack){.ref_seq = 0x12345678, .ref_type = DT_MSG_ADD_RING};
		break;
	case DT_MSG_ADD_SLOT:
		p->add_slot = (struct dt_msg_add_slot){
		    .slot = (1u << 16) | 2, .gpa = 0x100000000ull, .pages = 262144};
		break;
	case DT_MSG_REMOVE_SLOT:
		p->remove_slot.slot = 5;
		break;
	case DT_MSG_ADD_RING:
		p->add_ring = (struct dt_msg_add_ring){
		    .vcpu = 3, .entries = 4096, .offset = 64 * 4096, .fetch_index = 0xfffffff0u};
		break;
	case DT_MSG_ADD_BITMAP:
		p->add_bitmap = (struct dt_msg_add_bitmap){.slot = 2, .offset = 8192};
		break;
	case DT_MSG_RESET_RINGS:
	case DT_MSG_SYNC_BITMAP:
		p->request.epoch = 0x0123456789abcdefull;
		break;
	case DT_MSG_RESET_DONE:
	case DT_MSG_SYNC_DONE:
		p->done = (struct dt_msg_done){.ref_seq = 99, .result = -EIO, .count = 1ull << 40};
		break;
	case DT_MSG_RING_FULL:
		p->ring_full.vcpu = 511;
		break;
	case DT_MSG_DETACH:
		p->detach.reason = DT_DETACH_EVICTED;
		break;
	case DT_MSG_PING:
	case DT_MSG_PONG:
		p->ping.token = 0xfeedfacecafef00dull;
		break;
	case DT_MSG_MEMORY_SAMPLE:
		p->memory_sample = (struct dt_msg_memory_sample){ .sampled = 4096, .zero = 1000,
								  .pages = 1ull << 36 };
		break;
	}
}

/* sendmsg() of arbitrary bytes and fds, bypassing the encoder. */
static void raw_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	char control[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		struct cmsghdr *cm;

		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
		perror("raw sendmsg");
		exit(1);
	}
}

/* A valid datagram of the given type in buf; returns its length. */
static size_t valid_datagram(uint8_t *buf, uint16_t type, uint32_t seq)
{
	union payload p;
	int n;

	sample_payload(type, &p);
	n = dt_msg_encode(buf, DT_MSG_MAX, type, seq, &p, dt_msg_fd_count(type));
	if (n < 0) {
		fprintf(stderr, "encode %s: %d\n", dt_msg_type_name(type), n);
		exit(1);
	}
	return n;
}

static struct dt_hdr *hdr_of(uint8_t *buf) { return (struct dt_hdr *)buf; }

static void test_tables(void)
{
	CHECK_EQ(dt_msg_payload_size(DT_MSG_HELLO), 136);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_WELCOME), 32);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_REFUSE), 128);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_ERROR), 128);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_ACK), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_ADD_SLOT), 24);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_REMOVE_SLOT), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_ADD_RING), 24);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_ADD_BITMAP), 16);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_RESET_RINGS), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_RESET_DONE), 16);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_SYNC_BITMAP), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_SYNC_DONE), 16);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_RING_FULL), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_DETACH), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_PING), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_PONG), 8);
	CHECK_EQ(dt_msg_payload_size(DT_MSG_INVALID), -EINVAL);
	CHECK_EQ(dt_msg_payload_size(_DT_MSG_MAX), -EINVAL);
	CHECK_EQ(dt_msg_payload_size(0xffff), -EINVAL);
	for (uint16_t t = 1; t < _DT_MSG_MAX; t++) {
		int want = t == DT_MSG_ADD_RING || t == DT_MSG_ADD_BITMAP;

		CHECK_EQ(dt_msg_fd_count(t), want);
		CHECK(sizeof(struct dt_hdr) + dt_msg_payload_size(t) <= DT_MSG_MAX);
		CHECK(strcmp(dt_msg_type_name(t), "UNKNOWN") != 0);
	}
	CHECK_EQ(dt_msg_fd_count(0), -EINVAL);
	CHECK_EQ(dt_msg_fd_count(200), -EINVAL);
	CHECK(!strcmp(dt_msg_type_name(DT_MSG_ADD_BITMAP), "ADD_BITMAP"));
	CHECK(!strcmp(dt_msg_type_name(0), "UNKNOWN"));
	CHECK(!strcmp(dt_msg_type_name(999), "UNKNOWN"));
	CHECK(!strcmp(dt_mode_name(DT_MODE_RING), "ring"));
	CHECK(!strcmp(dt_mode_name(DT_MODE_BITMAP), "bitmap"));
	CHECK(!strcmp(dt_mode_name(DT_MODE_RING_BITMAP), "ring+bitmap"));
	CHECK(!strcmp(dt_mode_name(0), "invalid"));
	CHECK(!strcmp(dt_mode_name(4), "invalid"));
}

static void test_roundtrip(void)
{
	int before = count_fds();

	for (uint16_t t = 1; t < _DT_MSG_MAX; t++) {
		union payload p;
		struct dt_msg m;
		int sv[2], fd = -1, r;
		unsigned nfds = dt_msg_fd_count(t);

		seqpacket_pair(sv);
		sample_payload(t, &p);
		if (nfds)
			fd = memfd_of(4096);
		r = dt_msg_send(sv[0], t, 1000 + t, &p, nfds ? &fd : NULL, nfds);
		CHECK_EQ(r, 0);
		memset(&m, 0xa5, sizeof(m));
		r = dt_msg_recv(sv[1], &m);
		CHECK_EQ(r, 1);
		CHECK_EQ(m.hdr.magic, DT_PROTO_MAGIC);
		CHECK_EQ(m.hdr.version, DT_PROTO_VERSION);
		CHECK_EQ(m.hdr.type, t);
		CHECK_EQ(m.hdr.flags, 0);
		CHECK_EQ(m.hdr.len, dt_msg_payload_size(t));
		CHECK_EQ(m.hdr.seq, 1000 + t);
		CHECK_EQ(m.hdr.nfds, nfds);
		CHECK_EQ(m.hdr.reserved, 0);
		CHECK_EQ(m.nfds, nfds);
		CHECK(!memcmp(&m.u, &p, dt_msg_payload_size(t)));
		if (nfds) {
			struct stat a, b;

			CHECK(m.fds[0] >= 0 && m.fds[0] != fd);
			CHECK(fstat(fd, &a) == 0 && fstat(m.fds[0], &b) == 0);
			CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
			/* MSG_CMSG_CLOEXEC: the daemon never leaks a VMM's fd into children */
			CHECK(fcntl(m.fds[0], F_GETFD) & FD_CLOEXEC);
			close(fd);
		}
		dt_msg_close_fds(&m);
		if (nfds)
			CHECK_EQ(m.fds[0], -1);
		close(sv[0]);
		close(sv[1]);
	}
	CHECK_EQ(count_fds(), before);
}

static void test_encode(void)
{
	uint8_t buf[DT_MSG_MAX];
	union payload p;
	int fd;

	sample_payload(DT_MSG_PING, &p);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_PING, 1, &p, 0), 32);
	CHECK_EQ(dt_msg_encode(buf, 31, DT_MSG_PING, 1, &p, 0), -ENOBUFS);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), 0, 1, &p, 0), -EINVAL);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), 77, 1, &p, 0), -EINVAL);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_PING, 1, NULL, 0), -EINVAL);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_PING, 1, &p, 1), -EINVAL);
	sample_payload(DT_MSG_ADD_RING, &p);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_ADD_RING, 1, &p, 0), -EINVAL);
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_ADD_RING, 1, &p, 1), 48);
	/* the encoder refuses what the decoder would refuse */
	sample_payload(DT_MSG_HELLO, &p);
	p.hello.name[0] = '\0';
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_HELLO, 1, &p, 0), -EINVAL);
	sample_payload(DT_MSG_DETACH, &p);
	p.detach.reason = _DT_DETACH_MAX;
	CHECK_EQ(dt_msg_encode(buf, sizeof(buf), DT_MSG_DETACH, 1, &p, 0), -EINVAL);

	/* send: fds must match the type and be valid */
	{
		int sv[2];

		seqpacket_pair(sv);
		sample_payload(DT_MSG_ADD_BITMAP, &p);
		CHECK_EQ(dt_msg_send(sv[0], DT_MSG_ADD_BITMAP, 1, &p, NULL, 0), -EINVAL);
		fd = -1;
		CHECK_EQ(dt_msg_send(sv[0], DT_MSG_ADD_BITMAP, 1, &p, &fd, 1), -EBADF);
		close(sv[1]);
		sample_payload(DT_MSG_PING, &p);
		/* MSG_NOSIGNAL: a dead peer is an error, not SIGPIPE */
		CHECK_EQ(dt_msg_send(sv[0], DT_MSG_PING, 1, &p, NULL, 0), -EPIPE);
		close(sv[0]);
	}
}

static void test_error_init(void)
{
	struct dt_msg_error e;
	struct dt_hdr h = {.type = DT_MSG_ADD_SLOT, .seq = 42};
	char long_reason[300];

	dt_msg_error_init(&e, -EEXIST, &h, "slot %u: %s", 3u, "bad\x01\tname\x80");
	CHECK_EQ(e.error, EEXIST);
	CHECK_EQ(e.ref_type, DT_MSG_ADD_SLOT);
	CHECK_EQ(e.ref_seq, 42);
	CHECK_EQ(e.reserved, 0);
	CHECK_EQ(e.reserved2, 0);
	CHECK(!strcmp(e.reason, "slot 3: bad??name?"));
	dt_msg_error_init(&e, EPERM, NULL, "x");
	CHECK_EQ(e.error, EPERM);
	CHECK_EQ(e.ref_type, 0);
	CHECK_EQ(e.ref_seq, 0);
	memset(long_reason, 'a', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	dt_msg_error_init(&e, 0, NULL, "%s", long_reason);
	CHECK(e.error > 0);
	CHECK_EQ(strlen(e.reason), DT_REASON_MAX - 1);
	{
		uint8_t buf[DT_MSG_MAX];

		CHECK(dt_msg_encode(buf, sizeof(buf), DT_MSG_ERROR, 1, &e, 0) > 0);
	}
}

/*
 * Send the datagram (with fds, which the sender then closes) and check the
 * receiver's errno; the fds received must all be closed again.
 */
static int expect_recv_error(const uint8_t *buf, size_t len, unsigned nfds, int want, int line)
{
	int sv[2], fds[8], before, r;
	struct dt_msg m;

	seqpacket_pair(sv);
	before = count_fds();
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = memfd_of(4096);
	raw_send(sv[0], buf, len, fds, nfds);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	memset(&m, 0, sizeof(m));
	r = dt_msg_recv(sv[1], &m);
	if (r != want)
		fprintf(stderr, "line %d: recv gave %d (%s), want %d (%s)\n", line, r,
			r < 0 ? strerror(-r) : "-", want, want < 0 ? strerror(-want) : "-");
	CHECK_EQ(r, want);
	if (r == 1)
		dt_msg_close_fds(&m);
	if (count_fds() != before)
		fprintf(stderr, "line %d: fd leak\n", line);
	CHECK_EQ(count_fds(), before);
	close(sv[0]);
	close(sv[1]);
	return r;
}
#define EXPECT(buf, len, nfds, want) expect_recv_error(buf, len, nfds, want, __LINE__)

static void test_malformed_header(void)
{
	uint8_t buf[DT_MSG_MAX + 1000];
	size_t n;

	/* shorter than a header */
	n = valid_datagram(buf, DT_MSG_PING, 1);
	EXPECT(buf, 23, 0, -EBADMSG);
	EXPECT(buf, 1, 0, -EBADMSG);
	/* bad magic */
	n = valid_datagram(buf, DT_MSG_PING, 1);
	hdr_of(buf)->magic = 0x4b525445;
	EXPECT(buf, n, 0, -EBADMSG);
	n = valid_datagram(buf, DT_MSG_ADD_RING, 1);
	hdr_of(buf)->magic = 0;
	EXPECT(buf, n, 1, -EBADMSG);
	/* unsupported version */
	n = valid_datagram(buf, DT_MSG_PING, 1);
	hdr_of(buf)->version = 2;
	EXPECT(buf, n, 0, -EPROTONOSUPPORT);
	hdr_of(buf)->version = 0;
	EXPECT(buf, n, 0, -EPROTONOSUPPORT);
	/* unknown types, header otherwise valid */
	n = valid_datagram(buf, DT_MSG_PING, 1);
	hdr_of(buf)->type = 99;
	EXPECT(buf, n, 0, -EOPNOTSUPP);
	hdr_of(buf)->type = 0;
	EXPECT(buf, n, 0, -EOPNOTSUPP);
	hdr_of(buf)->type = _DT_MSG_MAX;
	EXPECT(buf, n, 0, -EOPNOTSUPP);
	/* an unknown type with an fd: the fd is closed */
	hdr_of(buf)->type = 1000;
	hdr_of(buf)->nfds = 1;
	EXPECT(buf, n, 1, -EOPNOTSUPP);
	/* header flags and reserved */
	n = valid_datagram(buf, DT_MSG_PING, 1);
	hdr_of(buf)->flags = 1;
	EXPECT(buf, n, 0, -EPROTO);
	n = valid_datagram(buf, DT_MSG_PING, 1);
	hdr_of(buf)->reserved = 0x8000;
	EXPECT(buf, n, 0, -EPROTO);
	/* payload shorter / longer than the type's, header consistent */
	n = valid_datagram(buf, DT_MSG_ADD_SLOT, 1);
	hdr_of(buf)->len -= 8;
	EXPECT(buf, n - 8, 0, -EMSGSIZE);
	hdr_of(buf)->len += 16;
	memset(buf + n, 0, 8);
	EXPECT(buf, n + 8, 0, -EMSGSIZE);
	n = valid_datagram(buf, DT_MSG_HELLO, 1);
	hdr_of(buf)->len = 0;
	EXPECT(buf, sizeof(struct dt_hdr), 0, -EMSGSIZE);
	/* header length disagrees with the datagram */
	n = valid_datagram(buf, DT_MSG_ADD_BITMAP, 1);
	EXPECT(buf, n - 1, 1, -EMSGSIZE);
	memset(buf + n, 0, 4);
	EXPECT(buf, n + 4, 1, -EMSGSIZE);
	hdr_of(buf)->len = 0xffffffffu;
	EXPECT(buf, n, 1, -EMSGSIZE);
	/* larger than DT_MSG_MAX: MSG_TRUNC, and the fds that came along closed */
	n = valid_datagram(buf, DT_MSG_ADD_RING, 1);
	memset(buf + n, 0, sizeof(buf) - n);
	hdr_of(buf)->len = sizeof(buf) - sizeof(struct dt_hdr);
	EXPECT(buf, sizeof(buf), 1, -EMSGSIZE);
	EXPECT(buf, DT_MSG_MAX + 1, 2, -EMSGSIZE);
	/* exactly DT_MSG_MAX is not truncated, just the wrong length */
	EXPECT(buf, DT_MSG_MAX, 0, -EMSGSIZE);

	/* decode directly: lengths and fd counts the socket cannot produce */
	{
		struct dt_msg m;

		n = valid_datagram(buf, DT_MSG_PING, 1);
		CHECK_EQ(dt_msg_decode(buf, DT_MSG_MAX + 1, 0, &m), -EMSGSIZE);
		CHECK_EQ(dt_msg_decode(buf, n, DT_MSG_MAX_FDS + 1, &m), -EBADF);
		CHECK_EQ(dt_msg_decode(buf, 0, 0, &m), -EBADMSG);
		CHECK_EQ(dt_msg_decode(buf, n, 0, &m), 0);
	}
}

static void test_malformed_fds(void)
{
	uint8_t buf[DT_MSG_MAX];
	size_t n;

	/* ADD_RING must carry one fd: none sent, header says 1 */
	n = valid_datagram(buf, DT_MSG_ADD_RING, 1);
	EXPECT(buf, n, 0, -EBADF);
	/* header says 0 and none sent: wrong for the type */
	hdr_of(buf)->nfds = 0;
	EXPECT(buf, n, 0, -EBADF);
	/* header says 0, one sent */
	EXPECT(buf, n, 1, -EBADF);
	/* two sent, header says two */
	hdr_of(buf)->nfds = 2;
	EXPECT(buf, n, 2, -EBADF);
	/* ADD_BITMAP with two */
	n = valid_datagram(buf, DT_MSG_ADD_BITMAP, 1);
	EXPECT(buf, n, 2, -EBADF);
	/* PING with an fd the header announces */
	n = valid_datagram(buf, DT_MSG_PING, 1);
	hdr_of(buf)->nfds = 1;
	EXPECT(buf, n, 1, -EBADF);
	/* PING with an fd the header does not announce */
	hdr_of(buf)->nfds = 0;
	EXPECT(buf, n, 1, -EBADF);
	/* more fds than the receive buffer holds: MSG_CTRUNC, all closed */
	n = valid_datagram(buf, DT_MSG_ADD_RING, 1);
	hdr_of(buf)->nfds = 3;
	EXPECT(buf, n, 3, -EBADF);
	EXPECT(buf, n, 8, -EBADF);
}

static void test_malformed_payload(void)
{
	uint8_t buf[DT_MSG_MAX];
	const size_t H = sizeof(struct dt_hdr);
	union payload *p = (union payload *)(buf + H);
	size_t n;

	/* reserved and flags fields of each payload */
	static const struct {
		uint16_t type;
		size_t off;
		size_t size;
	} reserved[] = {
	    {DT_MSG_HELLO, offsetof(struct dt_msg_hello, flags), 4},
	    {DT_MSG_WELCOME, offsetof(struct dt_msg_welcome, reserved), 2},
	    {DT_MSG_WELCOME, offsetof(struct dt_msg_welcome, reserved2), 4},
	    {DT_MSG_REFUSE, offsetof(struct dt_msg_error, reserved), 2},
	    {DT_MSG_ERROR, offsetof(struct dt_msg_error, reserved), 2},
	    {DT_MSG_ERROR, offsetof(struct dt_msg_error, reserved2), 4},
	    {DT_MSG_ACK, offsetof(struct dt_msg_ack, reserved), 2},
	    {DT_MSG_ADD_SLOT, offsetof(struct dt_msg_add_slot, flags), 4},
	    {DT_MSG_REMOVE_SLOT, offsetof(struct dt_msg_remove_slot, reserved), 4},
	    {DT_MSG_ADD_RING, offsetof(struct dt_msg_add_ring, flags), 4},
	    {DT_MSG_ADD_BITMAP, offsetof(struct dt_msg_add_bitmap, flags), 4},
	    {DT_MSG_RING_FULL, offsetof(struct dt_msg_ring_full, reserved), 4},
	    {DT_MSG_DETACH, offsetof(struct dt_msg_detach, reserved), 4},
	    {DT_MSG_MEMORY_SAMPLE, offsetof(struct dt_msg_memory_sample, reserved), 8},
	};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		unsigned nfds = dt_msg_fd_count(reserved[i].type);

		/* the highest byte, so a check on only the low bits fails */
		n = valid_datagram(buf, reserved[i].type, 1);
		buf[H + reserved[i].off + reserved[i].size - 1] = 0x80;
		EXPECT(buf, n, nfds, -EPROTO);
		n = valid_datagram(buf, reserved[i].type, 1);
		buf[H + reserved[i].off] = 1;
		EXPECT(buf, n, nfds, -EPROTO);
	}

	/* enums */
	n = valid_datagram(buf, DT_MSG_HELLO, 1);
	p->hello.mode = 0;
	EXPECT(buf, n, 0, -EPROTO);
	p->hello.mode = _DT_MODE_MAX;
	EXPECT(buf, n, 0, -EPROTO);
	p->hello.mode = 0x80000001u;
	EXPECT(buf, n, 0, -EPROTO);
	p->hello.mode = DT_MODE_RING;
	EXPECT(buf, n, 0, 1);
	n = valid_datagram(buf, DT_MSG_DETACH, 1);
	p->detach.reason = _DT_DETACH_MAX;
	EXPECT(buf, n, 0, -EPROTO);
	p->detach.reason = DT_DETACH_SHUTDOWN;
	EXPECT(buf, n, 0, 1);
	n = valid_datagram(buf, DT_MSG_ERROR, 1);
	p->error.error = 0;
	EXPECT(buf, n, 0, -EPROTO);
	p->error.error = -5;
	EXPECT(buf, n, 0, -EPROTO);
	n = valid_datagram(buf, DT_MSG_RESET_DONE, 1);
	p->done.result = 1;
	EXPECT(buf, n, 0, -EPROTO);
	p->done.result = 0;
	EXPECT(buf, n, 0, 1);

	/* strings: unterminated, unprintable, empty name */
	n = valid_datagram(buf, DT_MSG_HELLO, 1);
	memset(p->hello.name, 'a', sizeof(p->hello.name));
	EXPECT(buf, n, 0, -EPROTO);
	p->hello.name[DT_NAME_MAX - 1] = '\0'; /* longest legal name */
	EXPECT(buf, n, 0, 1);
	p->hello.name[0] = '\0';
	EXPECT(buf, n, 0, -EPROTO);
	strcpy(p->hello.name, "tab\there");
	EXPECT(buf, n, 0, -EPROTO);
	strcpy(p->hello.name, "del\x7f");
	EXPECT(buf, n, 0, -EPROTO);
	strcpy(p->hello.name, "ok");
	memset(p->hello.vmm, 'v', sizeof(p->hello.vmm));
	EXPECT(buf, n, 0, -EPROTO);
	strcpy(p->hello.vmm, "\xc3\xa9");
	EXPECT(buf, n, 0, -EPROTO);
	p->hello.vmm[0] = '\0'; /* an empty vmm is allowed */
	EXPECT(buf, n, 0, 1);
	n = valid_datagram(buf, DT_MSG_REFUSE, 1);
	memset(p->error.reason, 'r', sizeof(p->error.reason));
	EXPECT(buf, n, 0, -EPROTO);
	strcpy(p->error.reason, "new\nline");
	EXPECT(buf, n, 0, -EPROTO);
	p->error.reason[0] = '\0'; /* an empty reason is allowed */
	EXPECT(buf, n, 0, 1);

	/* on error the payload of ret is untouched and the header is cited */
	{
		struct dt_msg m;

		n = valid_datagram(buf, DT_MSG_HELLO, 77);
		p->hello.mode = 9;
		memset(&m, 0x5a, sizeof(m));
		CHECK_EQ(dt_msg_decode(buf, n, 0, &m), -EPROTO);
		CHECK_EQ(m.u.raw[0], 0x5a);
		CHECK_EQ(m.hdr.seq, 77);
		CHECK_EQ(m.hdr.type, DT_MSG_HELLO);
	}
}

static void test_eof(void)
{
	int sv[2];
	struct dt_msg m;

	seqpacket_pair(sv);
	close(sv[0]);
	CHECK_EQ(dt_msg_recv(sv[1], &m), 0);
	close(sv[1]);
	/* a non-blocking socket with nothing queued */
	seqpacket_pair(sv);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	CHECK_EQ(dt_msg_recv(sv[1], &m), -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

static void test_shared_bitmap(void)
{
	struct dt_shared_bitmap *b = NULL;
	long page = sysconf(_SC_PAGESIZE);
	int before = count_fds();
	int seals;

	CHECK_EQ(dt_shared_bitmap_new(0, &b), -EINVAL);
	CHECK_EQ(dt_shared_bitmap_new(1ull << 60, &b), -E2BIG);
	CHECK_EQ(dt_shared_bitmap_new(100000, &b), 0);
	if (!b)
		return;
	CHECK_EQ(b->pages, 100000);
	CHECK(b->bytes >= dt_bitmap_bytes(100000));
	CHECK_EQ(b->bytes % page, 0);
	CHECK(b->bytes < dt_bitmap_bytes(100000) + page);
	seals = fcntl(b->fd, F_GET_SEALS);
	CHECK_EQ(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	CHECK(fcntl(b->fd, F_GETFD) & FD_CLOEXEC);
	CHECK(ftruncate(b->fd, 0) < 0 && errno == EPERM);
	CHECK(ftruncate(b->fd, b->bytes * 2) < 0 && errno == EPERM);
	CHECK(fcntl(b->fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM);

	dt_shared_bitmap_mark(b, 0);
	dt_shared_bitmap_mark(b, 65);
	dt_shared_bitmap_mark(b, 99999);
	dt_shared_bitmap_mark(b, 100000); /* past the slot: ignored */
	dt_shared_bitmap_or_word(b, 2, 0xf0);
	dt_shared_bitmap_or_word(b, (100000 + 63) / 64, ~0ull); /* ignored */
	CHECK_EQ(b->words[0], 1);
	CHECK_EQ(b->words[1], 2);
	CHECK_EQ(b->words[2], 0xf0);
	CHECK_EQ(b->words[99999 / 64], 1ull << (99999 % 64));
	/* the daemon's side: a second mapping of the fd sees the same words */
	{
		uint64_t *w = mmap(NULL, b->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);

		CHECK(w != MAP_FAILED);
		if (w != MAP_FAILED) {
			CHECK_EQ(__atomic_exchange_n(&w[1], 0, __ATOMIC_ACQ_REL), 2);
			CHECK_EQ(b->words[1], 0);
			munmap(w, b->bytes);
		}
	}
	CHECK(dt_shared_bitmap_free(b) == NULL);
	CHECK(dt_shared_bitmap_free(NULL) == NULL);
	CHECK_EQ(count_fds(), before);
}

/* --- the client library against a fake daemon ------------------------------ */

static char sock_dir[64];
static char sock_path[108];

static int listen_socket(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	unlink(sock_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, sock_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		perror("listen");
		exit(1);
	}
	return fd;
}

/* Fork a fake daemon that accepts one connection and runs fn on it. */
static pid_t fake_daemon(void (*fn)(int sock))
{
	int lfd = listen_socket();
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		alarm(20);
		if (s < 0)
			_exit(2);
		fn(s);
		close(s);
		_exit(dt_test_failures ? 1 : 0);
	}
	close(lfd);
	return pid;
}

static void fake_daemon_wait(pid_t pid)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void expect_msg(int sock, uint16_t type, struct dt_msg *m)
{
	int r = dt_msg_recv(sock, m);

	CHECK_EQ(r, 1);
	if (r == 1) {
		if (m->hdr.type != type)
			fprintf(stderr, "fake daemon got %s, want %s\n",
				dt_msg_type_name(m->hdr.type), dt_msg_type_name(type));
		CHECK_EQ(m->hdr.type, type);
	} else {
		memset(m, 0, sizeof(*m));
	}
}

static void send_ack(int sock, const struct dt_msg *m)
{
	struct dt_msg_ack a = {.ref_seq = m->hdr.seq, .ref_type = m->hdr.type};

	CHECK_EQ(dt_msg_send(sock, DT_MSG_ACK, 9000, &a, NULL, 0), 0);
}

static void send_welcome(int sock)
{
	union payload p;

	sample_payload(DT_MSG_WELCOME, &p);
	CHECK_EQ(dt_msg_send(sock, DT_MSG_WELCOME, 1, &p, NULL, 0), 0);
}

struct vmm {
	int resets;
	int syncs;
	int detached;
	uint32_t detach_reason;
	int reentry;
	struct dt_client *c;
};

static int vmm_reset_rings(void *userdata)
{
	struct vmm *v = userdata;

	v->resets++;
	/* ops must not re-enter the client: it is waiting on this very call */
	v->reentry = dt_client_ping(v->c);
	return 5;
}

static int vmm_sync_bitmap(void *userdata)
{
	struct vmm *v = userdata;

	v->syncs++;
	return v->syncs == 1 ? 3 : -EIO;
}

static void vmm_detached(void *userdata, uint32_t reason)
{
	struct vmm *v = userdata;

	v->detached++;
	v->detach_reason = reason;
}

static const struct dt_client_ops vmm_ops = {
    .reset_rings = vmm_reset_rings,
    .sync_bitmap = vmm_sync_bitmap,
    .detached = vmm_detached,
};

static const struct dt_client_hello vmm_hello = {
    .name = "guest-1",
    .vmm = "test",
    .uuid = {1, 2, 3},
    .page_size = 4096,
    .vcpus = 4,
    .mode = DT_MODE_RING_BITMAP,
    .caps = DT_CAP_RESET_RINGS | DT_CAP_SYNC_BITMAP | DT_CAP_SIMULATED,
};

static void daemon_main_flow(int s)
{
	struct dt_msg m, d;
	union payload p;

	expect_msg(s, DT_MSG_HELLO, &m);
	CHECK_EQ(m.u.hello.min_version, 1);
	CHECK_EQ(m.u.hello.max_version, 1);
	CHECK_EQ(m.u.hello.vcpus, 4);
	CHECK_EQ(m.u.hello.page_size, 4096);
	CHECK_EQ(m.u.hello.mode, DT_MODE_RING_BITMAP);
	CHECK_EQ(m.u.hello.uuid[2], 3);
	CHECK(!strcmp(m.u.hello.name, "guest-1"));
	CHECK(!strcmp(m.u.hello.vmm, "test"));
	send_welcome(s);

	/* ADD_SLOT: serve requests of our own before acknowledging it */
	expect_msg(s, DT_MSG_ADD_SLOT, &m);
	CHECK_EQ(m.u.add_slot.slot, 0x10002);
	CHECK_EQ(m.u.add_slot.gpa, 0x100000000ull);
	CHECK_EQ(m.u.add_slot.pages, 1024);
	p.request.epoch = 1;
	CHECK_EQ(dt_msg_send(s, DT_MSG_RESET_RINGS, 500, &p, NULL, 0), 0);
	expect_msg(s, DT_MSG_RESET_DONE, &d);
	CHECK_EQ(d.u.done.ref_seq, 500);
	CHECK_EQ(d.u.done.result, 0);
	CHECK_EQ(d.u.done.count, 5);
	CHECK_EQ(dt_msg_send(s, DT_MSG_SYNC_BITMAP, 501, &p, NULL, 0), 0);
	expect_msg(s, DT_MSG_SYNC_DONE, &d);
	CHECK_EQ(d.u.done.ref_seq, 501);
	CHECK_EQ(d.u.done.result, 0);
	CHECK_EQ(d.u.done.count, 3);
	p.ping.token = 4242;
	CHECK_EQ(dt_msg_send(s, DT_MSG_PING, 502, &p, NULL, 0), 0);
	expect_msg(s, DT_MSG_PONG, &d);
	CHECK_EQ(d.u.ping.token, 4242);
	/* a stale ACK and an unrelated ERROR must not complete the request */
	p.ack = (struct dt_msg_ack){.ref_seq = m.hdr.seq - 1, .ref_type = DT_MSG_ADD_SLOT};
	CHECK_EQ(dt_msg_send(s, DT_MSG_ACK, 503, &p, NULL, 0), 0);
	dt_msg_error_init(&p.error, EINVAL, NULL, "unrelated");
	CHECK_EQ(dt_msg_send(s, DT_MSG_ERROR, 504, &p, NULL, 0), 0);
	send_ack(s, &m);

	/* the second ADD_SLOT fails */
	expect_msg(s, DT_MSG_ADD_SLOT, &m);
	dt_msg_error_init(&p.error, EEXIST, &m.hdr, "slot %u overlaps", m.u.add_slot.slot);
	CHECK_EQ(dt_msg_send(s, DT_MSG_ERROR, 505, &p, NULL, 0), 0);

	/* ADD_RING with its fd, then ADD_BITMAP with its fd */
	expect_msg(s, DT_MSG_ADD_RING, &m);
	CHECK_EQ(m.nfds, 1);
	CHECK_EQ(m.u.add_ring.vcpu, 1);
	CHECK_EQ(m.u.add_ring.entries, 1024);
	CHECK_EQ(m.u.add_ring.offset, 0);
	CHECK_EQ(m.u.add_ring.fetch_index, 17);
	CHECK(m.fds[0] >= 0 && fcntl(m.fds[0], F_GETFD) >= 0);
	dt_msg_close_fds(&m);
	send_ack(s, &m);
	expect_msg(s, DT_MSG_ADD_BITMAP, &m);
	CHECK_EQ(m.nfds, 1);
	CHECK(fcntl(m.fds[0], F_GET_SEALS) & F_SEAL_SHRINK);
	dt_msg_close_fds(&m);
	send_ack(s, &m);

	/* RING_FULL from a vCPU thread: no reply */
	expect_msg(s, DT_MSG_RING_FULL, &m);
	CHECK_EQ(m.u.ring_full.vcpu, 2);

	/* PING round trip, REMOVE_SLOT */
	expect_msg(s, DT_MSG_PING, &m);
	CHECK_EQ(dt_msg_send(s, DT_MSG_PONG, 506, &m.u.ping, NULL, 0), 0);
	expect_msg(s, DT_MSG_REMOVE_SLOT, &m);
	CHECK_EQ(m.u.remove_slot.slot, 0x10002);
	send_ack(s, &m);

	/*
	 * Requests while the VMM sits in its poll loop: an unknown type from
	 * a "newer daemon" gets ERROR EOPNOTSUPP, a SYNC_BITMAP whose op fails
	 * gets SYNC_DONE with the errno.
	 */
	{
		uint8_t raw[64];
		struct dt_hdr h = {
		    .magic = DT_PROTO_MAGIC, .version = 1, .type = 60, .len = 8, .seq = 507};

		memcpy(raw, &h, sizeof(h));
		memset(raw + sizeof(h), 0, 8);
		raw_send(s, raw, sizeof(h) + 8, NULL, 0);
	}
	CHECK_EQ(dt_msg_send(s, DT_MSG_SYNC_BITMAP, 508, &p, NULL, 0), 0);
	expect_msg(s, DT_MSG_ERROR, &d);
	CHECK_EQ(d.u.error.error, EOPNOTSUPP);
	CHECK_EQ(d.u.error.ref_type, 60);
	CHECK_EQ(d.u.error.ref_seq, 507);
	expect_msg(s, DT_MSG_SYNC_DONE, &d);
	CHECK_EQ(d.u.done.ref_seq, 508);
	CHECK_EQ(d.u.done.result, -EIO);
	CHECK_EQ(d.u.done.count, 0);

	expect_msg(s, DT_MSG_DETACH, &m);
	CHECK_EQ(m.u.detach.reason, DT_DETACH_NORMAL);
	send_ack(s, &m);
}

static void *ring_full_thread(void *arg) { return (void *)(intptr_t)dt_client_ring_full(arg, 2); }

static void test_client_flow(void)
{
	struct vmm v = {0};
	struct dt_msg_welcome w;
	struct dt_shared_bitmap *b = NULL;
	struct dt_client *c = NULL;
	int before = count_fds();
	pthread_t t;
	void *tr;
	pid_t pid;
	int ring;

	pid = fake_daemon(daemon_main_flow);
	CHECK_EQ(dt_client_connect(sock_path, &vmm_ops, &v, &c), 0);
	if (!c)
		return;
	v.c = c;
	CHECK(dt_client_fd(c) >= 0);
	CHECK(fcntl(dt_client_fd(c), F_GETFD) & FD_CLOEXEC);
	CHECK_EQ(dt_client_add_slot(c, 1, 0, 1), -ENOTCONN);
	CHECK_EQ(dt_client_hello(c, &vmm_hello, &w), 0);
	CHECK_EQ(w.vm_id, 7);
	CHECK_EQ(w.epoch_us, 1000000);
	CHECK_EQ(w.max_slots, 512);
	CHECK_EQ(dt_client_vm_id(c), 7);
	CHECK_EQ(dt_client_hello(c, &vmm_hello, NULL), -EALREADY);

	CHECK_EQ(dt_client_add_slot(c, 0x10002, 0x100000000ull, 1024), 0);
	CHECK_EQ(v.resets, 1);
	CHECK_EQ(v.syncs, 1);
	CHECK_EQ(v.reentry, -EDEADLK);
	CHECK(!strcmp(dt_client_last_error(c), "unrelated"));

	CHECK_EQ(dt_client_add_slot(c, 0x10003, 0x100000000ull, 1024), -EEXIST);
	CHECK(!strcmp(dt_client_last_error(c), "slot 65539 overlaps"));

	ring = memfd_of(16 * 1024);
	CHECK_EQ(dt_client_add_ring(c, 1, -1, 0, 1024, 17), -EBADF);
	CHECK_EQ(dt_client_add_ring(c, 1, ring, 0, 1024, 17), 0);
	close(ring);
	CHECK_EQ(dt_shared_bitmap_new(1024, &b), 0);
	if (b) {
		CHECK_EQ(dt_client_add_bitmap(c, 0x10002, b->fd, 0), 0);
		dt_shared_bitmap_free(b);
	}

	CHECK_EQ(pthread_create(&t, NULL, ring_full_thread, c), 0);
	CHECK_EQ(pthread_join(t, &tr), 0);
	CHECK_EQ((intptr_t)tr, 0);

	CHECK_EQ(dt_client_ping(c), 0);
	CHECK_EQ(dt_client_remove_slot(c, 0x10002), 0);

	/* both queued daemon messages are handled by one dispatch_wait */
	{
		int n = 0;

		for (int i = 0; i < 50 && n < 2; i++) {
			int r = dt_client_dispatch_wait(c, 100);

			CHECK(r >= 0);
			if (r < 0)
				break;
			n += r;
		}
		CHECK_EQ(n, 2);
	}
	CHECK_EQ(v.syncs, 2);
	CHECK_EQ(dt_client_dispatch(c), 0);

	CHECK_EQ(dt_client_detach(c), 0);
	CHECK_EQ(dt_client_ping(c), -ECONNRESET);
	CHECK_EQ(v.detached, 0);
	dt_client_free(c);
	fake_daemon_wait(pid);
	CHECK_EQ(count_fds(), before);
}

static void daemon_refuse(int s)
{
	struct dt_msg m;
	struct dt_msg_error e;

	expect_msg(s, DT_MSG_HELLO, &m);
	dt_msg_error_init(&e, EPROTONOSUPPORT, &m.hdr, "daemon speaks version 1 only");
	CHECK_EQ(dt_msg_send(s, DT_MSG_REFUSE, 1, &e, NULL, 0), 0);
}

static void test_client_refuse(void)
{
	struct dt_client *c = NULL;
	int before = count_fds();
	pid_t pid = fake_daemon(daemon_refuse);

	CHECK_EQ(dt_client_connect(sock_path, NULL, NULL, &c), 0);
	if (!c)
		return;
	CHECK_EQ(dt_client_hello(c, &vmm_hello, NULL), -EPROTONOSUPPORT);
	CHECK(!strcmp(dt_client_last_error(c), "daemon speaks version 1 only"));
	CHECK_EQ(dt_client_vm_id(c), 0);
	CHECK_EQ(dt_client_add_slot(c, 1, 0, 1), -ECONNRESET);
	dt_client_free(c);
	fake_daemon_wait(pid);
	CHECK_EQ(count_fds(), before);
}

static void daemon_shutdown(int s)
{
	struct dt_msg m;
	struct dt_msg_detach d = {.reason = DT_DETACH_SHUTDOWN};

	expect_msg(s, DT_MSG_HELLO, &m);
	send_welcome(s);
	/* leave an ADD_SLOT unanswered: the client must time out */
	expect_msg(s, DT_MSG_ADD_SLOT, &m);
	expect_msg(s, DT_MSG_PING, &m);
	CHECK_EQ(dt_msg_send(s, DT_MSG_DETACH, 2, &d, NULL, 0), 0);
}

static void test_client_daemon_detach(void)
{
	struct vmm v = {0};
	struct dt_client *c = NULL;
	int before = count_fds();
	pid_t pid = fake_daemon(daemon_shutdown);
	int r = 0;

	CHECK_EQ(dt_client_connect(sock_path, &vmm_ops, &v, &c), 0);
	if (!c)
		return;
	CHECK_EQ(dt_client_set_timeout(c, -2), -EINVAL);
	CHECK_EQ(dt_client_set_timeout(c, 200), 0);
	CHECK_EQ(dt_client_hello(c, &vmm_hello, NULL), 0);
	CHECK_EQ(dt_client_add_slot(c, 0, 0, 16), -ETIMEDOUT);
	/* the DETACH arrives while the ping waits; then the daemon closes */
	CHECK_EQ(dt_client_set_timeout(c, 5000), 0);
	CHECK_EQ(dt_client_ping(c), -ECONNRESET);
	CHECK_EQ(v.detached, 1);
	CHECK_EQ(v.detach_reason, DT_DETACH_SHUTDOWN);
	for (int i = 0; i < 50 && r >= 0; i++)
		r = dt_client_dispatch_wait(c, 100);
	CHECK_EQ(r, -ECONNRESET);
	CHECK_EQ(dt_client_ping(c), -ECONNRESET);
	dt_client_free(c);
	fake_daemon_wait(pid);
	CHECK_EQ(count_fds(), before);
}

static void test_client_args(void)
{
	struct dt_client *c = NULL;
	struct dt_client_hello h = vmm_hello;
	char longpath[200];
	int before = count_fds();
	pid_t pid;

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK_EQ(dt_client_connect(longpath, NULL, NULL, &c), -ENAMETOOLONG);
	CHECK_EQ(dt_client_connect("", NULL, NULL, &c), -EINVAL);
	CHECK_EQ(dt_client_connect("/nonexistent/attach.sock", NULL, NULL, &c), -ENOENT);
	CHECK(c == NULL);
	CHECK(dt_client_free(NULL) == NULL);
	CHECK_EQ(count_fds(), before);

	/* bad HELLO arguments fail before anything is sent */
	pid = fake_daemon(daemon_refuse);
	CHECK_EQ(dt_client_connect(sock_path, NULL, NULL, &c), 0);
	if (!c)
		return;
	h.name = "";
	CHECK_EQ(dt_client_hello(c, &h, NULL), -EINVAL);
	h.name = NULL;
	CHECK_EQ(dt_client_hello(c, &h, NULL), -EINVAL);
	h.name = "bell\a";
	CHECK_EQ(dt_client_hello(c, &h, NULL), -EINVAL);
	h.name = "0123456789012345678901234567890123456789012345678901234567890123";
	CHECK_EQ(dt_client_hello(c, &h, NULL), -EINVAL);
	h = vmm_hello;
	h.mode = 7;
	CHECK_EQ(dt_client_hello(c, &h, NULL), -EINVAL);
	h = vmm_hello;
	h.vmm = NULL; /* allowed: sent as "" */
	CHECK_EQ(dt_client_hello(c, &h, NULL), -EPROTONOSUPPORT);
	dt_client_free(c);
	fake_daemon_wait(pid);
	CHECK_EQ(count_fds(), before);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* belt and braces: sends use MSG_NOSIGNAL */
	if (count_fds() < 0)
		TEST_SKIP("/proc/self/fd is not available");
	strcpy(sock_dir, "/tmp/dt-test-proto.XXXXXX");
	if (!mkdtemp(sock_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/attach.sock", sock_dir);

	RUN(test_tables);
	RUN(test_roundtrip);
	RUN(test_encode);
	RUN(test_error_init);
	RUN(test_malformed_header);
	RUN(test_malformed_fds);
	RUN(test_malformed_payload);
	RUN(test_eof);
	RUN(test_shared_bitmap);
	RUN(test_client_args);
	RUN(test_client_flow);
	RUN(test_client_refuse);
	RUN(test_client_daemon_detach);

	unlink(sock_path);
	rmdir(sock_dir);
	TEST_EXIT();
}
