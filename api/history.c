/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GET /v1/vms/{vm}/history and /v1/vms/{vm}/heatmap, one page of at most
 * `limit` items at a time (?limit=, at most DT_HISTORY_LIMIT_MAX), with the
 * link to the next page. A heatmap of a large VM has one region per 2 MiB
 * dirtied (8 million for 16 TiB): built whole as a json-c tree it took
 * gigabytes and held the loop for seconds, bounded only by max_memory. Here
 * the stats walk starts at the cursor and stops after `limit` items, which
 * are printed straight into the body: a response costs at most limit items
 * of work and about 100 bytes each.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_util.h"
#include "http.h"
#include "json_view.h"
#include "manager.h"
#include "vm_query.h"

/* A double in the fewest digits that read back the same; integral ones with ".0". */
static void put_double(FILE *f, double v)
{
	char buf[32];
	int n = 0;

	if (!isfinite(v))
		v = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
	if (n > 0 && strspn(buf, "-0123456789") == (size_t)n)
		fputs(".0", f);
}

/* Close the body; on a write error free it. */
static int finish(FILE *f, char *const *buf, const size_t *len, int r, char **ret,
		  size_t *ret_len)
{
	if (fclose(f) != 0 || !*buf)
		r = r < 0 ? r : -ENOMEM;
	if (r < 0) {
		free(*buf);
		return r;
	}
	*ret = *buf;
	*ret_len = *len;
	return 0;
}

int dt_history_render(const struct dt_vm *vm, uint64_t since, uint32_t limit, char **ret,
		      size_t *ret_len)
{
	struct dt_epoch_record *recs;
	char *buf = NULL;
	size_t n, len = 0;
	FILE *f;

	if (limit == 0 || limit > DT_HISTORY_LIMIT_MAX)
		return -EINVAL;
	/* One more than asked tells whether there is a next page, and where. */
	recs = calloc((size_t)limit + 1, sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	n = dt_stats_history(vm->stats, since, recs, (size_t)limit + 1);
	f = open_memstream(&buf, &len);
	if (!f) {
		free(recs);
		return -ENOMEM;
	}
	fprintf(f, "{\"id\":%u,\"generation\":%" PRIu64 ",\"epoch_seconds\":", vm->id,
		vm->generation);
	put_double(f, dt_vm_epoch_seconds(vm));
	fprintf(f, ",\"since\":%" PRIu64 ",\"limit\":%u,\"epochs\":[", since, limit);
	for (size_t i = 0; i < n && i < limit; i++)
		fprintf(f,
			"%s{\"epoch\":%" PRIu64 ",\"end_us\":%" PRIu64 ",\"pages\":%" PRIu64
			",\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
			i ? "," : "", recs[i].epoch, recs[i].end_us, recs[i].pages,
			recs[i].entries, recs[i].pages << vm->page_shift);
	if (n > limit)
		fprintf(f,
			"],\"next_since\":%" PRIu64 ",\"next\":\"/v1/vms/%u/history?since=%" PRIu64
			"&limit=%u\"}",
			recs[limit].epoch, vm->id, recs[limit].epoch, limit);
	else
		fputs("],\"next_since\":null,\"next\":null}", f);
	free(recs);
	return finish(f, &buf, &len, 0, ret, ret_len);
}

int dt_heatmap_render(const struct dt_vm *vm, uint32_t window, uint64_t window_us,
		      uint32_t cursor, uint32_t limit, char **ret, size_t *ret_len)
{
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	uint64_t regions = (dt_vm_index_pages(vm) + sc->region_pages - 1) / sc->region_pages;
	struct dt_heat *h;
	char *buf = NULL;
	size_t n, len = 0;
	FILE *f;
	int r;

	if (limit == 0 || limit > DT_HISTORY_LIMIT_MAX)
		return -EINVAL;
	window = DT_MIN(window, sc->horizon_epochs);
	r = dt_vm_heat(vm, window, cursor, (size_t)limit + 1, &h, &n);
	if (r < 0)
		return r;
	f = open_memstream(&buf, &len);
	if (!f) {
		free(h);
		return -ENOMEM;
	}
	fprintf(f,
		"{\"id\":%u,\"generation\":%" PRIu64 ",\"epoch_seconds\":", vm->id,
		vm->generation);
	put_double(f, dt_vm_epoch_seconds(vm));
	fprintf(f, ",\"epochs_harvested\":%" PRIu64 ",\"window_epochs\":%u,\"window_seconds\":",
		dt_stats_epochs(vm->stats), window);
	put_double(f, window * dt_vm_epoch_seconds(vm));
	fprintf(f,
		",\"region_pages\":%u,\"region_bytes\":%" PRIu64 ",\"regions_total\":%" PRIu64
		",\"cursor\":%u,\"limit\":%u,\"regions\":[",
		sc->region_pages, (uint64_t)sc->region_pages << vm->page_shift, regions, cursor,
		limit);
	for (size_t i = 0; i < n && i < limit; i++) {
		uint64_t gpa = 0;

		fprintf(f, "%s{\"region\":%u,\"gpa\":", i ? "," : "", h[i].region);
		if (dt_vm_region_gpa(vm, (uint64_t)h[i].region * sc->region_pages,
				     sc->region_pages, &gpa))
			fprintf(f, "%" PRIu64, gpa);
		else
			fputs("null", f);
		fprintf(f, ",\"pages\":%u,\"dirtyings\":%" PRIu64 ",\"fraction\":", h[i].pages,
			h[i].dirtyings);
		put_double(f, (double)h[i].pages / sc->region_pages);
		fputc('}', f);
	}
	if (n > limit) {
		fprintf(f, "],\"next_cursor\":%u,\"next\":\"/v1/vms/%u/heatmap?cursor=%u&limit=%u",
			h[limit].region, vm->id, h[limit].region, limit);
		if (window_us)
			fprintf(f, "&window=%" PRIu64 "us", window_us);
		fputs("\"}", f);
	} else {
		fputs("],\"next_cursor\":null,\"next\":null}", f);
	}
	free(h);
	return finish(f, &buf, &len, 0, ret, ret_len);
}
