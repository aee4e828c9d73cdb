/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dirtytrackd: read the configuration, then make the parts and wire them:
 * the manager (VM model and registry, daemon/) and its sockets, the front
 * ends (REST and D-Bus, api/) observing the registry, then the manager's
 * restore and collectors; run the loop. Only this file knows both sides:
 * daemon/ never includes an api/ header (tests/integration/seams.sh).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "dbus.h"
#include "dt_util.h"
#include "log.h"
#include "manager.h"
#include "service.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dirtytrackd [--config FILE] [--runtime-dir DIR] [--state-dir DIR|off]\n"
		"                  [--epoch DURATION]\n"
		"                  [--listen-tcp HOST:PORT|off] [--dbus system|session|ADDRESS|off]\n"
		"                  [--test-config] [--cat-config] [--dump-config-keys] [--verbose]\n"
		"Collects dirty-page telemetry from attached KVM VMMs and serves it.\n\n"
		"  --config FILE   read FILE and its drop-ins FILE.d/*.conf instead of\n"
		"                  dirtytrackd.conf{,.d/*.conf} in /etc/dirtytrackd,\n"
		"                  /run/dirtytrackd, /usr/local/lib/dirtytrackd, /usr/lib/dirtytrackd\n"
		"  --test-config   check the configuration and exit (0: valid)\n"
		"  --cat-config    print the files read, in order, then every key's value, and exit\n"
		"  --dump-config-keys  print the table of keys (tab-separated: key, type,\n"
		"                  default, min, max, reload|restart, doc) and exit\n"
		"Options other than these override the files, also across reloads (SIGHUP).\n");
}

/*
 * Start in dependency order (the front ends observe the registry before
 * the restore fills it), run the loop, and drop the front ends before the
 * manager frees the VMs they show.
 */
static int run(struct dt_service *s)
{
	struct dt_manager *m = s->m;
	struct dt_api *api = NULL;
	struct dt_bus *bus = NULL;
	int api_fd = -1, r;

	r = dt_service_start(s);
	if (r >= 0)
		r = dt_manager_listen(m, &api_fd);
	if (r >= 0)
		r = dt_api_new(m, api_fd, &api); /* takes api_fd */
	if (r >= 0)
		r = dt_bus_new(m, &bus);
	if (r >= 0)
		r = dt_manager_start(m);
	if (r >= 0) {
		dt_service_ready(s);
		r = sd_event_loop(m->event);
	}
	dt_libvirt_stop(m);
	bus = dt_bus_free(bus);
	api = dt_api_free(api);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "epoch", required_argument, NULL, 'e' },
		{ "listen-tcp", required_argument, NULL, 't' },
		{ "dbus", required_argument, NULL, 'd' },
		{ "test-config", no_argument, NULL, 'T' },
		{ "cat-config", no_argument, NULL, 'C' },
		{ "dump-config-keys", no_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct dt_service s = { 0 };
	bool test_config = false, cat_config = false;
	struct dt_manager *m = NULL;
	char err[512];
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "c:r:s:e:t:d:TCKvh", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			s.config_file = optarg;
			break;
		case 'r':
			r = dt_service_override(&s, "daemon", "runtime_dir", optarg);
			break;
		case 's':
			r = dt_service_override(&s, "daemon", "state_dir", optarg);
			break;
		case 'e':
			r = dt_service_override(&s, "daemon", "epoch", optarg);
			break;
		case 't':
			r = dt_service_override(&s, "api", "tcp", optarg);
			break;
		case 'd':
			r = dt_service_override(&s, "dbus", "bus", optarg);
			break;
		case 'T':
			test_config = true;
			break;
		case 'C':
			cat_config = true;
			break;
		case 'K':
			return dt_config_dump_keys(stdout) < 0 ? 1 : 0;
		case 'v':
			dt_log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (r < 0) {
			fprintf(stderr, "dirtytrackd: too many options\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dirtytrackd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (cat_config)
		return dt_service_cat_config(&s, stdout) < 0 ? 1 : 0;

	r = dt_manager_new(&m);
	if (r < 0) {
		fprintf(stderr, "dirtytrackd: cannot start: %s\n", strerror(-r));
		return 1;
	}
	s.m = m;
	dt_config_done(&m->config);
	r = dt_service_load_config(&s, &m->config, err, sizeof(err));
	if (r < 0) {
		/* The same words for --test-config, a start and (logged) a reload. */
		fprintf(stderr, "dirtytrackd: configuration: %s\n", err);
		dt_manager_free(m);
		return 1;
	}
	if (test_config) {
		printf("configuration is valid\n");
		dt_manager_free(m);
		return 0;
	}

	r = run(&s);
	dt_manager_free(m);
	return r < 0 ? 1 : 0;
}
