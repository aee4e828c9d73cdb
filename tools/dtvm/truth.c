/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ground truth: every page the guest (or the VMM's emulated DMA) wrote,
 * by whom and when, written as JSON (same shape as dtsim's, plus per-vCPU
 * page lists) with an atomic rename; optionally a binary trace of
 * {u64 monotonic_us, u64 gpa_page} little-endian per write.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtvm.h"

static const char *const pattern_names[] = {
	[DTVM_PAT_UNIFORM] = "uniform",
	[DTVM_PAT_SEQUENTIAL] = "sequential",
	[DTVM_PAT_HOTCOLD] = "hotcold",
	[DTVM_PAT_ZIPF] = "zipf",
};

int dtvm_truth_init(struct dtvm *vm)
{
	uint64_t words = dtvm_bitmap_words(vm->data_pages);

	vm->nseconds = (vm->o.duration_us + 999999) / 1000000 + 1;
	vm->page_second = calloc(vm->data_pages, sizeof(uint32_t));
	vm->per_second = calloc(vm->nseconds, sizeof(uint64_t));
	vm->dma_written = calloc(words, 8);
	vm->bm_harvested = calloc(words, 8);
	if (!vm->page_second || !vm->per_second || !vm->dma_written || !vm->bm_harvested)
		return -ENOMEM;
	if (vm->o.trace) {
		vm->trace = fopen(vm->o.trace, "wxe");
		if (!vm->trace && errno == EEXIST)
			vm->trace = fopen(vm->o.trace, "we");
		if (!vm->trace)
			return -errno;
	}
	return 0;
}

static void vec_push(struct dtvm_vec *vec, uint64_t x)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 4096;
		uint64_t *p = realloc(vec->v, cap * sizeof(*p));

		if (!p)
			dtvm_die("out of memory recording the truth");
		vec->v = p;
		vec->cap = cap;
	}
	vec->v[vec->n++] = x;
}

/* Called by the vCPU thread that did the writes (pages never cross vCPUs). */
void dtvm_truth_record(struct dtvm *vm, struct dtvm_vcpu *v, uint64_t t0_us, uint64_t t_us,
		       const uint64_t *pages, uint32_t n, bool dma)
{
	uint64_t sec = (t_us - vm->start_us) / 1000000;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t p = pages[i];

		if (dma)
			dtvm_bit_set_atomic(vm->dma_written, p);
		else
			v->written[p / 64] |= 1ull << (p % 64);
		if (sec < vm->nseconds &&
		    __atomic_exchange_n(&vm->page_second[p], (uint32_t)sec + 1, __ATOMIC_RELAXED) !=
			    sec + 1)
			__atomic_fetch_add(&vm->per_second[sec], 1, __ATOMIC_RELAXED);
	}
	if (dma)
		v->dma_writes += n;
	else
		v->writes += n;

	if (vm->o.truth_pages) {
		vec_push(&v->rec, t0_us);
		vec_push(&v->rec, t_us);
		vec_push(&v->rec, (dma ? 1ull << 63 : 0) | n);
		for (uint32_t i = 0; i < n; i++)
			vec_push(&v->rec, dtvm_page_gfn(vm, pages[i]));
	}
	if (vm->trace) {
		pthread_mutex_lock(&vm->trace_lock);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t rec[2] = { htole64(t_us), htole64(dtvm_page_gfn(vm, pages[i])) };

			fwrite(rec, sizeof(rec), 1, vm->trace);
		}
		pthread_mutex_unlock(&vm->trace_lock);
	}
}

