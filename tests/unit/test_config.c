/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The configuration: INI parsing with the line of the key in error, the
 * search path with drop-ins merged by name, and what a reload takes over.
 */
#include "config.h"
#include "dt_test.h"

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
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", root);
	}
	TEST_EXIT();
}
