/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dt_util.h"

void dt_config_init(struct dt_config *c)
{
	*c = (struct dt_config){
		.runtime_dir = strdup("/run/dirtytrackd"),
		.api_tcp = strdup("127.0.0.1:9111"),
		.epoch_us = 1000000,
		.retention_us = 600ull * 1000000,
		.history_us = 3600ull * 1000000,
		.recent_epochs = 64,
		.coarse_epochs = 60,
		.max_vms = 64,
		.max_vcpus = 512,
		.max_slots = 512,
		.max_ring_entries = 65536,
		.max_memory = 16ull << 40,
		.api_max_connections = 64,
		.api_timeout_us = 10ull * 1000000,
		.api_socket_mode = 0666,
		.api_max_wait_us = 60ull * 1000000,
		.api_memory_limit = 64 * 1024,
		.metrics_windows = { 1, 10, 60, 300 },
		.n_metrics_windows = 4,
		.dbus = strdup("system"),
		.dbus_interval_us = 1000000,
	};
}

void dt_config_done(struct dt_config *c)
{
	free(c->runtime_dir);
	free(c->attach_socket);
	free(c->api_socket);
	free(c->api_tcp);
	free(c->api_socket_group);
	free(c->api_remote);
	free(c->api_tls_cert);
	free(c->api_tls_key);
	free(c->api_token_file);
	free(c->dbus);
	*c = (struct dt_config){ 0 };
}

static int set_string(char **field, const char *value)
{
	char *s = NULL;

	if (*value && strcmp(value, "off") != 0) {
		s = strdup(value);
		if (!s)
			return -ENOMEM;
	}
	free(*field);
	*field = s;
	return 0;
}

static int set_u32(uint32_t *field, const char *value, uint64_t min, uint64_t max)
{
	uint64_t v;
	int r = dt_parse_u64(value, min, max, &v);

	if (r >= 0)
		*field = (uint32_t)v;
	return r;
}

static int set_windows(struct dt_config *c, const char *value)
{
	_cleanup_free_ char *copy = strdup(value);
	uint32_t w[ARRAY_SIZE(c->metrics_windows)];
	char *save = NULL;
	unsigned n = 0;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		uint64_t us;

		if (n == ARRAY_SIZE(w) || dt_parse_duration(tok, &us) < 0 || us < 1000000 ||
		    us % 1000000 || (n && us / 1000000 <= w[n - 1]) || us > 86400ull * 1000000)
			return -EINVAL;
		w[n++] = (uint32_t)(us / 1000000);
	}
	if (n == 0)
		return -EINVAL;
	memcpy(c->metrics_windows, w, sizeof(w));
	c->n_metrics_windows = n;
	return 0;
}

static int set_ids(const char *value, bool groups, struct dt_config *c)
{
	_cleanup_free_ char *copy = strdup(value);
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	if (groups)
		c->n_allowed_gids = 0;
	else
		c->n_allowed_uids = 0;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		uint64_t id;

		if (dt_parse_u64(tok, 0, UINT32_MAX - 1, &id) < 0) {
			if (groups) {
				struct group *g = getgrnam(tok);
				if (!g)
					return -ESRCH;
				id = g->gr_gid;
			} else {
				struct passwd *p = getpwnam(tok);
				if (!p)
					return -ESRCH;
				id = p->pw_uid;
			}
		}
		if (groups) {
			if (c->n_allowed_gids >= DT_MAX_ALLOWED_IDS)
				return -E2BIG;
			c->allowed_gids[c->n_allowed_gids++] = (gid_t)id;
		} else {
			if (c->n_allowed_uids >= DT_MAX_ALLOWED_IDS)
				return -E2BIG;
			c->allowed_uids[c->n_allowed_uids++] = (uid_t)id;
		}
	}
	return 0;
}

