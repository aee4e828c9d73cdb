/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libvirt collector in the daemon: the worker (collectors/libvirt.c)
 * does every libvirt call; here, on the loop thread, its reports become
 * registry entries. A running domain that never attached is listed as an
 * observed VM; a VM that attached through the protocol gets its domain's
 * name; an observed VM whose domain stopped is removed. When libvirtd is
 * absent or dies, that is logged once and the worker retries each round.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "dt_util.h"
#include "log.h"
#include "manager.h"

/* A libvirt call in progress at stop is waited for this long (libvirtd may hang). */
#define DT_LV_STOP_TIMEOUT_US (3ull * 1000000)

struct dt_libvirt {
	struct dt_manager *m;
	struct dt_lv_worker *worker;
	sd_event_source *source;
	bool failing; /* the last round failed (logged once until one succeeds) */
	bool connected_once;
};

/* Tell the worker which domains attach through the protocol: not measured. */
static void update_skip(struct dt_libvirt *lv)
{
	struct dt_manager *m = lv->m;
	uint8_t(*uuids)[16] = calloc(m->nvms ? m->nvms : 1, sizeof(*uuids));
	size_t n = 0;

	if (!uuids)
		return;
	for (struct dt_vm *vm = m->vms; vm && n < m->nvms; vm = vm->next)
		if (vm->state != DT_VM_OBSERVED && !dt_uuid_is_null(vm->uuid))
			memcpy(uuids[n++], vm->uuid, 16);
	(void)dt_lv_worker_set_skip(lv->worker, (const uint8_t(*)[16])uuids, n);
	free(uuids);
}

static void apply(struct dt_libvirt *lv, const struct dt_lv_report *rep)
{
	struct dt_manager *m = lv->m;
	struct dt_vm *vm, *next;
	int r;

	if (!rep->connected) {
		if (!lv->failing)
			dt_log(LOG_WARNING, "libvirt %s: %s; retrying every %llu s",
			       m->config.libvirt_uri, rep->error,
			       (unsigned long long)m->config.libvirt_interval_us / 1000000);
		lv->failing = true;
		/* Figures of observed VMs stay as they were, with their sample time. */
		return;
	}
	if (lv->failing || !lv->connected_once)
		dt_log(LOG_INFO, "libvirt %s: connected, %zu running domain%s",
		       m->config.libvirt_uri, rep->n, rep->n == 1 ? "" : "s");
	lv->failing = false;
	lv->connected_once = true;

	for (size_t i = 0; i < rep->n; i++) {
		const struct dt_lv_sample *s = &rep->samples[i];

		vm = dt_manager_find_uuid(m, s->uuid);
		if (vm && vm->state != DT_VM_OBSERVED) {
			/* Attached (or was) through the protocol: only the name. */
			if (strcmp(vm->libvirt_domain, s->name) != 0) {
				snprintf(vm->libvirt_domain, sizeof(vm->libvirt_domain), "%s",
					 s->name);
				dt_manager_notify(m, vm, DT_CHANGE_STATE);
			}
			continue;
		}
		if (vm) {
			vm->libvirt_round = rep->round;
			dt_vm_observe(vm, s);
			continue;
		}
		if (m->nvms >= 2 * m->config.max_vms)
			continue; /* the same bound the attach socket applies */
		r = dt_vm_new_observed(m, s, &vm);
		if (r < 0) {
			dt_log(LOG_WARNING, "libvirt domain %s: cannot list it: %s", s->name,
			       strerror(-r));
			continue;
		}
		vm->libvirt_round = rep->round;
		dt_log(LOG_INFO, "vm %u (%s): observed through libvirt", vm->id, vm->name);
	}
	for (vm = m->vms; vm; vm = next) {
		next = vm->next;
		if (vm->state == DT_VM_OBSERVED && vm->libvirt_round != rep->round) {
			dt_log(LOG_INFO, "vm %u (%s): libvirt domain no longer running, removed",
			       vm->id, vm->name);
			dt_vm_free(vm);
		}
	}
}

static int on_report(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dt_libvirt *lv = userdata;
	struct dt_lv_report rep;

	if (dt_lv_worker_take(lv->worker, &rep) < 0)
		return 0;
	apply(lv, &rep);
	dt_lv_report_done(&rep);
	update_skip(lv);
	return 0;
}

int dt_libvirt_start(struct dt_manager *m)
{
	const struct dt_config *c = &m->config;
	const struct dt_lv_options o = {
		.uri = c->libvirt_uri,
		.interval_us = c->libvirt_interval_us,
		.calc_seconds = c->libvirt_calc_seconds,
	};
	struct dt_libvirt *lv;
	int r;

	if (!c->libvirt_uri)
		return 0;
	lv = calloc(1, sizeof(*lv));
	if (!lv)
		return -ENOMEM;
	lv->m = m;
	r = dt_lv_worker_start(&o, &lv->worker);
	if (r < 0)
		goto fail;
	r = sd_event_add_io(m->event, &lv->source, dt_lv_worker_fd(lv->worker), EPOLLIN, on_report,
			    lv);
	if (r < 0)
		goto fail;
	m->libvirt = lv;
	update_skip(lv);
	dt_log(LOG_INFO, "libvirt collector: %s every %llu ms, calc %u s", c->libvirt_uri,
	       (unsigned long long)c->libvirt_interval_us / 1000, c->libvirt_calc_seconds);
	return 0;
fail:
	dt_log(LOG_ERR, "cannot start the libvirt collector: %s", strerror(-r));
	if (lv->worker)
		dt_lv_worker_stop(lv->worker, DT_LV_STOP_TIMEOUT_US);
	free(lv);
	return r;
}

void dt_libvirt_stop(struct dt_manager *m)
{
	struct dt_libvirt *lv = m->libvirt;

	if (!lv)
		return;
	sd_event_source_disable_unref(lv->source);
	if (dt_lv_worker_stop(lv->worker, DT_LV_STOP_TIMEOUT_US) < 0)
		dt_log(LOG_WARNING, "libvirt %s: a call did not return within %llu s; "
				    "stopping without waiting for it",
		       m->config.libvirt_uri, (unsigned long long)DT_LV_STOP_TIMEOUT_US / 1000000);
	free(lv);
	m->libvirt = NULL;
	/* Observed VMs have nothing to save: they go with the collector. */
	for (struct dt_vm *vm = m->vms, *next; vm; vm = next) {
		next = vm->next;
		if (vm->state == DT_VM_OBSERVED)
			dt_vm_free(vm);
	}
}
