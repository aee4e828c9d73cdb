/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CLI's HTTP client (libcurl): Unix socket by default, or a URL. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct buf {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;
	size_t add = size * n;
	char *d;

	if (b->len + add > 64u << 20) /* a sane cap on what we buffer */
		return 0;
	d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	d[b->len] = 0;
	return add;
}

char *ctl_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *r = e ? strdup(e) : NULL;

	curl_free(e);
	return r;
}

int ctl_get(const struct ctl *ctl, const char *path, struct json_object **ret)
{
	return ctl_get_timeout(ctl, path, 60, ret);
}

int ctl_get_timeout(const struct ctl *ctl, const char *path, long timeout_s,
		    struct json_object **ret)
{
	struct curl_slist *headers = NULL;
	struct buf b = { 0 };
	char url[1024];
	long status = 0;
	CURL *c;
	CURLcode cr;
	int r;

	c = curl_easy_init();
	if (!c) {
		fprintf(stderr, "dirtytrackctl: cannot initialise libcurl\n");
		return CTL_EXIT_FAILURE;
	}
	if (ctl->url) {
		snprintf(url, sizeof(url), "%s%s", ctl->url, path);
	} else {
		snprintf(url, sizeof(url), "http://localhost%s", path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, ctl->socket);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (ctl->timeout_ms > 0) {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ctl->timeout_ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ctl->timeout_ms);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	}
	if (ctl->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, ctl->cacert);
	if (ctl->token) {
		char auth[1024];

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctl->token);
		headers = curl_slist_append(headers, auth);
		explicit_bzero(auth, sizeof(auth));
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		fprintf(stderr, "dirtytrackctl: cannot reach dirtytrackd at %s: %s\n",
			ctl->url ? ctl->url : ctl->socket, curl_easy_strerror(cr));
		r = CTL_EXIT_UNREACHABLE;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	struct json_object *o = b.data ? json_tokener_parse(b.data) : NULL;
	if (status != 200) {
		struct json_object *d = NULL;
		const char *msg = o && json_object_object_get_ex(o, "detail", &d)
					  ? json_object_get_string(d)
					  : "no detail";
		/* a 400 naming a query parameter refused one of the user's arguments */
		bool refused_arg = status == 400 && ctl_json_get(o, "parameter");

		fprintf(stderr, "dirtytrackctl: %s\n", msg);
		json_object_put(o);
		r = status == 404 ? CTL_EXIT_NOT_FOUND
		    : status == 401 ? CTL_EXIT_DENIED
		    : refused_arg   ? CTL_EXIT_USAGE
				    : CTL_EXIT_FAILURE;
		goto out;
	}
	if (!o) {
		fprintf(stderr, "dirtytrackctl: the daemon's answer is not JSON\n");
		r = CTL_EXIT_FAILURE;
		goto out;
	}
	*ret = o;
	r = CTL_EXIT_OK;
out:
	free(b.data);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	return r;
}

struct json_object *ctl_json_get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

const char *ctl_json_str(struct json_object *o, const char *k)
{
	struct json_object *v = ctl_json_get(o, k);

	return v ? json_object_get_string(v) : "-";
}

int ctl_add_param(char *path, size_t size, const char *key, const char *value)
{
	char *e = ctl_escape(value);
	size_t len = strlen(path);
	int n;

	if (!e)
		return -1;
	n = snprintf(path + len, size - len, "%s%s=%s", strchr(path, '?') ? "&" : "?", key, e);
	free(e);
	return n < 0 || (size_t)n >= size - len ? -1 : 0;
}

void ctl_print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *scaled(double v, const char *const units[], int n, const char *suffix,
			  char buf[32])
{
	int i = 0;

	while (v >= 1024 && i < n - 1) {
		v /= 1024;
		i++;
	}
	snprintf(buf, 32, i ? "%.1f %s%s" : "%.0f %s%s", v, units[i], suffix);
	return buf;
}

const char *ctl_bytes(double bytes, char buf[32])
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	return scaled(bytes, u, 5, "", buf);
}

const char *ctl_rate(double bps, char buf[32])
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	return scaled(bps, u, 5, "/s", buf);
}
