/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * D-Bus front end: org.dirtytrack.DirtyTrack1 on the bus config.dbus names,
 * with sd-bus attached to the daemon's sd-event loop.
 *
 * The Manager object at DT_BUS_PATH carries an ObjectManager; every VM in
 * the registry is an object below DT_BUS_VM_PREFIX (dbus_vm.c). The
 * registry's observer turns changes into signals: InterfacesAdded/Removed
 * as VMs come and go, PropertiesChanged with values for the slow
 * properties at once, and for the per-epoch figures an invalidation at
 * most once per config.dbus_interval_us per VM (coalesced by one timer).
 *
 * The bus is a best-effort front end: if it cannot be reached, the name
 * cannot be owned or the connection drops, the daemon logs that once and
 * goes on serving REST. A timer then reconnects, 1 s after the failure and
 * doubling up to 30 s, silently; once the name is owned again it says so
 * once, and every VM is announced with InterfacesAdded (the objects are
 * registered afresh on the new connection). Connecting never blocks the
 * loop: sd-bus connects a Unix socket without waiting, authenticates and
 * says Hello from the loop, and the name is requested asynchronously.
 * Bus traffic is dispatched at a lower priority than the epoch timers, so a
 * peer flooding calls cannot delay a harvest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"
#include "dbus.h"
#include "dbus_int.h"
#include "dt_util.h"
#include "log.h"

/* Epoch timers run at the default priority 0; bus messages wait for them. */
#define DT_BUS_PRIORITY 10

/* Reconnect backoff. */
#define DT_BUS_RETRY_MIN_US (1000 * 1000ULL)
#define DT_BUS_RETRY_MAX_US (30 * 1000 * 1000ULL)

static struct dt_bus_vm *entry_find(struct dt_bus *b, const struct dt_vm *vm)
{
	for (struct dt_bus_vm *e = b->vms; e; e = e->next)
		if (e->vm == vm)
			return e;
	return NULL;
}

static struct dt_bus_vm *entry_get(struct dt_bus *b, struct dt_vm *vm)
{
	struct dt_bus_vm *e = entry_find(b, vm);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->vm = vm;
	e->next = b->vms;
	b->vms = e;
	return e;
}

static void entry_remove(struct dt_bus *b, const struct dt_vm *vm)
{
	for (struct dt_bus_vm **p = &b->vms; *p; p = &(*p)->next)
		if ((*p)->vm == vm) {
			struct dt_bus_vm *e = *p;
			*p = e->next;
			free(e);
			return;
		}
}

/* Tear the connection down; b stays as an inert placeholder until dt_bus_free(). */
static void bus_close(struct dt_bus *b)
{
	if (b->observing) {
		dt_manager_unobserve(b->m, b);
		b->observing = false;
	}
	b->flush = sd_event_source_disable_unref(b->flush);
	b->drop = sd_event_source_disable_unref(b->drop);
	b->name_request = sd_bus_slot_unref(b->name_request);
	b->disconnected = sd_bus_slot_unref(b->disconnected);
	b->vm_enumerator = sd_bus_slot_unref(b->vm_enumerator);
	b->vm_vtable = sd_bus_slot_unref(b->vm_vtable);
	b->object_manager = sd_bus_slot_unref(b->object_manager);
	b->manager_vtable = sd_bus_slot_unref(b->manager_vtable);
	if (b->bus) {
		sd_bus_detach_event(b->bus);
		b->bus = sd_bus_flush_close_unref(b->bus);
	}
	while (b->vms) {
		struct dt_bus_vm *e = b->vms;
		b->vms = e->next;
		free(e);
	}
}

/* True for the first failure of an outage: that one is logged, the retries are not. */
static bool first_failure(struct dt_bus *b)
{
	bool first = !b->down;

	b->down = true;
	return first;
}

static void schedule_retry(struct dt_bus *b);

static int on_drop(sd_event_source *s, void *userdata)
{
	struct dt_bus *b = userdata;

	bus_close(b);
	schedule_retry(b);
	return 0;
}

