/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared between the D-Bus connection and manager (dbus.c) and the VM objects (dbus_vm.c). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "manager.h"

#define DT_BUS_NAME "org.dirtytrack.DirtyTrack1"
#define DT_BUS_PATH "/org/dirtytrack/DirtyTrack1"
#define DT_BUS_VM_PREFIX DT_BUS_PATH "/vm"
#define DT_BUS_MANAGER_IFACE DT_BUS_NAME ".Manager"
#define DT_BUS_VM_IFACE DT_BUS_NAME ".VM"
#define DT_BUS_ERROR_NO_SUCH_VM DT_BUS_NAME ".Error.NoSuchVM"
#define DT_BUS_ERROR_INVALID_ARGUMENT DT_BUS_NAME ".Error.InvalidArgument"
#define DT_BUS_ERROR_NO_DATA DT_BUS_NAME ".Error.NoData"
#define DT_BUS_ERROR_NOT_EXACT DT_BUS_NAME ".Error.NotExact" /* observed via libvirt */

#define DT_BUS_HISTORY_LIMIT_MAX 100000 /* as REST's ?limit= */
#define DT_BUS_VM_MAX_PROPERTIES 48 /* properties in dt_bus_vm_vtable, at most */

/* A VM with per-epoch figures waiting for the next coalesced signal. */
struct dt_bus_vm {
	struct dt_bus_vm *next;
	struct dt_vm *vm;
	bool pending;
};

struct dt_bus {
	struct dt_manager *m;
	sd_bus *bus; /* NULL once dropped */
	char *what; /* "the system bus", for messages */
	sd_bus_slot *manager_vtable;
	sd_bus_slot *object_manager;
	sd_bus_slot *vm_vtable;
	sd_bus_slot *vm_enumerator;
	sd_bus_slot *name_request;
	sd_bus_slot *disconnected;
	sd_event_source *flush; /* coalesced per-epoch PropertiesChanged */
	sd_event_source *drop; /* tears the connection down outside its callbacks */
	sd_event_source *retry; /* reconnects after a failure, with backoff */
	uint64_t retry_us; /* the next retry's delay */
	uint64_t last_flush_us;
	struct dt_bus_vm *vms;
	/* Per-epoch VM properties (EMITS_INVALIDATION): invalidated, coalesced. */
	char *epoch_properties[DT_BUS_VM_MAX_PROPERTIES];
	/* Those and the slow ones (EMITS_CHANGE, with values): on every State change. */
	char *state_properties[DT_BUS_VM_MAX_PROPERTIES];
	struct dt_planner *planner; /* Plan() off the loop: replied to when computed */
	uint32_t attached, nvms; /* last AttachedVMs and VMs signalled */
	bool observing;
	bool down; /* a failure was logged; the next name acquisition says "again" */
};

/* A link a plan may be asked at: REST's bounds (url.h) on bandwidth and downtime. */
bool dt_bus_link_valid(uint64_t bandwidth, uint64_t downtime_us);
/* Manager.Evacuate (dbus_evacuate.c); userdata is the dt_bus. */
int dt_bus_method_evacuate(sd_bus_message *msg, void *userdata, sd_bus_error *error);

extern const sd_bus_vtable dt_bus_vm_vtable[];
/*
 * The names of the VM properties whose vtable flags have any of flags, in
 * vtable order, NULL-terminated in ret[max]: the change signals are
 * derived from the vtable, never listed by hand. Returns how many match
 * (as snprintf: when that is max or more, ret holds max - 1 of them).
 */
size_t dt_bus_vm_properties(uint64_t flags, char **ret, size_t max);

/* The VM's object path: DT_BUS_VM_PREFIX "/" + sd_bus_path_encode(id). */
int dt_bus_vm_path(const struct dt_vm *vm, char **ret);
/* sd-bus find and enumerate callbacks for DT_BUS_VM_PREFIX; userdata is the dt_bus. */
int dt_bus_vm_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
		   void **ret_found, sd_bus_error *ret_error);
int dt_bus_vm_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
			sd_bus_error *ret_error);
