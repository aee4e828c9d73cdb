/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "dt_file.h"
#include "dt_util.h"
#include "log.h"
#include "manager.h"
#include "service.h"

int dt_service_override(struct dt_service *s, const char *section, const char *key,
			const char *value)
{
	if (s->n_overrides >= ARRAY_SIZE(s->overrides))
		return -E2BIG;
	s->overrides[s->n_overrides].section = section;
	s->overrides[s->n_overrides].key = key;
	s->overrides[s->n_overrides].value = value;
	s->n_overrides++;
	return 0;
}

static int find_files(const struct dt_service *s, struct dt_config_files *ret, char *err,
		      size_t errlen)
{
	int r = dt_config_files_find(s->config_file, dt_config_dirs, ret);

	if (r < 0)
		snprintf(err, errlen, "cannot list the configuration files: %s", strerror(-r));
	return r;
}

int dt_service_load_config(const struct dt_service *s, struct dt_config *ret, char *err,
			   size_t errlen)
{
	struct dt_config_files files;
	int r;

	dt_config_init(ret);
	r = find_files(s, &files, err, errlen);
	if (r < 0)
		return r;
	r = dt_config_load_files(ret, &files, err, errlen);
	dt_config_files_done(&files);
	/* The command line wins over the files. */
	for (unsigned i = 0; r >= 0 && i < s->n_overrides; i++) {
		char msg[320];

		r = dt_config_set(ret, s->overrides[i].section, s->overrides[i].key,
				  s->overrides[i].value, msg, sizeof(msg));
		if (r < 0)
			snprintf(err, errlen, "command line: %s", msg);
	}
	if (r >= 0)
		r = dt_config_finish(ret, err, errlen);
	return r;
}

int dt_service_cat_config(const struct dt_service *s, FILE *out)
{
	struct dt_config_files files;
	char err[512];
	int r = find_files(s, &files, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "dirtytrackd: %s\n", err);
		return r;
	}
	if (files.n == 0) {
		fprintf(out, "# no configuration file: built-in defaults. Searched:\n");
		for (unsigned i = 0; dt_config_dirs[i]; i++)
			fprintf(out, "#   %s/dirtytrackd.conf{,.d/*.conf}\n", dt_config_dirs[i]);
	}
	for (unsigned i = 0; i < files.n; i++) {
		char buf[4096];
		size_t n, last = '\n';
		FILE *f = NULL;

		fprintf(out, "%s# %s\n", i ? "\n" : "", files.paths[i]);
		r = dt_file_fopen(files.paths[i], DT_FILE_DEVNULL, 1u << 20, &f);
		if (r < 0) {
			fprintf(stderr, "dirtytrackd: %s: %s\n", files.paths[i], dt_file_strerror(r));
			break;
		}
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			fwrite(buf, 1, n, out);
			last = (unsigned char)buf[n - 1];
		}
		fclose(f);
		if (last != '\n')
			fputc('\n', out);
	}
	if (r >= 0 && s->n_overrides) {
		fprintf(out, "\n# command line (wins over the files)\n");
		for (unsigned i = 0; i < s->n_overrides; i++)
			fprintf(out, "[%s]\n%s = %s\n", s->overrides[i].section,
				s->overrides[i].key, s->overrides[i].value);
	}
	dt_config_files_done(&files);
	if (r >= 0) {
		/* What all of it makes: every key of the table, as a file would say it. */
		struct dt_config c;

		r = dt_service_load_config(s, &c, err, sizeof(err));
		if (r < 0) {
			fprintf(out, "\n# not valid: %s\n", err);
			fprintf(stderr, "dirtytrackd: configuration: %s\n", err);
		} else {
			fprintf(out, "\n# every key's value (defaults, the files, the command line)\n");
			r = dt_config_write(&c, out);
		}
		dt_config_done(&c);
	}
	return r;
}

/* STATUS= carries the VM counts; sent when they change. */
static void notify_status(struct dt_service *s, bool ready)
{
	int attached = (int)dt_manager_attached(s->m), listed = (int)s->m->nvms;

	if (!ready && attached == s->status_attached && listed == s->status_listed)
		return;
	s->status_attached = attached;
	s->status_listed = listed;
	sd_notifyf(0, "%sSTATUS=%d VM%s attached, %d listed", ready ? "READY=1\n" : "", attached,
		   attached == 1 ? "" : "s", listed);
}

