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
	  "plan VM --bandwidth B --downtime D [--target T] [--engine E]: will pre-copy converge" },
	{ "evacuate", ctl_evacuate,
	  "evacuate --bandwidth B --downtime D [--parallel N]: drain the host, in order" },
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
	fprintf(f, "\nThe options above may also follow COMMAND (\"list --json\"); any other\n"
		   "option or argument a command does not take is a usage error.\n"
		   "VM is an id, a uuid or a name. Default socket: /run/dirtytrackd/api.sock\n"
		   "--url http://127.0.0.1:9111 or https://HOST:PORT (remote listener: with\n"
		   "--token-file holding its bearer token, --cacert for its certificate).\n"
		   "Exit codes: 0 ok, 1 daemon error, 2 usage (or an argument the daemon refused),\n"
		   "3 daemon unreachable, 4 no such VM, 5 token refused,\n"
		   "6 plan: pre-copy would not converge (or not within\n"
		   "--target); evacuate: a VM cannot go live\n");
}

int ctl_no_args(const char *command, int argc, char **argv)
{
	if (argc <= 1)
		return 0;
	fprintf(stderr, "dirtytrackctl: %s takes no argument%s, not '%s'\n", command,
		argv[1][0] == '-' ? " or option but the global ones" : "", argv[1]);
	return CTL_EXIT_USAGE;
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

static const struct option global_opts[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "url", required_argument, NULL, 'u' },
	{ "json", no_argument, NULL, 'j' },
	{ "token-file", required_argument, NULL, 'k' },
	{ "cacert", required_argument, NULL, 'C' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* One global option; returns -1 to go on, else an exit code. */
static int set_global(struct ctl *ctl, int c, char *arg)
{
	int r;

	switch (c) {
	case 's':
		ctl->socket = arg;
		return -1;
	case 'u':
		ctl->url = arg;
		return -1;
	case 'j':
		ctl->json = true;
		return -1;
	case 'k':
		r = read_token(arg, &ctl->token);
		return r ? r : -1;
	case 'C':
		ctl->cacert = arg;
		return -1;
	}
	return CTL_EXIT_USAGE;
}

/*
 * The global options may also follow the command ("list --json", "show VM
 * --socket S"): take them out of the command's arguments, up to a "--",
 * so no command ever sees (and ignores) one. Long forms ("--json",
 * "--socket S", "--socket=S") and the short ones taking a value ("-s S",
 * "-sS"), "-j" alone; --help stays the command's. Returns -1 to go on,
 * else an exit code.
 */
static int take_globals(struct ctl *ctl, int *argc, char **argv)
{
	int n = 1;

	for (int i = 1; i < *argc; i++) {
		char *a = argv[i], *val = NULL;
		const struct option *o = NULL;
		int r;

		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[n++] = argv[i++];
			break;
		}
		if (a[0] == '-' && a[1] == '-') {
			size_t len = strcspn(a + 2, "=");

			for (const struct option *g = global_opts; g->name; g++)
				if (g->val != 'h' && strlen(g->name) == len &&
				    strncmp(a + 2, g->name, len) == 0)
					o = g;
			if (o && a[2 + len] == '=')
				val = a + 3 + len;
		} else if (a[0] == '-' && a[1] && strchr("sukC", a[1])) {
			for (const struct option *g = global_opts; g->name; g++)
				if (g->val == a[1])
					o = g;
			if (a[2])
				val = a + 2;
		} else if (strcmp(a, "-j") == 0) {
			o = &global_opts[2];
		}
		if (!o) {
			argv[n++] = a;
			continue;
		}
		if (o->has_arg == no_argument && val) {
			fprintf(stderr, "dirtytrackctl: --%s takes no value\n", o->name);
			return CTL_EXIT_USAGE;
		}
		if (o->has_arg == required_argument && !val) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "dirtytrackctl: --%s needs a value\n", o->name);
				return CTL_EXIT_USAGE;
			}
			val = argv[++i];
		}
		r = set_global(ctl, o->val, val);
		if (r >= 0)
			return r;
	}
	argv[n] = NULL;
	*argc = n;
	return -1;
}

int main(int argc, char **argv)
{
	struct ctl ctl = { .socket = "/run/dirtytrackd/api.sock" };
	int c, r;

	while ((c = getopt_long(argc, argv, "+s:u:jk:C:h", global_opts, NULL)) >= 0) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?') {
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
		r = set_global(&ctl, c, optarg);
		if (r >= 0)
			return r;
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		r = take_globals(&ctl, &argc, argv);
		if (r < 0) {
			curl_global_init(CURL_GLOBAL_DEFAULT);
			r = commands[i].fn(&ctl, argc, argv);
			curl_global_cleanup();
		}
		free(ctl.token);
		return r;
	}
	fprintf(stderr, "dirtytrackctl: unknown command '%s' (see --help)\n", argv[0]);
	return CTL_EXIT_USAGE;
}
