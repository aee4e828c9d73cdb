/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent: one thread in QEMU's process that attaches the VM to
 * dirtytrackd and keeps the daemon's view of the slots in step with
 * QEMU's. It waits for the first KVM_RUN (all boot vCPUs exist then),
 * attaches in bitmap mode, declares every tracked slot with a shared
 * bitmap, answers SYNC_BITMAP with a harvest, and reattaches with backoff
 * when the daemon is absent, goes away or refuses. It never holds the lock
 * across a round trip to the daemon: QEMU's slot updates (under its big
 * lock) wait for a harvest at most.
 *
 * Shared bitmaps outlive a connection: pages QEMU's own GET/CLEAR harvest
 * while the daemon is away wait in them, and the next connection declares
 * the same memfds again, so nothing is lost across a daemon restart.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dtqemu.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define REQUEST_TIMEOUT_MS 5000

static int op_sync_bitmap(void *userdata)
{
	struct dtq *q = userdata;
	int r;

	struct timespec t0, t1;

	pthread_mutex_lock(&q->lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = dtq_harvest_all_locked(q);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	q->syncs++;
	q->sync_ns += (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
		      (uint64_t)t0.tv_nsec;
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++)
		if (q->slots[i].used && q->slots[i].decl)
			q->sync_slot_pages += q->slots[i].pages;
	pthread_mutex_unlock(&q->lock);
	return r;
}

static const struct dt_client_ops agent_ops = {
	.sync_bitmap = op_sync_bitmap,
};

void dtq_agent_wake(struct dtq *q)
{
	uint64_t one = 1;
	int fd = __atomic_load_n(&q->wake_fd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		(void)!write(fd, &one, sizeof(one));
}

static void drain_wake(struct dtq *q)
{
	uint64_t v;

	(void)!read(q->wake_fd, &v, sizeof(v));
}

/* Sleep up to ms, or until woken. */
static void agent_sleep(struct dtq *q, int ms)
{
	struct pollfd p = { .fd = q->wake_fd, .events = POLLIN };

	if (poll(&p, 1, ms) > 0)
		drain_wake(q);
}

/* What the agent should do now. */
enum agent_state { AGENT_WAIT, AGENT_RUN, AGENT_EXIT };

static enum agent_state agent_state(struct dtq *q)
{
	enum agent_state st;

	pthread_mutex_lock(&q->lock);
	if (q->vm_closed || q->stood_down)
		st = AGENT_EXIT;
	else if (!__atomic_load_n(&dtq_seen_run, __ATOMIC_ACQUIRE))
		st = AGENT_WAIT;
	else
		st = AGENT_RUN;
	pthread_mutex_unlock(&q->lock);
	return st;
}

/*
 * Bring the daemon's slots in line with the table: removals first (a slot
 * id may come back with another geometry), then additions.
 */
static int agent_reconcile(struct dtq *q, struct dt_client *c)
{
	struct dtq_decl *dying[DTQ_DYING_MAX];
	struct dtq_decl *adds[DTQ_SLOTS_MAX];
	unsigned ndying, nadds = 0;
	int r = 0;

	pthread_mutex_lock(&q->lock);
	if (q->lost_removals) {
		pthread_mutex_unlock(&q->lock);
		return -ENOBUFS; /* start the daemon side over */
	}
	ndying = q->ndying;
	memcpy(dying, q->dying, ndying * sizeof(dying[0]));
	q->ndying = 0;
	q->changed = false;
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++) {
		struct dtq_slot *s = &q->slots[i];

		if (!s->used || !s->managed)
			continue;
		if (!s->decl) {
			struct dtq_decl *d = calloc(1, sizeof(*d));

			if (!d || dt_shared_bitmap_new(s->pages, &d->shared) < 0) {
				free(d);
				continue; /* tried again on the next change */
			}
			d->id = s->id;
			d->gpa = s->gpa;
			d->pages = s->pages;
			s->decl = d;
		}
		if (!s->decl->declared)
			adds[nadds++] = s->decl;
	}
	pthread_mutex_unlock(&q->lock);

	for (unsigned i = 0; i < ndying; i++) {
		/* The daemon consumes the slot's last bits before it lets go. */
		if (r == 0 && dying[i]->declared)
			r = dt_client_remove_slot(c, dying[i]->id);
		dt_shared_bitmap_free(dying[i]->shared);
		free(dying[i]);
	}
	for (unsigned i = 0; i < nadds && r == 0; i++) {
		r = dt_client_add_slot(c, adds[i]->id, adds[i]->gpa, adds[i]->pages);
		if (r == 0)
			r = dt_client_add_bitmap(c, adds[i]->id, adds[i]->shared->fd, 0);
		if (r == 0) {
			pthread_mutex_lock(&q->lock);
			adds[i]->declared = true;
			pthread_mutex_unlock(&q->lock);
		} else {
			dtq_log("declaring slot %u (%llu pages at 0x%llx): %s: %s", adds[i]->id,
				(unsigned long long)adds[i]->pages, (unsigned long long)adds[i]->gpa,
				strerror(-r), dt_client_last_error(c));
		}
	}
	return r;
}

/* The daemon forgot every slot (detach): they are declared again next time. */
static void agent_forget_daemon(struct dtq *q)
{
	pthread_mutex_lock(&q->lock);
	for (unsigned i = 0; i < DTQ_SLOTS_MAX; i++)
		if (q->slots[i].decl)
			q->slots[i].decl->declared = false;
	for (unsigned i = 0; i < q->ndying; i++) {
		dt_shared_bitmap_free(q->dying[i]->shared);
		free(q->dying[i]);
	}
	q->ndying = 0;
	q->lost_removals = 0;
	pthread_mutex_unlock(&q->lock);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Sample guest RAM for zero pages and tell the daemon. Returns 0, or a
 * connection error; a daemon that predates MEMORY_SAMPLE turns it off.
 */
static int agent_sample(struct dtq *q, struct dt_client *c, bool *on, double *last,
			unsigned *every_ms)
{
	struct dtq_zero_sample z;
	struct timespec t0, t1;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = dtq_sample_zero(q, q->cfg.zero_sample, &z);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0)
		return 0; /* nothing tracked yet, or no pagemap: try again later */
	q->samples++;
	q->sample_ns += (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
			(uint64_t)t0.tv_nsec;
	if (q->samples == 1)
		dtq_log("zero-page sample: %llu of %llu pages zero (drawn from %llu), %.1f us",
			(unsigned long long)z.zero, (unsigned long long)z.sampled,
			(unsigned long long)z.pages, q->sample_ns / 1e3);
	/*
	 * Sooner again while the share moves by more than the sampling error
	 * (3 sigma and half a percent): a guest filling its memory; later, up
	 * to the maximum, while it holds.
	 */
	double f = (double)z.zero / (double)z.sampled;
	bool moved = !(*last >= 0) ||
		     fabs(f - *last) > 3 * sqrt(f * (1 - f) / (double)z.sampled) + 0.005;

	*every_ms = moved ? DTQ_ZERO_SAMPLE_MIN_MS
			  : (*every_ms * 2 > DTQ_ZERO_SAMPLE_MAX_MS ? DTQ_ZERO_SAMPLE_MAX_MS
								    : *every_ms * 2);
	*last = f;
	r = dt_client_memory_sample(c, z.sampled, z.zero, z.pages);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		dtq_log("the daemon refused MEMORY_SAMPLE (%s): not sampling on this connection",
			*dt_client_last_error(c) ? dt_client_last_error(c) : strerror(-r));
		*on = false;
		return 0;
	}
	return r;
}

/* One connection, from connect to its end. Returns true if it attached. */
static bool agent_session(struct dtq *q)
{
	struct dt_client *c = NULL;
	char vmm[32];
	struct dt_client_hello h = {
		.name = q->cfg.name,
		.vmm = vmm,
		.page_size = 4096,
		.mode = DT_MODE_BITMAP,
		.caps = DT_CAP_SYNC_BITMAP | DT_CAP_VCPU_WRITES_ONLY,
	};
	bool attached = false;
	int r;

	dtq_vmm_name(vmm, sizeof(vmm));
	memcpy(h.uuid, q->cfg.uuid, sizeof(h.uuid));
	h.vcpus = __atomic_load_n(&q->vcpus_created, __ATOMIC_RELAXED);
	if (q->cfg.smp > h.vcpus)
		h.vcpus = q->cfg.smp;
	if (h.vcpus == 0)
		h.vcpus = 1;
	r = dt_client_connect(q->cfg.socket, &agent_ops, q, &c);
	if (r < 0) {
		/* No daemon (yet): try again later; say so once per cause. */
		if (r != q->last_connect_error)
			dtq_log("cannot connect to %s: %s (retrying)", q->cfg.socket, strerror(-r));
		q->last_connect_error = r;
		return false;
	}
	q->last_connect_error = 0;
	dt_client_set_timeout(c, REQUEST_TIMEOUT_MS);
	r = dt_client_hello(c, &h, NULL);
	if (r < 0) {
		dtq_log("%s refused VM %s: %s", q->cfg.socket, q->cfg.name,
			*dt_client_last_error(c) ? dt_client_last_error(c) : strerror(-r));
		goto out;
	}
	attached = true;
	dtq_log("attached VM %s to %s as vm %u", q->cfg.name, q->cfg.socket,
		dt_client_vm_id(c));
	r = agent_reconcile(q, c);
	/* The first sample a second after the slots are declared (then agent_sample's pace). */
	bool sampling = q->cfg.zero_sample > 0;
	uint64_t next_sample = mono_ms() + 1000;
	unsigned sample_every = DTQ_ZERO_SAMPLE_MIN_MS;
	double last_share = -1;

	while (r >= 0) {
		struct pollfd p[2] = {
			{ .fd = dt_client_fd(c), .events = POLLIN },
			{ .fd = q->wake_fd, .events = POLLIN },
		};
		uint64_t now = mono_ms();
		int timeout = !sampling ? -1 : now >= next_sample ? 0 : (int)(next_sample - now);

		if (sampling && timeout == 0) {
			r = agent_sample(q, c, &sampling, &last_share, &sample_every);
			next_sample = mono_ms() + sample_every;
			if (r < 0)
				break;
			continue;
		}
		if (poll(p, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[0].revents) {
			r = dt_client_dispatch(c);
			if (r < 0)
				break;
		}
		if (p[1].revents) {
			drain_wake(q);
			if (agent_state(q) == AGENT_EXIT) {
				(void)dt_client_detach(c);
				break;
			}
		}
		pthread_mutex_lock(&q->lock);
		bool changed = q->changed || q->ndying || q->lost_removals;
		pthread_mutex_unlock(&q->lock);
		if (changed)
			r = agent_reconcile(q, c);
	}
	if (r < 0)
		dtq_log("connection to %s ended: %s", q->cfg.socket, strerror(-r));
	pthread_mutex_lock(&q->lock);
	if (q->syncs)
		dtq_log("harvest: %llu syncs, %.1f us each, %.1f us per GiB of tracked memory, "
			"%llu pages taken", (unsigned long long)q->syncs, q->sync_ns / 1e3 / q->syncs,
			q->sync_slot_pages ? q->sync_ns / 1e3 / (q->sync_slot_pages / 262144.0) : 0.0,
			(unsigned long long)q->harvested_pages);
	if (q->samples)
		dtq_log("zero-page samples: %llu of %u pages, %.1f us each",
			(unsigned long long)q->samples, q->cfg.zero_sample,
			q->sample_ns / 1e3 / q->samples);
	pthread_mutex_unlock(&q->lock);
out:
	dt_client_free(c);
	agent_forget_daemon(q);
	return attached;
}

static void *agent_main(void *arg)
{
	struct dtq *q = arg;
	int backoff = BACKOFF_MIN_MS;

	for (;;) {
		switch (agent_state(q)) {
		case AGENT_EXIT:
			return NULL;
		case AGENT_WAIT:
			agent_sleep(q, 1000);
			continue;
		case AGENT_RUN:
			break;
		}
		if (agent_session(q))
			backoff = BACKOFF_MIN_MS;
		if (agent_state(q) == AGENT_EXIT)
			return NULL;
		agent_sleep(q, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
}

void dtq_agent_start(struct dtq *q)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int fd;

	q->agent_started = true;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		q->stood_down = true;
		return;
	}
	__atomic_store_n(&q->wake_fd, fd, __ATOMIC_RELEASE);
	/* QEMU's signals (SIG_IPI, SIGBUS for its vCPUs) are not ours to take. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, agent_main, q) != 0) {
		dtq_log("cannot start the agent thread: not tracking this VM");
		q->stood_down = true;
	} else {
		pthread_setname_np(t, "dirtytrack");
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
