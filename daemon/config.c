/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dt_file.h"
#include "dt_util.h"

/* The group of the shipped attach socket (units/dirtytrackd.socket, sysusers). */
#define DT_DEFAULT_GROUP "dirtytrack"

void dt_config_init(struct dt_config *c)
{
	struct group *g;

	*c = (struct dt_config){
		.runtime_dir = strdup("/run/dirtytrackd"),
		.state_dir = strdup("/var/lib/dirtytrackd"),
		.snapshot_epochs = 60,
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
		.max_handshakes = 32,
		.handshake_timeout_us = 10ull * 1000000,
		.api_max_connections = 64,
		.api_max_client_connections = 16,
		.api_timeout_us = 10ull * 1000000,
		.api_socket_mode = 0660,
		.api_max_wait_us = 60ull * 1000000,
		.api_memory_limit = 64 * 1024,
		.metrics_windows = { 1, 10, 60, 300 },
		.n_metrics_windows = 4,
		.ref_links = { { 1250000000, 300000, "10Gbit/300ms" } },
		.n_ref_links = 1,
		.dbus = strdup("system"),
		.dbus_interval_us = 1000000,
		.libvirt_interval_us = 10ull * 1000000,
		.libvirt_calc_seconds = 1,
	};
	/* Members of the socket's group may attach, as its mode says, if it exists. */
	g = getgrnam(DT_DEFAULT_GROUP);
	if (g) {
		c->allowed_gids[0] = g->gr_gid;
		c->n_allowed_gids = 1;
	}
}

void dt_config_done(struct dt_config *c)
{
	free(c->runtime_dir);
	free(c->state_dir);
	free(c->attach_socket);
	free(c->api_socket);
	free(c->api_tcp);
	free(c->api_socket_group);
	free(c->api_remote);
	free(c->api_tls_cert);
	free(c->api_tls_key);
	free(c->api_token_file);
	free(c->dbus);
	free(c->libvirt_uri);
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

/*
 * "BANDWIDTH/DOWNTIME ..." (comma- or space-separated; the downtime after
 * the last '/', so "10Gbit/s/300ms" works), or "off" / "" for none.
 */
static int set_ref_links(struct dt_config *c, const char *value)
{
	_cleanup_free_ char *copy = strdup(value);
	struct dt_ref_link l[DT_MAX_REF_LINKS];
	char *save = NULL;
	unsigned n = 0;

	if (!copy)
		return -ENOMEM;
	memset(l, 0, sizeof(l));
	if (strcmp(value, "off") != 0) {
		for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
			char *slash = strrchr(tok, '/');

			if (n == DT_MAX_REF_LINKS || !slash || strlen(tok) >= sizeof(l[n].name))
				return -EINVAL;
			memcpy(l[n].name, tok, strlen(tok));
			*slash = '\0';
			if (dt_parse_bandwidth(tok, &l[n].bandwidth) < 0 ||
			    dt_parse_duration(slash + 1, &l[n].downtime_us) < 0 || l[n].downtime_us == 0)
				return -EINVAL;
			for (unsigned i = 0; i < n; i++)
				if (strcmp(l[i].name, l[n].name) == 0)
					return -EINVAL;
			n++;
		}
	}
	memcpy(c->ref_links, l, sizeof(l));
	c->n_ref_links = n;
	return 0;
}

