/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's configuration: defaults, INI file (libinih), command line.
 * Every key is one row of the key table (daemon/config_keys.c): its
 * section, name, value type and bounds, default, whether a reload applies
 * it, and a line of documentation. Parsing, defaults, freeing, reload,
 * --cat-config and --dump-config-keys all walk that table.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define DT_MAX_ALLOWED_IDS 32
#define DT_MAX_REF_LINKS 4 /* [metrics] reference_links: each costs a plan per VM per epoch */

/* A link /metrics predicts every VM's pre-copy migration at. */
struct dt_ref_link {
	uint64_t bandwidth; /* bytes per second */
	uint64_t downtime_us; /* the downtime accepted */
	char name[32]; /* as configured ("10Gbit/300ms"): the link label; zero-padded */
};

struct dt_config {
	char *runtime_dir;
	char *state_dir; /* saved VM histories; NULL: no persistence */
	uint32_t snapshot_epochs; /* epochs between full saves of a VM (journal in between) */
	uint32_t state_queue; /* jobs the state writer may have queued */
	uint64_t state_queue_size; /* bytes they may hold */
	uint64_t state_drain_us; /* at stop, the longest wait for queued writes */
	uint64_t state_max_bytes_per_vm; /* a VM's files in state_dir at most; 0: no quota */
	char *attach_socket; /* default runtime_dir/attach.sock */
	char *api_socket; /* default runtime_dir/api.sock */
	char *api_tcp; /* "127.0.0.1:9111", or NULL for none */
	uint64_t epoch_us;
	uint64_t retention_us; /* keep detached VMs this long */
	uint64_t history_us; /* longest window (horizon) */
	uint32_t recent_epochs;
	uint32_t coarse_epochs;
	uint32_t max_vms;
	uint32_t max_vms_per_owner; /* VMs one uid may have listed; 0: max_vms */
	uint32_t max_vcpus;
	uint32_t max_slots;
	uint32_t max_ring_entries;
	uint64_t max_memory; /* bytes per VM */
	uint32_t max_handshakes; /* connections not past HELLO/WELCOME; beyond: accept pauses */
	uint64_t handshake_timeout_us; /* a connection without WELCOME is dropped after this */
	uint32_t api_max_connections;
	uint32_t api_max_client_connections; /* per peer uid (Unix) or address (TCP) */
	uint64_t api_timeout_us;
	uint32_t api_socket_mode; /* permissions of the API socket */
	char *api_socket_group; /* group owning it, NULL: unchanged */
	uint64_t api_max_wait_us; /* cap on ?wait= long-polls */
	uint64_t api_memory_limit; /* per connection, bytes */
	char *api_remote; /* "ADDR:PORT" TLS listener for other hosts, NULL: none */
	char *api_tls_cert; /* PEM files for api_remote */
	char *api_tls_key;
	char *api_token_file; /* bearer token required on api_remote */
	uint32_t api_max_pending_plans; /* per front end (REST, D-Bus): beyond, 503/busy */
	uint64_t api_plan_timeout_us; /* a REST plan parked longer gets 503 */
	uint32_t api_pages_limit; /* default ?limit= of /epochs/N/pages */
	uint32_t api_max_plan_rounds; /* ?max_rounds= at most */
	uint32_t metrics_windows[8]; /* seconds: WSS gauges in /metrics */
	unsigned n_metrics_windows;
	struct dt_ref_link ref_links[DT_MAX_REF_LINKS];
	unsigned n_ref_links;
	char *dbus; /* "system", "session", a bus address, or NULL (off) */
	uint64_t dbus_interval_us; /* min interval of per-epoch PropertiesChanged */
	char *libvirt_uri; /* e.g. "qemu:///system", NULL: the libvirt collector is off */
	uint64_t libvirt_interval_us; /* between rounds (calc started, stats read) */
	uint32_t libvirt_calc_seconds; /* calc period asked of QEMU */
	uid_t allowed_uids[DT_MAX_ALLOWED_IDS];
	unsigned n_allowed_uids;
	gid_t allowed_gids[DT_MAX_ALLOWED_IDS];
	unsigned n_allowed_gids;
	/* may reattach a VM whose owner (the uid that attached it first) is another */
	uid_t takeover_uids[DT_MAX_ALLOWED_IDS];
	unsigned n_takeover_uids;
};

#define DT_EPOCH_MIN_US 100000ull /* 100 ms */
#define DT_EPOCH_MAX_US 60000000ull /* 1 min */

void dt_config_init(struct dt_config *c); /* defaults */
void dt_config_done(struct dt_config *c);
/*
 * Load an INI file over the current values. On error returns -errno and
 * writes "FILE:LINE: key: what is wrong" into err.
 */
int dt_config_load(struct dt_config *c, const char *path, char *err, size_t errlen);
/* Set one key ("section", "key", "value"), as from the file. */
int dt_config_set(struct dt_config *c, const char *section, const char *key, const char *value,
		  char *err, size_t errlen);
/* Fill socket paths from runtime_dir where unset; check cross-key rules. */
int dt_config_finish(struct dt_config *c, char *err, size_t errlen);

/*
 * Load INI text as if read from a file called name (errors say name:LINE).
 * The parser behind dt_config_load, and the fuzzer's entry point.
 */
int dt_config_load_string(struct dt_config *c, const char *name, const char *text, char *err,
			  size_t errlen);

/*
 * Where the system configuration lives, highest priority first: each
 * directory may hold dirtytrackd.conf (the first one found is the main
 * file) and dirtytrackd.conf.d/ (drop-ins merged by file name: a name in a
 * higher directory hides the same name below; applied in name order).
 */
extern const char *const dt_config_dirs[];

struct dt_config_files {
	char **paths; /* the main file (if any), then drop-ins in the order applied */
	unsigned n;
};

/*
 * Find the files to read. main_file (from --config) is read with the drop-ins
 * of main_file.d/ only; NULL searches dirs (normally dt_config_dirs).
 */
int dt_config_files_find(const char *main_file, const char *const *dirs,
			 struct dt_config_files *ret);
void dt_config_files_done(struct dt_config_files *f);
/* Load every file in order over c; on error c holds a partial result. */
int dt_config_load_files(struct dt_config *c, const struct dt_config_files *f, char *err,
			 size_t errlen);

/*
 * A reload: take next's values into cur, except keys that only take effect
 * at start (sockets, listeners, bus), which keep cur's value. Every key
 * whose value changed is reported through changed ("section.key", its new
 * value as it would be written, and restart: true when it was not applied).
 * next is left holding what cur held, for dt_config_done. Returns the
 * number of keys whose value changed.
 */
typedef void (*dt_config_changed_t)(const char *key, const char *value, bool restart,
				    void *userdata);
unsigned dt_config_reload(struct dt_config *cur, struct dt_config *next,
			  dt_config_changed_t changed, void *userdata);

/*
 * Every key's value as an INI file (sections in table order), e.g. for
 * --cat-config: read back, it gives the same configuration.
 */
int dt_config_write(const struct dt_config *c, FILE *out);
/*
 * The key table, machine-readable (--dump-config-keys): one line per key,
 * tab-separated: section.key, type, default (as written in the file; "-"
 * when derived from other keys or the system, as the doc says), min and
 * max (as written; "-" for none), "reload" or "restart", doc.
 */
int dt_config_dump_keys(FILE *out);
