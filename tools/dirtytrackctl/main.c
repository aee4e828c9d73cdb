/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackctl: a table of subcommands, one file each. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const struct {
	const char *name;
	int (*fn)(const struct ctl *ctl, int argc, char **argv);
	const char *help;
} commands[] = {
	{ "list", ctl_list, "list VMs with their state and dirty rate" },
	{ "show", ctl_show, "show VM: identity, working-set curve, per-vCPU figures" },
	{ "wss", ctl_wss, "wss VM: the working-set curve" },
	{ "watch", ctl_watch, "watch [--count N] [--wait S] VM: live rates and curve, per harvest" },
	{ "plan", ctl_plan,
	  "plan VM --bandwidth B --downtime D [--target T]: will pre-copy migration converge" },
	{ "migrate-check", ctl_migrate_check,
	  "migrate-check DOMAIN --bandwidth B --downtime D: one line, exit 0 or 6" },
	{ "health", ctl_health, "is the daemon serving" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: dirtytrackctl [--socket PATH | --url URL [--token-file FILE] "
		   "[--cacert FILE]] [--json]\n                     COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nVM is an id, a uuid or a name. Default socket: /run/dirtytrackd/api.sock\n"
		   "--url http://127.0.0.1:9111 or https://HOST:PORT (remote listener: with\n"
		   "--token-file holding its bearer token, --cacert for its certificate).\n"
		   "Exit codes: 0 ok, 1 daemon error, 2 usage, 3 daemon unreachable, 4 no such VM,\n"
		   "5 token refused, 6 plan: pre-copy would not converge (or not within\n"
		   "--target)\n");
}

static int read_token(const char *path, char **ret)
{
	char buf[512];
	FILE *f = fopen(path, "re");

	if (!f || !fgets(buf, sizeof(buf), f)) {
		fprintf(stderr, "dirtytrackctl: cannot read a token from %s\n", path);
		if (f)
			fclose(f);
		return CTL_EXIT_USAGE;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = 0;
	free(*ret);
	*ret = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *ret ? 0 : CTL_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "url", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ "token-file", required_argument, NULL, 'k' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ctl ctl = { .socket = "/run/dirtytrackd/api.sock" };
	int c, r;

	while ((c = getopt_long(argc, argv, "+s:u:jk:C:h", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'u':
			ctl.url = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'k':
			r = read_token(optarg, &ctl.token);
			if (r)
				return r;
			break;
		case 'C':
			ctl.cacert = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		r = commands[i].fn(&ctl, argc - optind, argv + optind);
		curl_global_cleanup();
		free(ctl.token);
		return r;
	}
	fprintf(stderr, "dirtytrackctl: unknown command '%s' (see --help)\n", argv[optind]);
	return CTL_EXIT_USAGE;
}
