/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for the configuration parser (libinih through
 * dt_config_load_string and every key's value parser), then the cross-key
 * checks and a reload against the defaults.
 *
 * Beyond "no crash": an error always names the file and a line, and what
 * is accepted is within the documented ranges; every key of the table
 * (daemon/config_keys.c) written back as --cat-config does reads back as
 * the same value, and within the key's bounds.
 */
#include "config.h"
#include "config_keys.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* c written as a file and read back gives c again, key by key. */
static void check_round_trip(const struct dt_config *c)
{
	struct dt_config back;
	char err[512], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	if (dt_config_write(c, f) < 0)
		abort();
	fclose(f);
	/*
	 * A value near the parser's line limit (INI_MAX_LINE) written as
	 * "key = value", or a socket path derived from a long runtime_dir, can
	 * make a line that no file can hold: the limit is the file syntax's.
	 */
	for (const char *l = text, *nl; *l; l = nl + 1) {
		nl = strchr(l, '\n');
		if (!nl || nl - l >= INI_MAX_LINE - 1) {
			free(text);
			return;
		}
	}
	dt_config_init(&back);
	if (dt_config_load_string(&back, "written.conf", text, err, sizeof(err)) < 0 ||
	    dt_config_finish(&back, err, sizeof(err)) < 0)
		abort(); /* what was accepted once must be accepted again */
	for (size_t i = 0; i < dt_config_n_keys; i++)
		if (dt_config_key_differs(&dt_config_keys[i], c, &back))
			abort();
	dt_config_done(&back);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_config c, cur;
	char err[512] = "";
	char *text;
	int r;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;

	dt_config_init(&c);
	r = dt_config_load_string(&c, "fuzz.conf", text, err, sizeof(err));
	if (r < 0) {
		/* "fuzz.conf:LINE: ..." (or out of memory, not expected here) */
		if (strncmp(err, "fuzz.conf:", 10) != 0 || atoi(err + 10) < 1)
			abort();
	} else if (dt_config_finish(&c, err, sizeof(err)) >= 0) {
		if (c.epoch_us < DT_EPOCH_MIN_US || c.epoch_us > DT_EPOCH_MAX_US ||
		    c.history_us < c.epoch_us || !c.runtime_dir || c.runtime_dir[0] != '/' ||
		    !c.attach_socket || !c.api_socket || c.max_vms < 1 ||
		    (c.max_ring_entries & (c.max_ring_entries - 1)) || c.n_metrics_windows < 1 ||
		    c.n_metrics_windows > 8)
			abort();
		check_round_trip(&c);
		dt_config_init(&cur);
		if (dt_config_finish(&cur, err, sizeof(err)) < 0)
			abort();
		dt_config_reload(&cur, &c, NULL, NULL);
		/* Keys that need a restart kept the running value. */
		if (strcmp(cur.runtime_dir, "/run/dirtytrackd") != 0)
			abort();
		dt_config_done(&cur);
	}
	dt_config_done(&c);
	free(text);
	return 0;
}
