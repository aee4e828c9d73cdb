/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ground truth: every write is recorded, so tests can compare the daemon's
 * figures with what really happened. Pages are working-set indices (guest
 * memory order: page 0 is the first page of the lowest slot); only the
 * working set can be written, so the bitmaps are wss bits.
 *
 * per_second[k] counts the distinct pages written at times in
 * [run_start_us + k s, run_start_us + (k + 1) s), run_start_us being when
 * the run (the write schedule) began; start_us, the first write, comes up to
 * one tick later. With --duration D there are ceil(D) seconds: the writes due
 * by the end are made by the tick that notices the end, up to a tick late,
 * and count in the last second. All times are CLOCK_MONOTONIC microseconds,
 * the daemon's clock too.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dt_util.h"
#include "dtsim.h"

static uint64_t *bits_alloc(uint64_t nbits)
{
	/* large callocs come from mmap: untouched pages cost nothing */
	return calloc((nbits + 63) / 64 ? (nbits + 63) / 64 : 1, sizeof(uint64_t));
}

int dtsim_truth_init(struct dtsim_truth *t, uint64_t wss, uint32_t nwriters)
{
	*t = (struct dtsim_truth){.wss = wss, .nwriters = nwriters};
	t->ever = bits_alloc(wss);
	t->this_second = bits_alloc(wss);
	t->w = calloc(nwriters, sizeof(*t->w));
	if (!t->ever || !t->this_second || !t->w)
		return -ENOMEM;
	for (uint32_t i = 0; i < nwriters; i++) {
		t->w[i].seen = bits_alloc(wss);
		if (!t->w[i].seen)
			return -ENOMEM;
	}
	return 0;
}

void dtsim_truth_done(struct dtsim_truth *t)
{
	free(t->ever);
	free(t->this_second);
	for (uint32_t i = 0; t->w && i < t->nwriters; i++)
		free(t->w[i].seen);
	free(t->w);
	free(t->per_second);
	*t = (struct dtsim_truth){0};
}

static int push_second(struct dtsim_truth *t, uint64_t v)
{
	if (t->n_per_second == t->cap_per_second) {
		size_t cap = t->cap_per_second ? t->cap_per_second * 2 : 64;
		uint64_t *p = realloc(t->per_second, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->per_second = p;
		t->cap_per_second = cap;
	}
	t->per_second[t->n_per_second++] = v;
	return 0;
}

int dtsim_truth_tick(struct dtsim_truth *t, uint64_t now)
{
	uint64_t sec;
	int r;

	if (now < t->run_start_us)
		return 0;
	sec = (now - t->run_start_us) / 1000000u;
	if (t->seconds_max && sec >= t->seconds_max)
		sec = t->seconds_max - 1;
	if (sec <= t->second)
		return 0;
	r = push_second(t, t->second_distinct);
	if (r < 0)
		return r;
	/* seconds without any write (a stall) count zero pages */
	for (uint64_t s = t->second + 1; s < sec; s++) {
		r = push_second(t, 0);
		if (r < 0)
			return r;
	}
	memset(t->this_second, 0, (t->wss + 63) / 64 * sizeof(uint64_t));
	t->second_distinct = 0;
	t->second = sec;
	return 0;
}

static json_object *json_number(double v)
{
	if (v == (double)(int64_t)v)
		return json_object_new_int64((int64_t)v);
	return json_object_new_double(v);
}

static json_object *json_u64(uint64_t v) { return json_object_new_int64((int64_t)v); }

static int write_atomically(const char *path, const char *text)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = strlen(text), off = 0;

	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		goto fail;
	if (rename(tmp, path) < 0)
		goto fail;
	return 0;
fail : {
	int r = -errno;
	unlink(tmp);
	return r;
}
}

