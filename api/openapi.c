/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * docs/openapi.json, embedded at build time (one source: the file in docs/
 * is what /openapi.json serves). The Makefile makes this object depend on it.
 */
#include <stddef.h>

#include "http.h"

__asm__(".section .rodata\n"
	".global dt_openapi_json\n"
	".type dt_openapi_json, @object\n"
	"dt_openapi_json:\n"
	".incbin \"docs/openapi.json\"\n"
	".global dt_openapi_json_end\n"
	"dt_openapi_json_end:\n"
	".byte 0\n"
	".previous\n");

extern const char dt_openapi_json_end[];

size_t dt_openapi_json_len(void)
{
	return (size_t)(dt_openapi_json_end - dt_openapi_json);
}