/* Give up on this connection (logged by the caller, once); REST goes on, a retry follows. */
static void bus_drop(struct dt_bus *b)
{
	if (b->drop || !b->bus)
		return;
	/* Not from inside an sd-bus callback: from a defer source. */
	if (sd_event_add_defer(b->m->event, &b->drop, on_drop, b) < 0)
		dt_log(LOG_ERR, "D-Bus: cannot schedule the disconnect; the bus stays idle");
}

/* Signals. A failure to queue one (the bus is going) is not worth a log line each. */

static void emit_manager_counts(struct dt_bus *b)
{
	uint32_t attached = dt_manager_attached(b->m);
	char *names[3];
	unsigned n = 0;

	if (attached != b->attached)
		names[n++] = "AttachedVMs";
	if (b->m->nvms != b->nvms)
		names[n++] = "VMs";
	names[n] = NULL;
	b->attached = attached;
	b->nvms = b->m->nvms;
	if (n)
		(void)sd_bus_emit_properties_changed_strv(b->bus, DT_BUS_PATH,
							  DT_BUS_MANAGER_IFACE, names);
}

static void emit_vm(struct dt_bus *b, struct dt_vm *vm, char **names)
{
	_cleanup_free_ char *path = NULL;

	if (dt_bus_vm_path(vm, &path) < 0)
		return;
	(void)sd_bus_emit_properties_changed_strv(b->bus, path, DT_BUS_VM_IFACE, names);
}

static int on_flush(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_bus *b = userdata;

	b->last_flush_us = dt_now_us();
	for (struct dt_bus_vm *e = b->vms; e; e = e->next)
		if (e->pending) {
			e->pending = false;
			emit_vm(b, e->vm, b->epoch_properties);
		}
	return 0;
}

/* Arm the flush timer for one interval after the last flush (or now). */
static void schedule_flush(struct dt_bus *b)
{
	uint64_t when = b->last_flush_us + b->m->config.dbus_interval_us;
	int enabled = SD_EVENT_OFF;

	(void)sd_event_source_get_enabled(b->flush, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	(void)sd_event_source_set_time(b->flush, DT_MAX(when, dt_now_us()));
	(void)sd_event_source_set_enabled(b->flush, SD_EVENT_ONESHOT);
}

static void on_vm_changed(void *userdata, struct dt_vm *vm, enum dt_change what)
{
	struct dt_bus *b = userdata;
	_cleanup_free_ char *path = NULL;
	struct dt_bus_vm *e;

	if (!b->bus)
		return;
	switch (what) {
	case DT_CHANGE_ADDED:
		if (dt_bus_vm_path(vm, &path) >= 0)
			(void)sd_bus_emit_interfaces_added(b->bus, path, DT_BUS_VM_IFACE, NULL);
		emit_manager_counts(b);
		break;
	case DT_CHANGE_REMOVED:
		if (dt_bus_vm_path(vm, &path) >= 0)
			(void)sd_bus_emit_interfaces_removed(b->bus, path, DT_BUS_VM_IFACE, NULL);
		entry_remove(b, vm);
		emit_manager_counts(b);
		break;
	case DT_CHANGE_STATE:
		/* Slow properties with values, at once; per-epoch ones invalidated with them. */
		emit_vm(b, vm, b->state_properties);
		e = entry_find(b, vm);
		if (e)
			e->pending = false;
		emit_manager_counts(b);
		break;
	case DT_CHANGE_EPOCH:
		e = entry_get(b, vm);
		if (!e)
			return; /* out of memory: this epoch goes unsignalled */
		e->pending = true;
		schedule_flush(b);
		break;
	default:
		break;
	}
}

/* Manager interface */

static int get_version(sd_bus *bus, const char *path, const char *interface,
		       const char *property, sd_bus_message *reply, void *userdata,
		       sd_bus_error *error)
{
	return sd_bus_message_append(reply, "s", "1");
}

static int get_epoch_seconds(sd_bus *bus, const char *path, const char *interface,
			     const char *property, sd_bus_message *reply, void *userdata,
			     sd_bus_error *error)
{
	struct dt_bus *b = userdata;

	return sd_bus_message_append(reply, "d", (double)b->m->config.epoch_us / 1e6);
}

static int get_interval(sd_bus *bus, const char *path, const char *interface,
			const char *property, sd_bus_message *reply, void *userdata,
			sd_bus_error *error)
{
	struct dt_bus *b = userdata;

	return sd_bus_message_append(reply, "d", (double)b->m->config.dbus_interval_us / 1e6);
}

static int get_attached(sd_bus *bus, const char *path, const char *interface,
			const char *property, sd_bus_message *reply, void *userdata,
			sd_bus_error *error)
{
	struct dt_bus *b = userdata;

	return sd_bus_message_append(reply, "u", dt_manager_attached(b->m));
}

static int get_vms(sd_bus *bus, const char *path, const char *interface, const char *property,
		   sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct dt_bus *b = userdata;

	return sd_bus_message_append(reply, "u", b->m->nvms);
}

/* GetVM(s key) -> o: by id, uuid or name, as REST's /v1/vms/{key}. */
static int method_get_vm(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct dt_bus *b = userdata;
	_cleanup_free_ char *path = NULL;
	const char *key;
	struct dt_vm *vm;
	int r;

	r = sd_bus_message_read(msg, "s", &key);
	if (r < 0)
		return r;
	vm = dt_manager_find_vm(b->m, key);
	if (!vm)
		return sd_bus_error_setf(error, DT_BUS_ERROR_NO_SUCH_VM, "no VM '%.128s'", key);
	r = dt_bus_vm_path(vm, &path);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, "o", path);
}