int dt_config_set(struct dt_config *c, const char *section, const char *key, const char *value,
		  char *err, size_t errlen)
{
	const char *what = "invalid value";
	int r = -ENOENT;

#define IS(s, k) (strcmp(section, s) == 0 && strcmp(key, k) == 0)
	if (IS("daemon", "runtime_dir"))
		r = *value == '/' ? set_string(&c->runtime_dir, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("daemon", "epoch")) {
		r = dt_parse_duration(value, &c->epoch_us);
		if (r >= 0 && (c->epoch_us < DT_EPOCH_MIN_US || c->epoch_us > DT_EPOCH_MAX_US))
			r = -ERANGE;
		what = "must be a duration from 100ms to 1min";
	} else if (IS("daemon", "retention"))
		r = dt_parse_duration(value, &c->retention_us), what = "must be a duration";
	else if (IS("stats", "history")) {
		r = dt_parse_duration(value, &c->history_us);
		if (r >= 0 && (c->history_us < 1000000 || c->history_us > 24ull * 3600 * 1000000))
			r = -ERANGE;
		what = "must be a duration from 1s to 24h";
	} else if (IS("stats", "recent_epochs"))
		r = set_u32(&c->recent_epochs, value, 1, 100000), what = "must be 1..100000";
	else if (IS("stats", "coarse_epochs"))
		r = set_u32(&c->coarse_epochs, value, 1, 100000), what = "must be 1..100000";
	else if (IS("attach", "socket"))
		r = *value == '/' ? set_string(&c->attach_socket, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("attach", "allowed_users"))
		r = set_ids(value, false, c), what = "unknown user or too many";
	else if (IS("attach", "allowed_groups"))
		r = set_ids(value, true, c), what = "unknown group or too many";
	else if (IS("attach", "max_vms"))
		r = set_u32(&c->max_vms, value, 1, 65536), what = "must be 1..65536";
	else if (IS("attach", "max_vcpus"))
		r = set_u32(&c->max_vcpus, value, 1, 4096), what = "must be 1..4096";
	else if (IS("attach", "max_slots"))
		r = set_u32(&c->max_slots, value, 1, 32768), what = "must be 1..32768";
	else if (IS("attach", "max_ring_entries")) {
		r = set_u32(&c->max_ring_entries, value, 64, 1u << 20);
		if (r >= 0 && (c->max_ring_entries & (c->max_ring_entries - 1)))
			r = -EINVAL;
		what = "must be a power of two from 64 to 1048576";
	} else if (IS("attach", "max_memory"))
		r = dt_parse_size(value, &c->max_memory), what = "must be a size such as 1T";
	else if (IS("api", "socket"))
		r = *value == '/' ? set_string(&c->api_socket, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("api", "tcp"))
		r = set_string(&c->api_tcp, value), what = "must be HOST:PORT or off";
	else if (IS("api", "max_connections"))
		r = set_u32(&c->api_max_connections, value, 1, 100000), what = "must be 1..100000";
	else if (IS("api", "timeout"))
		r = dt_parse_duration(value, &c->api_timeout_us), what = "must be a duration";
	else if (IS("api", "socket_mode")) {
		char *end;
		unsigned long mode = strtoul(value, &end, 8);
		r = (*value && !*end && mode <= 0777) ? 0 : -EINVAL;
		if (r >= 0)
			c->api_socket_mode = (uint32_t)mode;
		what = "must be an octal mode such as 0660";
	} else if (IS("api", "socket_group")) {
		r = (!*value || getgrnam(value)) ? set_string(&c->api_socket_group, value) : -ESRCH;
		what = "unknown group";
	} else if (IS("api", "max_wait"))
		r = dt_parse_duration(value, &c->api_max_wait_us), what = "must be a duration";
	else if (IS("api", "memory_limit")) {
		r = dt_parse_size(value, &c->api_memory_limit);
		if (r >= 0 && (c->api_memory_limit < 4096 || c->api_memory_limit > (64u << 20)))
			r = -ERANGE;
		what = "must be a size from 4K to 64M";
	} else if (IS("api", "remote"))
		r = set_string(&c->api_remote, value), what = "must be ADDR:PORT or off";
	else if (IS("api", "tls_certificate"))
		r = (!*value || *value == '/') ? set_string(&c->api_tls_cert, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("api", "tls_key"))
		r = (!*value || *value == '/') ? set_string(&c->api_tls_key, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("api", "token_file"))
		r = (!*value || *value == '/') ? set_string(&c->api_token_file, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("metrics", "wss_windows"))
		r = set_windows(c, value), what = "must be up to 8 ascending whole-second durations";
	else if (IS("dbus", "bus"))
		r = set_string(&c->dbus, value), what = "must be system, session, an address or off";
	else if (IS("dbus", "properties_interval")) {
		r = dt_parse_duration(value, &c->dbus_interval_us);
		if (r >= 0 && c->dbus_interval_us < 100000)
			r = -ERANGE;
		what = "must be a duration of at least 100ms";
	}
	else
		what = "unknown key";
#undef IS
	if (r < 0)
		snprintf(err, errlen, "[%s] %s = %s: %s", section, key, value, what);
	return r;
}

struct load_ctx {
	struct dt_config *c;
	const char *path;
	char msg[256];
	int r;
};

static int on_ini_line(void *user, const char *section, const char *key, const char *value
#if INI_HANDLER_LINENO
		       ,
		       int lineno
#endif
)
{
	struct load_ctx *ctx = user;
	int r;

	if (ctx->r < 0)
		return 1; /* report only the first error */
	r = dt_config_set(ctx->c, section, key, value, ctx->msg, sizeof(ctx->msg));
	if (r < 0) {
		ctx->r = r;
		return 0;
	}
	return 1;
}

int dt_config_load(struct dt_config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx = { .c = c, .path = path };
	int line = ini_parse(path, on_ini_line, &ctx);

	if (line == -1) {
		int r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return r ? r : -EIO;
	}
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (ctx.r < 0) {
		/* ini_parse returns the line of the first failing handler call. */
		snprintf(err, errlen, "%s:%d: %s", path, line, ctx.msg);
		return ctx.r;
	}
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: syntax error", path, line);
		return -EINVAL;
	}
	return 0;
}

static int path_join(char **field, const char *dir, const char *name)
{
	if (*field)
		return 0;
	if (asprintf(field, "%s/%s", dir, name) < 0) {
		*field = NULL;
		return -ENOMEM;
	}
	return 0;
}

int dt_config_finish(struct dt_config *c, char *err, size_t errlen)
{
	if (!c->runtime_dir) {
		snprintf(err, errlen, "runtime_dir is not set");
		return -EINVAL;
	}
	if (c->history_us < c->epoch_us) {
		snprintf(err, errlen, "[stats] history is shorter than one epoch");
		return -EINVAL;
	}
	if (c->api_remote && (!c->api_tls_cert || !c->api_tls_key || !c->api_token_file)) {
		snprintf(err, errlen, "[api] remote = %s needs tls_certificate, tls_key and "
				      "token_file: the remote listener is TLS with a bearer token only",
			 c->api_remote);
		return -EINVAL;
	}
	if (path_join(&c->attach_socket, c->runtime_dir, "attach.sock") < 0 ||
	    path_join(&c->api_socket, c->runtime_dir, "api.sock") < 0)
		return -ENOMEM;
	return 0;
}
