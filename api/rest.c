/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * REST API: libmicrohttpd in external-epoll mode, driven by the daemon's
 * sd-event loop (MHD's epoll fd is one io source, MHD_get_timeout() one
 * timer), the way systemd-journal-remote does it. One MHD daemon per
 * listener: the Unix socket and the loopback TCP address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "dt_util.h"
#include "json_view.h"
#include "log.h"
#include "manager.h"

#define DT_API_MAX_LISTENERS 2
#define DT_HISTORY_LIMIT_MAX 100000

struct dt_listener {
	struct dt_api *api;
	struct MHD_Daemon *mhd;
	sd_event_source *io;
	sd_event_source *timer;
	const char *name;
};

struct dt_api {
	struct dt_manager *m;
	struct dt_listener l[DT_API_MAX_LISTENERS];
	unsigned n;
};

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status,
				 struct json_object *o, const char *content_type)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* RFC 9457 problem details; "error" repeats the detail for simple clients. */
static enum MHD_Result send_problem(struct MHD_Connection *conn, unsigned status,
				    const char *title, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum MHD_Result send_problem(struct MHD_Connection *conn, unsigned status,
				    const char *title, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "type", json_object_new_string("about:blank"));
	json_object_object_add(o, "title", json_object_new_string(title));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	json_object_object_add(o, "error", json_object_new_string(detail));
	return send_json(conn, status, o, "application/problem+json");
}

static enum MHD_Result not_found(struct MHD_Connection *conn, const char *url)
{
	return send_problem(conn, MHD_HTTP_NOT_FOUND, "Not Found", "no such resource: %s", url);
}

/* Unsigned integer query parameter; *ok false after a 400 was queued. */
static enum MHD_Result query_u64(struct MHD_Connection *conn, const char *name, uint64_t def,
				 uint64_t max, uint64_t *ret, bool *ok)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

	*ok = true;
	*ret = def;
	if (!v)
		return MHD_YES;
	if (dt_parse_u64(v, 0, max, ret) < 0) {
		*ok = false;
		return send_problem(conn, MHD_HTTP_BAD_REQUEST, "Bad Request",
				    "query parameter '%s' must be an integer from 0 to %llu", name,
				    (unsigned long long)max);
	}
	return MHD_YES;
}

static enum MHD_Result route_vm(struct dt_api *a, struct MHD_Connection *conn, const char *url,
				const char *rest)
{
	char key[128];
	const char *sub = strchr(rest, '/');
	size_t klen = sub ? (size_t)(sub - rest) : strlen(rest);
	struct dt_vm *vm;

	if (klen == 0 || klen >= sizeof(key))
		return not_found(conn, url);
	memcpy(key, rest, klen);
	key[klen] = 0;
	vm = dt_manager_find_vm(a->m, key);
	if (!vm)
		return send_problem(conn, MHD_HTTP_NOT_FOUND, "Not Found", "no VM '%s'", key);
	if (!sub || strcmp(sub, "/") == 0)
		return send_json(conn, MHD_HTTP_OK, dt_json_vm(vm), "application/json");
	if (strcmp(sub, "/history") == 0) {
		uint64_t since, limit;
		bool ok;
		enum MHD_Result r = query_u64(conn, "since", 0, UINT64_MAX, &since, &ok);
		if (!ok)
			return r;
		r = query_u64(conn, "limit", 1000, DT_HISTORY_LIMIT_MAX, &limit, &ok);
		if (!ok)
			return r;
		return send_json(conn, MHD_HTTP_OK, dt_json_vm_history(vm, since, limit),
				 "application/json");
	}
	if (strncmp(sub, "/epochs/", 8) == 0) {
		const char *n = sub + 8, *tail = strchr(n, '/');
		char num[24];
		uint64_t epoch;
		struct json_object *o;

		if (!tail || strcmp(tail, "/pages") != 0 || (size_t)(tail - n) >= sizeof(num))
			return not_found(conn, url);
		memcpy(num, n, (size_t)(tail - n));
		num[tail - n] = 0;
		if (dt_parse_u64(num, 0, UINT64_MAX, &epoch) < 0)
			return send_problem(conn, MHD_HTTP_BAD_REQUEST, "Bad Request",
					    "epoch '%s' is not a number", num);
		if (dt_json_vm_epoch_pages(vm, epoch, &o) < 0)
			return send_problem(conn, MHD_HTTP_NOT_FOUND, "Not Found",
					    "epoch %llu of VM %u is not held exactly (the last "
					    "recent_epochs are)",
					    (unsigned long long)epoch, vm->id);
		return send_json(conn, MHD_HTTP_OK, o, "application/json");
	}
	return not_found(conn, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct dt_api *a = cls;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		struct MHD_Response *resp;
		enum MHD_Result ret;
		struct json_object *o = json_object_new_object();
		const char *s;

		json_object_object_add(o, "title", json_object_new_string("Method Not Allowed"));
		json_object_object_add(o, "status", json_object_new_int(405));
		json_object_object_add(o, "detail", json_object_new_string("only GET and HEAD"));
		s = json_object_to_json_string(o);
		resp = MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
		json_object_put(o);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/problem+json");
		ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (*upload_data_size) /* a GET with a body: ignore it */
		*upload_data_size = 0;

	if (strcmp(url, "/v1/vms") == 0 || strcmp(url, "/v1/vms/") == 0)
		return send_json(conn, MHD_HTTP_OK, dt_json_vm_list(a->m), "application/json");
	if (strncmp(url, "/v1/vms/", 8) == 0)
		return route_vm(a, conn, url, url + 8);
	if (strcmp(url, "/v1/health") == 0) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "status", json_object_new_string("ok"));
		json_object_object_add(o, "vms", json_object_new_int((int)a->m->nvms));
		json_object_object_add(o, "attached",
				       json_object_new_int((int)dt_manager_attached(a->m)));
		return send_json(conn, MHD_HTTP_OK, o, "application/json");
	}
	return not_found(conn, url);
}

