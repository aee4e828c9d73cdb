/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt collector: stats parsing and the worker thread (dt_libvirt.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dt_libvirt.h"
#include "dt_util.h"

const char *dt_lv_calc_mode_name(enum dt_lv_calc_mode m)
{
	static const char *const names[_DT_LV_CALC_MODE_MAX] = {
		[DT_LV_PAGE_SAMPLING] = "page-sampling",
		[DT_LV_DIRTY_BITMAP] = "dirty-bitmap",
		[DT_LV_DIRTY_RING] = "dirty-ring",
	};
	return m < _DT_LV_CALC_MODE_MAX ? names[m] : "unknown";
}

const struct dt_collector_ops dt_collector_libvirt_ops = {
	.name = "libvirt",
};

static int param_u64(const virTypedParameter *p, uint64_t *ret)
{
	switch (p->type) {
	case VIR_TYPED_PARAM_INT:
		if (p->value.i < 0)
			return -EBADMSG;
		*ret = (uint64_t)p->value.i;
		return 0;
	case VIR_TYPED_PARAM_UINT:
		*ret = p->value.ui;
		return 0;
	case VIR_TYPED_PARAM_LLONG:
		if (p->value.l < 0)
			return -EBADMSG;
		*ret = (uint64_t)p->value.l;
		return 0;
	case VIR_TYPED_PARAM_ULLONG:
		*ret = p->value.ul;
		return 0;
	default:
		return -EBADMSG;
	}
}

int dt_lv_parse_stats(const virTypedParameter *params, int n, struct dt_lv_sample *ret)
{
	struct dt_lv_sample s = *ret;
	uint64_t v;

	for (int i = 0; i < n; i++) {
		const virTypedParameter *p = &params[i];
		const char *f = p->field;

		if (strcmp(f, "dirtyrate.calc_mode") == 0) {
			if (p->type != VIR_TYPED_PARAM_STRING || !p->value.s)
				return -EBADMSG;
			if (strcmp(p->value.s, "page-sampling") == 0)
				s.calc_mode = DT_LV_PAGE_SAMPLING;
			else if (strcmp(p->value.s, "dirty-bitmap") == 0)
				s.calc_mode = DT_LV_DIRTY_BITMAP;
			else if (strcmp(p->value.s, "dirty-ring") == 0)
				s.calc_mode = DT_LV_DIRTY_RING;
			else
				return -EBADMSG;
			continue;
		}
		if (strcmp(f, "dirtyrate.calc_start_time") == 0) {
			if (p->type != VIR_TYPED_PARAM_LLONG)
				return -EBADMSG;
			s.calc_start_time = p->value.l;
			continue;
		}
		if (strcmp(f, "dirtyrate.calc_status") == 0) {
			if (param_u64(p, &v) < 0 || v >= _DT_LV_CALC_STATUS_MAX)
				return -EBADMSG;
			s.calc_status = (enum dt_lv_calc_status)v;
		} else if (strcmp(f, "dirtyrate.calc_period") == 0) {
			if (param_u64(p, &v) < 0 || v > UINT32_MAX)
				return -EBADMSG;
			s.calc_period_s = (uint32_t)v;
		} else if (strcmp(f, "dirtyrate.megabytes_per_second") == 0) {
			/* MiB/s in QEMU's and libvirt's sense */
			if (param_u64(p, &v) < 0 || v > (UINT64_MAX >> 20))
				return -EBADMSG;
			s.rate_bytes = v << 20;
			s.has_rate = true;
		} else if (strcmp(f, "vcpu.current") == 0) {
			if (param_u64(p, &v) < 0 || v > UINT32_MAX)
				return -EBADMSG;
			s.vcpus = (uint32_t)v;
		} else if (strcmp(f, "balloon.maximum") == 0) {
			/* KiB */
			if (param_u64(p, &v) < 0 || v > (UINT64_MAX >> 10))
				return -EBADMSG;
			s.memory_bytes = v << 10;
		}
	}
	/* A rate from an earlier calc is only meaningful once measured. */
	if (s.calc_status != DT_LV_MEASURED)
		s.has_rate = false;
	*ret = s;
	return 0;
}

struct dt_lv_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t gone; /* the thread is about to return */
	int efd;
	char *uri;
	uint64_t interval_us;
	uint32_t calc_seconds;
	virConnectPtr conn; /* worker thread only */
	/* under lock */
	bool stop;
	bool exited;
	bool pending;
	struct dt_lv_report report;
	uint8_t (*skip)[16];
	size_t nskip;
};