/* Comma- or space-separated user (groups: group) names or ids into ids[]. */
static int set_ids(const char *value, bool groups, uint32_t ids[DT_MAX_ALLOWED_IDS],
		   unsigned *n_ids)
{
	_cleanup_free_ char *copy = strdup(value);
	uint32_t parsed[DT_MAX_ALLOWED_IDS];
	char *save = NULL;
	unsigned n = 0;

	if (!copy)
		return -ENOMEM;
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
		if (n >= DT_MAX_ALLOWED_IDS)
			return -E2BIG;
		parsed[n++] = (uint32_t)id;
	}
	memcpy(ids, parsed, n * sizeof(*ids));
	*n_ids = n;
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
	else if (IS("daemon", "state_dir"))
		r = !*value || strcmp(value, "off") == 0 || *value == '/'
			    ? set_string(&c->state_dir, value)
			    : -EINVAL,
		what = "must be an absolute path, or empty";
	else if (IS("daemon", "snapshot_epochs"))
		r = set_u32(&c->snapshot_epochs, value, 1, 1000000), what = "must be 1..1000000";
	else if (IS("daemon", "state_max_bytes_per_vm")) {
		r = strcmp(value, "off") == 0 ? (c->state_max_bytes_per_vm = 0, 0)
					      : dt_parse_size(value, &c->state_max_bytes_per_vm);
		if (r >= 0 && c->state_max_bytes_per_vm && c->state_max_bytes_per_vm < 65536)
			r = -ERANGE;
		what = "must be a size of at least 64K (such as 512M), or off";
	}
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
		r = set_ids(value, false, c->allowed_uids, &c->n_allowed_uids),
		what = "unknown user or too many";
	else if (IS("attach", "allowed_groups"))
		r = set_ids(value, true, c->allowed_gids, &c->n_allowed_gids),
		what = "unknown group or too many";
	else if (IS("attach", "takeover_users"))
		r = set_ids(value, false, c->takeover_uids, &c->n_takeover_uids),
		what = "unknown user or too many";
	else if (IS("attach", "max_vms"))
		r = set_u32(&c->max_vms, value, 1, 65536), what = "must be 1..65536";
	else if (IS("attach", "max_vms_per_owner"))
		r = set_u32(&c->max_vms_per_owner, value, 0, 65536), what = "must be 0..65536";
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
	else if (IS("attach", "max_handshakes"))
		r = set_u32(&c->max_handshakes, value, 1, 65536), what = "must be 1..65536";
	else if (IS("attach", "handshake_timeout")) {
		r = dt_parse_duration(value, &c->handshake_timeout_us);
		if (r >= 0 && (c->handshake_timeout_us < 100000 ||
			       c->handshake_timeout_us > 3600ull * 1000000))
			r = -ERANGE;
		what = "must be a duration from 100ms to 1h";
	}
	else if (IS("api", "socket"))
		r = *value == '/' ? set_string(&c->api_socket, value) : -EINVAL,
		what = "must be an absolute path";
	else if (IS("api", "tcp"))
		r = set_string(&c->api_tcp, value), what = "must be HOST:PORT or off";
	else if (IS("api", "max_connections"))
		r = set_u32(&c->api_max_connections, value, 1, 100000), what = "must be 1..100000";
	else if (IS("api", "max_connections_per_client"))
		r = set_u32(&c->api_max_client_connections, value, 1, 100000),
		what = "must be 1..100000";
	else if (IS("api", "timeout")) {
		r = dt_parse_duration(value, &c->api_timeout_us);
		if (r >= 0 && (c->api_timeout_us < 1000000 || c->api_timeout_us > 3600ull * 1000000))
			r = -ERANGE;
		what = "must be a duration from 1s to 1h";
	}
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
	else if (IS("metrics", "reference_links"))
		r = set_ref_links(c, value),
		what = "must be up to 4 distinct BANDWIDTH/DOWNTIME links (10Gbit/300ms), or off";
	else if (IS("dbus", "bus"))
		r = set_string(&c->dbus, value), what = "must be system, session, an address or off";
	else if (IS("dbus", "properties_interval")) {
		r = dt_parse_duration(value, &c->dbus_interval_us);
		if (r >= 0 && c->dbus_interval_us < 100000)
			r = -ERANGE;
		what = "must be a duration of at least 100ms";
	}
	else if (IS("libvirt", "uri"))
		r = set_string(&c->libvirt_uri, value), what = "must be a libvirt URI or empty";
	else if (IS("libvirt", "interval")) {
		r = dt_parse_duration(value, &c->libvirt_interval_us);
		if (r >= 0 && (c->libvirt_interval_us < 1000000 ||
			       c->libvirt_interval_us > 3600ull * 1000000))
			r = -ERANGE;
		what = "must be a duration from 1s to 1h";
	} else if (IS("libvirt", "calc_seconds")) {
		uint64_t us;

		r = dt_parse_duration(value, &us);
		if (r >= 0 && (us % 1000000 || us < 1000000 || us > 60ull * 1000000))
			r = -ERANGE;
		if (r >= 0)
			c->libvirt_calc_seconds = (uint32_t)(us / 1000000);
		what = "must be whole seconds from 1s to 60s";
	}
	else
		what = "unknown key";
#undef IS
	if (r < 0)
		snprintf(err, errlen, "[%s] %s = %s: %s", section, key, value, what);
	return r;
}

