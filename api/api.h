/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The REST API (libmicrohttpd on the daemon's sd-event loop). */
#pragma once

struct dt_manager;
struct dt_api;

/* api_fd: a listening AF_UNIX stream socket; TCP comes from the config. */
int dt_api_new(struct dt_manager *m, int api_fd, struct dt_api **ret);
struct dt_api *dt_api_free(struct dt_api *a);
