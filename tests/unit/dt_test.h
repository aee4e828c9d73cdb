/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Minimal unit-test helpers: each tests/unit/test_*.c is its own program,
 * exits 0 (pass), 1 (fail) or 77 (skip, with a reason on stderr).
 */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dt_test_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
			dt_test_failures++;                                                        \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",        \
				__FILE__, __LINE__, #a, _a, #b, _b);                               \
			dt_test_failures++;                                                        \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int _before = dt_test_failures;                                                    \
		fn();                                                                              \
		fprintf(stderr, "  %s %s\n", dt_test_failures == _before ? "ok  " : "FAIL", #fn);  \
	} while (0)

#define TEST_EXIT() return dt_test_failures ? 1 : 0
#define TEST_SKIP(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, "SKIP: " __VA_ARGS__);                                             \
		fprintf(stderr, "\n");                                                             \
		exit(77);                                                                          \
	} while (0)