static void on_vm_changed(void *userdata, struct dt_vm *vm, enum dt_change what)
{
	struct dt_service *s = userdata;

	if (what == DT_CHANGE_EPOCH || s->stopping)
		return;
	/* REMOVED comes after the VM left the registry: the counts are right. */
	notify_status(s, false);
}

/* Each key a reload changed, from the key table: applied now, or at the next start. */
static void key_changed(const char *key, const char *value, bool restart, void *userdata)
{
	if (restart)
		dt_log(LOG_WARNING,
		       "reload: %s changed: it takes effect when dirtytrackd restarts (new value "
		       "\"%s\"; the running one is kept)",
		       key, value);
	else
		dt_log(LOG_INFO, "reload: %s changed: applied (now \"%s\")", key, value);
}

/* Apply what a new value changes in running objects. */
static void apply_runtime(struct dt_manager *m)
{
	/* Detached VMs are kept for the new retention, counted from their detach. */
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (vm->state == DT_VM_DETACHED && vm->retention)
			sd_event_source_set_time(vm->retention,
						 vm->detached_us + m->config.retention_us);
}

void dt_service_reload(struct dt_service *s)
{
	struct dt_config next;
	char err[512];
	int r;

	sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading the configuration\nMONOTONIC_USEC=%" PRIu64,
		   dt_now_us());
	r = dt_service_load_config(s, &next, err, sizeof(err));
	if (r < 0) {
		dt_log(LOG_ERR, "reload: %s; keeping the running configuration", err);
	} else {
		unsigned changed = dt_config_reload(&s->m->config, &next, key_changed, s);

		apply_runtime(s->m);
		dt_log(LOG_INFO, "reload: configuration re-read, %u key%s changed", changed,
		       changed == 1 ? "" : "s");
	}
	dt_config_done(&next);
	notify_status(s, true);
}

static int on_stop(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
	struct dt_service *s = userdata;

	dt_log(LOG_INFO, "signal %d: stopping", si->ssi_signo);
	s->stopping = true;
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
	dt_manager_stop(s->m);
	return sd_event_exit(s->m->event, 0);
}

static int on_reload(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
	dt_service_reload(userdata);
	return 0;
}

int dt_service_start(struct dt_service *s)
{
	const struct dt_observer o = { .vm_changed = on_vm_changed, .userdata = s };
	struct dt_manager *m = s->m;
	sigset_t mask;
	int r;

	s->status_attached = s->status_listed = -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_stop, s)) < 0 ||
	    (r = sd_event_add_signal(m->event, NULL, SIGINT, on_stop, s)) < 0 ||
	    (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_reload, s)) < 0) {
		dt_log(LOG_ERR, "cannot watch signals: %s", strerror(-r));
		return r;
	}
	/* Pings at half of WatchdogSec= while the loop turns; off without it. */
	r = sd_event_set_watchdog(m->event, true);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot set up the watchdog: %s", strerror(-r));
		return r;
	}
	if (r > 0)
		dt_log(LOG_DEBUG, "watchdog enabled");
	r = dt_manager_observe(m, &o);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot watch VM changes: %s", strerror(-r));
		return r;
	}
	return 0;
}

/*
 * READY=1 once the sockets and REST are up (main calls it after starting
 * them). Not after the bus name: the name is requested asynchronously
 * and D-Bus is best effort (an absent or refusing bus is retried in the
 * background, possibly for ever), so READY=1 means what every start has:
 * the attach and REST sockets answer. D-Bus clients do not need READY=1 to
 * be ordered: dbus-daemon queues activation and calls until the name is
 * owned, and a client that waits for the name (NameOwnerChanged) is told
 * when it is, including after a reconnect. Even a short bounded wait
 * would delay every start on a host without a bus and still promise
 * nothing.
 */
void dt_service_ready(struct dt_service *s)
{
	notify_status(s, true);
}
