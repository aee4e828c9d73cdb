#!/usr/bin/env bash
# The seams, checked with grep (issue 12): dependencies flow one way.
# - No daemon/ file includes an api/ header: the VM model and registry know
#   nothing of the front ends; app/main.c wires them.
# - No header name is both in daemon/ and api/ (-Idaemon -Iapi would make
#   an include ambiguous, and the check below blind to it).
# Negative control: the same check on a copy of daemon/ with a planted
# include of an api/ header must catch it, naming the file.
source "$(dirname "$0")/../lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"

# Files of dir (.c, .h) that include a header of api/ (or of FROM), as "file: header".
includes_of_api() { # dir [FROM]
	local h from=${2:-api}
	for h in "$from"/*.h; do
		h=${h#"$from"/}
		grep -lE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]$h[\">]" "$1"/*.c "$1"/*.h 2>/dev/null |
			sed "s|\$|: $h|" || true
	done
}

dup=$(comm -12 <(cd api && ls *.h | sort) <(cd daemon && ls *.h | sort))
[ -z "$dup" ] || fail "headers in both api/ and daemon/: $dup"

bad=$(includes_of_api daemon)
[ -z "$bad" ] || fail "daemon/ includes api/ headers (the front ends must depend on the model, not back): $bad"

# Negative control: a planted include is caught.
mkdir "$TMP/daemon"
cp daemon/*.c daemon/*.h "$TMP/daemon/"
sed -i '0,/^#include "manager.h"/s//#include "manager.h"\n#include "http.h"/' "$TMP/daemon/vm.c"
grep -q '^#include "http.h"' "$TMP/daemon/vm.c" || fail "control: could not plant the include"
caught=$(includes_of_api "$TMP/daemon")
[ "$caught" = "$TMP/daemon/vm.c: http.h" ] || fail "control: a planted include of api/http.h in vm.c was not caught (got '$caught')"

# Below the daemon, nothing knows it or the front ends: the stats core, the
# planner, the collectors and the common code include neither daemon/ nor
# api/ headers (and the stats core does no I/O: seams-stats-no-io).
for low in stats plan collectors common; do
	for up in api daemon; do
		bad=$(includes_of_api "$low" "$up")
		[ -z "$bad" ] || fail "$low/ includes $up/ headers (dependencies flow one way): $bad"
	done
done

echo "ok: no daemon/ file includes any of $(ls api/*.h | wc -l) api/ headers, no stats/, plan/, collectors/ or common/ file includes daemon/ or api/ ones; the control's planted include was caught"
