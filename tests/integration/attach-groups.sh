#!/usr/bin/env bash
# [attach] allowed_groups counts the peer's supplementary groups
# (SO_PEERGROUPS), not only its primary group: a VMM running as nobody with
# the allowed group as a supplementary group attaches, also among a hundred
# other groups; with the group primary it attaches; without it, REFUSE EPERM.
# With no configuration the default allows group dirtytrack when it exists.
source "$(dirname "$0")/../lib/common.sh"
command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
id nobody >/dev/null 2>&1 || skip "no user nobody"
chmod 755 "$TMP"
GID=4242 # no group of the host needs to exist: ids are ids
NOGROUP=$(id -g nobody)
LIB="$(cd "$(dirname "$0")/../lib" && pwd)"
# nobody runs the peer: the checkout may not be readable by it (a 0700 clone)
mkdir -p "$TMP/lib" && cp "$LIB/dtpeer.py" "$TMP/lib/" && chmod -R a+rX "$TMP/lib"
LIB="$TMP/lib"
cat >"$TMP/peer.py" <<'PY'
import os, sys
from dtpeer import *
p = Peer(os.environ["ATTACH_SOCK"])
r = p.request(T["HELLO"], hello(sys.argv[1]))
if r[0] == T["WELCOME"]:
    print("WELCOME")
else:
    e, reason = error_of(r)
    print(f"{NAMES[r[0]]} {e} {reason}")
PY
try() { # NAME setpriv-options...: the reply to a HELLO sent as nobody
	local name=$1
	shift
	setpriv --reuid=nobody "$@" env PYTHONPATH="$LIB" ATTACH_SOCK="$ATTACH_SOCK" \
		python3 "$TMP/peer.py" "$name"
}
printf '[attach]\nallowed_groups = %s\n' $GID >"$TMP/conf"
start_daemon --config "$TMP/conf"
chmod 0666 "$ATTACH_SOCK" # the socket's own mode is the unit's business, not this test's

out=$(try outsider --regid="$NOGROUP" --clear-groups)
echo "no allowed group: $out"
[[ $out == "REFUSE 1 "* ]] || fail "a peer outside group $GID was not refused: $out"
out=$(try primary --regid=$GID --clear-groups)
[ "$out" = WELCOME ] || fail "group $GID as the primary group was refused: $out"
echo "ok: group $GID as the primary group attaches"
out=$(try supplementary --regid="$NOGROUP" --groups=$GID)
[ "$out" = WELCOME ] || fail "group $GID as a supplementary group was refused: $out"
echo "ok: group $GID as a supplementary group attaches"
many=$(seq -s, 5000 5099),$GID
out=$(try many --regid="$NOGROUP" --groups="$many")
[ "$out" = WELCOME ] || fail "group $GID as the 101st supplementary group was refused: $out"
echo "ok: group $GID as the 101st of 101 supplementary groups attaches"
out=$(try others --regid="$NOGROUP" --groups="$(seq -s, 5000 5099)")
[[ $out == "REFUSE 1 "* ]] || fail "a peer with 100 other groups was not refused: $out"
echo "ok: 100 other supplementary groups: refused"
stop_daemon

if getent group dirtytrack >/dev/null; then
	start_daemon
	chmod 0666 "$ATTACH_SOCK"
	out=$(try default --regid="$NOGROUP" --groups="$(getent group dirtytrack | cut -d: -f3)")
	[ "$out" = WELCOME ] || fail "a member of dirtytrack was refused with the default configuration: $out"
	echo "ok: the default configuration allows group dirtytrack"
else
	echo "note: no group dirtytrack on this host: its default is checked by nspawn.sh only"
fi
