/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON of what libvirt tells about a VM (json-c). */
#pragma once

#include <json-c/json.h>

#include "manager.h"

/* Source, libvirt domain and, for an observed VM, its "libvirt" object, into o. */
void dt_json_vm_add_libvirt(struct json_object *o, const struct dt_vm *vm);
