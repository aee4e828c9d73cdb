/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The attach socket: accept VMMs, check their credentials, decode their
 * messages and route them to the VM they attached. A malformed peer costs
 * only its own connection; its VM stays listed (detached) with its figures.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dt_util.h"
#include "log.h"
#include "manager.h"

#define DT_MSGS_PER_WAKEUP 64 /* fairness between VMMs */
#define DT_ACCEPT_RETRY_US 250000 /* out of fds: try accept() again this often */

struct dt_conn {
	struct dt_conn *next;
	struct dt_manager *m;
	int fd;
	sd_event_source *source;
	struct ucred cred;
	bool allowed;
	struct dt_vm *vm; /* after WELCOME */
	uint32_t seq;
	/*
	 * A lost connection is an event, not a side effect: whatever finds it
	 * broken (a failed send, EOF, a protocol error, an unanswered request)
	 * marks it dead with a reason, and the drop (detach of its VM, close,
	 * free) runs from this defer source, after the work at hand. Until
	 * then the connection and its VM stay whole; sends on it fail.
	 */
	sd_event_source *reap;
	bool dead;
	char dead_reason[DT_REASON_MAX];
	/* Until WELCOME: counted in m->nhandshakes, dropped at the timeout. */
	bool handshaking;
	sd_event_source *handshake_timer;
};

/*
 * Accept while neither the fds nor the handshake slots are exhausted. Off,
 * new VMMs wait in the listen backlog: nothing spins and nothing is lost.
 */
static void accept_update(struct dt_manager *m)
{
	bool on = !m->accept_starved && m->nhandshakes < m->config.max_handshakes;

	if (m->attach_source)
		sd_event_source_set_enabled(m->attach_source, on ? SD_EVENT_ON : SD_EVENT_OFF);
}

/* The connection is past its handshake (WELCOME) or gone: free its slot. */
static void handshake_end(struct dt_conn *c)
{
	if (!c->handshaking)
		return;
	c->handshaking = false;
	c->m->nhandshakes--;
	sd_event_source_set_enabled(c->handshake_timer, SD_EVENT_OFF);
	accept_update(c->m);
}

static bool gid_allowed(const struct dt_config *c, gid_t gid)
{
	for (unsigned i = 0; i < c->n_allowed_gids; i++)
		if (c->allowed_gids[i] == gid)
			return true;
	return false;
}

/*
 * The peer's supplementary groups (SO_PEERGROUPS, as of its connect) count
 * like its primary one: membership in an allowed group is what the socket's
 * own mode (0660, group dirtytrack) grants too. Returns true or false; a
 * kernel without SO_PEERGROUPS leaves the primary group only.
 */
static bool cred_allowed(const struct dt_config *c, int fd, const struct ucred *cred)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool ok = false;

	if (cred->uid == 0 || cred->uid == geteuid())
		return true;
	for (unsigned i = 0; i < c->n_allowed_uids; i++)
		if (c->allowed_uids[i] == cred->uid)
			return true;
	if (gid_allowed(c, cred->gid))
		return true;
	if (c->n_allowed_gids == 0)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		/* ERANGE: len is the size needed (at most NGROUPS_MAX gids). */
		if (errno != ERANGE || len == 0 || len > 65536 * sizeof(gid_t))
			return false;
		groups = malloc(len);
		if (!groups || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t) && !ok; i++)
		ok = gid_allowed(c, groups[i]);
	if (groups != small)
		free(groups);
	return ok;
}

bool dt_conn_alive(const struct dt_conn *c)
{
	return c && !c->dead;
}

void dt_conn_fail(struct dt_conn *c, const char *reason)
{
	if (!c || c->dead)
		return; /* the first reason is the one that counts */
	c->dead = true;
	snprintf(c->dead_reason, sizeof(c->dead_reason), "%s", reason);
	/* Nothing more is read from it; the drop runs after the work at hand. */
	sd_event_source_set_enabled(c->source, SD_EVENT_OFF);
	sd_event_source_set_enabled(c->reap, SD_EVENT_ONESHOT);
}