static void listener_update_timer(struct dt_listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(l->mhd, &ms) == MHD_YES) {
		sd_event_source_set_time(l->timer, dt_now_us() + ms * 1000);
		sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
	}
}

static int on_mhd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dt_listener *l = userdata;

	MHD_run(l->mhd);
	listener_update_timer(l);
	return 0;
}

static int on_mhd_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	return on_mhd_io(NULL, -1, 0, userdata);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	dt_log(LOG_DEBUG, "http: %s", buf);
}

static int listener_start(struct dt_api *a, int fd, const char *name)
{
	const struct dt_config *c = &a->m->config;
	struct dt_listener *l = &a->l[a->n];
	const union MHD_DaemonInfo *info;
	int r;

	l->api = a;
	l->name = name;
	l->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
				  MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)c->api_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)DT_MAX(1, c->api_timeout_us / 1000000),
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!l->mhd) {
		close(fd);
		return -EINVAL;
	}
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		MHD_stop_daemon(l->mhd);
		l->mhd = NULL;
		return -EINVAL;
	}
	r = sd_event_add_io(a->m->event, &l->io, info->epoll_fd, EPOLLIN, on_mhd_io, l);
	if (r < 0)
		return r;
	r = sd_event_add_time(a->m->event, &l->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_mhd_timer,
			      l);
	if (r < 0)
		return r;
	a->n++;
	return 0;
}

/* "127.0.0.1:9111" or "[::1]:9111" -> a bound, listening socket. */
static int bind_tcp(const char *spec, int *ret)
{
	_cleanup_free_ char *host = NULL;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	const char *colon = strrchr(spec, ':');
	uint64_t port;
	int one = 1;
	_cleanup_close_ int fd = -1;

	if (!colon || dt_parse_u64(colon + 1, 0, 65535, &port) < 0)
		return -EINVAL;
	host = strndup(spec, (size_t)(colon - spec));
	if (!host)
		return -ENOMEM;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		host[strlen(host) - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0)
		return -errno;
	*ret = TAKE_FD(fd);
	return 0;
}

int dt_api_new(struct dt_manager *m, int api_fd, struct dt_api **ret)
{
	struct dt_api *a = calloc(1, sizeof(*a));
	int r;

	if (!a) {
		close(api_fd);
		return -ENOMEM;
	}
	a->m = m;
	r = listener_start(a, api_fd, "unix");
	if (r < 0) {
		dt_log(LOG_ERR, "cannot start the HTTP server on %s", m->config.api_socket);
		dt_api_free(a);
		return r;
	}
	if (m->config.api_tcp) {
		int fd = -1;

		r = bind_tcp(m->config.api_tcp, &fd);
		if (r < 0) {
			dt_log(LOG_ERR, "cannot listen on tcp %s: %s", m->config.api_tcp,
			       strerror(-r));
			dt_api_free(a);
			return r;
		}
		r = listener_start(a, fd, "tcp");
		if (r < 0) {
			dt_api_free(a);
			return r;
		}
	}
	*ret = a;
	return 0;
}

struct dt_api *dt_api_free(struct dt_api *a)
{
	if (!a)
		return NULL;
	for (unsigned i = 0; i < DT_API_MAX_LISTENERS; i++) {
		sd_event_source_disable_unref(a->l[i].io);
		sd_event_source_disable_unref(a->l[i].timer);
		if (a->l[i].mhd)
			MHD_stop_daemon(a->l[i].mhd);
	}
	free(a);
	return NULL;
}
