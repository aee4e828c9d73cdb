/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Responses: JSON and other bodies, ETags, and RFC 9457 problem details. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define INDEX_HEADER "X-Dirtytrack-Index"

static void add_validators(struct MHD_Response *resp, const char *etag, uint64_t index)
{
	char buf[24];

	if (!etag)
		return;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	snprintf(buf, sizeof(buf), "%" PRIu64, index);
	MHD_add_response_header(resp, INDEX_HEADER, buf);
}

/* Takes body (malloc'ed) in all cases. */
enum MHD_Result dt_http_send(struct MHD_Connection *conn, unsigned status,
			     const char *content_type, char *body, size_t len,
			     const char *etag, uint64_t index)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	add_validators(resp, etag, index);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result dt_http_send_json(struct MHD_Connection *conn, unsigned status,
				  struct json_object *o, const char *etag, uint64_t index)
{
	const char *s;
	char *body;
	size_t len;

	if (!o)
		return MHD_NO;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(s);
	body = malloc(len + 1);
	if (body)
		memcpy(body, s, len + 1);
	json_object_put(o);
	if (!body)
		return MHD_NO;
	return dt_http_send(conn, status,
			    status >= 400 ? "application/problem+json" : "application/json", body,
			    len, etag, index);
}

static struct json_object *problem_new(unsigned status, const char *param, const char *fmt,
				       va_list ap)
{
	struct json_object *o = json_object_new_object();
	const char *title = MHD_get_reason_phrase_for(status);
	char detail[256];

	vsnprintf(detail, sizeof(detail), fmt, ap);
	json_object_object_add(o, "type", json_object_new_string("about:blank"));
	json_object_object_add(o, "title", json_object_new_string(title ? title : "Error"));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	if (param && *param)
		json_object_object_add(o, "parameter", json_object_new_string(param));
	/* "error" repeats the detail for clients of the first API. */
	json_object_object_add(o, "error", json_object_new_string(detail));
	return o;
}

static enum MHD_Result send_problem(struct MHD_Connection *conn, unsigned status,
				    struct json_object *o, const char *header,
				    const char *value)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (header)
		MHD_add_response_header(resp, header, value);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result dt_http_problem(struct MHD_Connection *conn, unsigned status, const char *param,
				const char *fmt, ...)
{
	struct json_object *o;
	va_list ap;

	va_start(ap, fmt);
	o = problem_new(status, param, fmt, ap);
	va_end(ap);
	return send_problem(conn, status, o, NULL, NULL);
}

static enum MHD_Result problem_with(struct MHD_Connection *conn, unsigned status,
				    const char *header, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static enum MHD_Result problem_with(struct MHD_Connection *conn, unsigned status,
				    const char *header, const char *value, const char *fmt, ...)
{
	struct json_object *o;
	va_list ap;

	va_start(ap, fmt);
	o = problem_new(status, NULL, fmt, ap);
	va_end(ap);
	return send_problem(conn, status, o, header, value);
}

enum MHD_Result dt_http_method_not_allowed(struct MHD_Connection *conn)
{
	return problem_with(conn, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, "GET, HEAD",
			    "only GET and HEAD are served");
}

enum MHD_Result dt_http_unauthorized(struct MHD_Connection *conn, const char *why)
{
	return problem_with(conn, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			    "Bearer realm=\"dirtytrackd\"", "%s", why);
}

enum MHD_Result dt_http_unavailable(struct MHD_Connection *conn, unsigned retry_after_s,
				    const char *fmt, ...)
{
	struct json_object *o;
	char after[16];
	va_list ap;

	va_start(ap, fmt);
	o = problem_new(MHD_HTTP_SERVICE_UNAVAILABLE, NULL, fmt, ap);
	va_end(ap);
	snprintf(after, sizeof(after), "%u", retry_after_s);
	return send_problem(conn, MHD_HTTP_SERVICE_UNAVAILABLE, o, MHD_HTTP_HEADER_RETRY_AFTER,
			    after);
}

enum MHD_Result dt_http_not_modified(struct MHD_Connection *conn, const char *etag,
				     uint64_t index)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	add_validators(resp, etag, index);
	ret = MHD_queue_response(conn, MHD_HTTP_NOT_MODIFIED, resp);
	MHD_destroy_response(resp);
	return ret;
}
