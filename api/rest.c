/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * REST API glue: libmicrohttpd in external-epoll mode, driven by the
 * daemon's sd-event loop (MHD's epoll fd is one io source, MHD_get_timeout()
 * one timer), the way systemd-journal-remote does it. One MHD daemon per
 * listener: the Unix socket, the loopback TCP address, and optionally a
 * remote address that serves TLS only and wants a bearer token. Routing,
 * views, long-poll, metrics and pictures live in their own files.
 *
 * Nothing here blocks: sockets are non-blocking, MHD never runs a thread,
 * and every connection has a memory cap and an idle timeout, so a slow or
 * stuck client costs only its own connection slot.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "dt_file.h"
#include "dt_util.h"
#include "http.h"
#include "log.h"
#include "manager.h"
#include "evacuation.h"
#include "planner.h"

#define DT_SECRET_MAX (64 * 1024) /* certificate, key or token file */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct dt_req *rq = calloc(1, sizeof(*rq));

	if (!rq)
		return NULL;
	rq->l = cls;
	rq->conn = conn;
	rq->target = strndup(uri, DT_URL_MAX + 1);
	return rq;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct dt_req *rq = *con_cls;

	if (!rq)
		return;
	dt_longpoll_forget(rq);
	sd_event_source_disable_unref(rq->park_deadline);
	dt_plan_call_cancel(rq->plan_call);
	dt_plan_free(rq->plan);
	dt_evacuation_call_cancel(rq->evac_call);
	dt_evacuation_free(rq->evac);
	free(rq->target);
	free(rq);
	*con_cls = NULL;
}

/* Constant-time: the token's length is no secret, its bytes are. */
static bool token_ok(const char *have, const char *want)
{
	size_t n = strlen(want), hl = strlen(have);
	unsigned char d = hl != n;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(want[i] ^ (i < hl ? have[i] : 0));
	return d == 0;
}

static bool authorized(struct dt_api *a, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);

	return h && strncasecmp(h, "Bearer ", 7) == 0 && token_ok(h + 7, a->token);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct dt_listener *l = cls;
	struct dt_req *rq = *con_cls;

	if (!rq)
		return MHD_NO; /* out of memory in on_uri */
	if (*upload_data_size) { /* a body (GET or not): discard it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->suspended || rq->plan_call || rq->evac_call) /* spurious call while parked */
		return MHD_YES;
	if (l->remote && !authorized(l->api, conn))
		return dt_http_unauthorized(conn, "a valid bearer token is required");
	return dt_router_handle(rq, method);
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

void dt_listener_kick(struct dt_listener *l)
{
	sd_event_source_set_time(l->timer, 1);
	sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

/*
 * At its connection limit MHD takes the listening socket out of its epoll
 * set, and puts it back only at the start of a later MHD_run. When the
 * last connections then go by timeout, nothing is left to make its epoll
 * fd readable and MHD_get_timeout() has no deadline: MHD_run never came
 * again and the listener stayed dead with a full backlog. So after a run
 * that closed a connection, run once more at once.
 */
static int on_mhd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dt_listener *l = userdata;

	l->closed = false;
	MHD_run(l->mhd);
	if (l->closed)
		dt_listener_kick(l);
	else
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

/* A client of a Unix listener is its peer uid: over its share it is hung up on at once. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct dt_listener *l = cls;
	const union MHD_ConnectionInfo *ci;
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		l->closed = true;
		if (*socket_context)
			dt_clients_remove(&l->clients, (uid_t)((uintptr_t)*socket_context - 1));
		*socket_context = NULL;
		return;
	}
	if (!l->local)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return;
	if (dt_clients_add(&l->clients, uc.uid) < 0) {
		/* MHD reads the end of file and closes it in this very run. */
		shutdown(ci->connect_fd, SHUT_RDWR);
		l->refused++;
		if (l->refused == 1 || l->refused % 1000 == 0)
			dt_log(LOG_WARNING,
			       "api %s: uid %u holds max_connections_per_client = %u connections: "
			       "%" PRIu64 " refused so far",
			       l->name, (unsigned)uc.uid, l->clients.max_per_client, l->refused);
		return;
	}
	*socket_context = (void *)((uintptr_t)uc.uid + 1);
}

static bool is_unix_socket(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_UNIX;
}

static int listener_start(struct dt_api *a, int fd, const char *name, bool remote)
{
	const struct dt_config *c = &a->m->config;
	struct dt_listener *l = &a->l[a->n];
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	int r;

#define OPT(o, v, p) (opts[n++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) })
	l->api = a;
	l->name = name;
	l->remote = remote;
	l->local = is_unix_socket(fd);
	/* Parked long-polls hold connections: keep a quarter free for the rest. */
	l->max_waiters = DT_MAX(1u, c->api_max_connections * 3 / 4);
	if (remote)
		flags |= MHD_USE_TLS;
	r = dt_clients_init(&l->clients, c->api_max_connections, c->api_max_client_connections);
	if (r < 0) {
		close(fd);
		return r;
	}
	OPT(MHD_OPTION_LISTEN_SOCKET, fd, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, c->api_max_connections, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, DT_MAX(1, c->api_timeout_us / 1000000), NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->api_memory_limit, NULL);
	OPT(MHD_OPTION_URI_LOG_CALLBACK, on_uri, l);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, l);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, l);
	OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL);
	if (!l->local) /* TCP: MHD counts connections per peer address */
		OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->api_max_client_connections, NULL);
	if (remote) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_ARRAY, opts,
				  MHD_OPTION_END);
	if (!l->mhd) {
		close(fd);
		dt_clients_done(&l->clients);
		return -EINVAL;
	}
	a->n++;
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return -EINVAL;
	r = sd_event_add_io(a->m->event, &l->io, info->epoll_fd, EPOLLIN, on_mhd_io, l);
	if (r < 0)
		return r;
	/* 1 ms accuracy: the default 250 ms would delay resumed long-polls. */
	r = sd_event_add_time(a->m->event, &l->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000,
			      on_mhd_timer, l);
	if (r < 0)
		return r;
	/* Requests wait behind a due harvest, never the other way round. */
	sd_event_source_set_priority(l->io, DT_API_PRIORITY);
	sd_event_source_set_priority(l->timer, DT_API_PRIORITY);
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