/* libvirt prints every error on stderr unless told otherwise. */
static void quiet_error(void *userdata, virErrorPtr e)
{
}

static void report_error(struct dt_lv_report *rep, const char *what)
{
	rep->connected = false;
	snprintf(rep->error, sizeof(rep->error), "%s: %s", what, virGetLastErrorMessage());
}

static bool skipped(struct dt_lv_worker *w, const uint8_t uuid[16])
{
	bool found = false;

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->nskip && !found; i++)
		found = memcmp(w->skip[i], uuid, 16) == 0;
	pthread_mutex_unlock(&w->lock);
	return found;
}

/* Dirty-ring calcs need the domain's <features><kvm><dirty-ring>. */
static bool domain_has_ring(virDomainPtr dom)
{
	char *xml = virDomainGetXMLDesc(dom, 0);
	bool ring = xml && strstr(xml, "<dirty-ring") != NULL;

	free(xml);
	return ring;
}

static void round_run(struct dt_lv_worker *w, struct dt_lv_report *rep)
{
	const unsigned stats = VIR_DOMAIN_STATS_DIRTYRATE | VIR_DOMAIN_STATS_VCPU |
			       VIR_DOMAIN_STATS_BALLOON;
	virDomainStatsRecordPtr *recs = NULL;
	int n;

	if (w->conn && virConnectIsAlive(w->conn) != 1) {
		virConnectClose(w->conn);
		w->conn = NULL;
	}
	if (!w->conn) {
		w->conn = virConnectOpen(w->uri);
		if (!w->conn) {
			report_error(rep, "cannot connect");
			return;
		}
	}
	n = virConnectGetAllDomainStats(w->conn, stats, &recs,
					VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING);
	if (n < 0) {
		report_error(rep, "cannot read domain stats");
		/* Reconnect next round: libvirtd may have restarted. */
		virConnectClose(w->conn);
		w->conn = NULL;
		return;
	}
	rep->connected = true;
	rep->samples = calloc(n ? (size_t)n : 1, sizeof(*rep->samples));
	for (int i = 0; i < n && rep->samples; i++) {
		struct dt_lv_sample *s = &rep->samples[rep->n];
		virDomainPtr dom = recs[i]->dom;
		const char *name = virDomainGetName(dom);

		*s = (struct dt_lv_sample){ .sample_us = dt_now_us() };
		if (virDomainGetUUID(dom, s->uuid) < 0 || !name)
			continue;
		/* Printable ASCII, like names from HELLO (D-Bus wants valid UTF-8). */
		snprintf(s->name, sizeof(s->name), "%s", name);
		for (char *c = s->name; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '?';
		if (dt_lv_parse_stats(recs[i]->params, recs[i]->nparams, s) < 0)
			continue;
		rep->n++;
		s->skipped = skipped(w, s->uuid);
		if (s->skipped || s->calc_status == DT_LV_MEASURING)
			continue;
		/*
		 * Read now, measured in the background: the result is read next
		 * round. Failure (e.g. a calc started elsewhere is running)
		 * only costs this round's start.
		 */
		unsigned flags = domain_has_ring(dom) ? VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING
						      : VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING;
		(void)virDomainStartDirtyRateCalc(dom, (int)w->calc_seconds, flags);
	}
	virDomainStatsRecordListFree(recs);
	if (!rep->samples) {
		rep->connected = false;
		snprintf(rep->error, sizeof(rep->error), "out of memory");
	}
}

static void *worker_main(void *userdata)
{
	struct dt_lv_worker *w = userdata;
	uint64_t round = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct dt_lv_report rep = { .round = ++round };
		struct timespec ts;

		pthread_mutex_unlock(&w->lock);
		round_run(w, &rep);
		pthread_mutex_lock(&w->lock);
		dt_lv_report_done(&w->report);
		w->report = rep;
		w->pending = true;
		(void)eventfd_write(w->efd, 1);
		dt_deadline_after(&ts, w->interval_us);
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&w->lock);
	if (w->conn)
		virConnectClose(w->conn);
	w->conn = NULL;
	pthread_mutex_lock(&w->lock);
	w->exited = true;
	pthread_cond_broadcast(&w->gone);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_free(struct dt_lv_worker *w)
{
	dt_lv_report_done(&w->report);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->gone);
	pthread_mutex_destroy(&w->lock);
	if (w->efd >= 0)
		close(w->efd);
	free(w->skip);
	free(w->uri);
	free(w);
}

