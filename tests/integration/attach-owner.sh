#!/usr/bin/env bash
# A VM belongs to the uid that attached it first. A HELLO with its uuid from
# another uid (here nobody, against root's VM, and root against nobody's) is
# refused with EPERM and a reason naming both, and changes nothing: the VM,
# its figures and its state file stay, also with another geometry, and also
# after a restart (the owner is in the state file). A uid named in
# [attach] takeover_users may reattach. The owner reattaching with another
# geometry starts a new VM and the old history is kept, whole, in
# <uuid>.state.replaced (loaded back here to prove it); with no state
# directory that HELLO is refused with EEXIST instead.
source "$(dirname "$0")/../lib/common.sh"
command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
id nobody >/dev/null 2>&1 || skip "no user nobody"
NOBODY=$(id -u nobody)
chmod 755 "$TMP"
U1=11111111-2222-4333-8444-555555555555
U2=22222222-3333-4444-8555-666666666666
printf '[attach]\nallowed_users = nobody\n' >"$TMP/base.conf"
printf '[attach]\nallowed_users = nobody\ntakeover_users = nobody\n' >"$TMP/takeover.conf"

cat >"$TMP/peer.py" <<'PY'
"""peer.py ACTION UUID [vcpus]: attach (epochs of bitmap data, then DETACH) or
try (print the reply as `WELCOME id` or `REFUSE errno reason`)."""
import os, struct, sys, uuid as U
from dtpeer import *
action, uid_s = sys.argv[1], sys.argv[2]
vcpus = int(sys.argv[3]) if len(sys.argv) > 3 else 2
p = Peer(os.environ["ATTACH_SOCK"])
r = p.request(T["HELLO"], hello("owned-" + uid_s[:4], vcpus=vcpus, mode=2, uuid=U.UUID(uid_s).bytes))
if r[0] != T["WELCOME"]:
    e, reason = error_of(r)
    print(f"{NAMES[r[0]]} {e} {reason}")
    sys.exit(0)
vm = struct.unpack_from("<HHIQ", r[1])[2]
if action == "attach":
    for t, pl, fds in [(T["ADD_SLOT"], add_slot(0, 0, 512), ()),
                       (T["ADD_BITMAP"], add_bitmap(0), None)]:
        if fds is None:
            bfd = memfd(4096)
            fds = [bfd]
        r = p.request(t, pl, fds)
        assert r[0] == T["ACK"], r
    import mmap
    bm = mmap.mmap(bfd, 4096)
    for i in range(5):
        struct.pack_into("<Q", bm, 8 * i, 0xff)
        p.pump(0.15)
    r = p.request(T["DETACH"], struct.pack("<II", 0, 0))
    assert r[0] == T["ACK"], r
print(f"WELCOME {vm}")
PY
peer() { # peer AS ACTION UUID [vcpus]
	local as=$1
	shift
	if [ "$as" = nobody ]; then
		setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups env PYTHONPATH="$LIB" \
			ATTACH_SOCK="$ATTACH_SOCK" python3 "$TMP/peer.py" "$@"
	else
		PYTHONPATH="$LIB" ATTACH_SOCK="$ATTACH_SOCK" python3 "$TMP/peer.py" "$@"
	fi
}
LIB="$(cd "$(dirname "$0")/../lib" && pwd)"
# nobody runs the peer: the checkout may not be readable by it (a 0700 clone)
mkdir -p "$TMP/lib" && cp "$LIB/dtpeer.py" "$TMP/lib/" && chmod -R a+rX "$TMP/lib"
LIB="$TMP/lib"
start() {
	start_daemon --epoch 100ms --config "$@"
	chmod 0666 "$ATTACH_SOCK" # nobody is "allowed"; the socket's group is the unit's business
}
snapshot() { api "/v1/vms/$1" | jq -c '{id, state, owner_uid, vcpus, epochs_harvested}'; }