int dt_conn_send(struct dt_conn *c, uint16_t type, const void *payload, uint32_t *ret_seq)
{
	uint32_t seq;
	int r;

	if (!dt_conn_alive(c))
		return -ENOTCONN;
	seq = ++c->seq;
	r = dt_msg_send(c->fd, type, seq, payload, NULL, 0);
	if (r < 0) {
		/* A VMM that does not read its socket is not harvestable either. */
		dt_conn_fail(c, r == -EAGAIN ? "VMM does not read its socket"
					     : "cannot write to the VMM");
		return r;
	}
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

static void reply_ack(struct dt_conn *c, const struct dt_hdr *ref)
{
	struct dt_msg_ack a = { .ref_seq = ref->seq, .ref_type = ref->type };

	dt_conn_send(c, DT_MSG_ACK, &a, NULL);
}

static void reply_error(struct dt_conn *c, uint16_t type, int error, const struct dt_hdr *ref,
			const char *reason)
{
	struct dt_msg_error e;

	dt_msg_error_init(&e, error < 0 ? -error : error, ref, "%s", reason);
	dt_conn_send(c, type, &e, NULL);
}

static void conn_free(struct dt_conn *c)
{
	struct dt_manager *m = c->m;

	handshake_end(c);
	sd_event_source_disable_unref(c->source);
	sd_event_source_disable_unref(c->reap);
	sd_event_source_disable_unref(c->handshake_timer);
	close(c->fd);
	free(c);
	/* An fd is free again: an accept starved of fds may succeed now. */
	if (m->accept_starved) {
		m->accept_starved = false;
		accept_update(m);
	}
}

/* The one place a connection goes away: unlink, detach its VM, free. */
static void conn_drop(struct dt_conn *c)
{
	struct dt_manager *m = c->m;

	for (struct dt_conn **p = &m->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			m->nconns--;
			break;
		}
	if (c->vm) {
		struct dt_vm *vm = c->vm;

		c->vm = NULL;
		if (vm->conn == c)
			dt_vm_detach(vm, c->dead_reason);
	}
	conn_free(c);
}

static int on_conn_reap(sd_event_source *s, void *userdata)
{
	conn_drop(userdata);
	return 0;
}

void dt_conn_close(struct dt_conn *c, const char *reason)
{
	if (!c)
		return;
	dt_conn_fail(c, reason);
	conn_drop(c);
}

static int hello_check(struct dt_manager *m, const struct dt_msg_hello *h, char *reason,
		       size_t len)
{
	if (h->min_version > DT_PROTO_VERSION || h->max_version < DT_PROTO_VERSION) {
		snprintf(reason, len, "protocol versions %u..%u not supported (daemon speaks %u)",
			 h->min_version, h->max_version, DT_PROTO_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (h->page_size < 4096 || h->page_size > 65536 || (h->page_size & (h->page_size - 1))) {
		snprintf(reason, len, "page size %u is not a power of two in 4096..65536",
			 h->page_size);
		return -EINVAL;
	}
	if (h->vcpus < 1 || h->vcpus > m->config.max_vcpus) {
		snprintf(reason, len, "vcpus %u out of range 1..%u", h->vcpus,
			 m->config.max_vcpus);
		return -EINVAL;
	}
	if (h->caps & ~DT_CAP_ALL) {
		snprintf(reason, len, "unknown capability bits 0x%x", h->caps & ~DT_CAP_ALL);
		return -EINVAL;
	}
	return 0;
}

static bool may_take_over(const struct dt_config *c, uid_t uid)
{
	for (unsigned i = 0; i < c->n_takeover_uids; i++)
		if (c->takeover_uids[i] == uid)
			return true;
	return false;
}

/* What differs between a VM and a HELLO with its uuid, or "" if nothing. */
static void geometry_diff(const struct dt_vm *vm, const struct dt_msg_hello *h, char *buf,
			  size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	if (vm->vcpus != h->vcpus)
		n += (size_t)snprintf(buf + n, len - n, "%u vCPUs, not %u", h->vcpus, vm->vcpus);
	if (n < len && vm->page_size != h->page_size)
		n += (size_t)snprintf(buf + n, len - n, "%spage %u, not %u", n ? "; " : "",
				      h->page_size, vm->page_size);
	if (n < len && vm->mode != h->mode)
		snprintf(buf + n, len - n, "%smode %s, not %s", n ? "; " : "",
			 dt_mode_name(h->mode), dt_mode_name(vm->mode));
}

static void on_hello(struct dt_conn *c, const struct dt_msg *msg)
{
	struct dt_manager *m = c->m;
	const struct dt_msg_hello *h = &msg->u.hello;
	struct dt_msg_welcome w;
	struct dt_vm *vm = NULL;
	char reason[DT_REASON_MAX], libvirt_domain[DT_NAME_MAX] = "", diff[64];
	int r;

	if (!c->allowed) {
		snprintf(reason, sizeof(reason),
			 "uid %u (gid %u) may not attach (see [attach] allowed_users, allowed_groups)",
			 c->cred.uid, c->cred.gid);
		r = -EPERM;
		goto refuse;
	}
	r = hello_check(m, h, reason, sizeof(reason));
	if (r < 0)
		goto refuse;
	if (!dt_uuid_is_null(h->uuid))
		vm = dt_manager_find_uuid(m, h->uuid);
	if (vm && vm->state == DT_VM_OBSERVED) {
		/* Seen through libvirt so far: the protocol's exact figures replace it. */
		snprintf(libvirt_domain, sizeof(libvirt_domain), "%s", vm->libvirt_domain);
		dt_vm_free(vm);
		vm = NULL;
	}
	/*
	 * A VMM attaches only VMs it owns: uuids are public (the API lists
	 * them), so a uuid alone takes nothing over. Checked first, so another
	 * uid learns nothing more about the VM than the API says.
	 */
	if (vm && vm->owner_uid != c->cred.uid && !may_take_over(&m->config, c->cred.uid)) {
		snprintf(reason, sizeof(reason),
			 "uuid belongs to vm %u of uid %u, not uid %u (see [attach] takeover_users)",
			 vm->id, vm->owner_uid, c->cred.uid);
		r = -EPERM;
		goto refuse;
	}
	if (vm && vm->state == DT_VM_ATTACHED && !dt_conn_alive(vm->conn))
		dt_conn_close(vm->conn, "VMM connection lost"); /* its drop was pending */
	if (vm && vm->state == DT_VM_ATTACHED) {
		snprintf(reason, sizeof(reason), "a VM with this uuid is attached (vm %u)", vm->id);
		r = -EEXIST;
		goto refuse;
	}
	if (vm)
		geometry_diff(vm, h, diff, sizeof(diff));
	if (vm && diff[0]) {
		/*
		 * Same uuid, another machine: the old figures do not apply to it,
		 * but they are not thrown away either. The whole history is set
		 * aside in the state directory; with nowhere to keep it, refuse.
		 */
		_cleanup_free_ char *aside = NULL;

		r = m->config.state_dir ? dt_state_set_aside(vm, &aside) : 0;
		if (r < 0 || !aside) {
			int n = snprintf(reason, sizeof(reason),
					 "vm %u has this uuid with other geometry (%s)", vm->id, diff);

			if (r < 0 && n > 0 && (size_t)n < sizeof(reason))
				snprintf(reason + n, sizeof(reason) - (size_t)n,
					 ": cannot set its history aside: %s", strerror(-r));
			r = r < 0 ? r : -EEXIST;
			goto refuse;
		}
		dt_log(LOG_NOTICE, "vm %u (%s): reattached by uid %u as another machine (%s): its "
				   "history is kept in %s, a new VM starts",
		       vm->id, vm->name, c->cred.uid, diff, aside);
		dt_vm_free(vm);
		vm = NULL;
	}
	if (!vm) {
		/* One owner's detached VMs never lock the others out. */
		if (dt_manager_owner_room(m, c->cred.uid, true) < 0) {
			snprintf(reason, sizeof(reason),
				 "uid %u has its limit of VMs attached (max_vms_per_owner = %u)",
				 c->cred.uid,
				 m->config.max_vms_per_owner ? m->config.max_vms_per_owner
							     : m->config.max_vms);
			r = -EUSERS;
			goto refuse;
		}
		if (dt_manager_attached(m) >= m->config.max_vms || m->nvms >= 2 * m->config.max_vms) {
			snprintf(reason, sizeof(reason), "too many VMs (max_vms = %u)",
				 m->config.max_vms);
			r = -EUSERS;
			goto refuse;
		}
		r = dt_vm_new(m, h, &c->cred, &vm);
		if (r < 0) {
			snprintf(reason, sizeof(reason), "cannot create VM: %s", strerror(-r));
			goto refuse;
		}
		memcpy(vm->libvirt_domain, libvirt_domain, sizeof(vm->libvirt_domain));
	} else {
		/* Reattach: a new name is fine, the figures continue. */
		memcpy(vm->name, h->name, sizeof(vm->name));
		memcpy(vm->vmm, h->vmm, sizeof(vm->vmm));
		vm->caps = h->caps;
	}
	dt_vm_attach(vm, c, &c->cred);
	c->vm = vm;
	w = (struct dt_msg_welcome){
		.version = DT_PROTO_VERSION,
		.vm_id = vm->id,
		.epoch_us = vm->epoch_us,
		.max_slots = m->config.max_slots,
		.max_ring_entries = m->config.max_ring_entries,
		.max_vcpus = m->config.max_vcpus,
	};
	dt_log(LOG_INFO, "vm %u (%s): attached by %s pid %d, %u vCPUs, mode %s%s", vm->id, vm->name,
	       vm->vmm, c->cred.pid, vm->vcpus, dt_mode_name(vm->mode),
	       vm->counters.attaches > 1 ? " (reattached)" : "");
	dt_conn_send(c, DT_MSG_WELCOME, &w, NULL);
	handshake_end(c);
	return;
refuse:
	dt_log(LOG_NOTICE, "attach refused for pid %d: %s", c->cred.pid, reason);
	reply_error(c, DT_MSG_REFUSE, r, &msg->hdr, reason);
	dt_conn_fail(c, reason);
}

static int on_add_slot(struct dt_conn *c, const struct dt_msg *msg, char *reason, size_t len)
{
	struct dt_vm *vm = c->vm;
	const struct dt_msg_add_slot *s = &msg->u.add_slot;
	const struct dt_config *cfg = &c->m->config;
	int r;

	if (s->gpa & (vm->page_size - 1)) {
		snprintf(reason, len, "slot 0x%x: gpa 0x%llx is not aligned to the page size",
			 s->slot, (unsigned long long)s->gpa);
		return -EINVAL;
	}
	r = dt_slots_add(&vm->collector.slots, s->slot, s->gpa, s->pages, vm->page_shift,
			 cfg->max_slots, cfg->max_memory >> vm->page_shift);
	switch (r) {
	case 0:
		dt_manager_notify(c->m, vm, DT_CHANGE_STATE);
		return 0;
	case -EEXIST:
		snprintf(reason, len, "slot 0x%x exists or overlaps another slot", s->slot);
		break;
	case -ENOSPC:
		snprintf(reason, len, "too many slots (max_slots = %u)", cfg->max_slots);
		break;
	case -E2BIG:
		snprintf(reason, len, "slot 0x%x: %llu pages exceed the VM's memory limit", s->slot,
			 (unsigned long long)s->pages);
		break;
	default:
		snprintf(reason, len, "slot 0x%x: invalid geometry (%llu pages at 0x%llx)", s->slot,
			 (unsigned long long)s->pages, (unsigned long long)s->gpa);
	}
	return r;
}

static int on_add_ring(struct dt_conn *c, struct dt_msg *msg, char *reason, size_t len)
{
	struct dt_vm *vm = c->vm;
	const struct dt_msg_add_ring *a = &msg->u.add_ring;

	if (!vm->collector.ops->add_ring) {
		snprintf(reason, len, "mode %s has no dirty rings", dt_mode_name(vm->mode));
		return -EOPNOTSUPP;
	}
	/* KVM keeps 64 entries of slack: a smaller ring could never run. */
	if (a->entries < DT_RING_MIN_ENTRIES || a->entries > c->m->config.max_ring_entries) {
		snprintf(reason, len, "ring entries %u out of range %u..%u", a->entries,
			 DT_RING_MIN_ENTRIES,
			 c->m->config.max_ring_entries);
		return -EINVAL;
	}
	return vm->collector.ops->add_ring(&vm->collector, msg->fds[0], a, reason);
}

static int on_add_bitmap(struct dt_conn *c, struct dt_msg *msg, char *reason, size_t len)
{
	struct dt_vm *vm = c->vm;

	if (!vm->collector.ops->add_bitmap) {
		snprintf(reason, len, "mode %s has no shared bitmaps", dt_mode_name(vm->mode));
		return -EOPNOTSUPP;
	}
	return vm->collector.ops->add_bitmap(&vm->collector, msg->fds[0], &msg->u.add_bitmap,
					     reason);
}

/* A sample of guest RAM: its figures only, checked for consistency; no memory is read. */
static int on_memory_sample(struct dt_conn *c, const struct dt_msg_memory_sample *ms,
			    char *reason, size_t len)
{
	struct dt_vm *vm = c->vm;
	uint64_t most = c->m->config.max_memory / vm->page_size;

	if (ms->sampled == 0 || ms->sampled > DT_MEMORY_SAMPLE_MAX) {
		snprintf(reason, len, "sampled %" PRIu64 " is not 1 to %u pages", ms->sampled,
			 DT_MEMORY_SAMPLE_MAX);
		return -EINVAL;
	}
	if (ms->zero > ms->sampled) {
		snprintf(reason, len, "zero %" PRIu64 " is more than sampled %" PRIu64, ms->zero,
			 ms->sampled);
		return -EINVAL;
	}
	if (ms->pages == 0 || ms->pages > most) {
		snprintf(reason, len,
			 "pages %" PRIu64 " is not 1 to %" PRIu64 " ([attach] max_memory)",
			 ms->pages, most);
		return -EINVAL;
	}
	vm->memory_sample = (struct dt_vm_memory_sample){
		.sampled = ms->sampled,
		.zero = ms->zero,
		.pages = ms->pages,
		.at_us = dt_now_us(),
		.epoch = dt_stats_epochs(vm->stats),
		.dirtied = dt_stats_wss(vm->stats, UINT32_MAX),
	};
	/*
	 * New figures for the VM's own view and plans (their caches follow the
	 * generation), but no change notice: a VMM sending samples in a loop
	 * must not make the D-Bus front end signal at its pace.
	 */
	vm->generation++;
	return 0;
}

/* May mark c dead (dt_conn_fail): it is dropped after this wakeup. */
static void handle(struct dt_conn *c, struct dt_msg *msg)
{
	char reason[DT_REASON_MAX] = "";
	struct dt_vm *vm = c->vm;
	int r;

	if (msg->hdr.type == DT_MSG_HELLO) {
		if (vm) {
			reply_error(c, DT_MSG_ERROR, EPROTO, &msg->hdr, "HELLO after WELCOME");
			dt_conn_fail(c, "protocol error: HELLO after WELCOME");
			return;
		}
		on_hello(c, msg);
		return;
	}
	if (!vm) {
		reply_error(c, DT_MSG_ERROR, EPROTO, &msg->hdr, "the first message must be HELLO");
		dt_conn_fail(c, "protocol error: the first message must be HELLO");
		return;
	}

	switch (msg->hdr.type) {
	case DT_MSG_ADD_SLOT:
		r = on_add_slot(c, msg, reason, sizeof(reason));
		break;
	case DT_MSG_REMOVE_SLOT:
		dt_vm_consume_finish(vm); /* the slot's last bits go in the next epoch */
		r = dt_collector_remove_slot(&vm->collector, msg->u.remove_slot.slot);
		if (r < 0)
			snprintf(reason, sizeof(reason), "slot 0x%x was not added",
				 msg->u.remove_slot.slot);
		else
			dt_manager_notify(c->m, vm, DT_CHANGE_STATE);
		break;
	case DT_MSG_ADD_RING:
		r = on_add_ring(c, msg, reason, sizeof(reason));
		break;
	case DT_MSG_ADD_BITMAP:
		r = on_add_bitmap(c, msg, reason, sizeof(reason));
		break;
	case DT_MSG_RESET_DONE:
		dt_vm_reset_done(vm, msg->u.done.ref_seq);
		return;
	case DT_MSG_SYNC_DONE:
		dt_vm_sync_done(vm, msg->u.done.ref_seq);
		return;
	case DT_MSG_RING_FULL:
		dt_vm_ring_full(vm, msg->u.ring_full.vcpu);
		return;
	case DT_MSG_MEMORY_SAMPLE:
		r = on_memory_sample(c, &msg->u.memory_sample, reason, sizeof(reason));
		break;
	case DT_MSG_PING: {
		struct dt_msg_ping p = msg->u.ping;
		dt_conn_send(c, DT_MSG_PONG, &p, NULL);
		return;
	}
	case DT_MSG_PONG:
	case DT_MSG_ERROR:
		return;
	case DT_MSG_DETACH:
		/* Count everything before the ACK: the VMM may stop tracking then. */
		dt_vm_consume_finish(vm);
		if (vm->collector.ops->harvest)
			vm->collector.ops->harvest(&vm->collector);
		if (vm->collector.ops->consume)
			vm->collector.ops->consume(&vm->collector);
		reply_ack(c, &msg->hdr);
		dt_conn_fail(c, "VMM detached");
		return;
	default:
		r = -EPROTO;
		snprintf(reason, sizeof(reason), "%s is not a message a VMM sends",
			 dt_msg_type_name(msg->hdr.type));
	}
	if (r < 0) {
		dt_log(LOG_NOTICE, "vm %u (%s): %s refused: %s", vm->id, vm->name,
		       dt_msg_type_name(msg->hdr.type), reason);
		reply_error(c, DT_MSG_ERROR, r, &msg->hdr, reason);
	} else {
		reply_ack(c, &msg->hdr);
	}
}

static const char *recv_error_reason(int r)
{
	switch (r) {
	case -EBADMSG:
		return "bad header (short message or bad magic)";
	case -EPROTONOSUPPORT:
		return "unsupported protocol version";
	case -EMSGSIZE:
		return "payload length does not match the message type";
	case -EBADF:
		return "wrong number of file descriptors";
	case -EPROTO:
		return "malformed message (reserved fields, enums or strings)";
	default:
		return "receive error";
	}
}

static void conn_read(struct dt_conn *c)
{
	for (int i = 0; i < DT_MSGS_PER_WAKEUP && !c->dead; i++) {
		struct dt_msg msg;
		int r;

		/* On a framing error the header is kept when its magic was
		 * right, so the ERROR can name the offending message. */
		msg.hdr = (struct dt_hdr){ 0 };
		r = dt_msg_recv(c->fd, &msg);

		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r == 0) {
			dt_conn_fail(c, "VMM closed the connection");
			return;
		}
		if (r == -EOPNOTSUPP) {
			/* Forward compatibility: refuse the message, keep the VMM. */
			reply_error(c, DT_MSG_ERROR, EOPNOTSUPP, &msg.hdr, "unknown message type");
			continue;
		}
		if (r < 0) {
			const char *why = recv_error_reason(r);
			char reason[DT_REASON_MAX];

			reply_error(c, DT_MSG_ERROR, r, &msg.hdr, why);
			dt_log(LOG_NOTICE, "attach connection of pid %d dropped: %s", c->cred.pid,
			       why);
			snprintf(reason, sizeof(reason), "protocol error: %s", why);
			dt_conn_fail(c, reason);
			return;
		}
		handle(c, &msg);
		dt_msg_close_fds(&msg);
	}
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	conn_read(userdata);
	return 0;
}

static int on_handshake_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_conn *c = userdata;

	dt_log(LOG_NOTICE, "attach connection of pid %d dropped: no HELLO within %llu ms",
	       c->cred.pid, (unsigned long long)c->m->config.handshake_timeout_us / 1000);
	dt_conn_fail(c, "no HELLO in time");
	return 0;
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_manager *m = userdata;

	m->accept_starved = false;
	accept_update(m);
	return 0;
}

/* accept() failed for want of fds or memory: pause, retry on a timer or a freed fd. */
static void accept_starve(struct dt_manager *m, int error)
{
	if (!m->accept_warned)
		dt_log(LOG_WARNING, "attach: cannot accept connections: %s; paused until an fd "
				    "is freed (retried every %u ms)",
		       strerror(error), DT_ACCEPT_RETRY_US / 1000);
	m->accept_warned = true;
	m->accept_starved = true;
	accept_update(m);
	if (m->accept_retry) {
		sd_event_source_set_time(m->accept_retry, dt_now_us() + DT_ACCEPT_RETRY_US);
		sd_event_source_set_enabled(m->accept_retry, SD_EVENT_ONESHOT);
	}
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dt_manager *m = userdata;
	socklen_t len = sizeof(struct ucred);
	struct dt_conn *c;
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			accept_starve(m, errno);
		return 0; /* EAGAIN, or the peer went (ECONNABORTED, ...) */
	}
	m->accept_warned = false;
	/* Unauthenticated connections are bounded too. */
	if (m->nconns >= 2 * m->config.max_vms + 16) {
		dt_log(LOG_WARNING, "attach: too many connections, dropping one");
		close(cfd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		accept_starve(m, ENOMEM);
		return 0;
	}
	c->m = m;
	c->fd = cfd;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		close(cfd);
		free(c);
		return 0;
	}
	c->allowed = cred_allowed(&m->config, cfd, &c->cred);
	r = sd_event_add_io(m->event, &c->source, cfd, EPOLLIN, on_conn_io, c);
	if (r >= 0)
		r = sd_event_add_defer(m->event, &c->reap, on_conn_reap, c);
	if (r >= 0)
		r = sd_event_add_time_relative(m->event, &c->handshake_timer, CLOCK_MONOTONIC,
					       m->config.handshake_timeout_us, 10000,
					       on_handshake_timeout, c);
	if (r < 0) {
		conn_free(c);
		if (r == -EMFILE || r == -ENFILE || r == -ENOMEM)
			accept_starve(m, -r);
		return 0;
	}
	/* VMM messages (RING_FULL, SYNC_DONE, ...) are part of the harvest. */
	sd_event_source_set_priority(c->source, SD_EVENT_PRIORITY_IMPORTANT);
	/*
	 * A drop goes before any other work: a VMM that reconnects at once
	 * finds its VM detached, not still attached to the dead connection.
	 */
	sd_event_source_set_priority(c->reap, SD_EVENT_PRIORITY_IMPORTANT - 1);
	sd_event_source_set_enabled(c->reap, SD_EVENT_OFF);
	c->handshaking = true;
	m->nhandshakes++;
	accept_update(m);
	c->next = m->conns;
	m->conns = c;
	m->nconns++;
	return 0;
}

int dt_attach_listen(struct dt_manager *m, int fd)
{
	int r;

	m->attach_fd = fd;
	r = sd_event_add_time(m->event, &m->accept_retry, CLOCK_MONOTONIC, UINT64_MAX, 10000,
			      on_accept_retry, m);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(m->accept_retry, SD_EVENT_OFF);
	return sd_event_add_io(m->event, &m->attach_source, fd, EPOLLIN, on_accept, m);
}
