/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON view of a migration plan (REST's /v1/vms/{vm}/plan). */
#pragma once

#include <json-c/json.h>

#include "manager.h"
#include "vm_plan.h"

/*
 * The plan p computed for vm (dt_vm_plan_with) with its inputs, the curve it
 * used, the VM and the epoch/generation it was computed at. No NaN or
 * infinity: a figure that is not finite is null.
 */
struct json_object *dt_json_vm_plan(const struct dt_vm *vm, uint64_t generation, uint64_t epoch,
				    const struct dt_plan *p);
/* The recommendation as one sentence (caller frees), or NULL (ENOMEM). */
char *dt_plan_why(const struct dt_plan *p);
