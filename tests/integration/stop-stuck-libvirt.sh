#!/usr/bin/env bash
# A libvirtd that accepts the connection and never answers (a real socket
# peer: the libvirt worker's call blocks in it) does not hold the stop:
# SIGTERM saves every VM's history first and the daemon exits within a
# bound, leaving the stuck call behind; the next start restores the VM.
source "$(dirname "$0")/../lib/common.sh"
command -v python3 >/dev/null || skip "python3 is missing"
FAKE="$TMP/fake-libvirt.sock"
python3 - "$FAKE" <<'PY' >"$TMP/fake.log" 2>&1 &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
held = []
while True:
    c, _ = s.accept()  # accept, read nothing, answer nothing
    held.append(c)
    print("accepted", len(held), flush=True)
PY
BG_PIDS+=($!)
wait_until 5 test -S "$FAKE" || fail "the fake libvirtd did not start"
cat >"$TMP/conf" <<CONF
[libvirt]
uri = qemu+unix:///system?socket=$FAKE
interval = 2s
calc_seconds = 1s
CONF
UUID=0e5b9a31-77c2-4f0b-a3d9-5c1e2f4a6b01
start_daemon --config "$TMP/conf" --epoch 100ms
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name stuckvm --uuid "$UUID" --memory 64M --rate 20000 \
	--wss 4000 --seed 3 >"$TMP/sim.log" 2>&1 &
SIM=$!
BG_PIDS+=($SIM)
wait_until 10 vm_state_is stuckvm attached || fail "dtsim did not attach"
wait_until 10 grep -q accepted "$TMP/fake.log" || fail "the libvirt worker never connected to the fake libvirtd"
echo "ok: the libvirt worker is connected to a libvirtd that never answers"
sleep 1.5
kill -STOP $SIM
sleep 0.3
before=$(vm_field stuckvm .epochs_harvested)

t0=$(date +%s%N)
kill "$DAEMON_PID"
for _ in $(seq 150); do daemon_alive || break; sleep 0.1; done
daemon_alive && fail "the daemon did not exit within 15 s of SIGTERM with libvirtd stuck"
wait "$DAEMON_PID" || fail "the daemon exited with an error"
DAEMON_PID=""
ms=$((($(date +%s%N) - t0) / 1000000))
echo "ok: stopped in $ms ms with the libvirt call stuck"
grep -q "(stuckvm): saved: " "$TMP/daemon.log" || fail "no save logged"
check "the state file is written" test -s "$STATE_DIR/$UUID.state"
grep -q "a call did not return" "$TMP/daemon.log" || fail "the stuck libvirt call was not reported"
echo "ok: $(grep -o "libvirt .*a call did not return.*" "$TMP/daemon.log" | head -n1)"
kill -9 $SIM
start_daemon --epoch 100ms
got=$(vm_field stuckvm .epochs_harvested)
[ "$got" -ge "$before" ] || fail "$before epochs listed before the stop, $got restored"
echo "ok: restored with $got epochs (>= $before listed before the stop)"