/*
 * libinih reads through a reader callback, which lets the parser count lines
 * itself: with INI_STOP_ON_FIRST_ERROR off, ini_parse_* returns the line of
 * the first error of any kind, but a handler is not told its line (Debian
 * builds without INI_HANDLER_LINENO). Counting here gives the line of the
 * key in error, and catches lines longer than the parser's buffer, which it
 * would otherwise split silently into two lines.
 */
struct load_ctx {
	struct dt_config *c;
	const char *text;
	size_t pos, len;
	int line; /* lines fully read so far */
	int err_line; /* first failing key, or too-long line */
	bool too_long;
	char msg[320];
	int r;
};

static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	int n = 0;

	if (ctx->pos >= ctx->len)
		return NULL;
	while (n < num - 1 && ctx->pos < ctx->len) {
		char ch = ctx->text[ctx->pos++];

		str[n++] = ch;
		if (ch == '\n')
			break;
	}
	str[n] = 0;
	if (str[n - 1] == '\n' || ctx->pos >= ctx->len)
		ctx->line++; /* also a last line without a newline */
	else if (!ctx->too_long) {
		/* The parser's line buffer is full before the end of the line. */
		ctx->too_long = true;
		if (!ctx->err_line)
			ctx->err_line = ctx->line + 1;
	}
	return str;
}

static int on_ini_line(void *user, const char *section, const char *key, const char *value
#if INI_HANDLER_LINENO
		       ,
		       int lineno
#endif
)
{
	struct load_ctx *ctx = user;
	int r;

	if (ctx->r < 0 || ctx->too_long)
		return 1; /* report only the first error */
	r = dt_config_set(ctx->c, section, key, value, ctx->msg, sizeof(ctx->msg));
	if (r < 0) {
		ctx->r = r;
		/* The handler runs right after the parser read the key's line. */
		ctx->err_line = ctx->line;
		return 0;
	}
	return 1;
}

int dt_config_load_string(struct dt_config *c, const char *name, const char *text, char *err,
			  size_t errlen)
{
	struct load_ctx ctx = { .c = c, .text = text, .len = strlen(text) };
	int line = ini_parse_stream(read_line, &ctx, on_ini_line, &ctx);

	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	if (ctx.too_long && (line <= 0 || ctx.err_line <= line)) {
		snprintf(err, errlen, "%s:%d: line longer than %d characters", name, ctx.err_line,
			 INI_MAX_LINE - 1);
		return -EINVAL;
	}
	if (ctx.r < 0 && (line <= 0 || ctx.err_line <= line)) {
		snprintf(err, errlen, "%s:%d: %s", name, ctx.err_line, ctx.msg);
		return ctx.r;
	}
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)",
			 name, line);
		return -EINVAL;
	}
	return 0;
}

/*
 * Whole file into memory; a config file is small, 1 MiB is plenty. A FIFO
 * or device is refused (it would block the loop), /dev/null is empty.
 */
static int read_text(const char *path, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = dt_file_read(path, DT_FILE_DEVNULL, 1u << 20, &buf, &len);

	if (r < 0)
		return r;
	if (strlen(buf) != len)
		return -EBADMSG; /* a NUL byte: not a text file */
	*ret = TAKE_PTR(buf);
	return 0;
}

