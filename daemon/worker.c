/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A worker thread with a bounded FIFO of jobs (see worker.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "dt_util.h"
#include "worker.h"

struct dt_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* a job or stop for the thread */
	pthread_cond_t idle; /* a job finished, or the thread exited */
	int efd;
	sd_event_source *source;
	char name[16];
	int nice;
	/* under lock */
	struct dt_job *head, *tail; /* waiting to run */
	struct dt_job *done_head, *done_tail; /* ran, done() not called yet */
	bool running, stop, exited;
	struct dt_worker_stats st;
	struct dt_worker *abandoned_next;
};

/* Workers whose thread did not stop in time: kept reachable, never freed. */
static struct dt_worker *abandoned;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

/* Under lock: j is finished (run, or taken back); done() follows on the loop. */
static void push_done(struct dt_worker *w, struct dt_job *j)
{
	j->next = NULL;
	if (w->done_tail)
		w->done_tail->next = j;
	else
		w->done_head = j;
	w->done_tail = j;
	(void)eventfd_write(w->efd, 1);
}

static void destroy(struct dt_worker *w)
{
	sd_event_source_disable_unref(w->source);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->idle);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void *worker_main(void *userdata)
{
	struct dt_worker *w = userdata;

	if (w->nice) {
		errno = 0;
		int base = getpriority(PRIO_PROCESS, 0);

		if (errno == 0)
			(void)setpriority(PRIO_PROCESS, (id_t)gettid(), base + w->nice);
	}

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct dt_job *j;
		uint64_t waited;

		while (!w->head && !w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		j = w->head;
		if (!j)
			break; /* stopping, and nothing left: queued work is always done first */
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		j->next = NULL;
		w->running = true;
		waited = dt_now_us() - j->queued_us;
		if (waited > w->st.max_wait_us)
			w->st.max_wait_us = waited;
		pthread_mutex_unlock(&w->lock);

		j->run(j);

		pthread_mutex_lock(&w->lock);
		j->ran = true;
		w->running = false;
		w->st.queued_jobs--;
		w->st.queued_bytes -= j->bytes;
		w->st.completed++;
		push_done(w, j);
		pthread_cond_broadcast(&w->idle);
	}
	w->exited = true;
	pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* On the loop thread: done() for every job that ran. */
static void dispatch(struct dt_worker *w)
{
	struct dt_job *j;

	pthread_mutex_lock(&w->lock);
	j = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (j) {
		struct dt_job *next = j->next;

		j->next = NULL;
		j->done(j);
		j = next;
	}
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dt_worker *w = userdata;
	eventfd_t v;

	(void)eventfd_read(w->efd, &v);
	dispatch(w);
	return 0;
}

int dt_worker_new(sd_event *e, const char *name, int nice, size_t max_jobs, size_t max_bytes,
		  struct dt_worker **ret)
{
	struct dt_worker *w;
	pthread_condattr_t ca;
	int r;

	if (max_jobs == 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->nice = nice;
	w->st.max_jobs = max_jobs;
	w->st.max_bytes = max_bytes;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->idle, &ca);
	pthread_condattr_destroy(&ca);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = sd_event_add_io(e, &w->source, w->efd, EPOLLIN, on_done, w);
	if (r < 0)
		goto fail;
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	if (r < 0)
		goto fail;
	(void)pthread_setname_np(w->thread, w->name);
	*ret = w;
	return 0;
fail:
	destroy(w);
	return r;
}

static bool fits(const struct dt_worker *w, size_t bytes)
{
	if (w->st.queued_jobs >= w->st.max_jobs)
		return false;
	/* A job beyond the byte bound goes alone. */
	return w->st.queued_bytes == 0 || w->st.queued_bytes + bytes <= w->st.max_bytes;
}

int dt_worker_submit(struct dt_worker *w, struct dt_job *j, bool force)
{
	int r = 0;

	j->next = NULL;
	j->ran = false;
	j->queued_us = dt_now_us();
	pthread_mutex_lock(&w->lock);
	if (w->stop)
		r = -ESHUTDOWN;
	else if (!force && !fits(w, j->bytes)) {
		w->st.refused++;
		r = -EAGAIN;
	} else {
		if (w->tail)
			w->tail->next = j;
		else
			w->head = j;
		w->tail = j;
		w->st.queued_jobs++;
		w->st.queued_bytes += j->bytes;
		w->st.submitted++;
		pthread_cond_signal(&w->wake);
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

size_t dt_worker_cancel_if(struct dt_worker *w, bool (*pred)(struct dt_job *j, void *ud), void *ud)
{
	struct dt_job **p, *j;
	size_t n = 0;

	pthread_mutex_lock(&w->lock);
	for (p = &w->head; (j = *p);) {
		if (!pred(j, ud)) {
			w->tail = j;
			p = &j->next;
			continue;
		}
		*p = j->next;
		w->st.queued_jobs--;
		w->st.queued_bytes -= j->bytes;
		push_done(w, j);
		n++;
	}
	if (!w->head)
		w->tail = NULL;
	pthread_mutex_unlock(&w->lock);
	return n;
}

bool dt_worker_has_room(const struct dt_worker *w, size_t bytes)
{
	struct dt_worker *mw = (struct dt_worker *)w;
	bool ok;

	pthread_mutex_lock(&mw->lock);
	ok = !w->stop && fits(w, bytes);
	pthread_mutex_unlock(&mw->lock);
	return ok;
}

void dt_worker_get_stats(const struct dt_worker *w, struct dt_worker_stats *ret)
{
	struct dt_worker *mw = (struct dt_worker *)w;

	pthread_mutex_lock(&mw->lock);
	*ret = w->st;
	pthread_mutex_unlock(&mw->lock);
}

int dt_worker_drain(struct dt_worker *w, uint64_t timeout_us)
{
	struct timespec ts;
	bool left;

	dt_deadline_after(&ts, timeout_us);
	pthread_mutex_lock(&w->lock);
	while ((w->head || w->running) && !w->exited &&
	       pthread_cond_timedwait(&w->idle, &w->lock, &ts) != ETIMEDOUT)
		;
	left = w->head || w->running;
	pthread_mutex_unlock(&w->lock);
	dispatch(w);
	return left ? -ETIMEDOUT : 0;
}

struct dt_worker *dt_worker_free(struct dt_worker *w, uint64_t timeout_us)
{
	struct timespec ts;
	struct dt_job *left;
	bool exited;

	if (!w)
		return NULL;
	dt_deadline_after(&ts, timeout_us);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	while (!w->exited && pthread_cond_timedwait(&w->idle, &w->lock, &ts) != ETIMEDOUT)
		;
	exited = w->exited;
	/* Not started: the thread will not run them now (it only finishes the one at hand). */
	left = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->lock);
	w->source = sd_event_source_disable_unref(w->source);
	dispatch(w);
	while (left) {
		struct dt_job *next = left->next;

		left->next = NULL;
		left->done(left);
		left = next;
	}
	if (!exited) {
		/* Stuck in a call that does not return: leave it, reachable, and go. */
		pthread_detach(w->thread);
		pthread_mutex_lock(&abandoned_lock);
		w->abandoned_next = abandoned;
		abandoned = w;
		pthread_mutex_unlock(&abandoned_lock);
		return NULL;
	}
	pthread_join(w->thread, NULL);
	destroy(w);
	return NULL;
}

bool dt_worker_is_current(const struct dt_worker *w)
{
	return pthread_equal(pthread_self(), w->thread);
}
