#!/usr/bin/env bash
# One uid's detached VMs never lock another uid out: with max_vms = 2 (a
# registry of 4) root attaches and detaches 6 VMs; each new one beyond
# max_vms_per_owner (default: max_vms) evicts root's longest-detached VM,
# so root never holds more than 2 and nobody still attaches. On the old
# code root's 4 detached VMs filled the registry and nobody got EUSERS.
source "$(dirname "$0")/../lib/common.sh"
command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
id nobody >/dev/null 2>&1 || skip "no user nobody"
chmod 755 "$TMP"
mkdir -p "$TMP/lib" && cp "$(dirname "$0")/../lib/dtpeer.py" "$TMP/lib/" && chmod -R a+rX "$TMP/lib"
printf '[attach]\nallowed_users = nobody\nmax_vms = 2\n' >"$TMP/cap.conf"
cat >"$TMP/peer.py" <<'PY'
import os, struct, sys
from dtpeer import *
p = Peer(os.environ["ATTACH_SOCK"])
r = p.request(T["HELLO"], hello(sys.argv[1], mode=2, uuid=bytes.fromhex(sys.argv[2])))
if r[0] != T["WELCOME"]:
    print("REFUSE", *error_of(r)); sys.exit(0)
r = p.request(T["DETACH"], struct.pack("<II", 0, 0))
print("WELCOME")
PY
start_daemon --epoch 100ms --config "$TMP/cap.conf"
chmod 0666 "$ATTACH_SOCK"
for i in 1 2 3 4 5 6; do
	out=$(PYTHONPATH="$TMP/lib" ATTACH_SOCK="$ATTACH_SOCK" python3 "$TMP/peer.py" root-$i "$(printf '%032x' $i)")
	[ "$out" = WELCOME ] || fail "root's VM $i: $out"
	wait_until 5 vm_state_is root-$i detached || fail "root-$i did not detach"
done
n=$(api /v1/vms | jq '[.vms[] | select(.owner_uid == 0)] | length')
[ "$n" -le 2 ] || fail "root holds $n VMs (cap 2)"
grep -q "evicted: uid 0 is at max_vms_per_owner = 2" "$TMP/daemon.log" || fail "the eviction is not logged"
out=$(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups env PYTHONPATH="$TMP/lib" \
	ATTACH_SOCK="$ATTACH_SOCK" python3 "$TMP/peer.py" nobodys 000000000000000000000000000000ff)
[ "$out" = WELCOME ] || fail "nobody was locked out by root's detached VMs: $out"
echo "ok: root holds $n VMs, nobody attaches"
daemon_alive || fail "daemon died"
