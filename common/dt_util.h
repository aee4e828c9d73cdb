/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the daemon, the tools and the tests. No logging. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DT_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _tp = (p);                                                           \
		(p) = NULL;                                                                        \
		_tp;                                                                               \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tf = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_tf;                                                                               \
	})

static inline uint64_t dt_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ts = CLOCK_MONOTONIC now + us, for pthread_cond_timedwait on a CLOCK_MONOTONIC condvar. */
static inline void dt_deadline_after(struct timespec *ts, uint64_t us)
{
	uint64_t ns;

	clock_gettime(CLOCK_MONOTONIC, ts);
	ns = (uint64_t)ts->tv_nsec + (us % 1000000) * 1000;
	ts->tv_sec += (time_t)(us / 1000000 + ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

/*
 * "4096", "64K", "1G", "1.5GiB", "2M" -> bytes (binary multiples: K=1024).
 * Returns 0 or -EINVAL (syntax) / -ERANGE (overflow).
 */
int dt_parse_size(const char *s, uint64_t *ret);
/* "1s", "100ms", "250us", "2m", "1h", "1.5s"; a bare number is seconds. -> µs */
int dt_parse_duration(const char *s, uint64_t *ret_us);
/*
 * A bandwidth -> bytes per second, rounded to the byte: a bare number is
 * bytes/s; "100Mbit", "10Gbit", "25Gbps" are bits (decimal: 1 Gbit = 1e9
 * bits); "500MB", "1.25GB" decimal bytes; "1GiB", "100Mibit" binary; each
 * optionally followed by "/s". Units are case-sensitive (b is a bit, B a
 * byte, m would be milli). -EINVAL (syntax, unknown unit), -ERANGE (below
 * 1 B/s, including zero, or above DT_BANDWIDTH_MAX).
 */
#define DT_BANDWIDTH_MAX 1000000000000000ull /* 1 PB/s: 8 Pbit/s */
int dt_parse_bandwidth(const char *s, uint64_t *ret);
/* Unsigned decimal integer within [min, max]. */
int dt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* RFC 4122 text <-> 16 bytes. Text buffer must hold 37 bytes. */
int dt_uuid_parse(const char *s, uint8_t ret[16]);
void dt_uuid_format(const uint8_t u[16], char out[37]);
bool dt_uuid_is_null(const uint8_t u[16]);
/* Printable ASCII check for names from untrusted peers. */
bool dt_string_is_printable(const char *s, size_t max);
