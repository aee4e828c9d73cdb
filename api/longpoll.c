/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Long-poll: a request with ?index=N&wait=T whose resource is still at
 * generation N is suspended (MHD_suspend_connection) and parked here. The
 * registry's observer (vm_cache.c) resumes it when its VM (or, for the list, any VM)
 * changes; an sd-event timer resumes it at its deadline. Either way MHD
 * calls the handler again and the router answers with what is current.
 */
#include <errno.h>

#include "dt_util.h"
#include "http.h"
#include "log.h"
#include "manager.h"

static void unlink_req(struct dt_api *a, struct dt_req *rq)
{
	if (rq->prev)
		rq->prev->next = rq->next;
	else
		a->waiting = rq->next;
	if (rq->next)
		rq->next->prev = rq->prev;
	rq->prev = rq->next = NULL;
}

static void wake(struct dt_req *rq)
{
	struct dt_listener *l = rq->l;

	if (!rq->suspended)
		return;
	unlink_req(l->api, rq);
	rq->timer = sd_event_source_disable_unref(rq->timer);
	rq->suspended = false;
	rq->waited = true;
	l->waiters--;
	MHD_resume_connection(rq->conn);
	dt_listener_kick(l);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	wake(userdata);
	return 0;
}

void dt_longpoll_changed(struct dt_api *a, const struct dt_vm *vm)
{
	struct dt_req *rq = a->waiting, *next;

	for (; rq; rq = next) {
		next = rq->next;
		if (rq->vm_id == 0 || rq->vm_id == vm->id)
			wake(rq);
	}
}

void dt_longpoll_stop(struct dt_api *a)
{
	while (a->waiting)
		wake(a->waiting);
}

int dt_longpoll_suspend(struct dt_req *rq, uint32_t vm_id, uint64_t wait_us)
{
	struct dt_listener *l = rq->l;
	struct dt_api *a = l->api;
	int r;

	if (l->waiters >= l->max_waiters)
		return -EBUSY;
	r = sd_event_add_time_relative(a->m->event, &rq->timer, CLOCK_MONOTONIC, wait_us, 1000,
				       on_deadline, rq);
	if (r < 0)
		return r;
	rq->vm_id = vm_id;
	rq->suspended = true;
	rq->next = a->waiting;
	if (a->waiting)
		a->waiting->prev = rq;
	a->waiting = rq;
	l->waiters++;
	MHD_suspend_connection(rq->conn);
	return 0;
}

void dt_longpoll_forget(struct dt_req *rq)
{
	if (rq->suspended) {
		unlink_req(rq->l->api, rq);
		rq->l->waiters--;
		rq->suspended = false;
	}
	rq->timer = sd_event_source_disable_unref(rq->timer);
}
