#!/usr/bin/env bash
# The sd_notify protocol against a test-owned NOTIFY_SOCKET, as systemd
# would see it for Type=notify with WatchdogSec=: READY=1 only once the
# attach and API sockets answer, STATUS= with the VM count on attach and
# detach, WATCHDOG=1 at half the interval, RELOADING=1 with MONOTONIC_USEC=
# on SIGHUP then READY=1, STOPPING=1 on SIGTERM. A reload applies the new
# epoch to VMs attached afterwards, names keys that need a restart, and a
# bad drop-in keeps the running configuration (FILE:LINE: [section] key).
source "$(dirname "$0")/../lib/common.sh"

RUN="$TMP/run"
API_SOCK="$RUN/api.sock"
ATTACH_SOCK="$RUN/attach.sock"
NLOG="$TMP/notify.log"
/usr/bin/python3 "$(dirname "$0")/../lib/notify-recv.py" "$TMP/notify.sock" "$NLOG" --probe "$API_SOCK" \
	"$ATTACH_SOCK" &
BG_PIDS+=($!)
wait_until 15 grep -q LISTENING "$NLOG" || fail "notify receiver did not start"

ncount() { grep -c -- "$1" "$NLOG" || true; }
nhas() { test "$(ncount "$2")" -ge "$1"; }
nwait() { wait_until 20 nhas "$@"; } # N REGEX: wait until N datagrams match
status() { grep -o 'STATUS=[^|]*' "$NLOG" | tail -n1; }

mkdir -p "$TMP/dt.conf.d"
printf '[daemon]\nepoch = 1s\nruntime_dir = %s\nstate_dir = %s\n[api]\ntcp = off\n[dbus]\nbus = off\n' \
	"$RUN" "$TMP/state" \
	>"$TMP/dt.conf"

# WATCHDOG_PID must be the daemon's own pid: exec keeps the shell's.
NOTIFY_SOCKET="$TMP/notify.sock" WATCHDOG_USEC=400000 \
	bash -c 'WATCHDOG_PID=$$ exec "$0" "$@"' "$BUILD/dirtytrackd" --config "$TMP/dt.conf" \
	>>"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!

nwait 1 'READY=1' || fail "no READY=1: $(cat "$NLOG")"
check "READY=1 carries the VM count" grep -q 'READY=1|STATUS=0 VMs attached, 0 listed' "$NLOG"
check "the API socket answered at READY=1" grep -q "^PROBE $API_SOCK ok" "$NLOG"
check "the attach socket answered at READY=1" grep -q "^PROBE $ATTACH_SOCK ok" "$NLOG"
check "one READY=1 at start" test "$(ncount 'READY=1')" = 1

# Pings every WATCHDOG_USEC/2 = 200 ms: 15 in 3 s; a loaded machine delays some.
w0=$(ncount 'WATCHDOG=1')
sleep 3
w1=$(ncount 'WATCHDOG=1')
check "WATCHDOG=1 about every 200 ms ($((w1 - w0)) in 3 s)" test $((w1 - w0)) -ge 4 -a $((w1 - w0)) -le 25

sim() { # NAME DURATION
	"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name "$1" --memory 64M --rate 2000 --duration "$2" \
		>"$TMP/$1.log" 2>&1
}
sim vm-a 1.5 &
SIM=$!
BG_PIDS+=($SIM)
nwait 1 'STATUS=1 VM attached, 1 listed' || fail "no STATUS= on attach: $(status)"
echo "ok: STATUS= on attach"
wait $SIM || fail "dtsim vm-a failed: $(cat "$TMP/vm-a.log")"
nwait 1 'STATUS=0 VMs attached, 1 listed' || fail "no STATUS= on detach: $(status)"
echo "ok: STATUS= on detach"
check "vm-a has the configured epoch" test "$(vm_field vm-a .epoch_seconds)" = 1

