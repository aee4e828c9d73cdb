/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dtfuzz: a stateful fuzzer of the attach protocol. From one seed it runs
 * many concurrent hostile sessions against a real daemon (well-formed
 * messages with plausible but wrong values, fds of the wrong kind, half
 * closes, replies left unread, shared memory rewritten under the daemon)
 * while a bystander VM, a well-behaved peer writing known pages, must come
 * out exact. See tests/integration/fuzz-protocol.sh.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dt_proto.h"
#include "dt_rng.h"
#include "dt_util.h"

struct dtfuzz_opts {
	const char *attach_sock;
	const char *api_sock;
	const char *daemon_log; /* scanned for sanitizer reports */
	int daemon_pid;
	uint64_t seed;
	double duration_s;
	unsigned workers; /* concurrent sessions */
	double batch_s; /* daemon check every this long */
	double health_timeout_s;
	int64_t only_session; /* --session N: replay one session, -1: all */
	bool no_bystander;
	bool verbose;
};

/* Figures, updated by every thread. */
struct dtfuzz_stats {
	atomic_ullong execs; /* messages sent */
	atomic_ullong sequences; /* sessions run */
	atomic_ullong welcomed; /* sessions that got WELCOME */
	atomic_ullong refused;
	atomic_ullong errors; /* ERROR replies */
	atomic_ullong acks;
	atomic_ullong dropped; /* sessions the daemon closed */
	atomic_ullong scribbles; /* shared-memory rewrites */
	atomic_ullong half_closes;
	atomic_ullong raw_frames; /* deliberately malformed datagrams */
};

extern struct dtfuzz_stats dtfuzz_stats;
extern atomic_bool dtfuzz_stop; /* set on failure or at the end */

/* session.c: one hostile session; its behaviour depends only on (seed, index). */
void dtfuzz_session_run(const struct dtfuzz_opts *o, uint64_t index, const uint8_t *bystander_uuid);

/* shmem.c: fds of every kind, and the scribbler that rewrites shared memory. */
enum dtfuzz_fd_kind {
	FD_MEMFD_SEALED, /* right size, shrink+grow+seal */
	FD_MEMFD_UNSEALED,
	FD_MEMFD_SHRINK_ONLY,
	FD_MEMFD_SMALL, /* sealed, a page short */
	FD_MEMFD_EMPTY, /* sealed, 0 bytes */
	FD_MEMFD_HUGE_SPARSE, /* sealed, far larger than asked, never touched */
	FD_MEMFD_HUGETLB, /* hugetlb memfd when the host has huge pages */
	FD_PIPE,
	FD_DEVNULL,
	FD_EVENTFD,
	FD_SOCKET,
	FD_TMPFILE,
	FD_DIR,
	_FD_KIND_MAX,
};
const char *dtfuzz_fd_kind_name(enum dtfuzz_fd_kind k);
/*
 * An fd of kind k for `bytes` of ring or bitmap at `offset`. For memfd kinds
 * ret_map and ret_len map it (from 0) so the session can write it; else NULL.
 * Returns the fd or -errno.
 */
int dtfuzz_make_fd(enum dtfuzz_fd_kind k, uint64_t offset, uint64_t bytes, void **ret_map,
		   size_t *ret_len);
/* Shared memory the scribbler may rewrite while the daemon reads it. */
enum dtfuzz_region_kind { REGION_RING, REGION_BITMAP };
int dtfuzz_region_add(void *map, size_t len, enum dtfuzz_region_kind kind);
void dtfuzz_region_remove(void *map); /* before munmap: waits for a scribble in progress */
void *dtfuzz_scribbler(void *arg); /* thread: arg is the seed (uint64_t *) */

/* bystander.c: the VM that must stay exact. */
struct dtfuzz_bystander;
int dtfuzz_bystander_start(const struct dtfuzz_opts *o, struct dtfuzz_bystander **ret);
/* Periodic check: still attached, once, no invalid entries; collects epochs. */
int dtfuzz_bystander_check(struct dtfuzz_bystander *b, char *why, size_t len);
/* Detach, collect the last epochs, compare page for page. 0 = exact. */
int dtfuzz_bystander_finish(struct dtfuzz_bystander *b, char *why, size_t len);
void dtfuzz_bystander_figures(const struct dtfuzz_bystander *b, uint64_t *truth, uint64_t *got,
			      uint64_t *epochs);
const uint8_t *dtfuzz_bystander_uuid(const struct dtfuzz_bystander *b);
void dtfuzz_bystander_free(struct dtfuzz_bystander *b);

/*
 * http.c: GET over the API's Unix socket. -ETIMEDOUT, -ECONNREFUSED,
 * -ECONNRESET (closed without an answer) or -EIO when no answer came.
 */
int dtfuzz_http_get(const char *sock, const char *path, double timeout_s, long *ret_status,
		    char **ret_body);
