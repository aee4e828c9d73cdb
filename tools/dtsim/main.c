/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dtsim main: set up the simulated VM, attach it, and run the loop. One
 * thread: each tick (1 ms) makes the writes due by now for every writer,
 * paced on CLOCK_MONOTONIC, then polls the daemon socket and signals.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "dt_util.h"
#include "dtsim.h"

#define TICK_US		1000 /* shortest tick */
#define TICK_MAX_US	20000 /* a slow writer wakes up less often */
#define RECONNECT_US	1000000
#define BURST_ACTIVE_US 200000 /* bursty: active the first 20% of each second */
#define BURST_FACTOR	5.0    /* at 5x the rate, so the mean rate is unchanged */

/* Writes one writer should have made after `elapsed_us` of the run. */
static uint64_t writer_due(const struct dtsim_writer *w, uint64_t elapsed_us)
{
	uint64_t active_us = elapsed_us;

	if (w->bursty)
		active_us = elapsed_us / 1000000u * BURST_ACTIVE_US +
			    DT_MIN(elapsed_us % 1000000u, (uint64_t)BURST_ACTIVE_US);
	return (uint64_t)floor(w->rate * ((double)active_us / 1e6));
}

static int writers_setup(struct dtsim *sim)
{
	const struct dtsim_opts *o = sim->opts;
	bool dma = o->mode == DT_MODE_RING_BITMAP && o->dma_fraction > 0;
	double vcpu_rate = o->rate * (1.0 - o->dma_fraction);
	bool bursty = o->pattern == DTSIM_BURSTY;
	int r;

	sim->nwriters = o->vcpus + (dma ? 1 : 0);
	sim->writers = calloc(sim->nwriters, sizeof(*sim->writers));
	if (!sim->writers)
		return -ENOMEM;
	for (uint32_t i = 0; i < sim->nwriters; i++) {
		struct dtsim_writer *w = &sim->writers[i];
		double per_second;

		w->index = i;
		w->dma = i >= o->vcpus;
		w->bursty = bursty;
		dt_rng_seed(&w->rng, o->seed, i);
		/* sequential: writers start spread over the working set */
		w->cursor = (uint64_t)((unsigned __int128)o->wss * i / sim->nwriters);
		if (w->dma) {
			w->rate = o->rate * o->dma_fraction;
		} else {
			w->rate = vcpu_rate * (o->vcpu_shares ? o->vcpu_shares[i] : 1.0 / o->vcpus);
		}
		if (bursty)
			w->rate *= BURST_FACTOR;
		/* the throttle caps the instantaneous rate of a vCPU, bursts included */
		if (!w->dma && o->dirty_limit > 0 && w->rate > o->dirty_limit)
			w->rate = o->dirty_limit;
		per_second = bursty ? w->rate * BURST_ACTIVE_US / 1e6 : w->rate;
		w->cap = DT_MAX((uint64_t)1, (uint64_t)ceil(per_second));
		if (!w->dma && o->mode != DT_MODE_BITMAP) {
			r = dtsim_ring_new(i, o->ring_entries, &w->ring);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void writers_free(struct dtsim *sim)
{
	for (uint32_t i = 0; sim->writers && i < sim->nwriters; i++)
		dtsim_ring_free(sim->writers[i].ring);
	free(sim->writers);
	sim->writers = NULL;
}

static void make_writes(struct dtsim *sim, uint64_t now, uint64_t elapsed_us)
{
	dtsim_truth_tick(&sim->truth, now);
	for (uint32_t i = 0; i < sim->nwriters; i++) {
		struct dtsim_writer *w = &sim->writers[i];
		uint64_t due;

		if (w->stalled) {
			if (dtsim_ring_soft_full(w->ring)) {
				dtsim_ring_full(sim, w); /* if it could not be sent before */
				continue;
			}
			/* the reset the RING_FULL triggered has completed: run again */
			w->stalled = false;
			w->full_sent = false;
		}
		due = writer_due(w, elapsed_us);
		if (due <= w->done)
			continue;
		/* a late tick catches up, but never by more than a second of writes */
		if (due - w->done > w->cap) {
			sim->truth.skipped_writes += due - w->done - w->cap;
			w->done = due - w->cap;
		}
		w->done += dtsim_guest_write(sim, w, due - w->done, now);
		if (w->stalled)
			dtsim_ring_full(sim, w);
	}
}

static int signals_setup(void)
{
	sigset_t mask;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static void make_uuid(struct dtsim *sim)
{
	if (sim->opts->have_uuid) {
		memcpy(sim->uuid, sim->opts->uuid, 16);
	} else {
		/* random, so that a reattach after a daemon restart names the same VM */
		if (getrandom(sim->uuid, 16, 0) != 16)
			for (int i = 0; i < 16; i++)
				sim->uuid[i] =
				    (uint8_t)(dt_now_us() >> (i % 8 * 8)) ^ (uint8_t)(i * 37);
		sim->uuid[6] = (sim->uuid[6] & 0x0f) | 0x40;
		sim->uuid[8] = (sim->uuid[8] & 0x3f) | 0x80;
	}
	dt_uuid_format(sim->uuid, sim->uuid_text);
}

static const char *detach_reason_name(uint32_t reason)
{
	switch (reason) {
	case DT_DETACH_NORMAL:
		return "normal";
	case DT_DETACH_SHUTDOWN:
		return "daemon shutdown";
	case DT_DETACH_EVICTED:
		return "evicted";
	default:
		return "unknown reason";
	}
}

/* The daemon went away: returns true if we go on without it. */
static bool daemon_lost(struct dtsim *sim, int r, uint64_t now)
{
	if (sim->lost)
		fprintf(stderr, "dtsim: %s: the daemon detached the VM (%s)%s\n", sim->opts->name,
			detach_reason_name(sim->detach_reason),
			sim->opts->reconnect ? "; reattaching every second" : "");
	else
		fprintf(stderr, "dtsim: %s: lost the daemon: %s%s\n", sim->opts->name,
			strerror(r == 0 ? ECONNRESET : -r),
			sim->opts->reconnect ? "; reattaching every second" : "");
	if (sim->client && *dt_client_last_error(sim->client))
		fprintf(stderr, "dtsim: daemon said: %s\n", dt_client_last_error(sim->client));
	dtsim_disconnect(sim);
	sim->lost = false;
	sim->next_attach_us = now + RECONNECT_US;
	return sim->opts->reconnect;
}

static void try_reattach(struct dtsim *sim, uint64_t now, bool ever_attached)
{
	char before[DT_REASON_MAX];
	bool refused;
	int r;

	snprintf(before, sizeof(before), "%s", sim->last_refusal);
	r = dtsim_attach(sim, &refused);
	if (r >= 0) {
		if (ever_attached)
			sim->truth.reconnects++;
		fprintf(stderr, "dtsim: %s: %s as uuid %s\n", sim->opts->name,
			ever_attached ? "reattached" : "attached", sim->uuid_text);
		return;
	}
	/* say it once per distinct reason, not every second */
	if (strcmp(before, sim->last_refusal))
		fprintf(stderr, "dtsim: %s: %s%s; retrying every second\n", sim->opts->name,
			refused ? "refused by the daemon: " : "", sim->last_refusal);
	sim->next_attach_us = now + RECONNECT_US;
}

static int run(struct dtsim *sim, int sigfd)
{
	const struct dtsim_opts *o = sim->opts;
	uint64_t start = dt_now_us(), end = start + o->duration_us;
	bool ever_attached = sim->attached;
	int ret = 0;

	/*
	 * About 16 writes per tick: hundreds of slow simulated VMs on one host
	 * (the API benchmark) must not spend the CPU on wake-ups. Daemon
	 * requests still wake the poll at once.
	 */
	int tick_ms = (int)DT_MIN(DT_MAX(16e6 / (o->rate > 1 ? o->rate : 1), TICK_US), TICK_MAX_US) /
		      1000;

	sim->truth.run_start_us = start;
	sim->truth.seconds_max = (o->duration_us + 999999) / 1000000;
	for (;;) {
		uint64_t now = dt_now_us();
		bool last = o->duration_us && now >= end;
		struct pollfd pfd[2] = {
		    {.fd = sigfd, .events = POLLIN},
		    {.fd = sim->attached ? dt_client_fd(sim->client) : -1, .events = POLLIN},
		};
		int r;

		make_writes(sim, now, (last ? end : now) - start);
		if (last)
			break;

		r = poll(pfd, 2, tick_ms);
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "dtsim: poll: %m\n");
			ret = -errno;
			break;
		}
		if (r > 0 && pfd[0].revents)
			break; /* SIGINT or SIGTERM */
		now = dt_now_us();
		if (sim->attached && pfd[1].revents) {
			r = dt_client_dispatch(sim->client);
			if (r < 0 || sim->lost) {
				if (!daemon_lost(sim, r, now)) {
					ret = -ECONNRESET;
					break;
				}
			}
		}
		if (!sim->attached && o->reconnect && now >= sim->next_attach_us) {
			try_reattach(sim, now, ever_attached);
			ever_attached |= sim->attached;
		}
	}
	sim->truth.run_end_us = dt_now_us();
	return ret;
}

static void summary(const struct dtsim *sim)
{
	const struct dtsim_truth *t = &sim->truth;
	double secs = (double)(t->run_end_us - t->run_start_us) / 1e6;
	uint64_t dma = 0;

	for (uint32_t i = sim->opts->vcpus; i < sim->nwriters; i++)
		dma += t->w[i].writes;
	fprintf(stderr,
		"dtsim: %s: %s/%s: %" PRIu64 " writes (%" PRIu64
		" DMA) in %.3f s = %.0f/s, %" PRIu64 " distinct pages, %" PRIu64
		" ring-full, %" PRIu64 " resets (%" PRIu64 " entries), %" PRIu64 " syncs, %" PRIu64
		" skipped, %" PRIu64 " reconnects\n",
		sim->opts->name, dt_mode_name(sim->opts->mode),
		dtsim_pattern_name(sim->opts->pattern), t->writes, dma, secs,
		secs > 0 ? (double)t->writes / secs : 0.0, t->distinct, t->ring_full_events,
		t->resets, t->entries_reset, t->syncs, t->skipped_writes, t->reconnects);
}

int main(int argc, char **argv)
{
	struct dtsim_opts opts;
	struct dtsim sim = {.opts = &opts};
	int sigfd = -1, ret = 1, r;
	bool refused;

	r = dtsim_opts_parse(argc, argv, &opts);
	if (r != 0)
		return r > 0 ? 0 : 2;

	make_uuid(&sim);
	sigfd = signals_setup();
	if (sigfd < 0) {
		fprintf(stderr, "dtsim: signals: %s\n", strerror(-sigfd));
		goto out;
	}
	r = dtsim_guest_new(&opts, &sim.guest);
	if (r < 0) {
		fprintf(stderr, "dtsim: guest memory metadata: %s\n", strerror(-r));
		goto out;
	}
	dtsim_pattern_init(&sim.pattern, opts.pattern, opts.wss);
	r = writers_setup(&sim);
	if (r < 0) {
		fprintf(stderr, "dtsim: dirty rings: %s\n", strerror(-r));
		goto out;
	}
	r = dtsim_truth_init(&sim.truth, opts.wss, sim.nwriters);
	if (r < 0) {
		fprintf(stderr, "dtsim: ground truth: %s\n", strerror(-r));
		goto out;
	}
	if (opts.trace_path) {
		r = dtsim_trace_open(opts.trace_path, &sim.trace);
		if (r < 0) {
			fprintf(stderr, "dtsim: --trace %s: %s\n", opts.trace_path, strerror(-r));
			goto out;
		}
	}

	r = dtsim_attach(&sim, &refused);
	if (r < 0) {
		if (refused) {
			fprintf(stderr, "dtsim: %s: refused by the daemon: %s\n", opts.name,
				sim.last_refusal);
			goto out;
		}
		fprintf(stderr, "dtsim: %s: %s\n", opts.name, sim.last_refusal);
		if (!opts.reconnect)
			goto out;
		fprintf(stderr, "dtsim: %s: running without the daemon, retrying every second\n",
			opts.name);
		sim.next_attach_us = dt_now_us() + RECONNECT_US;
	}

	r = run(&sim, sigfd);
	ret = r < 0 ? 1 : 0;

	/* writing has stopped: hand over what KVM still holds, then detach */
	if (sim.attached) {
		dtsim_guest_sync_bitmap(sim.guest);
		r = dt_client_detach(sim.client);
		/*
		 * A daemon that closes right after its ACK while our reply to a
		 * last RESET_RINGS/SYNC_BITMAP is unread makes the kernel report
		 * ECONNRESET instead of the queued ACK: it got the DETACH.
		 */
		if (r < 0 && r != -ECONNRESET) {
			fprintf(stderr, "dtsim: %s: detach: %s%s%s\n", opts.name, strerror(-r),
				*dt_client_last_error(sim.client) ? ": " : "",
				dt_client_last_error(sim.client));
			ret = 1;
		}
		dtsim_disconnect(&sim);
	}
	if (sim.guest->bugs)
		fprintf(stderr,
			"dtsim: %s: %" PRIu64
			" ring entries with an invalid slot/offset at reset\n",
			opts.name, sim.guest->bugs);
	if (sim.trace) {
		r = dtsim_trace_close(TAKE_PTR(sim.trace));
		if (r < 0) {
			fprintf(stderr, "dtsim: --trace %s: %s\n", opts.trace_path, strerror(-r));
			ret = 1;
		}
	}
	if (opts.truth_path) {
		r = dtsim_truth_write(&sim.truth, &opts, sim.guest, sim.uuid_text);
		if (r < 0) {
			fprintf(stderr, "dtsim: --truth %s: %s\n", opts.truth_path, strerror(-r));
			ret = 1;
		}
	}
	summary(&sim);
out:
	dtsim_trace_close(sim.trace);
	dtsim_truth_done(&sim.truth);
	writers_free(&sim);
	dtsim_guest_free(sim.guest);
	dtsim_disconnect(&sim);
	if (sigfd >= 0)
		close(sigfd);
	dtsim_opts_done(&opts);
	return ret;
}
