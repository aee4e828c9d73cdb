/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bystander: a well-behaved simulated VMM (libdirtytrack, ring+bitmap,
 * rings in sealed memfds as KVM lays them out) that writes pages from its
 * own PRNG stream beside the fuzz sessions. It keeps the truth (every page
 * it published, ring entry or bitmap bit); the monitor collects the
 * daemon's exact per-epoch sets from REST as they close and, after the
 * DETACH, their union must equal the truth page for page. It must never be
 * detached, see an invalid entry or a second attach.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dtfuzz.h"
#include "libdirtytrack.h"

#define BY_VCPUS 2
#define BY_ENTRIES 4096
#define BY_PAGES (1u << 22) /* 16 GiB of 4 KiB pages: repeats stay rare */
#define BY_SLACK 64 /* KVM's soft-full margin */

struct by_ring {
	struct dt_ring_entry *e;
	int fd;
	uint32_t dirty, reset;
	bool full_sent;
};

struct dtfuzz_bystander {
	const struct dtfuzz_opts *o;
	struct dt_client *c;
	struct dt_shared_bitmap *bm;
	struct by_ring rings[BY_VCPUS];
	uint8_t uuid[16];
	uint32_t vm_id;
	uint64_t *truth, *got; /* BY_PAGES bits each */
	uint64_t next_epoch; /* first epoch not collected yet */
	pthread_t thread;
	atomic_bool stop;
	atomic_int lost; /* the connection failed (errno) or the daemon detached us */
	int detach_result;
	char lost_why[128];
	uint64_t truth_pages, got_pages, epochs;
};

static void set_bit(uint64_t *map, uint64_t page)
{
	map[page / 64] |= 1ull << (page % 64);
}

static int by_reset_rings(void *ud)
{
	struct dtfuzz_bystander *b = ud;
	int n = 0;

	for (unsigned v = 0; v < BY_VCPUS; v++) {
		struct by_ring *r = &b->rings[v];

		while (r->reset != r->dirty) {
			struct dt_ring_entry *e = &r->e[r->reset % BY_ENTRIES];

			if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & DT_RING_RESET))
				break;
			__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
			r->reset++;
			n++;
		}
		if (r->dirty - r->reset < BY_ENTRIES - BY_SLACK)
			r->full_sent = false;
	}
	return n;
}

static int by_sync_bitmap(void *ud)
{
	return 0; /* the "DMA" writer ORs its bits in as it goes */
}

static void by_detached(void *ud, uint32_t reason)
{
	struct dtfuzz_bystander *b = ud;

	snprintf(b->lost_why, sizeof(b->lost_why), "the daemon detached the bystander (reason %u)",
		 reason);
	atomic_store(&b->lost, ECONNRESET);
}

/* One page written by vCPU v (ring) or by a device (bitmap). */
static void by_write(struct dtfuzz_bystander *b, struct dt_rng *g, uint64_t page)
{
	unsigned v = (unsigned)dt_rng_below(g, BY_VCPUS + 1);

	set_bit(b->truth, page);
	if (v < BY_VCPUS) {
		struct by_ring *r = &b->rings[v];

		if (r->dirty - r->reset < BY_ENTRIES - BY_SLACK) {
			struct dt_ring_entry *e = &r->e[r->dirty % BY_ENTRIES];

			e->slot = 0;
			e->offset = page;
			__atomic_store_n(&e->flags, DT_RING_DIRTY, __ATOMIC_RELEASE);
			r->dirty++;
			return;
		}
		/* Soft-full: the vCPU exits; KVM would not run it until the reset. */
		if (!r->full_sent && dt_client_ring_full(b->c, v) >= 0)
			r->full_sent = true;
	}
	dt_shared_bitmap_mark(b->bm, page);
}