# --- reload: new epoch for new VMs; api.tcp needs a restart --------------------
sed -i 's/^epoch = 1s/epoch = 200ms/; s/^tcp = off/tcp = 127.0.0.1:1/' "$TMP/dt.conf"
kill -HUP "$DAEMON_PID"
nwait 2 'READY=1' || fail "no READY=1 after SIGHUP: $(tail -n 5 "$NLOG")"
check "RELOADING=1 with MONOTONIC_USEC= before the second READY=1" \
	awk '/RELOADING=1/ && /MONOTONIC_USEC=[0-9]+/ { r = NR } /READY=1/ { n++; if (n == 2) exit !(r && r < NR) }' "$NLOG"
mono=$(grep -o 'MONOTONIC_USEC=[0-9]*' "$NLOG" | tail -n1 | cut -d= -f2)
recv=$(grep 'RELOADING=1' "$NLOG" | tail -n1 | cut -d' ' -f1)
check "MONOTONIC_USEC is CLOCK_MONOTONIC (sent $mono, received $recv)" \
	test "$mono" -le "$recv" -a $((recv - mono)) -lt 2000000
check "READY=1 after the reload carries the VM count" \
	grep -q 'READY=1|STATUS=0 VMs attached, 1 listed' "$NLOG"
check "the restart-only key is named" \
	grep -q 'api.tcp changed: it takes effect when dirtytrackd restarts' "$TMP/daemon.log"
check "the key applied at once is named with its new value" \
	grep -q 'reload: daemon.epoch changed: applied (now "200ms")' "$TMP/daemon.log"
check "reload logged" grep -q 'reload: configuration re-read, 2 keys changed' "$TMP/daemon.log"
sim vm-b 0.6 || fail "dtsim vm-b failed"
check "a VM attached after the reload has the new epoch" test "$(vm_field vm-b .epoch_seconds)" = 0.2
check "vm-a keeps its epoch" test "$(vm_field vm-a .epoch_seconds)" = 1

# --- a bad drop-in: nothing changes ------------------------------------------
sed -i 's/^epoch = 200ms/epoch = 500ms/' "$TMP/dt.conf"
printf '# a drop-in with a bad value\n[attach]\nmax_vms = 1\n[daemon]\nepoch = 5ms\n' \
	>"$TMP/dt.conf.d/50-bad.conf"
kill -HUP "$DAEMON_PID"
nwait 3 'READY=1' || fail "no READY=1 after the bad reload"
check "the bad file is reported as FILE:LINE: [section] key" \
	grep -q "reload: $TMP/dt.conf.d/50-bad.conf:5: \[daemon\] epoch = 5ms: .*; keeping the running configuration" "$TMP/daemon.log"
sim vm-c 0.6 || fail "dtsim vm-c failed (was max_vms = 1 applied?)"
check "the running epoch is kept" test "$(vm_field vm-c .epoch_seconds)" = 0.2
rm "$TMP/dt.conf.d/50-bad.conf"
kill -HUP "$DAEMON_PID"
nwait 4 'READY=1' || fail "no READY=1 after the good reload"
sim vm-d 0.6 || fail "dtsim vm-d failed"
check "a fixed file applies" test "$(vm_field vm-d .epoch_seconds)" = 0.5
check "the daemon still serves" api /v1/health >/dev/null

# A shorter retention applies to VMs already detached (counted from their detach).
wait_until 10 vm_state_is vm-d detached || fail "vm-d did not detach"
printf '[daemon]\nretention = 1s\n' >"$TMP/dt.conf.d/60-retention.conf"
kill -HUP "$DAEMON_PID"
nwait 5 'READY=1' || fail "no READY=1 after the retention reload"
no_vms() { test "$(api /v1/vms | jq '.vms | length')" = 0; }
wait_until 5 no_vms || fail "detached VMs were kept: $(api /v1/vms)"
echo "ok: a reload's retention removed the detached VMs"
check "STATUS= says so" test "$(status)" = "STATUS=0 VMs attached, 0 listed"

# --- stop ---------------------------------------------------------------------
kill "$DAEMON_PID"
wait "$DAEMON_PID" || fail "daemon exited with an error"
DAEMON_PID=""
nwait 1 'STOPPING=1' || fail "no STOPPING=1"
check "nothing but WATCHDOG=1 after STOPPING=1" \
	awk '/STOPPING=1/ { s = 1; next } s && !/WATCHDOG=1/ { exit 1 }' "$NLOG"
echo "--- notifications"
grep -v WATCHDOG "$NLOG"
