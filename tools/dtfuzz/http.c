/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET over the daemon's API socket (libcurl), body into memory. */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dtfuzz.h"

struct body {
	char *buf;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;
	char *nb = realloc(b->buf, b->len + add + 1);

	if (!nb)
		return 0;
	memcpy(nb + b->len, p, add);
	b->len += add;
	nb[b->len] = 0;
	b->buf = nb;
	return add;
}

int dtfuzz_http_get(const char *sock, const char *path, double timeout_s, long *ret_status,
		    char **ret_body)
{
	struct body b = { 0 };
	char url[512];
	CURL *h = curl_easy_init();
	CURLcode rc;

	if (!h)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		free(b.buf);
		switch (rc) {
		case CURLE_OPERATION_TIMEDOUT:
			return -ETIMEDOUT;
		case CURLE_COULDNT_CONNECT:
			return -ECONNREFUSED;
		case CURLE_GOT_NOTHING:
		case CURLE_RECV_ERROR:
			return -ECONNRESET;
		default:
			return -EIO;
		}
	}
	if (!b.buf)
		b.buf = strdup("");
	if (ret_body)
		*ret_body = b.buf;
	else
		free(b.buf);
	return 0;
}