/* [[first_gpa_page, count], ...] of a bitmap over data pages */
static json_object *ranges(const struct dtvm *vm, const uint64_t *map)
{
	json_object *a = json_object_new_array();
	uint64_t first = 0, count = 0;

	for (uint64_t w = 0; w < dtvm_bitmap_words(vm->data_pages); w++) {
		uint64_t bits = map[w];

		while (bits) {
			uint64_t gfn = dtvm_page_gfn(vm, w * 64 + __builtin_ctzll(bits));

			bits &= bits - 1;
			if (count && gfn == first + count) {
				count++;
				continue;
			}
			if (count) {
				json_object *r = json_object_new_array();

				json_object_array_add(r, json_object_new_int64(first));
				json_object_array_add(r, json_object_new_int64(count));
				json_object_array_add(a, r);
			}
			first = gfn;
			count = 1;
		}
	}
	if (count) {
		json_object *r = json_object_new_array();

		json_object_array_add(r, json_object_new_int64(first));
		json_object_array_add(r, json_object_new_int64(count));
		json_object_array_add(a, r);
	}
	return a;
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

int dtvm_truth_write(struct dtvm *vm)
{
	uint64_t words = dtvm_bitmap_words(vm->data_pages), writes = 0, dma_writes = 0;
	uint64_t ring_full = 0, elapsed = vm->end_us - vm->start_us;
	_cleanup_free_ uint64_t *all = calloc(words, 8);
	_cleanup_free_ char *tmp = NULL;
	json_object *o, *a, *batches = NULL;
	char uuid[37];
	const char *text;
	FILE *f;
	int r = 0;

	if (!vm->o.truth)
		return 0;
	if (!all || asprintf(&tmp, "%s.tmp", vm->o.truth) < 0)
		return -ENOMEM;

	o = json_object_new_object();
	dt_uuid_format(vm->o.uuid, uuid);
	json_object_object_add(o, "name", json_object_new_string(vm->o.name));
	json_object_object_add(o, "uuid", json_object_new_string(uuid));
	json_object_object_add(o, "vmm", json_object_new_string("dtvm"));
	json_object_object_add(o, "mode", json_object_new_string(dt_mode_name(vm->o.mode)));
	json_object_object_add(o, "pattern",
			       json_object_new_string(pattern_names[vm->o.pattern]));
	add_u64(o, "page_size", DTVM_PAGE_SIZE);
	add_u64(o, "memory_bytes", vm->ram_size);
	add_u64(o, "vcpus", vm->o.vcpus);
	add_u64(o, "rate", vm->o.rate);
	add_u64(o, "wss", vm->o.wss);
	add_u64(o, "seed", vm->o.seed);
	json_object_object_add(o, "duration_seconds",
			       json_object_new_double(vm->o.duration_us / 1e6));
	json_object_object_add(o, "hugepages",
			       json_object_new_string(vm->o.hugepages == DTVM_HP_HUGETLB ? "hugetlb"
						      : vm->o.hugepages == DTVM_HP_THP ? "thp"
										       : "off"));
	json_object_object_add(o, "tracking", json_object_new_boolean(!vm->o.no_tracking));

	a = json_object_new_array();
	if (vm->o.truth_pages)
		batches = json_object_new_array();
	for (uint32_t i = 0; i < vm->o.vcpus; i++) {
		struct dtvm_vcpu *v = &vm->vcpus[i];
		json_object *pv = json_object_new_object();

		for (uint64_t w = 0; w < words; w++)
			all[w] |= v->written[w];
		writes += v->writes;
		dma_writes += v->dma_writes;
		ring_full += v->ring_full_events;
		add_u64(pv, "vcpu", i);
		add_u64(pv, "writes", v->writes);
		add_u64(pv, "batches", v->batches);
		add_u64(pv, "distinct_pages", dtvm_bitmap_count(v->written, vm->data_pages));
		add_u64(pv, "ring_full_events", v->ring_full_events);
		add_u64(pv, "run_us", v->run_us);
		json_object_object_add(pv, "pages", ranges(vm, v->written));
		json_object_array_add(a, pv);

		for (size_t k = 0; batches && k < v->rec.n;) {
			json_object *b = json_object_new_object(), *pg = json_object_new_array();
			uint64_t n = v->rec.v[k + 2] & ~(1ull << 63);

			/* The batch's writes happened within [t0_us, t_us]. */
			add_u64(b, "t0_us", v->rec.v[k]);
			add_u64(b, "t_us", v->rec.v[k + 1]);
			add_u64(b, "vcpu", i);
			if (v->rec.v[k + 2] >> 63)
				json_object_object_add(b, "dma", json_object_new_boolean(true));
			for (uint64_t j = 0; j < n; j++)
				json_object_array_add(pg, json_object_new_int64(v->rec.v[k + 3 + j]));
			json_object_object_add(b, "pages", pg);
			json_object_array_add(batches, b);
			k += 3 + n;
		}
	}
	for (uint64_t w = 0; w < words; w++)
		all[w] |= vm->dma_written[w];
	add_u64(o, "writes", writes + dma_writes);
	add_u64(o, "guest_writes", writes);
	add_u64(o, "distinct_pages", dtvm_bitmap_count(all, vm->data_pages));
	add_u64(o, "start_us", vm->start_us);
	add_u64(o, "end_us", vm->end_us);
	json_object_object_add(o, "guest_writes_per_second",
			       json_object_new_double(elapsed ? writes * 1e6 / elapsed : 0));
	{
		json_object *ps = json_object_new_array();
		uint64_t n = DT_MIN(vm->nseconds, (elapsed + 999999) / 1000000);

		for (uint64_t s = 0; s < n; s++)
			json_object_array_add(ps, json_object_new_int64(vm->per_second[s]));
		json_object_object_add(o, "per_second", ps);
	}
	json_object_object_add(o, "per_vcpu", a);
	add_u64(o, "dma_writes", dma_writes);
	add_u64(o, "dma_distinct_pages", dtvm_bitmap_count(vm->dma_written, vm->data_pages));
	json_object_object_add(o, "dma_pages", ranges(vm, vm->dma_written));
	add_u64(o, "ring_full_events", ring_full);
	add_u64(o, "resets", vm->resets);
	{
		json_object *k = json_object_new_object(), *sl = json_object_new_array();

		json_object_object_add(k, "ring", json_object_new_boolean(vm->ring));
		json_object_object_add(k, "ring_acq_rel", json_object_new_boolean(vm->acq_rel));
		add_u64(k, "ring_entries", vm->ring_entries);
		json_object_object_add(k, "ring_with_bitmap",
				       json_object_new_boolean(vm->ring_with_bitmap));
		json_object_object_add(k, "bitmap", json_object_new_boolean(vm->bitmap));
		json_object_object_add(k, "manual_protect",
				       json_object_new_boolean(vm->manual_protect));
		for (unsigned i = 0; i < vm->nslots; i++) {
			json_object *s = json_object_new_object();

			add_u64(s, "slot", vm->slots[i].id);
			add_u64(s, "gpa", vm->slots[i].gpa);
			add_u64(s, "pages", vm->slots[i].pages);
			json_object_array_add(sl, s);
		}
		json_object_object_add(k, "slots", sl);
		json_object_object_add(o, "kvm", k);
	}
	if (batches)
		json_object_object_add(o, "batches", batches);

	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	f = fopen(tmp, "we");
	if (!f) {
		r = -errno;
	} else {
		if (fputs(text, f) < 0 || fputc('\n', f) < 0)
			r = -EIO;
		if (fclose(f) < 0 && !r)
			r = -errno;
		if (!r && rename(tmp, vm->o.truth) < 0)
			r = -errno;
		if (r)
			unlink(tmp);
	}
	json_object_put(o);
	return r;
}