start "$TMP/base.conf"
out=$(peer root attach $U1)
[[ $out == WELCOME* ]] || fail "root could not attach: $out"
VM1=${out#WELCOME }
wait_until 5 vm_state_is $VM1 detached || fail "root's VM did not detach"
S1=$(snapshot $U1)
check "root's VM is owned by uid 0" test "$(vm_field $U1 .owner_uid)" = 0
E1=$(vm_field $U1 .epochs_harvested)
[ "$E1" -gt 0 ] || fail "no epochs in root's VM"
check "its state file is written" test -s "$STATE_DIR/$U1.state"
SUM1=$(md5sum <"$STATE_DIR/$U1.state")

out=$(peer nobody try $U1)
echo "nobody, same geometry: $out"
[[ $out == "REFUSE 1 "* ]] || fail "nobody's HELLO with root's uuid was not refused with EPERM: $out"
[[ $out == *"uid 0"* && $out == *"uid $NOBODY"* ]] || fail "the reason does not name the owner and the uid: $out"
out=$(peer nobody try $U1 4)
echo "nobody, other geometry: $out"
[[ $out == "REFUSE 1 "* ]] || fail "nobody's HELLO with root's uuid and 4 vCPUs was not refused with EPERM: $out"
check "root's VM is unchanged" test "$(snapshot $U1)" = "$S1"
check "its state file is unchanged" test "$(md5sum <"$STATE_DIR/$U1.state")" = "$SUM1"
check "nothing was set aside" test ! -e "$STATE_DIR/$U1.state.replaced"

out=$(peer nobody attach $U2)
[[ $out == WELCOME* ]] || fail "nobody could not attach its own VM: $out"
wait_until 5 vm_state_is $U2 detached || fail "nobody's VM did not detach"
check "nobody's VM is owned by uid $NOBODY" test "$(vm_field $U2 .owner_uid)" = "$NOBODY"
S2=$(snapshot $U2)
out=$(peer root try $U2)
echo "root, nobody's uuid: $out"
[[ $out == "REFUSE 1 "* ]] || fail "root took over nobody's VM (root is not exempt): $out"
check "nobody's VM is unchanged" test "$(snapshot $U2)" = "$S2"

# The owner survives a restart.
stop_daemon
start "$TMP/base.conf"
wait_until 5 vm_state_is $U1 detached || fail "root's VM not restored"
check "the restored VM is still root's" test "$(vm_field $U1 .owner_uid)" = 0
check "nobody's restored VM is still nobody's" test "$(vm_field $U2 .owner_uid)" = "$NOBODY"
out=$(peer nobody try $U1)
[[ $out == "REFUSE 1 "* ]] || fail "after a restart, nobody took over root's VM: $out"
echo "ok: refused after a restart: $out"

# takeover_users lets a named uid reattach.
stop_daemon
start "$TMP/takeover.conf"
wait_until 5 vm_state_is $U1 detached || fail "root's VM not restored"
E1=$(vm_field $U1 .epochs_harvested)
ID1=$(vm_field $U1 .id)
out=$(peer nobody attach $U1)
[[ $out == "WELCOME $ID1" ]] || fail "nobody, named in takeover_users, could not reattach vm $ID1: $out"
wait_until 5 vm_state_is $U1 detached || fail "did not detach"
E2=$(vm_field $U1 .epochs_harvested)
[ "$E2" -gt "$E1" ] || fail "the figures did not continue after the takeover ($E1 -> $E2)"
check "a takeover keeps the owner" test "$(vm_field $U1 .owner_uid)" = 0
echo "ok: takeover by a uid in takeover_users: vm $ID1, epochs $E1 -> $E2"

# The owner with another geometry: a new VM, the old history set aside.
OLD=$(snapshot $U1)
out=$(peer root try $U1 4)
[[ $out == WELCOME* ]] || fail "the owner's HELLO with 4 vCPUs was refused: $out"
[ "${out#WELCOME }" != "$ID1" ] || fail "another machine continued the old VM's figures"
check "the new VM has 4 vCPUs" test "$(vm_field $U1 .vcpus)" = 4
check "the old history is kept aside" test -s "$STATE_DIR/$U1.state.replaced"
grep -q "history is kept in $STATE_DIR/$U1.state.replaced" "$TMP/daemon.log" || fail "the set-aside is not logged"
stop_daemon
mkdir "$TMP/state2"
cp "$STATE_DIR/$U1.state.replaced" "$TMP/state2/$U1.state"
STATE_DIR=$TMP/state2 start "$TMP/base.conf"
wait_until 5 vm_state_is $U1 detached || fail "the set-aside history does not load"
BACK=$(snapshot $U1)
check "the set-aside history is the old VM's, whole ($OLD)" test "$(jq -c '{owner_uid, vcpus, epochs_harvested}' <<<"$BACK")" = "$(jq -c '{owner_uid, vcpus, epochs_harvested}' <<<"$OLD")"

# With no state directory, another geometry is refused: nothing is dropped.
stop_daemon
STATE_DIR=$TMP/state2 start "$TMP/base.conf" --state-dir off
out=$(peer root attach $U1)
[[ $out == WELCOME* ]] || fail "could not attach: $out"
wait_until 5 vm_state_is $U1 detached || fail "did not detach"
S3=$(snapshot $U1)
out=$(peer root try $U1 3)
echo "owner, other geometry, no state directory: $out"
[[ $out == "REFUSE 17 "* && $out == *"3 vCPUs, not 2"* ]] || fail "not refused with EEXIST naming the vCPUs: $out"
check "the VM is unchanged" test "$(snapshot $U1)" = "$S3"
daemon_alive || fail "daemon died"
