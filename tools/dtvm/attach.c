/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdirtytrack glue (main thread only): HELLO, slots, rings (the vCPU fd
 * at KVM_DIRTY_LOG_PAGE_OFFSET pages), shared bitmaps; the daemon's reset
 * and sync requests; detach, daemon loss and reattach.
 *
 * While attached, the daemon owns the harvest: we never consume ring
 * entries or bitmap bits of a ring/slot it has. Detached (daemon gone or
 * detached by request), KVM dirty logging is turned off and whatever was
 * pending is harvested and dropped, so nothing accumulates and the fetch
 * indexes stay known for the next ADD_RING.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "dtvm.h"

static int op_reset_rings(void *userdata)
{
	return dtvm_dirty_reset_rings(userdata);
}

static int op_sync_bitmap(void *userdata)
{
	return dtvm_dirty_sync_bitmaps(userdata);
}

static void op_detached(void *userdata, uint32_t reason)
{
	struct dtvm *vm = userdata;

	vm->detached_by_daemon = true;
	vm->detach_reason = reason;
}

static const struct dt_client_ops ops = {
	.reset_rings = op_reset_rings,
	.sync_bitmap = op_sync_bitmap,
	.detached = op_detached,
};

static int add_ring(struct dtvm *vm, struct dt_client *c, struct dtvm_vcpu *v)
{
	uint32_t fetch;
	bool known;
	int r;

	pthread_mutex_lock(&vm->lock);
	known = dtvm_dirty_locate(vm, v);
	fetch = v->fetch;
	pthread_mutex_unlock(&vm->lock);
	if (!known)
		return 0; /* retried from dtvm_attach_poll() */
	r = dt_client_add_ring(c, v->id, v->fd, (uint64_t)KVM_DIRTY_LOG_PAGE_OFFSET * DTVM_PAGE_SIZE,
			       vm->ring_entries, fetch);
	if (r < 0)
		return r;
	pthread_mutex_lock(&vm->lock);
	v->ring_added = true;
	pthread_mutex_unlock(&vm->lock);
	dtvm_log(vm, "ring of vCPU %u attached at fetch index %u", v->id, fetch);
	return 1;
}

static void drop_client(struct dtvm *vm)
{
	struct dt_client *c;

	pthread_mutex_lock(&vm->lock);
	c = vm->client;
	vm->client = NULL;
	for (uint32_t i = 0; i < vm->o.vcpus; i++)
		vm->vcpus[i].ring_added = false;
	pthread_cond_broadcast(&vm->cond); /* ring-full waiters harvest themselves */
	pthread_mutex_unlock(&vm->lock);
	dt_client_free(c);
}

/* Stop tracking in KVM and drop what is pending: nobody will read it. */
static void tracking_off(struct dtvm *vm)
{
	int r;

	dtvm_dirty_self_harvest(vm, false);
	r = dtvm_memory_set_logging(vm, false);
	if (r < 0)
		dtvm_die("turning dirty logging off: %s", strerror(-r));
	dtvm_dirty_self_harvest(vm, false);
}

