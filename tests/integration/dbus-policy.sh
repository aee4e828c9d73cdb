#!/usr/bin/env bash
# The shipped bus policy, enforced by a real dbus-daemon: an unprivileged
# client (nobody) can introspect, read and call the read-only methods but
# cannot own the name or call anything else; a daemon the policy does not
# let own the name, or that finds no bus, says so once and serves REST.
# The activation file is accepted by dbus-daemon.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/dbus-lib.inc"
command -v setpriv >/dev/null || skip "setpriv is not installed (util-linux)"
[ "$(id -u)" -eq 0 ] || skip "needs root to run a client as nobody"
id nobody >/dev/null 2>&1 || skip "no user nobody"
NOGROUP=$(id -gn nobody)

start_bus
check "dbus-daemon lists the activatable name from the .service file" \
	sh -c "busctl --system list --activatable --no-legend | grep -q '^$DBUS_NAME '"
start_daemon --dbus system --epoch 100ms
wait_name
sim a 30
P=$(vm_path a)

as_nobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups "$@"; }
quiet() { "$@" >/dev/null; }
check "nobody is really nobody" [ "$(as_nobody id -u)" = "$(id -u nobody)" ]
check "nobody can introspect" sh -c "setpriv --reuid=nobody --regid=$NOGROUP --clear-groups busctl --system introspect $DBUS_NAME $P | grep -q WorkingSet"
check "nobody can read a property" quiet as_nobody busctl --system get-property "$DBUS_NAME" "$P" "$DBUS_VM" EpochsHarvested
check "nobody can GetAll" quiet as_nobody gdbus call --system --dest "$DBUS_NAME" --object-path "$P" --method org.freedesktop.DBus.Properties.GetAll "$DBUS_VM"
check "nobody can GetManagedObjects" quiet as_nobody busctl --system call "$DBUS_NAME" "$DBUS_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects
check "nobody can GetVM and ListVMs" quiet as_nobody busctl --system call "$DBUS_NAME" "$DBUS_PATH" "$DBUS_MGR" GetVM s a
as_nobody busctl --system call "$DBUS_NAME" "$DBUS_PATH" "$DBUS_MGR" ListVMs >/dev/null || fail "nobody: ListVMs"
check "nobody can GetHistory" quiet as_nobody busctl --system call "$DBUS_NAME" "$P" "$DBUS_VM" GetHistory tu 0 10
check "nobody can Plan" quiet as_nobody busctl --system call "$DBUS_NAME" "$P" "$DBUS_VM" Plan tt 125000000 300000
check "nobody can Ping" quiet as_nobody busctl --system call "$DBUS_NAME" "$P" org.freedesktop.DBus.Peer Ping

denied() { # what the bus says to nobody: AccessDenied
	local out
	out=$(as_nobody "$@" 2>&1) && { echo "allowed: $out"; return 1; }
	echo "$out" | grep -q -i 'access denied\|AccessDenied\|not allowed' || { echo "$out"; return 1; }
}
check "nobody cannot own $DBUS_NAME" \
	denied busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName su "$DBUS_NAME" 4
check "nobody cannot call Properties.Set" \
	denied gdbus call --system --dest "$DBUS_NAME" --object-path "$P" --method org.freedesktop.DBus.Properties.Set "$DBUS_VM" Name "<'x'>"
check "nobody cannot call a method the policy does not list" \
	denied busctl --system call "$DBUS_NAME" "$P" "$DBUS_VM" NoSuchMethod
stop_daemon

# Without the test-only rule for root, the shipped policy gives the name to
# user dirtytrackd only: the daemon (root here) is refused, says so once,
# and serves REST.
kill "$BUS_PID"
wait "$BUS_PID" 2>/dev/null || true
rm -f "$TMP/system_bus_socket" "$TMP/bus.address"
start_bus ""
: >"$TMP/daemon.log"
start_daemon --dbus system
wait_until 5 grep -q "D-Bus: cannot own $DBUS_NAME" "$TMP/daemon.log" || fail "no log line about the refused name: $(cat "$TMP/daemon.log")"
sleep 1
check "said once" [ "$(grep -c 'D-Bus' "$TMP/daemon.log")" = 1 ]
check "the line says REST goes on" grep -q "serving REST only" "$TMP/daemon.log"
check "REST is served" quiet api /v1/health
busctl --system status "$DBUS_NAME" >/dev/null 2>&1 && fail "the name is owned without the policy allowing it"
echo "ok: nobody owns $DBUS_NAME"
stop_daemon
# The refusing bus goes: the last part starts its own on the same path.
kill "$BUS_PID"
wait "$BUS_PID" 2>/dev/null || true
rm -f "$TMP/system_bus_socket" "$TMP/bus.address"

# No bus at all (the socket is not there), and an address nobody listens on.
: >"$TMP/daemon.log"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-such-socket" start_daemon --dbus system
sleep 0.5
check "no bus: one line, REST only" [ "$(grep -c 'D-Bus: cannot connect to the system bus.*serving REST only' "$TMP/daemon.log")" = 1 ]
check "no bus: REST is served" quiet api /v1/health
stop_daemon
: >"$TMP/daemon.log"
start_daemon --dbus "unix:path=$TMP/no-such-socket"
sleep 0.5
check "unreachable address: one line, REST only" [ "$(grep -c "D-Bus: cannot connect to bus unix:path=.*serving REST only" "$TMP/daemon.log")" = 1 ]
stop_daemon

# The bus goes away under a running daemon: one line, REST goes on.
start_bus
: >"$TMP/daemon.log"
start_daemon --dbus "$DBUS_SYSTEM_BUS_ADDRESS"
wait_name
kill "$BUS_PID"
wait "$BUS_PID" 2>/dev/null || true
wait_until 5 grep -q "D-Bus: disconnected from bus" "$TMP/daemon.log" || fail "no log line about the lost bus"
check "bus lost: REST is served" quiet api /v1/health
check "bus lost: said once" [ "$(grep -c 'D-Bus: disconnected' "$TMP/daemon.log")" = 1 ]
stop_daemon
