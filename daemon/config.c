/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "dt_file.h"
#include "dt_util.h"

/* The group of the shipped attach socket (units/dirtytrackd.socket, sysusers). */
#define DT_DEFAULT_GROUP "dirtytrack"

void dt_config_init(struct dt_config *c)
{
	char err[256];
	struct group *g;

	*c = (struct dt_config){ 0 };
	/* The defaults are the table's, parsed as from a file (tests/unit/test_config checks each). */
	for (size_t i = 0; i < dt_config_n_keys; i++)
		if (dt_config_keys[i].def)
			(void)dt_config_key_parse(&dt_config_keys[i], c, dt_config_keys[i].def, err,
						  sizeof(err));
	/* Members of the socket's group may attach, as its mode says, if it exists. */
	g = getgrnam(DT_DEFAULT_GROUP);
	if (g) {
		c->allowed_gids[0] = g->gr_gid;
		c->n_allowed_gids = 1;
	}
}

void dt_config_done(struct dt_config *c)
{
	for (size_t i = 0; i < dt_config_n_keys; i++)
		dt_config_key_free(&dt_config_keys[i], c);
	*c = (struct dt_config){ 0 };
}

int dt_config_set(struct dt_config *c, const char *section, const char *key, const char *value,
		  char *err, size_t errlen)
{
	const struct dt_config_key *k = dt_config_key_find(section, key);
	char what[192];
	int r;

	if (!k) {
		/* A key put in the wrong section is a common slip: say where it belongs. */
		for (size_t i = 0; i < dt_config_n_keys; i++)
			if (strcmp(dt_config_keys[i].name, key) == 0) {
				snprintf(err, errlen, "[%s] %s = %s: unknown key (it belongs in [%s])",
					 section, key, value, dt_config_keys[i].section);
				return -ENOENT;
			}
		snprintf(err, errlen, "[%s] %s = %s: unknown key", section, key, value);
		return -ENOENT;
	}
	/*
	 * "key =; x" gives the value "; x" (a comment needs a blank before it),
	 * but written back as "key = ; x" it reads as empty: no value starts
	 * with a comment character, so every value reads back as itself.
	 */
	if (*value == ';' || *value == '#') {
		snprintf(err, errlen, "[%s] %s = %s: a value cannot start with '%c'", section, key,
			 value, *value);
		return -EINVAL;
	}
	r = dt_config_key_parse(k, c, value, what, sizeof(what));
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
 *
 * Leading blanks are dropped before the parser sees a line: libinih reads an
 * indented line after a key as a continuation of that key's value, which
 * replaces the value (our handler is called again), does not strip inline
 * comments, and so reads "  epoch = 5s" as part of the key above it.
 * Without them, an indented key is a key, and a bare continuation line is a
 * syntax error with its line number.
 */
struct load_ctx {
	struct dt_config *c;
	const char *text;
	size_t pos, len;
	int line; /* lines fully read so far */
	int err_line; /* first failing key, or too-long line */
	bool too_long;
	bool mid_line; /* the last chunk read did not end its line */
	char msg[320];
	int r;
};

static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	int n = 0;

	if (!ctx->mid_line)
		while (ctx->pos < ctx->len &&
		       (ctx->text[ctx->pos] == ' ' || ctx->text[ctx->pos] == '\t'))
			ctx->pos++;
	if (ctx->pos >= ctx->len)
		return NULL;
	while (n < num - 1 && ctx->pos < ctx->len) {
		char ch = ctx->text[ctx->pos++];

		str[n++] = ch;
		if (ch == '\n')
			break;
	}
	str[n] = 0;
	ctx->mid_line = str[n - 1] != '\n';
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

static void swap_bytes(void *a, void *b, size_t n)
{
	unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		unsigned char t = x[i];
		x[i] = y[i];
		y[i] = t;
	}
}

/* k's value in c, as written in a file, for the log. NULL: out of memory. */
static char *format_value(const struct dt_config_key *k, const struct dt_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (dt_config_key_format(k, c, f) < 0 || fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

unsigned dt_config_reload(struct dt_config *cur, struct dt_config *next,
			  dt_config_changed_t changed, void *userdata)
{
	struct dt_config tmp;
	unsigned n_changed = 0;

	for (size_t i = 0; i < dt_config_n_keys; i++) {
		const struct dt_config_key *k = &dt_config_keys[i];

		if (!dt_config_key_differs(k, cur, next))
			continue;
		n_changed++;
		if (changed) {
			char name[64];
			_cleanup_free_ char *value = format_value(k, next);

			snprintf(name, sizeof(name), "%s.%s", k->section, k->name);
			changed(name, value ? value : "?", k->restart, userdata);
		}
		if (!k->restart)
			continue;
		/* Keep the running value: put it into next, which becomes cur. */
		swap_bytes((char *)cur + k->offset, (char *)next + k->offset, k->size);
		if (k->count_offset)
			swap_bytes((char *)cur + k->count_offset, (char *)next + k->count_offset,
				   sizeof(unsigned));
	}
	tmp = *cur;
	*cur = *next;
	*next = tmp;
	return n_changed;
}

int dt_config_write(const struct dt_config *c, FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < dt_config_n_keys; i++) {
		const struct dt_config_key *k = &dt_config_keys[i];
		_cleanup_free_ char *value = format_value(k, c);

		if (!section || strcmp(section, k->section) != 0)
			fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
		section = k->section;
		if (!value)
			return -ENOMEM;
		fprintf(out, "%s =%s%s\n", k->name, *value ? " " : "", value);
	}
	return ferror(out) ? -EIO : 0;
}
