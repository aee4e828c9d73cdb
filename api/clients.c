/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "clients.h"

int dt_clients_init(struct dt_clients *c, uint32_t slots, uint32_t max_per_client)
{
	c->v = calloc(slots ? slots : 1, sizeof(*c->v));
	if (!c->v)
		return -ENOMEM;
	c->slots = slots;
	c->max_per_client = max_per_client;
	return 0;
}

void dt_clients_done(struct dt_clients *c)
{
	free(c->v);
	c->v = NULL;
	c->slots = 0;
}

int dt_clients_add(struct dt_clients *c, uid_t uid)
{
	struct dt_client_count *free_slot = NULL;

	for (uint32_t i = 0; i < c->slots; i++) {
		struct dt_client_count *e = &c->v[i];

		if (e->n && e->uid == uid) {
			if (e->n >= c->max_per_client)
				return -EUSERS;
			e->n++;
			return 0;
		}
		if (!e->n && !free_slot)
			free_slot = e;
	}
	if (!free_slot)
		return -ENOSPC;
	*free_slot = (struct dt_client_count){ .uid = uid, .n = 1 };
	return 0;
}

void dt_clients_remove(struct dt_clients *c, uid_t uid)
{
	for (uint32_t i = 0; i < c->slots; i++)
		if (c->v[i].n && c->v[i].uid == uid) {
			c->v[i].n--;
			return;
		}
}
