#!/usr/bin/env bash
# The bus comes and goes: a daemon started before its bus exists says so
# once, serves REST and takes the name when the bus appears (with every VM
# on it, announced with InterfacesAdded); a bus that dies and comes back
# gets the name back. One line when the bus goes, one when it is back.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/dbus-lib.inc"
command -v dbus-monitor >/dev/null || skip "dbus-monitor is not installed (dbus)"

ADDR="unix:path=$TMP/system_bus_socket" # where start_bus listens, not there yet
export DBUS_SYSTEM_BUS_ADDRESS=$ADDR
quiet() { "$@" >/dev/null; }
restart_bus() {
	start_bus
	stdbuf -oL dbus-monitor --system "type='signal',member='InterfacesAdded'" \
		>"$TMP/monitor.log" 2>&1 &
	BG_PIDS+=($!)
}
kill_bus() {
	kill "$BUS_PID"
	wait "$BUS_PID" 2>/dev/null || true
	rm -f "$TMP/system_bus_socket" "$TMP/bus.address"
}
managed() { # the attached VM's path is in GetManagedObjects
	busctl --system --json=short call "$DBUS_NAME" "$DBUS_PATH" \
		org.freedesktop.DBus.ObjectManager GetManagedObjects |
		jq -e --arg p "$P" '.data[0] | has($p)'
}

start_daemon --dbus "$ADDR" --epoch 100ms
sim a 60
check "no bus: one line" [ "$(grep -c 'D-Bus' "$TMP/daemon.log")" = 1 ]
grep -q "D-Bus: cannot connect to bus $ADDR.*serving REST only" "$TMP/daemon.log" || fail "no line about the missing bus"
check "no bus: REST is served" quiet api /v1/health

restart_bus
wait_name
P=$(vm_path a)
check "the bus appeared: GetManagedObjects lists the VM" wait_until 5 managed
check "the VM answers" [ "$(busctl --system --json=short get-property "$DBUS_NAME" "$P" "$DBUS_VM" Name | jq -r .data)" = a ]
check "the VM was announced with InterfacesAdded" wait_until 5 grep -q "object path \"$P\"" "$TMP/monitor.log"
check "back: one line" [ "$(grep -c "D-Bus: serving $DBUS_NAME again" "$TMP/daemon.log")" = 1 ]

kill_bus
wait_until 5 grep -q "D-Bus: disconnected from bus" "$TMP/daemon.log" || fail "no log line about the lost bus"
check "bus lost: REST is served" quiet api /v1/health
sleep 2 # retries in the meantime are not logged
check "bus lost: said once" [ "$(grep -c 'D-Bus: disconnected' "$TMP/daemon.log")" = 1 ]
check "bus lost: no other line" [ "$(grep -c 'D-Bus' "$TMP/daemon.log")" = 3 ]

restart_bus
wait_name
check "the bus came back: the name and the VM are back" wait_until 5 managed
check "the VM was announced again" wait_until 5 grep -q "object path \"$P\"" "$TMP/monitor.log"
check "back again: one more line" [ "$(grep -c "D-Bus: serving $DBUS_NAME again" "$TMP/daemon.log")" = 2 ]
check "REST is served" quiet api /v1/health
stop_daemon
