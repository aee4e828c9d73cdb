/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "dt_plant.h"
#include "dt_util.h"
#include "log.h"
#include "manager.h"

int dt_manager_new(struct dt_manager **ret)
{
	struct dt_manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->attach_fd = -1;
	dt_config_init(&m->config);
	r = sd_event_default(&m->event);
	if (r < 0) {
		dt_manager_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

struct dt_manager *dt_manager_free(struct dt_manager *m)
{
	if (!m)
		return NULL;
	dt_libvirt_stop(m);
	while (m->vms)
		dt_vm_free(m->vms);
	while (m->conns)
		dt_conn_close(m->conns, "daemon stopping");
	dt_state_stop(m);
	sd_event_source_disable_unref(m->attach_source);
	sd_event_source_disable_unref(m->accept_retry);
	if (m->attach_fd >= 0)
		close(m->attach_fd);
	sd_event_unref(m->event);
	dt_config_done(&m->config);
	free(m);
	return NULL;
}

struct dt_vm *dt_manager_find_uuid(struct dt_manager *m, const uint8_t uuid[16])
{
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (memcmp(vm->uuid, uuid, 16) == 0)
			return vm;
	return NULL;
}

struct dt_vm *dt_manager_find_vm(struct dt_manager *m, const char *key)
{
	uint8_t uuid[16];
	uint64_t id;

	if (dt_parse_u64(key, 1, UINT32_MAX, &id) >= 0) {
		for (struct dt_vm *vm = m->vms; vm; vm = vm->next)
			if (vm->id == id)
				return vm;
		return NULL;
	}
	if (dt_uuid_parse(key, uuid) >= 0)
		return dt_manager_find_uuid(m, uuid);
	/* By name: prefer the attached VM when a name was reused. */
	struct dt_vm *found = NULL;
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next)
		if (strcmp(vm->name, key) == 0 && (!found || vm->state == DT_VM_ATTACHED))
			found = vm;
	return found;
}

unsigned dt_manager_attached(const struct dt_manager *m)
{
	unsigned n = 0;

	for (const struct dt_vm *vm = m->vms; vm; vm = vm->next)
		n += vm->state == DT_VM_ATTACHED;
	return n;
}

int dt_manager_owner_room(struct dt_manager *m, uid_t owner, bool evict)
{
	uint32_t cap = m->config.max_vms_per_owner ? m->config.max_vms_per_owner : m->config.max_vms;

	for (;;) {
		struct dt_vm *oldest = NULL;
		unsigned n = 0;

		for (struct dt_vm *vm = m->vms; vm; vm = vm->next) {
			if (vm->state == DT_VM_OBSERVED || vm->owner_uid != owner)
				continue;
			n++;
			if (evict && vm->state == DT_VM_DETACHED &&
			    (!oldest || vm->detached_us < oldest->detached_us))
				oldest = vm;
		}
		if (n < cap)
			return 0;
		if (!oldest)
			return -EUSERS;
		dt_log(LOG_NOTICE,
		       "vm %u (%s): evicted: uid %u is at max_vms_per_owner = %u and this is its "
		       "longest-detached VM; its history is removed",
		       oldest->id, oldest->name, (unsigned)owner, cap);
		dt_state_forget(oldest);
		dt_vm_free(oldest);
	}
}

int dt_manager_observe(struct dt_manager *m, const struct dt_observer *o)
{
	if (m->nobservers >= DT_MAX_OBSERVERS)
		return -ENOSPC;
	m->observers[m->nobservers++] = *o;
	return 0;
}

void dt_manager_unobserve(struct dt_manager *m, void *userdata)
{
	for (unsigned i = 0; i < m->nobservers; i++)
		if (m->observers[i].userdata == userdata) {
			m->observers[i] = m->observers[--m->nobservers];
			i--;
		}
}

void dt_manager_notify(struct dt_manager *m, struct dt_vm *vm, enum dt_change what)
{
	vm->generation++;
	m->generation++;
	for (unsigned i = 0; i < m->nobservers; i++)
		m->observers[i].vm_changed(m->observers[i].userdata, vm, what);
}

const uint64_t dt_harvest_bucket_us[DT_HARVEST_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
};

void dt_histogram_observe(struct dt_histogram *h, uint64_t us)
{
	for (unsigned i = 0; i < DT_HARVEST_BUCKETS; i++)
		if (us <= dt_harvest_bucket_us[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum_us += us;
}

/* Bind a Unix socket at path, replacing a stale one. */
static int bind_unix(const char *path, int type, mode_t mode, int *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	if (chmod(path, mode) < 0)
		return -errno;
	if (listen(fd, 64) < 0)
		return -errno;
	*ret = TAKE_FD(fd);
	return 0;
}

/* Hand a socket to a group (name or gid); NULL or "": leave it. */
static int chgrp_path(const char *path, const char *group)
{
	struct group *g;
	uint64_t gid;

	if (!group || !*group)
		return 0;
	if (dt_parse_u64(group, 0, UINT32_MAX - 1, &gid) < 0) {
		g = getgrnam(group);
		if (!g)
			return -ESRCH;
		gid = g->gr_gid;
	}
	if (chown(path, (uid_t)-1, (gid_t)gid) < 0)
		return -errno;
	return 0;
}

/* Sockets passed by systemd (named "attach" and "api"), if any. */
static void take_activated(int *attach_fd, int *api_fd)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (names && strcmp(names[i], "attach") == 0 && *attach_fd < 0)
			*attach_fd = fd;
		else if (names && strcmp(names[i], "api") == 0 && *api_fd < 0)
			*api_fd = fd;
		else
			close(fd);
	}
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int dt_manager_listen(struct dt_manager *m, int *ret_api_fd)
{
	const struct dt_config *c = &m->config;
	int attach_fd = -1, api_fd = -1, r;

	take_activated(&attach_fd, &api_fd);
	if (mkdir(c->runtime_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		dt_log(LOG_ERR, "cannot create runtime directory %s: %m", c->runtime_dir);
		return r;
	}
	if (attach_fd < 0) {
		r = bind_unix(c->attach_socket, SOCK_SEQPACKET, 0660, &attach_fd);
		if (r < 0) {
			dt_log(LOG_ERR, "cannot listen on %s: %s", c->attach_socket, strerror(-r));
			return r;
		}
	}
	r = dt_attach_listen(m, attach_fd);
	if (r < 0)
		return r;
	if (api_fd < 0) {
		r = bind_unix(c->api_socket, SOCK_STREAM, (mode_t)c->api_socket_mode, &api_fd);
		if (r < 0) {
			dt_log(LOG_ERR, "cannot listen on %s: %s", c->api_socket, strerror(-r));
			return r;
		}
		r = chgrp_path(c->api_socket, c->api_socket_group);
		if (r < 0) {
			dt_log(LOG_ERR, "cannot give %s to group %s: %s", c->api_socket,
			       c->api_socket_group, strerror(-r));
			close(api_fd);
			return r;
		}
	}
	*ret_api_fd = api_fd;
	return 0;
}

int dt_manager_start(struct dt_manager *m)
{
	const struct dt_config *c = &m->config;
	int r;

	dt_log(LOG_INFO, "listening: attach %s, api %s%s%s, epoch %llu ms", c->attach_socket,
	       c->api_socket, c->api_tcp ? ", http://" : "", c->api_tcp ? c->api_tcp : "",
	       (unsigned long long)c->epoch_us / 1000);
	if (dt_plant_name())
		dt_log(LOG_WARNING, "test build: planted bug '%s' is on (DT_PLANT)", dt_plant_name());
	r = dt_state_start(m);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot start the state writer: %s", strerror(-r));
		return r;
	}
	/* After the front ends: they are told of every restored VM. */
	dt_state_restore(m);
	/* After the restore: a restored VM keeps its uuid against libvirt's. */
	return dt_libvirt_start(m);
}

/*
 * The histories first (their last epochs closed by the detach, saved and
 * written), then the parts that may hang: a libvirtd that never answers
 * costs the libvirt worker's bounded stop, not the state.
 */
void dt_manager_stop(struct dt_manager *m)
{
	for (struct dt_vm *vm = m->vms; vm; vm = vm->next) {
		if (vm->state != DT_VM_ATTACHED)
			continue;
		struct dt_msg_detach d = { .reason = DT_DETACH_SHUTDOWN };
		dt_conn_send(vm->conn, DT_MSG_DETACH, &d, NULL);
		dt_conn_close(vm->conn, "daemon stopping");
	}
	dt_state_save_all(m);
	dt_state_stop(m);
	dt_libvirt_stop(m);
}
