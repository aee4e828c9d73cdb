/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON views of the registry (json-c). Doubles appear only here. */
#pragma once

#include <json-c/json.h>

#include "manager.h"

struct json_object *dt_json_vm_summary(const struct dt_vm *vm);
struct json_object *dt_json_vm(const struct dt_vm *vm);
struct json_object *dt_json_vm_list(const struct dt_manager *m);
/* Parts of a VM, each with id, generation, epoch_seconds, epochs_harvested. */
struct json_object *dt_json_vm_wss(const struct dt_vm *vm);
struct json_object *dt_json_vm_vcpus(const struct dt_vm *vm);
struct json_object *dt_json_vm_slots(const struct dt_vm *vm);
struct json_object *dt_json_vm_vcpus_array(const struct dt_vm *vm);
struct json_object *dt_json_vm_slots_array(const struct dt_vm *vm);