static void *by_thread(void *arg)
{
	struct dtfuzz_bystander *b = arg;
	const struct timespec pause = { .tv_nsec = 2000000 };
	struct dt_rng g;
	uint64_t iter = 0;

	dt_rng_seed(&g, b->o->seed, 0xb7574d3e);
	while (!atomic_load(&b->stop) && !atomic_load(&b->lost)) {
		int r;

		/* ~1000 pages a second, and a burst now and then (RING_FULL). */
		unsigned n = ++iter % 2500 == 0 ? 6000 : 2;
		uint64_t base = dt_rng_below(&g, BY_PAGES);

		for (unsigned i = 0; i < n; i++)
			by_write(b, &g, n > 2 ? (base + i) % BY_PAGES : dt_rng_below(&g, BY_PAGES));
		r = dt_client_dispatch(b->c);
		if (r < 0) {
			snprintf(b->lost_why, sizeof(b->lost_why), "bystander connection lost: %s",
				 strerror(-r));
			atomic_store(&b->lost, -r);
			break;
		}
		nanosleep(&pause, NULL);
	}
	if (!atomic_load(&b->lost))
		b->detach_result = dt_client_detach(b->c);
	return NULL;
}

int dtfuzz_bystander_start(const struct dtfuzz_opts *o, struct dtfuzz_bystander **ret)
{
	const struct dt_client_ops ops = { .reset_rings = by_reset_rings,
					   .sync_bitmap = by_sync_bitmap,
					   .detached = by_detached };
	struct dt_client_hello h = {
		.name = "bystander",
		.vmm = "dtfuzz",
		.page_size = 4096,
		.vcpus = BY_VCPUS,
		.mode = DT_MODE_RING_BITMAP,
		.caps = DT_CAP_RESET_RINGS | DT_CAP_SYNC_BITMAP | DT_CAP_RING_FULL | DT_CAP_SIMULATED,
	};
	struct dtfuzz_bystander *b = calloc(1, sizeof(*b));
	struct dt_rng g;
	int r;

	if (!b)
		return -ENOMEM;
	b->o = o;
	b->truth = calloc(BY_PAGES / 64, 8);
	b->got = calloc(BY_PAGES / 64, 8);
	if (!b->truth || !b->got) {
		dtfuzz_bystander_free(b);
		return -ENOMEM;
	}
	dt_rng_seed(&g, o->seed, 0xb7574d3f);
	for (int i = 0; i < 16; i++)
		b->uuid[i] = (uint8_t)dt_rng_next(&g);
	memcpy(h.uuid, b->uuid, 16);
	for (unsigned v = 0; v < BY_VCPUS; v++) {
		void *map;
		size_t len;

		b->rings[v].fd = dtfuzz_make_fd(FD_MEMFD_SEALED, 0, BY_ENTRIES * 16, &map, &len);
		if (b->rings[v].fd < 0 || !map) {
			dtfuzz_bystander_free(b);
			return b->rings[v].fd < 0 ? b->rings[v].fd : -ENOMEM;
		}
		b->rings[v].e = map;
	}
	r = dt_shared_bitmap_new(BY_PAGES, &b->bm);
	if (r >= 0)
		r = dt_client_connect(o->attach_sock, &ops, b, &b->c);
	if (r >= 0)
		r = dt_client_hello(b->c, &h, NULL);
	if (r >= 0)
		r = dt_client_add_slot(b->c, 0, 0, BY_PAGES);
	for (unsigned v = 0; v < BY_VCPUS && r >= 0; v++)
		r = dt_client_add_ring(b->c, v, b->rings[v].fd, 0, BY_ENTRIES, 0);
	if (r >= 0)
		r = dt_client_add_bitmap(b->c, 0, b->bm->fd, 0);
	if (r < 0) {
		fprintf(stderr, "dtfuzz: bystander cannot attach: %s (%s)\n", strerror(-r),
			b->c ? dt_client_last_error(b->c) : "");
		dtfuzz_bystander_free(b);
		return r;
	}
	b->vm_id = dt_client_vm_id(b->c);
	r = pthread_create(&b->thread, NULL, by_thread, b);
	if (r) {
		dtfuzz_bystander_free(b);
		return -r;
	}
	*ret = b;
	return 0;
}

/* *status: the HTTP status, or -errno when no answer came (see describe()). */
static struct json_object *get_json(struct dtfuzz_bystander *b, const char *path, long *status)
{
	_cleanup_free_ char *body = NULL;
	int r;

	*status = 0;
	r = dtfuzz_http_get(b->o->api_sock, path, b->o->health_timeout_s, status, &body);
	if (r < 0) {
		*status = r;
		return NULL;
	}
	return json_tokener_parse(body);
}