int dtvm_attach(struct dtvm *vm)
{
	struct dt_client_hello h = {
		.name = vm->o.name,
		.vmm = "dtvm",
		.page_size = DTVM_PAGE_SIZE,
		.vcpus = vm->o.vcpus,
		.mode = vm->o.mode,
	};
	struct dt_msg_welcome w;
	struct dt_client *c = NULL;
	int r;

	memcpy(h.uuid, vm->o.uuid, sizeof(h.uuid));
	if (vm->ring)
		h.caps |= DT_CAP_RESET_RINGS | DT_CAP_RING_FULL;
	if (vm->o.mode != DT_MODE_RING)
		h.caps |= DT_CAP_SYNC_BITMAP;
	if (vm->acq_rel)
		h.caps |= DT_CAP_RING_ACQ_REL;
	if (vm->ring_with_bitmap)
		h.caps |= DT_CAP_RING_WITH_BITMAP;

	r = dt_client_connect(vm->o.connect, &ops, vm, &c);
	if (r < 0)
		return r;
	r = dt_client_hello(c, &h, &w);
	if (r < 0) {
		fprintf(stderr, "dtvm: daemon refused HELLO: %s (%s)\n", strerror(-r),
			dt_client_last_error(c));
		goto fail;
	}
	if (vm->ring && w.max_ring_entries && vm->ring_entries > w.max_ring_entries) {
		fprintf(stderr, "dtvm: daemon takes rings of at most %u entries, ours have %u\n",
			w.max_ring_entries, vm->ring_entries);
		r = -ERANGE;
		goto fail;
	}

	/* Start clean: nothing from the detached period is reported. */
	dtvm_dirty_self_harvest(vm, false);
	r = dtvm_memory_set_logging(vm, true);
	if (r < 0)
		goto fail;

	for (unsigned i = 0; i < vm->nslots; i++) {
		struct dtvm_slot *s = &vm->slots[i];

		r = dt_client_add_slot(c, s->id, s->gpa, s->pages);
		if (r < 0) {
			fprintf(stderr, "dtvm: ADD_SLOT %u: %s (%s)\n", s->id, strerror(-r),
				dt_client_last_error(c));
			goto fail;
		}
		if (s->shared) {
			r = dt_client_add_bitmap(c, s->id, s->shared->fd, 0);
			if (r < 0) {
				fprintf(stderr, "dtvm: ADD_BITMAP %u: %s (%s)\n", s->id,
					strerror(-r), dt_client_last_error(c));
				goto fail;
			}
		}
	}

	pthread_mutex_lock(&vm->lock);
	vm->client = c;
	vm->detached_by_daemon = false;
	pthread_mutex_unlock(&vm->lock);
	vm->attachments++;

	for (uint32_t i = 0; vm->ring && i < vm->o.vcpus; i++) {
		r = add_ring(vm, c, &vm->vcpus[i]);
		if (r < 0) {
			fprintf(stderr, "dtvm: ADD_RING %u: %s (%s)\n", i, strerror(-r),
				dt_client_last_error(c));
			drop_client(vm);
			tracking_off(vm);
			return r;
		}
	}
	dtvm_log(vm, "attached to %s as VM %u (epoch %llu us)", vm->o.connect,
		 dt_client_vm_id(c), (unsigned long long)w.epoch_us);
	return 0;

fail:
	dt_client_free(c);
	return r < 0 ? r : -EPROTO;
}

/* Register rings whose fetch index was not known at attach time. */
int dtvm_attach_poll(struct dtvm *vm)
{
	for (uint32_t i = 0; vm->client && vm->ring && i < vm->o.vcpus; i++) {
		int r;

		if (vm->vcpus[i].ring_added)
			continue;
		r = add_ring(vm, vm->client, &vm->vcpus[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void dtvm_attach_lost(struct dtvm *vm, int error)
{
	if (!vm->client)
		return;
	fprintf(stderr, "dtvm: lost the daemon (%s); dirty logging off%s\n",
		error ? strerror(-error) : "detached by the daemon",
		vm->o.reconnect ? ", reconnecting every second" : "");
	drop_client(vm);
	tracking_off(vm);
}

void dtvm_detach(struct dtvm *vm)
{
	int r;

	if (!vm->client)
		return;
	/* The daemon's final harvest must see the last writes of the KVM log. */
	r = dtvm_dirty_sync_bitmaps(vm);
	if (r < 0)
		fprintf(stderr, "dtvm: final bitmap sync: %s\n", strerror(-r));
	r = dt_client_detach(vm->client);
	if (r < 0 && r != -ECONNRESET)
		fprintf(stderr, "dtvm: DETACH: %s\n", strerror(-r));
	/*
	 * This daemon sends the ACK before its final harvest of our rings:
	 * touching them now would race it. Wait for it to close the socket.
	 */
	if (r >= 0) {
		struct pollfd p = { .fd = dt_client_fd(vm->client), .events = 0 };

		if (poll(&p, 1, 2000) <= 0)
			fprintf(stderr, "dtvm: daemon did not close the socket after DETACH\n");
	}
	drop_client(vm);
	tracking_off(vm);
}
