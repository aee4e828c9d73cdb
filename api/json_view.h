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
