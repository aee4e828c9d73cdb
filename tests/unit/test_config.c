/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The configuration: INI parsing with the line of the key in error, the
 * search path with drop-ins merged by name, and what a reload takes over.
 */
#include "config.h"
#include "config_keys.h"
#include "dt_test.h"
#include "dt_util.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];

static void write_file(const char *rel, const char *text)
{
	char path[PATH_MAX * 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		mkdir(path, 0755);
		*p = '/';
	}
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static const char *base(const char *path)
{
	return path + strlen(root) + 1;
}

static void test_parse_errors(void)
{
	struct dt_config c;
	char err[512];

	dt_config_init(&c);
	CHECK_EQ(dt_config_load_string(&c, "a.conf", "[daemon]\nepoch = 250ms\n", err,
				       sizeof(err)),
		 0);
	CHECK_EQ(c.epoch_us, 250000);
	/* The key's own line, also when the last line has no newline. */
	CHECK(dt_config_load_string(&c, "a.conf", "[daemon]\n\n# c\nepoch = 5ms", err,
				    sizeof(err)) < 0);
	CHECK(strstr(err, "a.conf:4: [daemon] epoch = 5ms:") == err);
	CHECK(dt_config_load_string(&c, "b.conf", "[attach]\nmax_vms = 2\nnope = 1\n", err,
				    sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "b.conf:3: [attach] nope = 1: unknown key"));
	CHECK(dt_config_load_string(&c, "b.conf", "[api]\nmax_vms = 2\n", err, sizeof(err)) ==
	      -ENOENT);
	CHECK(strstr(err, "b.conf:2: [api] max_vms = 2: unknown key (it belongs in [attach])"));
	/* A syntax error before a bad key is the one reported. */
	CHECK(dt_config_load_string(&c, "c.conf", "[daemon\nepoch = 5ms\n", err, sizeof(err)) <
	      0);
	CHECK(strstr(err, "c.conf:1: syntax error"));
	CHECK(dt_config_load_string(&c, "d.conf", "[api]\nmax_wait = 1s\n[daemon]\nepoch = x\n",
				    err, sizeof(err)) < 0);
	CHECK(strstr(err, "d.conf:4: [daemon] epoch = x"));
	{
		char text[400];
		snprintf(text, sizeof(text), "[daemon]\nretention = 1s\nepoch = 1s%*s\n", 250, "");
		CHECK(dt_config_load_string(&c, "e.conf", text, err, sizeof(err)) < 0);
		CHECK(strstr(err, "e.conf:3: line longer than"));
	}
	/*
	 * An indented line is a line of its own: libinih would read it as a
	 * continuation that replaces the key above it (epoch = "max_wait =
	 * 2s"), and keeps " ; comment" in the value, which then reads back
	 * differently (fuzz_config found it).
	 */
	CHECK_EQ(dt_config_load_string(&c, "f.conf", "[api]\nmax_wait = 1s\n  timeout = 7s\n",
				       err, sizeof(err)),
		 0);
	CHECK_EQ(c.api_max_wait_us, 1000000);
	CHECK_EQ(c.api_timeout_us, 7000000);
	CHECK(dt_config_load_string(&c, "g.conf", "[api]\nmax_wait = 1s\n\t2s ; comment\n", err,
				    sizeof(err)) < 0);
	CHECK(strstr(err, "g.conf:3: syntax error"));
	CHECK(dt_config_load_string(&c, "h.conf", "[dbus]\nbus =; a\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, "h.conf:2: [dbus] bus = ; a: a value cannot start with ';'"));
	CHECK(dt_config_load(&c, "/nonexistent/x.conf", err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "/nonexistent/x.conf: cannot read"));
	dt_config_done(&c);
}

static void test_search_path(void)
{
	char etc[PATH_MAX + 8], run[PATH_MAX + 8], usr[PATH_MAX + 8];
	const char *dirs[] = { etc, run, usr, NULL };
	struct dt_config_files f;
	struct dt_config c;
	char err[512];

	snprintf(etc, sizeof(etc), "%s/etc", root);
	snprintf(run, sizeof(run), "%s/run", root);
	snprintf(usr, sizeof(usr), "%s/usr", root);
	/* Nothing at all: defaults, no files. */
	CHECK_EQ(dt_config_files_find(NULL, dirs, &f), 0);
	CHECK_EQ(f.n, 0);
	dt_config_files_done(&f);

	write_file("usr/dirtytrackd.conf", "[daemon]\nepoch = 2s\nretention = 1min\n");
	write_file("run/dirtytrackd.conf", "[daemon]\nepoch = 3s\n");
	write_file("usr/dirtytrackd.conf.d/10-vendor.conf", "[attach]\nmax_vms = 10\n");
	write_file("usr/dirtytrackd.conf.d/30-x.conf", "[attach]\nmax_vms = 30\n");
	write_file("run/dirtytrackd.conf.d/30-x.conf", "[attach]\nmax_vms = 31\n");
	write_file("etc/dirtytrackd.conf.d/30-x.conf", "[attach]\nmax_vms = 32\n");
	write_file("etc/dirtytrackd.conf.d/20-etc.conf", "[attach]\nmax_vcpus = 20\n");
	write_file("etc/dirtytrackd.conf.d/ignored.txt", "garbage\n");
	write_file("run/dirtytrackd.conf.d/.hidden.conf", "garbage\n");

	CHECK_EQ(dt_config_files_find(NULL, dirs, &f), 0);
	CHECK_EQ(f.n, 4);
	if (f.n == 4) {
		/* The first main file found (run before usr), then drop-ins by name. */
		CHECK(strcmp(base(f.paths[0]), "run/dirtytrackd.conf") == 0);
		CHECK(strcmp(base(f.paths[1]), "usr/dirtytrackd.conf.d/10-vendor.conf") == 0);
		CHECK(strcmp(base(f.paths[2]), "etc/dirtytrackd.conf.d/20-etc.conf") == 0);
		CHECK(strcmp(base(f.paths[3]), "etc/dirtytrackd.conf.d/30-x.conf") == 0);
	}
	dt_config_init(&c);
	CHECK_EQ(dt_config_load_files(&c, &f, err, sizeof(err)), 0);
	CHECK_EQ(c.epoch_us, 3000000);
	CHECK_EQ(c.retention_us, 600000000); /* only the main file found is read */
	CHECK_EQ(c.max_vms, 32);
	CHECK_EQ(c.max_vcpus, 20);
	dt_config_done(&c);
	dt_config_files_done(&f);

	/* --config FILE: FILE and FILE.d/ only. */
	write_file("own/my.conf", "[daemon]\nepoch = 4s\n");
	write_file("own/my.conf.d/50-more.conf", "[daemon]\nepoch = 5s\n");
	{
		char main_file[PATH_MAX + 16];

		snprintf(main_file, sizeof(main_file), "%s/own/my.conf", root);
		CHECK_EQ(dt_config_files_find(main_file, dirs, &f), 0);
		CHECK_EQ(f.n, 2);
		dt_config_init(&c);
		CHECK_EQ(dt_config_load_files(&c, &f, err, sizeof(err)), 0);
		CHECK_EQ(c.epoch_us, 5000000);
		CHECK_EQ(c.max_vms, 64);
		dt_config_done(&c);
		dt_config_files_done(&f);
	}
}

/* The defaults are the ones the daemon always had, now from the table. */
static void test_defaults(void)
{
	struct dt_config c;
	char err[512];

	dt_config_init(&c);
	CHECK_EQ(dt_config_finish(&c, err, sizeof(err)), 0);
	CHECK(strcmp(c.runtime_dir, "/run/dirtytrackd") == 0);
	CHECK(strcmp(c.state_dir, "/var/lib/dirtytrackd") == 0);
	CHECK(strcmp(c.attach_socket, "/run/dirtytrackd/attach.sock") == 0);
	CHECK(strcmp(c.api_tcp, "127.0.0.1:9111") == 0);
	CHECK(strcmp(c.dbus, "system") == 0);
	CHECK(!c.api_remote && !c.libvirt_uri && !c.api_socket_group && !c.api_tls_cert);
	CHECK_EQ(c.epoch_us, 1000000);
	CHECK_EQ(c.retention_us, 600ull * 1000000);
	CHECK_EQ(c.history_us, 3600ull * 1000000);
	CHECK_EQ(c.max_memory, 16ull << 40);
	CHECK_EQ(c.api_socket_mode, 0660);
	CHECK_EQ(c.api_memory_limit, 64 * 1024);
	CHECK_EQ(c.max_ring_entries, 65536);
	CHECK_EQ(c.libvirt_calc_seconds, 1);
	CHECK_EQ(c.n_metrics_windows, 4);
	CHECK_EQ(c.metrics_windows[3], 300);
	CHECK_EQ(c.n_ref_links, 1);
	CHECK_EQ(c.ref_links[0].bandwidth, 1250000000);
	CHECK_EQ(c.ref_links[0].downtime_us, 300000);
	/* The constants these keys replace. */
	CHECK_EQ(c.state_queue, 4096);
	CHECK_EQ(c.state_queue_size, 256ull << 20);
	CHECK_EQ(c.state_drain_us, 30ull * 1000000);
	CHECK_EQ(c.api_max_pending_plans, 16);
	CHECK_EQ(c.api_pages_limit, 10000);
	dt_config_done(&c);
}

static bool is_number(enum dt_key_type t)
{
	return t == DT_KEY_U32 || t == DT_KEY_POW2 || t == DT_KEY_DURATION ||
	       t == DT_KEY_SECONDS || t == DT_KEY_SIZE;
}

/* A bound of k in its base unit (microseconds, bytes, or plain) as text, moved by delta. */
static void bound_plus(const struct dt_config_key *k, const char *bound, int delta, char *out,
		       size_t len)
{
	uint64_t v = 0;

	if (k->type == DT_KEY_DURATION || k->type == DT_KEY_SECONDS)
		CHECK_EQ(dt_parse_duration(bound, &v), 0);
	else if (k->type == DT_KEY_SIZE)
		CHECK_EQ(dt_parse_size(bound, &v), 0);
	else
		CHECK_EQ(dt_parse_u64(bound, 0, UINT64_MAX, &v), 0);
	v += (uint64_t)(int64_t)delta;
	snprintf(out, len, "%" PRIu64 "%s", v,
		 k->type == DT_KEY_DURATION || k->type == DT_KEY_SECONDS ? "us" : "");
}

/*
 * Every row of the table: a unique name, a default that parses, its bounds
 * accepted and one past them refused, and every refusal names the section,
 * key, value and the range.
 */
static void test_key_table(void)
{
	CHECK(dt_config_n_keys >= 40);
	for (size_t i = 0; i < dt_config_n_keys; i++) {
		const struct dt_config_key *k = &dt_config_keys[i];
		struct dt_config c;
		char err[512], v[64], want[128];

		CHECK(dt_config_key_find(k->section, k->name) == k);
		CHECK(k->doc && *k->doc);
		CHECK(strcmp(dt_config_key_type_name(k->type), "?") != 0);
		CHECK(!k->min == !k->max);
		dt_config_init(&c);
		if (k->def && dt_config_set(&c, k->section, k->name, k->def, err, sizeof(err)) < 0) {
			fprintf(stderr, "default of [%s] %s: %s\n", k->section, k->name, err);
			CHECK(!"the default parses");
		}
		if (k->min) {
			snprintf(want, sizeof(want), "from %s to %s", k->min, k->max);
			CHECK_EQ(dt_config_set(&c, k->section, k->name, k->min, err, sizeof(err)), 0);
			CHECK_EQ(dt_config_set(&c, k->section, k->name, k->max, err, sizeof(err)), 0);
			CHECK(dt_config_set(&c, k->section, k->name, "x!", err, sizeof(err)) < 0);
			snprintf(v, sizeof(v), "[%s] %s = x!: ", k->section, k->name);
			CHECK(strstr(err, v) == err);
			if (!strstr(err, want))
				fprintf(stderr, "[%s] %s: \"%s\" lacks \"%s\"\n", k->section, k->name, err,
					want);
			CHECK(strstr(err, want));
		}
		if (k->min && is_number(k->type)) {
			bound_plus(k, k->max, 1, v, sizeof(v));
			CHECK(dt_config_set(&c, k->section, k->name, v, err, sizeof(err)) < 0);
			CHECK(strstr(err, want));
			if (strcmp(k->min, "0") != 0) {
				bound_plus(k, k->min, -1, v, sizeof(v));
				CHECK(dt_config_set(&c, k->section, k->name, v, err, sizeof(err)) < 0);
			}
		}
		/* "off" is a value only where the type says so (it once fell through to
		 * every number and stored 8 bytes into 4-byte fields) */
		if (is_number(k->type) &&
		    dt_config_set(&c, k->section, k->name, "off", err, sizeof(err)) >= 0) {
			fprintf(stderr, "[%s] %s accepts off\n", k->section, k->name);
			CHECK(!"a number is not off");
		}
		if (k->type == DT_KEY_SIZE_OFF) {
			CHECK_EQ(dt_config_set(&c, k->section, k->name, "off", err, sizeof(err)), 0);
			CHECK(dt_config_set(&c, k->section, k->name, "of", err, sizeof(err)) < 0);
		}
		dt_config_done(&c);
	}
}

static void write_config(const struct dt_config *c, char **ret)
{
	size_t len;
	FILE *f = open_memstream(ret, &len);

	CHECK(f != NULL);
	if (!f)
		exit(1);
	CHECK_EQ(dt_config_write(c, f), 0);
	fclose(f);
}

/* What dt_config_write (--cat-config) writes reads back as the same configuration. */
static void test_write_round_trip(void)
{
	struct dt_config a, b;
	char err[512], *text = NULL, *again = NULL;

	dt_config_init(&a);
	CHECK_EQ(dt_config_load_string(&a, "w.conf",
				       "[daemon]\nepoch = 1.5s\nstate_dir =\nretention = 0\n"
				       "state_queue_size = 1536K\n"
				       "[attach]\nallowed_users = 0, 1000\nallowed_groups =\n"
				       "max_memory = 3G\n"
				       "[api]\ntcp = off\nsocket_mode = 0600\nmax_wait = 90s\n"
				       "[metrics]\nwss_windows = 2s 120s\nreference_links = off\n"
				       "[libvirt]\nuri = qemu:///system\ncalc_seconds = 2s\n",
				       err, sizeof(err)),
		 0);
	CHECK_EQ(dt_config_finish(&a, err, sizeof(err)), 0);
	write_config(&a, &text);
	CHECK(strstr(text, "\nepoch = 1500ms\n"));
	CHECK(strstr(text, "\nmax_wait = 90s\n"));
	CHECK(strstr(text, "\nstate_queue_size = 1536K\n"));
	CHECK(strstr(text, "\nsocket_mode = 0600\n"));
	CHECK(strstr(text, "\nreference_links = off\n"));
	CHECK(strstr(text, "\ntcp = off\n"));
	dt_config_init(&b);
	CHECK_EQ(dt_config_load_string(&b, "again.conf", text, err, sizeof(err)), 0);
	CHECK_EQ(dt_config_finish(&b, err, sizeof(err)), 0);
	for (size_t i = 0; i < dt_config_n_keys; i++)
		if (dt_config_key_differs(&dt_config_keys[i], &a, &b)) {
			fprintf(stderr, "[%s] %s differs after a write and a read\n",
				dt_config_keys[i].section, dt_config_keys[i].name);
			CHECK(!"the same configuration");
		}
	write_config(&b, &again);
	CHECK(strcmp(text, again) == 0);
	free(text);
	free(again);
	dt_config_done(&a);
	dt_config_done(&b);
}

static unsigned n_restart;
static char restart_keys[256];

static void on_changed(const char *key, const char *value, bool restart, void *userdata)
{
	if (!restart)
		return;
	n_restart++;
	strncat(restart_keys, key, sizeof(restart_keys) - strlen(restart_keys) - 2);
	strcat(restart_keys, " ");
}

static void test_reload(void)
{
	struct dt_config cur, next;
	char err[512];

	dt_config_init(&cur);
	CHECK_EQ(dt_config_finish(&cur, err, sizeof(err)), 0);
	dt_config_init(&next);
	CHECK_EQ(dt_config_load_string(&next, "n.conf",
				       "[daemon]\nepoch = 200ms\nruntime_dir = /run/other\n"
				       "[attach]\nmax_vms = 3\nallowed_users = 1000, 1001\n"
				       "[api]\ntcp = off\nmax_wait = 5s\n",
				       err, sizeof(err)),
		 0);
	CHECK_EQ(dt_config_finish(&next, err, sizeof(err)), 0);
	/* epoch, max_vms, allowed_users, max_wait: applied; runtime_dir (and the
	 * socket paths made from it) and tcp: kept. */
	CHECK_EQ(dt_config_reload(&cur, &next, on_changed, NULL), 8);
	CHECK_EQ(n_restart, 4);
	CHECK(strstr(restart_keys, "daemon.runtime_dir "));
	CHECK(strstr(restart_keys, "attach.socket "));
	CHECK(strstr(restart_keys, "api.socket "));
	CHECK(strstr(restart_keys, "api.tcp "));
	CHECK_EQ(cur.epoch_us, 200000);
	CHECK_EQ(cur.max_vms, 3);
	CHECK_EQ(cur.n_allowed_uids, 2);
	CHECK_EQ(cur.api_max_wait_us, 5000000);
	CHECK(strcmp(cur.runtime_dir, "/run/dirtytrackd") == 0);
	CHECK(strcmp(cur.attach_socket, "/run/dirtytrackd/attach.sock") == 0);
	CHECK(cur.api_tcp && strcmp(cur.api_tcp, "127.0.0.1:9111") == 0);
	dt_config_done(&next);
	dt_config_done(&cur);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/dt-test-config.XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_parse_errors);
	RUN(test_search_path);
	RUN(test_reload);
	RUN(test_defaults);
	RUN(test_key_table);
	RUN(test_write_round_trip);
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", root);
	}
	TEST_EXIT();
}
