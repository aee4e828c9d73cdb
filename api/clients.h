/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Connections per client of a Unix listener, where libmicrohttpd's
 * per-IP limit cannot tell clients apart: a client is its peer uid
 * (SO_PEERCRED). A fixed table, one slot per possible connection, so
 * accounting never allocates after setup.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct dt_client_count {
	uid_t uid;
	uint32_t n; /* 0: a free slot */
};

struct dt_clients {
	struct dt_client_count *v;
	uint32_t slots; /* the listener's connection limit */
	uint32_t max_per_client;
};

int dt_clients_init(struct dt_clients *c, uint32_t slots, uint32_t max_per_client);
void dt_clients_done(struct dt_clients *c);
/* Count one more connection of uid; -EUSERS when it has max_per_client, -ENOSPC when full. */
int dt_clients_add(struct dt_clients *c, uid_t uid);
void dt_clients_remove(struct dt_clients *c, uid_t uid);
