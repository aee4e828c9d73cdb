/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GET /v1/vms/{vm}/epochs/{n}/pages: an epoch's exact dirty set, one page
 * of at most `limit` ranges at a time. A dense epoch of a large VM has
 * hundreds of thousands of runs: built whole as a json-c tree it held the
 * loop for half a second and took hundreds of MB per request. Here the
 * stats walk starts at the cursor, stops after `limit` ranges, and the
 * ranges are printed straight into the body, so a response costs at most
 * DT_HISTORY_LIMIT_MAX ranges of work and about 48 bytes each.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "dt_util.h"
#include "http.h"
#include "manager.h"

struct pages_ctx {
	const struct dt_vm *vm;
	FILE *f;
	uint32_t limit, n;
	uint64_t next; /* dense index to continue from; UINT64_MAX: none */
};

#define PAGE_FULL (-EOVERFLOW) /* stops the walk: not an error */

/* A run of dense page indexes, split at slot boundaries into gpa pages. */
static int add_run(uint32_t first, uint32_t count, void *ud)
{
	struct pages_ctx *ctx = ud;
	const struct dt_slot_table *t = &ctx->vm->collector.slots;
	uint64_t idx = first, end = (uint64_t)first + count;

	while (idx < end) {
		const struct dt_slot *s = NULL;

		for (uint32_t i = 0; i < t->n; i++)
			if (idx >= t->slots[i].base && idx < t->slots[i].base + t->slots[i].pages) {
				s = &t->slots[i];
				break;
			}
		if (!s) { /* alignment padding between slots: never dirtied */
			idx++;
			continue;
		}
		if (ctx->n == ctx->limit) {
			ctx->next = idx;
			return PAGE_FULL;
		}
		uint64_t stop = DT_MIN(end, (uint64_t)s->base + s->pages);
		fprintf(ctx->f, "%s[%" PRIu64 ",%" PRIu64 "]", ctx->n ? "," : "",
			(s->gpa >> ctx->vm->page_shift) + (idx - s->base), stop - idx);
		ctx->n++;
		idx = stop;
	}
	return 0;
}

int dt_epoch_pages_render(const struct dt_vm *vm, uint64_t epoch, uint32_t cursor,
			  uint32_t limit, char **ret, size_t *ret_len)
{
	struct pages_ctx ctx = { .vm = vm, .limit = limit, .next = UINT64_MAX };
	struct dt_epoch_record rec;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (limit == 0)
		return -EINVAL;
	if (dt_stats_history(vm->stats, epoch, &rec, 1) != 1 || rec.epoch != epoch)
		return -ENOENT;
	ctx.f = open_memstream(&buf, &len);
	if (!ctx.f)
		return -ENOMEM;
	fprintf(ctx.f,
		"{\"id\":%u,\"epoch\":%" PRIu64 ",\"end_us\":%" PRIu64 ",\"pages\":%" PRIu64
		",\"cursor\":%u,\"limit\":%u,\"ranges\":[",
		vm->id, epoch, rec.end_us, rec.pages, cursor, limit);
	r = dt_stats_epoch_pages_from(vm->stats, epoch, cursor, add_run, &ctx);
	if (r == PAGE_FULL)
		r = 0;
	if (r >= 0 && ctx.next != UINT64_MAX)
		fprintf(ctx.f,
			"],\"next_cursor\":%" PRIu64 ",\"next\":\"/v1/vms/%u/epochs/%" PRIu64
			"/pages?cursor=%" PRIu64 "&limit=%u\"}",
			ctx.next, vm->id, epoch, ctx.next, limit);
	else
		fputs("],\"next_cursor\":null,\"next\":null}", ctx.f);
	if (fclose(ctx.f) != 0 || !buf)
		r = r < 0 ? r : -ENOMEM;
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
