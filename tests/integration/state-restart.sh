#!/usr/bin/env bash
# VM histories survive a restart. A clean stop (SIGTERM) saves the VM; the
# next daemon lists it detached ("restored from state after restart") with
# the same history and D(T); dtsim --reconnect reattaches with the same uuid
# and the figures continue, so at the end the distinct pages over the run
# equal the truth exactly. A SIGKILL loses at most the last epoch (the
# journal). A state file that does not load is moved aside and logged.
source "$(dirname "$0")/../lib/common.sh"
UUID=5f0c2a3e-8d4b-4c1e-9a7f-2b6d1e0c9a11
hist() { api "/v1/vms/keep/history?limit=100000" | jq -c '[.epochs[] | [.epoch, .end_us, .pages, .entries]]'; }
w3600() { vm_field keep '.wss[] | select(.window_seconds == 3600) | .pages'; }

start_daemon --epoch 100ms
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name keep --uuid "$UUID" --memory 256M --vcpus 2 \
	--mode ring --pattern uniform --rate 20000 --wss 30000 --duration 9 --seed 7 --reconnect \
	--truth "$TMP/keep.json" >"$TMP/keep.log" 2>&1 &
SIM=$!
BG_PIDS+=($SIM)
wait_until 10 vm_state_is keep attached || fail "dtsim did not attach"
sleep 2

# --- clean stop: saved, restored, continued -------------------------------
kill -STOP $SIM # no reattach while the restored VM is looked at
stop_daemon
line=$(grep "(keep): saved:" "$TMP/daemon.log" | tail -n1)
[ -n "$line" ] || fail "no save logged"
saved_epochs=$(sed -E 's/.*saved: ([0-9]+) epochs.*/\1/' <<<"$line")
saved_pages=$(sed -E 's/.*epochs, ([0-9]+) pages.*/\1/' <<<"$line")
check "the state file is written" test -s "$STATE_DIR/$UUID.state"
check "no journal is left after a clean stop" test ! -e "$STATE_DIR/$UUID.journal"

start_daemon --epoch 100ms
check "the VM is listed after the restart" vm_state_is keep detached
check "as restored" test "$(vm_field keep .detach_reason)" = "restored from state after restart"
check "with the same epochs ($saved_epochs)" test "$(vm_field keep .epochs_harvested)" = "$saved_epochs"
check "and the same D(3600 s) ($saved_pages)" test "$(w3600)" = "$saved_pages"
H1=$(hist)
kill -CONT $SIM
wait_until 10 vm_state_is keep attached || fail "dtsim did not reattach: $(tail -n5 "$TMP/keep.log")"
echo "ok: dtsim reattached with the same uuid"
sleep 1
e1=$(vm_field keep .epochs_harvested)
[ "$e1" -gt "$saved_epochs" ] || fail "epochs did not continue: $saved_epochs -> $e1"
echo "ok: epochs continue: $saved_epochs -> $e1"
H2=$(hist)
jq -e -n --argjson a "$H1" --argjson b "$H2" '$b[:($a | length)] == $a' >/dev/null ||
	fail "the history before the restart changed after the reattach"
echo "ok: the restored history is the prefix of the continued one"

# --- SIGKILL: at most the last epoch is lost ---------------------------------
sleep 1
HK=$(hist)
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
kill -STOP $SIM
rm -f "$RUN/attach.sock" "$RUN/api.sock"
start_daemon --epoch 100ms
check "the VM is listed after the crash" vm_state_is keep detached
H3=$(hist)
n=$(jq -n --argjson a "$HK" '$a | length')
jq -e -n --argjson a "$HK" --argjson b "$H3" '$b[:($a | length) - 1] == $a[:-1]' >/dev/null ||
	fail "more than the last epoch was lost in the crash ($n epochs before, $(jq -n --argjson b "$H3" '$b | length') after)"
echo "ok: after SIGKILL the $((n - 1)) epochs before the last are all back"
grep -q "journal: [0-9]* epochs\? replayed" "$TMP/daemon.log" || fail "no journal replay logged"
echo "ok: $(grep -o "journal: [0-9]* epochs\? replayed[^(]*" "$TMP/daemon.log" | tail -n1)"
kill -CONT $SIM

wait $SIM || fail "dtsim exited with an error: $(tail -n5 "$TMP/keep.log")"
wait_until 5 vm_state_is keep detached || fail "the VM did not detach at the end"
truth=$(jq .distinct_pages "$TMP/keep.json")
got=$(w3600)
[ "$got" = "$truth" ] || fail "distinct pages over the run: daemon $got, truth $truth"
echo "ok: distinct pages over the run across two restarts $got == truth"

# --- a corrupt state file: moved aside, logged, the daemon starts ----------
stop_daemon
printf 'garbage' | dd of="$STATE_DIR/$UUID.state" bs=1 seek=200 conv=notrunc status=none
start_daemon --epoch 100ms
check "the corrupt file is moved aside" test -e "$STATE_DIR/$UUID.state.bad"
check "and logged with the reason" grep -q "$UUID.state does not load (.*), moved aside" "$TMP/daemon.log"
check "the VM is not listed" test "$(api_status /v1/vms/keep)" = 404
echo "ok: $(grep -o "state: .*does not load ([^)]*)" "$TMP/daemon.log" | tail -n1)"