int dt_config_load(struct dt_config *c, const char *path, char *err, size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	int r = read_text(path, &text);

	if (r < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
			 r == -EBADMSG ? "not a text file" : dt_file_strerror(r));
		return r;
	}
	return dt_config_load_string(c, path, text, err, errlen);
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
	if (c->libvirt_uri && (uint64_t)c->libvirt_calc_seconds * 1000000 >= c->libvirt_interval_us) {
		snprintf(err, errlen, "[libvirt] calc_seconds must be shorter than interval: a calc "
				      "is read back the round after it starts");
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

#ifndef DT_SYSCONFDIR
#define DT_SYSCONFDIR "/etc"
#endif

/* systemd's order for configuration: admin, runtime, local vendor, vendor. */
const char *const dt_config_dirs[] = {
	DT_SYSCONFDIR "/dirtytrackd",
	"/run/dirtytrackd",
	"/usr/local/lib/dirtytrackd",
	"/usr/lib/dirtytrackd",
	NULL,
};

#define DT_CONF_NAME "dirtytrackd.conf"
#define DT_MAX_DROPINS 256

void dt_config_files_done(struct dt_config_files *f)
{
	for (unsigned i = 0; i < f->n; i++)
		free(f->paths[i]);
	free(f->paths);
	*f = (struct dt_config_files){ 0 };
}

static int files_add(struct dt_config_files *f, char *path)
{
	char **np;

	if (!path)
		return -ENOMEM;
	np = realloc(f->paths, (f->n + 1) * sizeof(*np));
	if (!np) {
		free(path);
		return -ENOMEM;
	}
	f->paths = np;
	f->paths[f->n++] = path;
	return 0;
}

static bool is_dropin_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

static int cmp_basename(const void *a, const void *b)
{
	const char *pa = *(const char *const *)a, *pb = *(const char *const *)b;

	return strcmp(strrchr(pa, '/') + 1, strrchr(pb, '/') + 1);
}

/*
 * Add *.conf of dir unless a file of the same name is already listed (from
 * a directory of higher priority). Skips what is not a regular file, except
 * a link to /dev/null, which masks (the systemd convention).
 */
static int scan_dropins(struct dt_config_files *f, unsigned first, const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int r = 0;

	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((de = readdir(d))) {
		bool seen = false;
		char *path;

		if (!is_dropin_name(de->d_name))
			continue;
		for (unsigned i = first; i < f->n && !seen; i++)
			seen = strcmp(strrchr(f->paths[i], '/') + 1, de->d_name) == 0;
		if (seen)
			continue;
		if (f->n - first >= DT_MAX_DROPINS) {
			r = -E2BIG;
			break;
		}
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		r = files_add(f, path);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int dt_config_files_find(const char *main_file, const char *const *dirs,
			 struct dt_config_files *ret)
{
	struct dt_config_files f = { 0 };
	unsigned first;
	char *path;
	int r = 0;

	if (main_file) {
		r = files_add(&f, strdup(main_file));
		first = f.n;
		if (r >= 0 && asprintf(&path, "%s.d", main_file) >= 0) {
			r = scan_dropins(&f, first, path);
			free(path);
		} else if (r >= 0) {
			r = -ENOMEM;
		}
	} else {
		for (unsigned i = 0; dirs[i] && r >= 0; i++) {
			if (asprintf(&path, "%s/" DT_CONF_NAME, dirs[i]) < 0) {
				r = -ENOMEM;
				break;
			}
			if (access(path, F_OK) == 0) {
				r = files_add(&f, path);
				break;
			}
			free(path);
		}
		first = f.n;
		for (unsigned i = 0; dirs[i] && r >= 0; i++) {
			if (asprintf(&path, "%s/" DT_CONF_NAME ".d", dirs[i]) < 0) {
				r = -ENOMEM;
				break;
			}
			r = scan_dropins(&f, first, path);
			free(path);
		}
	}
	if (r < 0) {
		dt_config_files_done(&f);
		return r;
	}
	if (f.n > first)
		qsort(f.paths + first, f.n - first, sizeof(*f.paths), cmp_basename);
	*ret = f;
	return 0;
}

int dt_config_load_files(struct dt_config *c, const struct dt_config_files *f, char *err,
			 size_t errlen)
{
	for (unsigned i = 0; i < f->n; i++) {
		int r = dt_config_load(c, f->paths[i], err, errlen);

		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Every key, for reloads: what a reload compares, and whether a new value
 * can take effect without a restart. Keys read only when the daemon starts
 * (listening sockets, HTTP server options, the bus connection) need one.
 * A key missing here is taken over on reload but not reported.
 */
enum key_kind { KEY_STR, KEY_RAW, KEY_ARRAY };
struct key_info {
	const char *name;
	enum key_kind kind;
	size_t offset, size; /* of the field (KEY_ARRAY: the whole array) */
	size_t elem, count_offset; /* KEY_ARRAY: element size, its unsigned count */
	bool restart;
};
#define FIELD_SIZE(f) sizeof(((struct dt_config *)0)->f)
#define STR(n, f, rs) { n, KEY_STR, offsetof(struct dt_config, f), FIELD_SIZE(f), 0, 0, rs }
#define RAW(n, f, rs) { n, KEY_RAW, offsetof(struct dt_config, f), FIELD_SIZE(f), 0, 0, rs }
#define ARR(n, f, cnt, rs)                                                                         \
	{ n, KEY_ARRAY, offsetof(struct dt_config, f), FIELD_SIZE(f), FIELD_SIZE(f[0]),            \
	  offsetof(struct dt_config, cnt), rs }
static const struct key_info keys[] = {
	STR("daemon.runtime_dir", runtime_dir, true),
	STR("daemon.state_dir", state_dir, true),
	RAW("daemon.snapshot_epochs", snapshot_epochs, false),
	RAW("daemon.state_max_bytes_per_vm", state_max_bytes_per_vm, false),
	RAW("daemon.epoch", epoch_us, false),
	RAW("daemon.retention", retention_us, false),
	RAW("stats.history", history_us, false),
	RAW("stats.recent_epochs", recent_epochs, false),
	RAW("stats.coarse_epochs", coarse_epochs, false),
	STR("attach.socket", attach_socket, true),
	ARR("attach.allowed_users", allowed_uids, n_allowed_uids, false),
	ARR("attach.allowed_groups", allowed_gids, n_allowed_gids, false),
	ARR("attach.takeover_users", takeover_uids, n_takeover_uids, false),
	RAW("attach.max_vms", max_vms, false),
	RAW("attach.max_vms_per_owner", max_vms_per_owner, false),
	RAW("attach.max_vcpus", max_vcpus, false),
	RAW("attach.max_slots", max_slots, false),
	RAW("attach.max_ring_entries", max_ring_entries, false),
	RAW("attach.max_memory", max_memory, false),
	RAW("attach.max_handshakes", max_handshakes, false),
	RAW("attach.handshake_timeout", handshake_timeout_us, false),
	STR("api.socket", api_socket, true),
	STR("api.tcp", api_tcp, true),
	RAW("api.max_connections", api_max_connections, true),
	RAW("api.max_connections_per_client", api_max_client_connections, true),
	RAW("api.timeout", api_timeout_us, true),
	RAW("api.socket_mode", api_socket_mode, true),
	STR("api.socket_group", api_socket_group, true),
	RAW("api.max_wait", api_max_wait_us, false),
	RAW("api.memory_limit", api_memory_limit, true),
	STR("api.remote", api_remote, true),
	STR("api.tls_certificate", api_tls_cert, true),
	STR("api.tls_key", api_tls_key, true),
	STR("api.token_file", api_token_file, true),
	ARR("metrics.wss_windows", metrics_windows, n_metrics_windows, false),
	ARR("metrics.reference_links", ref_links, n_ref_links, false),
	STR("dbus.bus", dbus, true),
	RAW("dbus.properties_interval", dbus_interval_us, false),
	STR("libvirt.uri", libvirt_uri, true),
	RAW("libvirt.interval", libvirt_interval_us, true),
	RAW("libvirt.calc_seconds", libvirt_calc_seconds, true),
};
#undef STR
#undef RAW
#undef ARR
#undef FIELD_SIZE

static bool key_differs(const struct key_info *k, const struct dt_config *a,
			const struct dt_config *b)
{
	const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;

	switch (k->kind) {
	case KEY_STR: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return (!sa != !sb) || (sa && strcmp(sa, sb) != 0);
	}
	case KEY_RAW:
		return memcmp(pa, pb, k->size) != 0;
	case KEY_ARRAY: {
		unsigned na = *(const unsigned *)((const char *)a + k->count_offset);
		unsigned nb = *(const unsigned *)((const char *)b + k->count_offset);
		return na != nb || memcmp(pa, pb, na * k->elem) != 0;
	}
	}
	return false;
}

static void swap_bytes(void *a, void *b, size_t n)
{
	unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		unsigned char t = x[i];
		x[i] = y[i];
		y[i] = t;
	}
}

unsigned dt_config_reload(struct dt_config *cur, struct dt_config *next,
			  void (*restart_needed)(const char *key, void *userdata), void *userdata)
{
	struct dt_config tmp;
	unsigned changed = 0;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key_info *k = &keys[i];

		if (!key_differs(k, cur, next))
			continue;
		changed++;
		if (!k->restart)
			continue;
		if (restart_needed)
			restart_needed(k->name, userdata);
		/* Keep the running value: put it into next, which becomes cur. */
		swap_bytes((char *)cur + k->offset, (char *)next + k->offset, k->size);
		if (k->kind == KEY_ARRAY)
			swap_bytes((char *)cur + k->count_offset, (char *)next + k->count_offset,
				   sizeof(unsigned));
	}
	tmp = *cur;
	*cur = *next;
	*next = tmp;
	return changed;
}
