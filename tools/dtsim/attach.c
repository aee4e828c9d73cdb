/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon connection: attach (HELLO, slots, rings, bitmaps), the ops the
 * daemon drives (reset rings, sync bitmaps), RING_FULL, and losing it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dt_util.h"
#include "dtsim.h"

static int op_reset_rings(void *userdata)
{
	struct dtsim *sim = userdata;
	uint64_t n = 0;

	for (uint32_t i = 0; i < sim->nwriters; i++)
		if (sim->writers[i].ring)
			n += dtsim_guest_reset_ring(sim->guest, sim->writers[i].ring);
	sim->truth.resets++;
	sim->truth.entries_reset += n;
	return (int)DT_MIN(n, (uint64_t)INT32_MAX);
}

static int op_sync_bitmap(void *userdata)
{
	struct dtsim *sim = userdata;
	/* ring+bitmap: vCPU writes go to the rings, the device writes the shared bitmap */
	uint64_t n = dtsim_guest_sync_bitmap(sim->guest);

	sim->truth.syncs++;
	sim->truth.words_synced += n;
	return (int)DT_MIN(n, (uint64_t)INT32_MAX);
}

static void op_detached(void *userdata, uint32_t reason)
{
	struct dtsim *sim = userdata;

	sim->lost = true;
	sim->detach_reason = reason;
}

static const struct dt_client_ops ring_ops = {
    .reset_rings = op_reset_rings,
    .detached = op_detached,
};
static const struct dt_client_ops bitmap_ops = {
    .sync_bitmap = op_sync_bitmap,
    .detached = op_detached,
};
static const struct dt_client_ops ring_bitmap_ops = {
    .reset_rings = op_reset_rings,
    .sync_bitmap = op_sync_bitmap,
    .detached = op_detached,
};

static const struct dt_client_ops *mode_ops(uint32_t mode)
{
	switch (mode) {
	case DT_MODE_RING:
		return &ring_ops;
	case DT_MODE_BITMAP:
		return &bitmap_ops;
	default:
		return &ring_bitmap_ops;
	}
}

static uint32_t mode_caps(uint32_t mode)
{
	uint32_t caps = DT_CAP_SIMULATED;

	if (mode != DT_MODE_BITMAP)
		caps |= DT_CAP_RESET_RINGS | DT_CAP_RING_FULL | DT_CAP_RING_ACQ_REL;
	if (mode != DT_MODE_RING)
		caps |= DT_CAP_SYNC_BITMAP;
	return caps;
}

void dtsim_disconnect(struct dtsim *sim)
{
	sim->client = dt_client_free(sim->client);
	sim->attached = false;
}

static void note_refusal(struct dtsim *sim, int r)
{
	const char *why = sim->client ? dt_client_last_error(sim->client) : "";

	snprintf(sim->last_refusal, sizeof(sim->last_refusal), "%s", *why ? why : strerror(-r));
}

int dtsim_attach(struct dtsim *sim, bool *ret_refused)
{
	const struct dtsim_opts *o = sim->opts;
	struct dtsim_guest *g = sim->guest;
	struct dt_client_hello h = {
	    .name = o->name,
	    .vmm = "dtsim",
	    .page_size = o->page_size,
	    .vcpus = o->vcpus,
	    .mode = o->mode,
	    .caps = mode_caps(o->mode),
	};
	struct dt_msg_welcome welcome;
	int r;

	*ret_refused = false;
	sim->lost = false;
	memcpy(h.uuid, sim->uuid, sizeof(h.uuid));
	r = dt_client_connect(o->connect, mode_ops(o->mode), sim, &sim->client);
	if (r < 0) {
		sim->client = NULL;
		snprintf(sim->last_refusal, sizeof(sim->last_refusal), "cannot connect to %s: %s",
			 o->connect, strerror(-r));
		return r;
	}

	/* a REFUSE or an ERROR to any declaration is the daemon's answer: give its reason */
	r = dt_client_hello(sim->client, &h, &welcome);
	if (r < 0)
		goto refused;
	for (uint32_t i = 0; i < g->nslots; i++) {
		const struct dtsim_slot *s = &g->slots[i];

		r = dt_client_add_slot(sim->client, s->id, s->gpa, s->pages);
		if (r < 0)
			goto refused;
	}
	for (uint32_t i = 0; i < sim->nwriters; i++) {
		struct dtsim_writer *w = &sim->writers[i];

		if (!w->ring)
			continue;
		/* after a daemon restart: resume where the old daemon stopped harvesting */
		r = dt_client_add_ring(sim->client, w->index, w->ring->fd, 0, w->ring->entries,
				       dtsim_ring_fetch_index(w->ring));
		if (r < 0)
			goto refused;
	}
	for (uint32_t i = 0; i < g->nslots; i++) {
		const struct dtsim_slot *s = &g->slots[i];

		if (!s->shared)
			continue;
		r = dt_client_add_bitmap(sim->client, s->id, s->shared->fd, 0);
		if (r < 0)
			goto refused;
	}
	sim->attached = true;
	sim->last_refusal[0] = '\0';

	/* a ring that filled while we were away: the daemon should harvest it now */
	for (uint32_t i = 0; i < sim->nwriters; i++) {
		sim->writers[i].full_sent = false;
		if (sim->writers[i].stalled)
			dtsim_ring_full(sim, &sim->writers[i]);
	}
	return 0;

refused:
	*ret_refused = *dt_client_last_error(sim->client) != '\0';
	note_refusal(sim, r);
	dtsim_disconnect(sim);
	return r;
}

void dtsim_ring_full(struct dtsim *sim, struct dtsim_writer *w)
{
	if (w->full_sent || !sim->attached)
		return;
	if (dt_client_ring_full(sim->client, w->index) >= 0) {
		w->full_sent = true;
		sim->truth.ring_full_events++;
	}
}