int dtsim_truth_write(struct dtsim_truth *t, const struct dtsim_opts *o,
		      const struct dtsim_guest *g, const char *uuid_text)
{
	json_object *root, *a;
	uint64_t dma_writes = 0, dma_distinct = 0;
	double duration;
	int r;

	/* close the current second; a --duration run reports each of its seconds */
	r = push_second(t, t->second_distinct);
	if (r < 0)
		return r;
	t->second_distinct = 0;
	while (t->n_per_second < t->seconds_max) {
		r = push_second(t, 0);
		if (r < 0)
			return r;
	}
	for (uint32_t i = o->vcpus; i < t->nwriters; i++) {
		dma_writes += t->w[i].writes;
		dma_distinct += t->w[i].distinct;
	}
	duration = o->duration_us ? (double)o->duration_us / 1e6
				  : (double)(t->run_end_us - t->run_start_us) / 1e6;

	root = json_object_new_object();
	json_object_object_add(root, "name", json_object_new_string(o->name));
	json_object_object_add(root, "uuid", json_object_new_string(uuid_text));
	json_object_object_add(root, "mode", json_object_new_string(dt_mode_name(o->mode)));
	json_object_object_add(root, "pattern",
			       json_object_new_string(dtsim_pattern_name(o->pattern)));
	json_object_object_add(root, "page_size", json_u64(o->page_size));
	json_object_object_add(root, "memory_bytes", json_u64(o->memory_bytes));
	json_object_object_add(root, "vcpus", json_u64(o->vcpus));
	json_object_object_add(root, "rate", json_number(o->rate));
	json_object_object_add(root, "wss", json_u64(o->wss));
	json_object_object_add(root, "seed", json_u64(o->seed));
	json_object_object_add(root, "duration_seconds", json_number(duration));
	json_object_object_add(root, "writes", json_u64(t->writes));
	json_object_object_add(root, "distinct_pages", json_u64(t->distinct));
	json_object_object_add(root, "start_us", json_u64(t->started ? t->start_us : 0));
	json_object_object_add(root, "end_us", json_u64(t->started ? t->end_us : 0));
	a = json_object_new_array();
	for (size_t i = 0; i < t->n_per_second; i++)
		json_object_array_add(a, json_u64(t->per_second[i]));
	json_object_object_add(root, "per_second", a);
	a = json_object_new_array();
	for (uint32_t i = 0; i < o->vcpus; i++) {
		json_object *v = json_object_new_object();

		json_object_object_add(v, "vcpu", json_u64(i));
		json_object_object_add(v, "writes", json_u64(t->w[i].writes));
		json_object_object_add(v, "distinct_pages", json_u64(t->w[i].distinct));
		/* ring modes: entries pushed; bitmap mode: pages logged */
		json_object_object_add(v, "logged", json_u64(t->w[i].logged));
		json_object_array_add(a, v);
	}
	json_object_object_add(root, "per_vcpu", a);
	json_object_object_add(root, "dma_writes", json_u64(dma_writes));
	json_object_object_add(root, "dma_distinct_pages", json_u64(dma_distinct));
	json_object_object_add(root, "ring_full_events", json_u64(t->ring_full_events));
	json_object_object_add(root, "resets", json_u64(t->resets));

	/* beyond the contract: what tests and the pre-copy simulator may want */
	json_object_object_add(root, "entries_reset", json_u64(t->entries_reset));
	json_object_object_add(root, "syncs", json_u64(t->syncs));
	json_object_object_add(root, "words_synced", json_u64(t->words_synced));
	json_object_object_add(root, "skipped_writes", json_u64(t->skipped_writes));
	json_object_object_add(root, "reconnects", json_u64(t->reconnects));
	json_object_object_add(root, "run_start_us", json_u64(t->run_start_us));
	json_object_object_add(root, "run_end_us", json_u64(t->run_end_us));
	json_object_object_add(root, "ring_entries",
			       json_u64(o->mode == DT_MODE_BITMAP ? 0 : o->ring_entries));
	json_object_object_add(root, "dma_fraction", json_number(o->dma_fraction));
	json_object_object_add(root, "dirty_limit", json_number(o->dirty_limit));
	a = json_object_new_array();
	for (uint32_t i = 0; i < g->nslots; i++) {
		json_object *v = json_object_new_object();

		json_object_object_add(v, "slot", json_u64(g->slots[i].id));
		json_object_object_add(v, "gpa", json_u64(g->slots[i].gpa));
		json_object_object_add(v, "pages", json_u64(g->slots[i].pages));
		json_object_array_add(a, v);
	}
	json_object_object_add(root, "slots", a);

	r = write_atomically(o->truth_path,
			     json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return r;
}
