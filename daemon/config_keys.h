/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The configuration key table: one row per key, the only list of keys.
 * Internal to daemon/config*.c; config.h is the API.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* How a value is parsed, stored, compared and written back. */
enum dt_key_type {
	DT_KEY_PATH,	  /* char *: an absolute path */
	DT_KEY_PATH_OFF,  /* char *: an absolute path, or empty / off (NULL) */
	DT_KEY_STRING,	  /* char *: any text, empty / off: NULL */
	DT_KEY_GROUP,	  /* char *: an existing group name, or empty (NULL) */
	DT_KEY_U32,	  /* uint32_t within [min, max] */
	DT_KEY_POW2,	  /* uint32_t, a power of two within [min, max] */
	DT_KEY_DURATION,  /* uint64_t microseconds within [min, max] */
	DT_KEY_SECONDS,	  /* uint32_t seconds: a whole-second duration within [min, max] */
	DT_KEY_SIZE,	  /* uint64_t bytes within [min, max] */
	DT_KEY_SIZE_OFF,  /* uint64_t bytes within [min, max], or off (0) */
	DT_KEY_MODE,	  /* uint32_t file mode, octal, at most 0777 */
	DT_KEY_USERS,	  /* uid_t[DT_MAX_ALLOWED_IDS] + count: names or uids */
	DT_KEY_GROUPS,	  /* gid_t[DT_MAX_ALLOWED_IDS] + count: names or gids */
	DT_KEY_WINDOWS,	  /* uint32_t seconds[8] + count: ascending durations in [min, max] */
	DT_KEY_REF_LINKS, /* struct dt_ref_link[] + count: BANDWIDTH/DOWNTIME, or off */
	_DT_KEY_TYPE_MAX,
};

struct dt_config_key {
	const char *section, *name;
	enum dt_key_type type;
	size_t offset, size;   /* of the field in struct dt_config (arrays: all of it) */
	size_t count_offset;   /* list types: their unsigned count */
	const char *def;       /* default as written in the file; NULL: derived (see doc) */
	const char *min, *max; /* bounds as written in the file, NULL: none */
	bool restart;	       /* read at start only: a reload keeps the running value */
	const char *doc;
};

extern const struct dt_config_key dt_config_keys[];
extern const size_t dt_config_n_keys;

const char *dt_config_key_type_name(enum dt_key_type t);
const struct dt_config_key *dt_config_key_find(const char *section, const char *name);
/*
 * Parse value into c's field. On error -errno and err holds what the value
 * must be, with the bounds ("must be a duration from 100ms to 1min").
 */
int dt_config_key_parse(const struct dt_config_key *k, struct dt_config *c, const char *value,
			char *err, size_t errlen);
/* The value as it would be written in the file (it parses back to the same). */
int dt_config_key_format(const struct dt_config_key *k, const struct dt_config *c, FILE *out);
bool dt_config_key_differs(const struct dt_config_key *k, const struct dt_config *a,
			   const struct dt_config *b);
/* Free what the field owns (strings); the field is left NULL. */
void dt_config_key_free(const struct dt_config_key *k, struct dt_config *c);
