/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "dt_util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int parse_number(const char *s, double *ret, const char **ret_end)
{
	char *end;
	double v;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	/* refuse hex floats, "inf", "nan": only digits and one dot */
	for (const char *p = s; p < end; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
	*ret = v;
	*ret_end = end;
	return 0;
}

int dt_parse_size(const char *s, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "K", 1ull << 10 },
		{ "KB", 1ull << 10 },
		{ "KiB", 1ull << 10 },
		{ "M", 1ull << 20 },
		{ "MB", 1ull << 20 },
		{ "MiB", 1ull << 20 },
		{ "G", 1ull << 30 },
		{ "GB", 1ull << 30 },
		{ "GiB", 1ull << 30 },
		{ "T", 1ull << 40 },
		{ "TB", 1ull << 40 },
		{ "TiB", 1ull << 40 },
	};
	const char *end;
	double v;
	int r;

	r = parse_number(s, &v, &end);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		double bytes = v * (double)units[i].mult;
		if (bytes >= 18446744073709551615.0)
			return -ERANGE;
		if (bytes != floor(bytes))
			return -EINVAL;
		*ret = (uint64_t)bytes;
		return 0;
	}
	return -EINVAL;
}

int dt_parse_duration(const char *s, uint64_t *ret_us)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
		{ "", 1e6 }, { "s", 1e6 },   { "sec", 1e6 },  { "ms", 1e3 }, { "msec", 1e3 },
		{ "us", 1 }, { "usec", 1 }, { "m", 60e6 },   { "min", 60e6 }, { "h", 3600e6 },
	};
	const char *end;
	double v;
	int r;

	r = parse_number(s, &v, &end);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		double us = v * units[i].mult;
		if (us >= 9.2e18)
			return -ERANGE;
		*ret_us = (uint64_t)llround(us);
		return 0;
	}
	return -EINVAL;
}

int dt_parse_bandwidth(const char *s, uint64_t *ret)
{
	/* Prefixes: decimal k/K, M, G, T; binary Ki, Mi, Gi, Ti. */
	static const struct {
		const char *prefix;
		double mult;
	} prefixes[] = {
		{ "", 1 },	     { "k", 1e3 },	    { "K", 1e3 },
		{ "M", 1e6 },	     { "G", 1e9 },	    { "T", 1e12 },
		{ "Ki", 1024.0 },    { "Mi", 1048576.0 }, { "Gi", 1073741824.0 },
		{ "Ti", 1099511627776.0 },
	};
	/* Units after the prefix, in bytes: bytes or bits. */
	static const struct {
		const char *unit;
		double bytes;
	} units[] = {
		{ "B", 1 }, { "Bps", 1 }, { "bit", 0.125 }, { "bits", 0.125 }, { "bps", 0.125 },
	};
	const char *end;
	char unit[16];
	double v, bytes = -1;
	size_t len;
	int r;

	r = parse_number(s, &v, &end);
	if (r < 0)
		return r;
	len = strlen(end);
	if (len >= 2 && strcmp(end + len - 2, "/s") == 0)
		len -= 2;
	if (len >= sizeof(unit))
		return -EINVAL;
	memcpy(unit, end, len);
	unit[len] = 0;
	if (!*unit)
		bytes = v;
	for (size_t i = 0; bytes < 0 && i < ARRAY_SIZE(prefixes); i++) {
		size_t pl = strlen(prefixes[i].prefix);

		if (strncmp(unit, prefixes[i].prefix, pl) != 0)
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(units); k++)
			if (strcmp(unit + pl, units[k].unit) == 0) {
				bytes = v * prefixes[i].mult * units[k].bytes;
				break;
			}
	}
	if (bytes < 0)
		return -EINVAL;
	if (!isfinite(bytes) || bytes < 1 || bytes > (double)DT_BANDWIDTH_MAX)
		return -ERANGE;
	*ret = (uint64_t)llround(bytes);
	return 0;
}

int dt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int dt_uuid_parse(const char *s, uint8_t ret[16])
{
	uint8_t u[16];
	size_t j = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(ret, u, 16);
	return 0;
}

void dt_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

bool dt_uuid_is_null(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

bool dt_string_is_printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n == max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}
