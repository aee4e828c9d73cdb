/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A peer that floods dirtytrackd over the system bus from one connection:
 * keeps `inflight` calls outstanding for `seconds`, alternating valid heavy
 * calls (GetAll, GetHistory, Plan) and malformed ones (wrong signatures,
 * out-of-range values, unknown members and objects). Prints one line:
 * "calls N replies N errors N malformed_accepted N" and exits 0.
 * Built by tests/integration/dbus-flood.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define NAME "org.dirtytrack.DirtyTrack1"
#define VM_IFACE NAME ".VM"

static unsigned long calls, replies, errors, accepted_bad, outstanding;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	outstanding--;
	if (sd_bus_message_is_method_error(m, NULL))
		errors++;
	else {
		replies++;
		if (userdata) /* a malformed call was answered */
			accepted_bad++;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int send_one(sd_bus *bus, const char *vm, unsigned long i)
{
	static void *const BAD = (void *)1;
	const char *mgr = "/org/dirtytrack/DirtyTrack1";

	switch (i % 10) {
	case 0:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, "org.freedesktop.DBus.Properties",
						"GetAll", on_reply, NULL, "s", VM_IFACE);
	case 1:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, VM_IFACE, "GetHistory",
						on_reply, NULL, "tu", (uint64_t)0, (uint32_t)100000);
	case 2:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, VM_IFACE, "Plan", on_reply,
						NULL, "tt", (uint64_t)1000, (uint64_t)1);
	case 3:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, VM_IFACE, "GetHistory",
						on_reply, BAD, "s", "x");
	case 4:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, VM_IFACE, "GetHistory",
						on_reply, BAD, "tu", (uint64_t)0, (uint32_t)0);
	case 5:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, VM_IFACE, "Plan", on_reply, BAD,
						"tt", (uint64_t)0, (uint64_t)0);
	case 6:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, VM_IFACE, "Plan", on_reply, BAD,
						"tts", (uint64_t)1, (uint64_t)1, "x");
	case 7:
		return sd_bus_call_method_async(bus, NULL, NAME, mgr, NAME ".Manager", "GetVM",
						on_reply, BAD, "u", (uint32_t)1);
	case 8:
		return sd_bus_call_method_async(bus, NULL, NAME, "/org/dirtytrack/DirtyTrack1/vm/_30",
						VM_IFACE, "GetHistory", on_reply, BAD, "tu",
						(uint64_t)0, (uint32_t)1);
	default:
		return sd_bus_call_method_async(bus, NULL, NAME, vm, "org.freedesktop.DBus.Properties",
						"Get", on_reply, BAD, "ss", VM_IFACE, "Nope");
	}
}

int main(int argc, char **argv)
{
	sd_bus *bus = NULL;
	double end;
	unsigned inflight;
	int r;

	if (argc != 4) {
		fprintf(stderr, "usage: dbus-flood VM_PATH SECONDS INFLIGHT\n");
		return 2;
	}
	end = now() + atof(argv[2]);
	inflight = (unsigned)atoi(argv[3]);
	r = sd_bus_open_system(&bus);
	if (r < 0) {
		fprintf(stderr, "dbus-flood: cannot connect: %s\n", strerror(-r));
		return 1;
	}
	while (now() < end) {
		while (outstanding < inflight) {
			r = send_one(bus, argv[1], calls);
			if (r < 0) {
				fprintf(stderr, "dbus-flood: send: %s\n", strerror(-r));
				return 1;
			}
			calls++;
			outstanding++;
		}
		r = sd_bus_process(bus, NULL);
		if (r < 0) {
			fprintf(stderr, "dbus-flood: process: %s\n", strerror(-r));
			return 1;
		}
		if (r == 0)
			sd_bus_wait(bus, 100000);
	}
	printf("calls %lu replies %lu errors %lu malformed_accepted %lu\n", calls, replies, errors,
	       accepted_bad);
	sd_bus_flush_close_unref(bus);
	return 0;
}