static const char *describe(long status, char buf[48])
{
	if (status < 0)
		snprintf(buf, 48, "no answer (%s)", strerror((int)-status));
	else
		snprintf(buf, 48, "status %ld", status);
	return buf;
}

static int64_t jint(struct json_object *o, const char *a, const char *k)
{
	struct json_object *v;

	if (a && !json_object_object_get_ex(o, a, &o))
		return -1;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

/* The epochs closed since the last call, ORed into got. */
static int collect(struct dtfuzz_bystander *b, char *why, size_t len)
{
	char path[160], what[48];
	long status;
	struct json_object *h, *eps;

	snprintf(path, sizeof(path), "/v1/vms/%u/history?since=%llu&limit=100000", b->vm_id,
		 (unsigned long long)b->next_epoch);
	h = get_json(b, path, &status);
	if (!h || status != 200 || !json_object_object_get_ex(h, "epochs", &eps)) {
		snprintf(why, len, "GET %s: %s", path, describe(status, what));
		json_object_put(h);
		return -EIO;
	}
	for (size_t i = 0; i < json_object_array_length(eps); i++) {
		struct json_object *e = json_object_array_get_idx(eps, i), *p, *ranges;
		int64_t n = jint(e, NULL, "epoch");

		if (n < 0 || (uint64_t)n < b->next_epoch)
			continue;
		if (n != (int64_t)b->next_epoch) {
			snprintf(why, len, "bystander epochs %llu..%lld left the history unread",
				 (unsigned long long)b->next_epoch, (long long)n - 1);
			json_object_put(h);
			return -ENOENT;
		}
		b->next_epoch = (uint64_t)n + 1;
		b->epochs++;
		if (jint(e, NULL, "pages") == 0)
			continue;
		/* Page after page: follow next until it is null. */
		snprintf(path, sizeof(path), "/v1/vms/%u/epochs/%lld/pages", b->vm_id, (long long)n);
		while (path[0]) {
			struct json_object *next;

			p = get_json(b, path, &status);
			if (!p || status != 200 || !json_object_object_get_ex(p, "ranges", &ranges)) {
				snprintf(why, len, "GET %s: %s (epoch no longer held exactly?)", path,
					 describe(status, what));
				json_object_put(p);
				json_object_put(h);
				return -EIO;
			}
			for (size_t k = 0; k < json_object_array_length(ranges); k++) {
				struct json_object *rg = json_object_array_get_idx(ranges, k);
				uint64_t first = (uint64_t)json_object_get_int64(
					json_object_array_get_idx(rg, 0));
				uint64_t count = (uint64_t)json_object_get_int64(
					json_object_array_get_idx(rg, 1));

				for (uint64_t q = first; q < first + count; q++) {
					if (q >= BY_PAGES) {
						snprintf(why, len,
							 "epoch %lld names page %llu, beyond the "
							 "bystander's %u",
							 (long long)n, (unsigned long long)q, BY_PAGES);
						json_object_put(p);
						json_object_put(h);
						return -ERANGE;
					}
					set_bit(b->got, q);
				}
			}
			path[0] = 0;
			if (json_object_object_get_ex(p, "next", &next) &&
			    json_object_is_type(next, json_type_string))
				snprintf(path, sizeof(path), "%s", json_object_get_string(next));
			json_object_put(p);
		}
	}
	json_object_put(h);
	return 0;
}

/* Its view: attached (or, after the detach, detached), attached once, nothing invalid. */
static int check_view(struct dtfuzz_bystander *b, const char *want_state, char *why, size_t len)
{
	char path[64], what[48];
	long status;
	struct json_object *v, *st;
	int r = 0;

	snprintf(path, sizeof(path), "/v1/vms/%u", b->vm_id);
	v = get_json(b, path, &status);
	if (!v || status != 200 || !json_object_object_get_ex(v, "state", &st)) {
		snprintf(why, len, "GET %s: %s", path, describe(status, what));
		r = -EIO;
	} else if (strcmp(json_object_get_string(st), want_state) != 0) {
		struct json_object *dr = NULL;

		json_object_object_get_ex(v, "detach_reason", &dr);
		snprintf(why, len, "bystander is %s, not %s (%s)", json_object_get_string(st),
			 want_state, dr ? json_object_get_string(dr) : "");
		r = -ESTALE;
	} else if (jint(v, "counters", "attaches") != 1 ||
		   jint(v, "counters", "invalid_entries") != 0 ||
		   jint(v, "counters", "ring_resyncs") != 0) {
		snprintf(why, len, "bystander counters: attaches %lld, invalid_entries %lld, "
			 "ring_resyncs %lld (want 1, 0, 0)",
			 (long long)jint(v, "counters", "attaches"),
			 (long long)jint(v, "counters", "invalid_entries"),
			 (long long)jint(v, "counters", "ring_resyncs"));
		r = -EBADE;
	}
	json_object_put(v);
	return r;
}

int dtfuzz_bystander_check(struct dtfuzz_bystander *b, char *why, size_t len)
{
	int r;

	if (atomic_load(&b->lost)) {
		snprintf(why, len, "%s", b->lost_why);
		return -atomic_load(&b->lost);
	}
	r = check_view(b, "attached", why, len);
	return r < 0 ? r : collect(b, why, len);
}

int dtfuzz_bystander_finish(struct dtfuzz_bystander *b, char *why, size_t len)
{
	uint64_t missing = 0, extra = 0, first_missing = UINT64_MAX, first_extra = UINT64_MAX;
	int r;

	atomic_store(&b->stop, true);
	pthread_join(b->thread, NULL);
	b->thread = 0;
	if (atomic_load(&b->lost)) {
		snprintf(why, len, "%s", b->lost_why);
		return -EIO;
	}
	if (b->detach_result < 0) {
		snprintf(why, len, "bystander DETACH: %s", strerror(-b->detach_result));
		return b->detach_result;
	}
	/* The ACK came after the final harvest; the last epoch closes at the drop. */
	for (int i = 0; i < 100; i++) {
		r = check_view(b, "detached", why, len);
		if (r != -ESTALE)
			break;
		usleep(100000);
	}
	if (r < 0)
		return r;
	r = collect(b, why, len);
	if (r < 0)
		return r;
	for (uint64_t w = 0; w < BY_PAGES / 64; w++) {
		uint64_t t = b->truth[w], g = b->got[w];

		b->truth_pages += (uint64_t)__builtin_popcountll(t);
		b->got_pages += (uint64_t)__builtin_popcountll(g);
		missing += (uint64_t)__builtin_popcountll(t & ~g);
		extra += (uint64_t)__builtin_popcountll(g & ~t);
		if ((t & ~g) && first_missing == UINT64_MAX)
			first_missing = w * 64 + (uint64_t)__builtin_ctzll(t & ~g);
		if ((g & ~t) && first_extra == UINT64_MAX)
			first_extra = w * 64 + (uint64_t)__builtin_ctzll(g & ~t);
	}
	if (missing || extra) {
		snprintf(why, len, "bystander not exact: truth %llu pages, daemon %llu; %llu missing "
			 "(first %lld), %llu extra (first %lld)",
			 (unsigned long long)b->truth_pages, (unsigned long long)b->got_pages,
			 (unsigned long long)missing, (long long)first_missing,
			 (unsigned long long)extra, (long long)first_extra);
		return -EBADE;
	}
	return 0;
}

void dtfuzz_bystander_figures(const struct dtfuzz_bystander *b, uint64_t *truth, uint64_t *got,
			      uint64_t *epochs)
{
	*truth = b->truth_pages;
	*got = b->got_pages;
	*epochs = b->epochs;
}

const uint8_t *dtfuzz_bystander_uuid(const struct dtfuzz_bystander *b)
{
	return b->uuid;
}

void dtfuzz_bystander_free(struct dtfuzz_bystander *b)
{
	if (!b)
		return;
	if (b->thread) {
		atomic_store(&b->stop, true);
		pthread_join(b->thread, NULL);
	}
	dt_client_free(b->c);
	dt_shared_bitmap_free(b->bm);
	for (unsigned v = 0; v < BY_VCPUS; v++) {
		if (b->rings[v].e)
			munmap(b->rings[v].e, BY_ENTRIES * 16);
		if (b->rings[v].fd > 0)
			close(b->rings[v].fd);
	}
	free(b->truth);
	free(b->got);
	free(b);
}
