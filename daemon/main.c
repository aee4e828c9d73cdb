/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackd: parse configuration, set up the manager, run the loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "dt_util.h"
#include "log.h"
#include "manager.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: dirtytrackd [--config FILE] [--runtime-dir DIR] [--epoch DURATION]\n"
		   "                  [--listen-tcp HOST:PORT|off] [--dbus system|session|ADDRESS|off]\n"
		   "                  [--test-config] [--verbose]\n"
		   "Collects dirty-page telemetry from attached KVM VMMs and serves it.\n");
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct dt_manager *m = userdata;

	dt_log(LOG_INFO, "signal %d: stopping", si->ssi_signo);
	sd_notify(0, "STOPPING=1");
	dt_manager_stop(m);
	return sd_event_exit(m->event, 0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "epoch", required_argument, NULL, 'e' },
		{ "listen-tcp", required_argument, NULL, 't' },
		{ "dbus", required_argument, NULL, 'd' },
		{ "test-config", no_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *config_file = NULL;
	struct { const char *section, *key, *value; } overrides[8];
	unsigned n_overrides = 0;
	bool test_config = false;
	struct dt_manager *m = NULL;
	char err[512];
	sigset_t mask;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:r:e:t:d:Tvh", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			config_file = optarg;
			break;
		case 'r':
			overrides[n_overrides++] = (typeof(overrides[0])){ "daemon", "runtime_dir", optarg };
			break;
		case 'e':
			overrides[n_overrides++] = (typeof(overrides[0])){ "daemon", "epoch", optarg };
			break;
		case 't':
			overrides[n_overrides++] = (typeof(overrides[0])){ "api", "tcp", optarg };
			break;
		case 'd':
			overrides[n_overrides++] = (typeof(overrides[0])){ "dbus", "bus", optarg };
			break;
		case 'T':
			test_config = true;
			break;
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
		if (n_overrides == ARRAY_SIZE(overrides)) {
			fprintf(stderr, "dirtytrackd: too many options\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dirtytrackd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	r = dt_manager_new(&m);
	if (r < 0) {
		fprintf(stderr, "dirtytrackd: cannot start: %s\n", strerror(-r));
		return 1;
	}
	if (config_file) {
		r = dt_config_load(&m->config, config_file, err, sizeof(err));
		if (r < 0)
			goto config_error;
	}
	/* The command line wins over the file. */
	for (unsigned i = 0; i < n_overrides; i++) {
		r = dt_config_set(&m->config, overrides[i].section, overrides[i].key,
				  overrides[i].value, err, sizeof(err));
		if (r < 0)
			goto config_error;
	}
	r = dt_config_finish(&m->config, err, sizeof(err));
	if (r < 0)
		goto config_error;
	if (test_config) {
		printf("configuration is valid\n");
		dt_manager_free(m);
		return 0;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);

	r = dt_manager_start(m);
	if (r < 0) {
		dt_manager_free(m);
		return 1;
	}
	sd_notify(0, "READY=1\nSTATUS=0 VMs attached");
	r = sd_event_loop(m->event);
	dt_manager_free(m);
	return r < 0 ? 1 : 0;

config_error:
	fprintf(stderr, "dirtytrackd: configuration: %s\n", err);
	dt_manager_free(m);
	return 1;
}
