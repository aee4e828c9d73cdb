/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus front end (sd-bus on the daemon's sd-event loop). */
#pragma once

struct dt_manager;
struct dt_bus;

/*
 * Connect to the bus named by config.dbus and serve org.dirtytrack.DirtyTrack1.
 * A bus that cannot be reached is not an error: the daemon logs it once,
 * keeps serving REST and retries in the background (1 s doubling to 30 s).
 * *ret is NULL only when config.dbus is off. Fails only on -ENOMEM (and
 * -E2BIG for a VM vtable larger than its change lists).
 */
int dt_bus_new(struct dt_manager *m, struct dt_bus **ret);
struct dt_bus *dt_bus_free(struct dt_bus *b);