int dt_lv_worker_start(const struct dt_lv_options *o, struct dt_lv_worker **ret)
{
	struct dt_lv_worker *w;
	pthread_condattr_t ca;
	int r;

	if (!o->uri || o->interval_us == 0 || o->calc_seconds == 0 || o->calc_seconds > INT32_MAX)
		return -EINVAL;
	if (virInitialize() < 0)
		return -EIO;
	virSetErrorFunc(NULL, quiet_error);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->efd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->gone, &ca);
	pthread_condattr_destroy(&ca);
	w->uri = strdup(o->uri);
	w->interval_us = o->interval_us;
	w->calc_seconds = o->calc_seconds;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!w->uri || w->efd < 0) {
		r = w->uri ? -errno : -ENOMEM;
		worker_free(w);
		return r;
	}
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	if (r < 0) {
		worker_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int dt_lv_worker_fd(const struct dt_lv_worker *w)
{
	return w->efd;
}

int dt_lv_worker_take(struct dt_lv_worker *w, struct dt_lv_report *ret)
{
	eventfd_t v;
	int r = -EAGAIN;

	(void)eventfd_read(w->efd, &v);
	pthread_mutex_lock(&w->lock);
	if (w->pending) {
		*ret = w->report;
		w->report = (struct dt_lv_report){ 0 };
		w->pending = false;
		r = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

void dt_lv_report_done(struct dt_lv_report *r)
{
	free(r->samples);
	*r = (struct dt_lv_report){ 0 };
}

int dt_lv_worker_set_skip(struct dt_lv_worker *w, const uint8_t (*uuids)[16], size_t n)
{
	uint8_t(*copy)[16] = NULL;

	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, uuids, n * sizeof(*copy));
	}
	pthread_mutex_lock(&w->lock);
	free(w->skip);
	w->skip = copy;
	w->nskip = n;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Workers whose thread was stuck in libvirt at stop: left to finish alone, kept reachable. */
static struct dt_lv_worker *abandoned[8];
static unsigned nabandoned;

int dt_lv_worker_stop(struct dt_lv_worker *w, uint64_t timeout_us)
{
	struct timespec ts;
	bool exited;

	if (!w)
		return 0;
	dt_deadline_after(&ts, timeout_us);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	while (!w->exited && pthread_cond_timedwait(&w->gone, &w->lock, &ts) != ETIMEDOUT)
		;
	exited = w->exited;
	pthread_mutex_unlock(&w->lock);
	if (!exited) {
		pthread_detach(w->thread);
		if (nabandoned < ARRAY_SIZE(abandoned))
			abandoned[nabandoned++] = w;
		return -ETIMEDOUT;
	}
	pthread_join(w->thread, NULL);
	worker_free(w);
	return 0;
}
