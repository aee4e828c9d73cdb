/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dirtytrackctl health: is the daemon up, how many VMs. */
#include <stdio.h>

#include "ctl.h"

int ctl_health(const struct ctl *ctl, int argc, char **argv)
{
	struct json_object *o, *s, *n, *a;
	int r = ctl_no_args("health", argc, argv);

	if (r)
		return r;
	r = ctl_get(ctl, "/v1/health", &o);
	if (r)
		return r;
	if (ctl->json) {
		ctl_print_json(o);
	} else {
		json_object_object_get_ex(o, "status", &s);
		json_object_object_get_ex(o, "vms", &n);
		json_object_object_get_ex(o, "attached", &a);
		printf("%s: %d VMs, %d attached\n", json_object_get_string(s),
		       json_object_get_int(n), json_object_get_int(a));
	}
	json_object_put(o);
	return 0;
}
