/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A worker thread for work that must not run on the event loop (file
 * writes and fsyncs, migration plans): jobs run on the thread in the order
 * they were submitted, and each job's done callback then runs on the loop
 * thread (an eventfd wakes the loop), so everything the loop owns is only
 * ever touched by the loop. The queue is bounded by jobs and by bytes (the
 * size the submitter declares): a submit that does not fit is refused with
 * -EAGAIN and counted, unless forced (shutdown saves, removals), so what a
 * full queue does is the submitter's decision, never a silent drop.
 *
 * The thread is stopped with a bounded wait: a job stuck in a system call
 * (a hung disk, a peer that never answers) cannot hold the daemon's exit
 * for ever. Such a worker is abandoned (its thread detached, its memory
 * kept reachable) and the daemon exits without it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct dt_job {
	struct dt_job *next;
	void (*run)(struct dt_job *j);	/* on the worker thread */
	void (*done)(struct dt_job *j); /* on the loop thread, after run; frees the job */
	size_t bytes;			/* counted against the queue's byte bound */
	uint64_t queued_us;		/* set by dt_worker_submit */
	bool ran;			/* run() was called (false: the worker was abandoned first) */
};

struct dt_worker_stats {
	uint64_t submitted, refused, completed;
	size_t queued_jobs, queued_bytes; /* submitted, run not finished */
	size_t max_jobs, max_bytes;	  /* the bounds */
	uint64_t max_wait_us;		  /* longest a job waited before it ran */
};

struct dt_worker;

/*
 * name: the thread's name (15 characters at most are kept). nice: the
 * thread's nice value relative to the process (> 0: the loop wins the CPU
 * from it on a busy host; a failure to set it is ignored).
 */
int dt_worker_new(sd_event *e, const char *name, int nice, size_t max_jobs, size_t max_bytes,
		  struct dt_worker **ret);
/*
 * Queue j: 0, or -EAGAIN when it does not fit in the bounds (nothing is
 * queued then) unless force, -ESHUTDOWN once stopping. A job larger than
 * the byte bound fits in an empty queue, so every job can make progress.
 */
int dt_worker_submit(struct dt_worker *w, struct dt_job *j, bool force);
/*
 * Take back the jobs not started yet for which pred(job, ud) is true (it
 * is called with the queue locked: it must only look at the job): they
 * are finished with done() and ran false, after the loop's next turn.
 * Returns how many.
 */
size_t dt_worker_cancel_if(struct dt_worker *w, bool (*pred)(struct dt_job *j, void *ud), void *ud);
/* Whether a job of this many bytes would be accepted now. */
bool dt_worker_has_room(const struct dt_worker *w, size_t bytes);
void dt_worker_get_stats(const struct dt_worker *w, struct dt_worker_stats *ret);
/*
 * Wait (blocking the caller, at shutdown) until every queued job has run
 * and its done callback was called, for at most timeout_us: 0, or
 * -ETIMEDOUT with jobs left.
 */
int dt_worker_drain(struct dt_worker *w, uint64_t timeout_us);
/*
 * Stop: jobs not yet started are finished with done() only (not run) if
 * the thread does not come back within timeout_us; otherwise drained.
 * Returns NULL. NULL-safe.
 */
struct dt_worker *dt_worker_free(struct dt_worker *w, uint64_t timeout_us);
/* Whether the calling thread is w's thread (for assertions in jobs). */
bool dt_worker_is_current(const struct dt_worker *w);
