/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for the state directory's decoders (stats/dt_persist.c):
 * the input is decoded as a snapshot (dt_stats_load) and as a journal
 * (dt_stats_journal_replay), as daemon/state.c does with a file it read.
 * A state directory may be hostile: beyond "no crash, no leak, no read out
 * of bounds", a snapshot that loads saves back to bytes that load to the
 * same bytes again, and a journal's applied epochs are its epochs.
 *
 * Seeds (tests/fuzz/corpus/state): FUZZ_STATE_SEEDS=DIR on a run writes a
 * snapshot and a journal of this configuration there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dt_buf.h"
#include "dt_stats.h"

#define NVCPUS 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct dt_stats_config config(void)
{
	struct dt_stats_config c = {
	    .horizon_epochs = 50,
	    .recent_epochs = 8,
	    .coarse_epochs = 5,
	    .region_pages = 64,
	    .nwindows = 3,
	    .windows = {1, 10, 50},
	};
	return c;
}

static void write_file(const char *dir, const char *name, const struct dt_buf *b)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	if (!f || fwrite(b->p, 1, b->len, f) != b->len)
		abort();
	fclose(f);
}

/* A seed snapshot of 12 epochs and a journal of 10 more. */
static void write_seeds(const char *dir)
{
	struct dt_stats_config c = config();
	struct dt_buf snap = {0}, journal = {0};
	struct dt_stats *s;
	uint32_t x = 1;

	if (dt_stats_new(&c, NVCPUS, &s) < 0)
		abort();
	for (uint32_t e = 0; e < 22; e++) {
		struct dt_closed_epoch *ce = NULL;

		for (uint32_t i = 0; i < 40 * (e % 4); i++) {
			x = x * 1103515245u + 12345u;
			if (x >> 30 == 0)
				dt_stats_add_word(s, (x >> 8) % 4000 & ~63u, x * 2654435761u);
			else
				dt_stats_add_vcpu(s, (x >> 29) & 1, (x >> 8) % 4000);
		}
		if (dt_stats_close_epoch(s, 1000 + e, e >= 12 ? &ce : NULL) < 0)
			abort();
		if (e == 11 && dt_stats_save(s, &snap) < 0)
			abort();
		if (ce && dt_persist_frame(ce, &journal) < 0)
			abort();
		dt_closed_epoch_free(ce);
	}
	write_file(dir, "snapshot", &snap);
	write_file(dir, "journal", &journal);
	dt_buf_done(&snap);
	dt_buf_done(&journal);
	dt_stats_free(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_STATE_SEEDS");

	if (dir) {
		write_seeds(dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_stats_config c = config();
	struct dt_stats *s = NULL, *t = NULL;
	uint64_t applied = 0;
	int r;

	if (size > (1u << 20))
		return 0;
	r = dt_stats_load(data, size, NULL, &c, NVCPUS, &s);
	if (r == 0) {
		struct dt_buf a = {0}, b = {0};

		if (dt_stats_save(s, &a) < 0 || dt_stats_load(a.p, a.len, NULL, &c, NVCPUS, &t) < 0 ||
		    dt_stats_save(t, &b) < 0 || a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
			abort();
		dt_stats_free(t);
		dt_buf_done(&a);
		dt_buf_done(&b);
		dt_stats_free(s);
	} else if (r != -EBADMSG && r != -ESTALE && r != -ENOMEM)
		abort();

	if (dt_stats_new(&c, NVCPUS, &s) < 0)
		return 0;
	r = dt_stats_journal_replay(data, size, s, &applied);
	if ((r != 0 && r != -EBADMSG && r != -ENOMEM) || dt_stats_epochs(s) != applied)
		abort();
	dt_stats_free(s);
	return 0;
}