/* ListVMs() -> a(ussso): id, name, uuid, state, object path; oldest first. */
static int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_free_ struct dt_vm **v = NULL;
	struct dt_bus *b = userdata;
	size_t n = 0;
	int r;

	v = calloc(b->m->nvms + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (struct dt_vm *vm = b->m->vms; vm && n < b->m->nvms; vm = vm->next)
		v[n++] = vm;
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "(ussso)");
	if (r < 0)
		return r;
	while (n > 0) {
		struct dt_vm *vm = v[--n];
		_cleanup_free_ char *path = NULL;
		char uuid[37] = "";

		if (!dt_uuid_is_null(vm->uuid))
			dt_uuid_format(vm->uuid, uuid);
		r = dt_bus_vm_path(vm, &path);
		if (r < 0)
			return r;
		r = sd_bus_message_append(reply, "(ussso)", vm->id, vm->name, uuid,
					  dt_vm_state_name(vm->state), path);
		if (r < 0)
			return r;
	}
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("EpochSeconds", "d", get_epoch_seconds, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PropertiesIntervalSeconds", "d", get_interval, 0,
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("VMs", "u", get_vms, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("AttachedVMs", "u", get_attached, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_METHOD_WITH_ARGS("GetVM", SD_BUS_ARGS("s", key), SD_BUS_RESULT("o", vm),
				method_get_vm, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListVMs", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ussso)", vms),
				method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Evacuate",
				SD_BUS_ARGS("t", bandwidth, "t", max_downtime_usec, "u", parallel),
				SD_BUS_RESULT("d", total_seconds, "a(usssdds)", vms),
				dt_bus_method_evacuate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

/* Connection */

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct dt_bus *b = userdata;

	if (b->drop)
		return 0; /* already given up, and said so */
	if (first_failure(b))
		dt_log(LOG_WARNING, "D-Bus: disconnected from %s; serving REST only until it is back",
		       b->what);
	bus_drop(b);
	return 0;
}

static int on_name(sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct dt_bus *b = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(reply);
	uint32_t ret = 0;
	int r;

	b->name_request = sd_bus_slot_unref(b->name_request);
	if (e) {
		if (first_failure(b))
			dt_log(LOG_WARNING, "D-Bus: cannot own %s on %s: %s; serving REST only",
			       DT_BUS_NAME, b->what, e->message ? e->message : e->name);
		bus_drop(b);
		return 0;
	}
	r = sd_bus_message_read(reply, "u", &ret);
	if (r < 0 || (ret != 1 && ret != 4)) { /* PRIMARY_OWNER, ALREADY_OWNER */
		if (first_failure(b))
			dt_log(LOG_WARNING,
			       "D-Bus: %s is owned by another peer on %s; serving REST only",
			       DT_BUS_NAME, b->what);
		bus_drop(b);
		return 0;
	}
	b->retry_us = DT_BUS_RETRY_MIN_US;
	if (!b->down) {
		dt_log(LOG_INFO, "D-Bus: serving %s on %s", DT_BUS_NAME, b->what);
		return 0;
	}
	b->down = false;
	dt_log(LOG_INFO, "D-Bus: serving %s again on %s", DT_BUS_NAME, b->what);
	/* Clients saw the objects go with the name (or never saw them): announce them all. */
	for (struct dt_vm *vm = b->m->vms; vm; vm = vm->next) {
		_cleanup_free_ char *path = NULL;

		if (dt_bus_vm_path(vm, &path) >= 0)
			(void)sd_bus_emit_interfaces_added(b->bus, path, DT_BUS_VM_IFACE, NULL);
	}
	return 0;
}

static int bus_open(const char *spec, sd_bus **ret)
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	int r;

	if (strcmp(spec, "system") == 0)
		r = sd_bus_open_system(&bus);
	else if (strcmp(spec, "session") == 0)
		r = sd_bus_open_user(&bus);
	else {
		r = sd_bus_new(&bus);
		if (r < 0)
			return r;
		r = sd_bus_set_address(bus, spec);
		if (r < 0)
			return r;
		/* A bus, not a peer: without this RequestName fails with EINVAL. */
		r = sd_bus_set_bus_client(bus, 1);
		if (r < 0)
			return r;
		r = sd_bus_start(bus);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(bus);
	return 0;
}

/* Objects, observer and name; -errno on failure (then the caller drops b). */
static int bus_setup(struct dt_bus *b)
{
	static const struct dt_observer observer = { .vm_changed = on_vm_changed };
	struct dt_observer o = observer;
	int r;

	r = sd_bus_attach_event(b->bus, b->m->event, DT_BUS_PRIORITY);
	if (r < 0)
		return r;
	r = sd_bus_match_signal_async(b->bus, &b->disconnected, "org.freedesktop.DBus.Local",
				      "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
				      "Disconnected", on_disconnected, NULL, b);
	if (r < 0)
		return r;
	r = sd_bus_add_object_vtable(b->bus, &b->manager_vtable, DT_BUS_PATH,
				     DT_BUS_MANAGER_IFACE, manager_vtable, b);
	if (r < 0)
		return r;
	r = sd_bus_add_object_manager(b->bus, &b->object_manager, DT_BUS_PATH);
	if (r < 0)
		return r;
	r = sd_bus_add_fallback_vtable(b->bus, &b->vm_vtable, DT_BUS_VM_PREFIX, DT_BUS_VM_IFACE,
				       dt_bus_vm_vtable, dt_bus_vm_find, b);
	if (r < 0)
		return r;
	r = sd_bus_add_node_enumerator(b->bus, &b->vm_enumerator, DT_BUS_VM_PREFIX,
				       dt_bus_vm_enumerate, b);
	if (r < 0)
		return r;
	r = sd_event_add_time(b->m->event, &b->flush, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_flush,
			      b);
	if (r < 0)
		return r;
	(void)sd_event_source_set_enabled(b->flush, SD_EVENT_OFF);
	(void)sd_event_source_set_priority(b->flush, DT_BUS_PRIORITY);
	o.userdata = b;
	r = dt_manager_observe(b->m, &o);
	if (r < 0)
		return r;
	b->observing = true;
	b->attached = dt_manager_attached(b->m);
	b->nvms = b->m->nvms;
	/* Asynchronously: the loop never waits for the bus. */
	return sd_bus_request_name_async(b->bus, &b->name_request, DT_BUS_NAME, 0, on_name, b);
}

/* One attempt: connect and set up (the name follows asynchronously); on failure b is closed. */
static int bus_connect(struct dt_bus *b)
{
	int r;

	r = bus_open(b->m->config.dbus, &b->bus);
	if (r < 0) {
		if (first_failure(b))
			dt_log(LOG_WARNING, "D-Bus: cannot connect to %s: %s; serving REST only",
			       b->what, strerror(-r));
		return r;
	}
	r = bus_setup(b);
	if (r < 0) {
		if (first_failure(b))
			dt_log(LOG_WARNING, "D-Bus: cannot set up %s on %s: %s; serving REST only",
			       DT_BUS_NAME, b->what, strerror(-r));
		bus_close(b);
		return r;
	}
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dt_bus *b = userdata;

	if (bus_connect(b) < 0)
		schedule_retry(b);
	return 0;
}

/* Arm the reconnect timer for the current delay and double the next one. */
static void schedule_retry(struct dt_bus *b)
{
	uint64_t when = dt_now_us() + b->retry_us;
	int r;

	b->retry_us = DT_MIN(b->retry_us * 2, DT_BUS_RETRY_MAX_US);
	if (b->retry) {
		(void)sd_event_source_set_time(b->retry, when);
		(void)sd_event_source_set_enabled(b->retry, SD_EVENT_ONESHOT);
		return;
	}
	r = sd_event_add_time(b->m->event, &b->retry, CLOCK_MONOTONIC, when, 10 * 1000, on_retry,
			      b);
	if (r < 0) {
		dt_log(LOG_ERR, "D-Bus: cannot schedule a reconnect: %s; the bus stays off",
		       strerror(-r));
		return;
	}
	(void)sd_event_source_set_priority(b->retry, DT_BUS_PRIORITY);
}

int dt_bus_new(struct dt_manager *m, struct dt_bus **ret)
{
	const char *spec = m->config.dbus;
	struct dt_bus *b;
	int r;

	*ret = NULL;
	if (!spec)
		return 0; /* off */
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->m = m;
	b->retry_us = DT_BUS_RETRY_MIN_US;
	/* A vtable outgrowing the lists is the programmer's error: every D-Bus test starts here. */
	if (dt_bus_vm_properties(SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION, b->epoch_properties,
				 ARRAY_SIZE(b->epoch_properties)) >= ARRAY_SIZE(b->epoch_properties) ||
	    dt_bus_vm_properties(SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE |
					 SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION,
				 b->state_properties,
				 ARRAY_SIZE(b->state_properties)) >= ARRAY_SIZE(b->state_properties)) {
		dt_log(LOG_ERR, "D-Bus: more VM properties than DT_BUS_VM_MAX_PROPERTIES");
		free(b);
		return -E2BIG;
	}
	r = dt_planner_new(m->event, m->config.api_max_pending_plans, &b->planner);
	if (r < 0) {
		free(b);
		return r;
	}
	if (strcmp(spec, "system") == 0 || strcmp(spec, "session") == 0)
		r = asprintf(&b->what, "the %s bus", spec);
	else
		r = asprintf(&b->what, "bus %s", spec);
	if (r < 0) {
		dt_planner_free(b->planner);
		free(b);
		return -ENOMEM;
	}
	r = bus_connect(b);
	if (r == -ENOMEM) {
		dt_bus_free(b);
		return r;
	}
	if (r < 0)
		schedule_retry(b);
	*ret = b;
	return 0;
}

struct dt_bus *dt_bus_free(struct dt_bus *b)
{
	if (!b)
		return NULL;
	b->retry = sd_event_source_disable_unref(b->retry);
	/* Pending Plan() calls get their (error) reply while the bus is still there. */
	b->planner = dt_planner_free(b->planner);
	bus_close(b);
	free(b->what);
	free(b);
	return NULL;
}
