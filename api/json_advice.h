/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Advice in the operator's own knobs as JSON and as sentences: each knob
 * of dt_plan_advice.h in QEMU's migrate-set-capabilities/-parameters
 * terms, the virsh equivalent, KubeVirt's MigrationPolicy and Nova's
 * live_migration_* options where they have one, and the predicted result.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

#include "dt_plan_advice.h"

/* The "knobs" object of a plan (docs/openapi.json, PlanKnobs). memory_bytes: the VM's. */
struct json_object *dt_json_plan_knobs(const struct dt_plan_knobs *a, uint64_t memory_bytes);
/* One knob's setting and predicted result as a sentence into buf (always terminated). */
void dt_knob_say(const struct dt_plan_knobs *a, const struct dt_knob_advice *k, char *buf,
		 size_t size);
/* The knob's setting in QEMU's terms, e.g. "auto-converge=on cpu-throttle-initial=50 ...". */
void dt_knob_qemu_text(const struct dt_plan_knobs *a, const struct dt_knob_advice *k, char *buf,
		       size_t size);