/* A whole small file (PEM or token), NUL-terminated; -EINVAL when empty. */
static int read_secret(const char *path, char **ret)
{
	/* A FIFO here would block the loop: regular files only. */
	_cleanup_close_ int fd = dt_file_open(path, 0, DT_SECRET_MAX, NULL);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return fd;
	buf = malloc(DT_SECRET_MAX + 1);
	if (!buf)
		return -ENOMEM;
	while ((n = read(fd, buf + len, DT_SECRET_MAX - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		return -errno;
	if (len == DT_SECRET_MAX)
		return -EFBIG;
	buf[len] = 0;
	if (len == 0)
		return -EINVAL;
	*ret = TAKE_PTR(buf);
	return 0;
}

static int start_tcp(struct dt_api *a, const char *spec, const char *name, bool remote)
{
	int fd = -1, r;

	r = bind_tcp(spec, &fd);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot listen on %s %s: %s", name, spec, strerror(-r));
		return r;
	}
	r = listener_start(a, fd, name, remote);
	if (r < 0)
		dt_log(LOG_ERR, "cannot start the HTTP server on %s %s", name, spec);
	return r;
}

/* The remote listener: refused unless certificate, key and token are usable. */
static int start_remote(struct dt_api *a)
{
	const struct dt_config *c = &a->m->config;
	const char *what = NULL;
	int r;

	if (!c->api_tls_cert || !c->api_tls_key || !c->api_token_file) {
		dt_log(LOG_ERR, "api remote %s needs tls_certificate, tls_key and token_file",
		       c->api_remote);
		return -EINVAL;
	}
	r = read_secret(c->api_tls_cert, &a->tls_cert);
	if (r < 0)
		what = c->api_tls_cert;
	if (r >= 0 && (r = read_secret(c->api_tls_key, &a->tls_key)) < 0)
		what = c->api_tls_key;
	if (r >= 0 && (r = read_secret(c->api_token_file, &a->token)) < 0)
		what = c->api_token_file;
	if (r < 0) {
		dt_log(LOG_ERR, "api remote %s: cannot use %s: %s", c->api_remote, what,
		       r == -EINVAL ? "empty file" : strerror(-r));
		return r;
	}
	a->token[strcspn(a->token, "\r\n")] = 0;
	if (strlen(a->token) < 16) {
		dt_log(LOG_ERR, "api remote %s: the token in %s is shorter than 16 characters",
		       c->api_remote, c->api_token_file);
		return -EINVAL;
	}
	return start_tcp(a, c->api_remote, "remote", true);
}

int dt_api_new(struct dt_manager *m, int api_fd, struct dt_api **ret)
{
	struct dt_api *a = calloc(1, sizeof(*a));
	const char *missing = NULL;
	struct timespec ts;
	int r;

	if (!a) {
		close(api_fd);
		return -ENOMEM;
	}
	a->m = m;
	if (dt_router_check(&missing) < 0) {
		dt_log(LOG_ERR, "REST route %s has no row in the route table", missing);
		close(api_fd);
		free(a);
		return -ENOENT;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	a->etag_salt = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	r = listener_start(a, api_fd, "unix", false);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot start the HTTP server on %s", m->config.api_socket);
		goto fail;
	}
	if (m->config.api_tcp) {
		r = start_tcp(a, m->config.api_tcp, "tcp", false);
		if (r < 0)
			goto fail;
	}
	if (m->config.api_remote) {
		r = start_remote(a);
		if (r < 0)
			goto fail;
	}
	r = dt_planner_new(m->event, m->config.api_max_pending_plans, &a->planner);
	if (r >= 0)
		r = dt_ref_plans_start(a);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot start the planner thread: %s", strerror(-r));
		goto fail;
	}
	r = dt_api_vms_start(a);
	if (r < 0) {
		dt_log(LOG_ERR, "cannot observe the registry: %s", strerror(-r));
		goto fail;
	}
	*ret = a;
	return 0;
fail:
	dt_api_free(a);
	return r;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

struct dt_api *dt_api_free(struct dt_api *a)
{
	if (!a)
		return NULL;
	/* Parked plan requests are answered (503) before the servers go. */
	a->planner = dt_planner_free(a->planner);
	dt_api_vms_stop(a);
	dt_ref_plans_stop(a);
	dt_longpoll_stop(a);
	for (unsigned i = 0; i < DT_API_MAX_LISTENERS; i++) {
		sd_event_source_disable_unref(a->l[i].io);
		sd_event_source_disable_unref(a->l[i].timer);
		if (a->l[i].mhd)
			MHD_stop_daemon(a->l[i].mhd);
		dt_clients_done(&a->l[i].clients);
	}
	free_secret(a->token);
	free_secret(a->tls_cert);
	free_secret(a->tls_key);
	free(a);
	return NULL;
}
