/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON views of the registry (json-c). Doubles appear only here. */
#pragma once

#include <json-c/json.h>

#include "manager.h"

struct json_object *dt_json_vm_summary(const struct dt_vm *vm);
struct json_object *dt_json_vm(const struct dt_vm *vm);
struct json_object *dt_json_vm_list(const struct dt_manager *m);
/* Per-epoch records since `since`, at most limit. */
struct json_object *dt_json_vm_history(const struct dt_vm *vm, uint64_t since, size_t limit);
/*
 * The exact dirty set of a recent epoch as [first gpa page, count] runs.
 * -ENOENT when the epoch is not held exactly (any more).
 */
int dt_json_vm_epoch_pages(const struct dt_vm *vm, uint64_t epoch, struct json_object **ret);
