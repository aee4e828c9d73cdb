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
/*
 * Heatmap regions with dirtyings over the last window epochs, from region
 * `from` on, at most max of them (caller frees *ret); -ENOMEM.
 */
int dt_vm_heat(const struct dt_vm *vm, uint32_t window, uint32_t from, size_t max,
	       struct dt_heat **ret, size_t *ret_n);
/* Guest-physical address of the first mapped page of dense pages [idx, idx + len). */
bool dt_vm_region_gpa(const struct dt_vm *vm, uint64_t idx, uint64_t len, uint64_t *ret);
/* Size of the VM's dense page index space (end of the highest slot). */
uint64_t dt_vm_index_pages(const struct dt_vm *vm);
