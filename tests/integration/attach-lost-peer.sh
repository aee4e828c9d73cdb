#!/usr/bin/env bash
# A VMM whose socket stops taking messages mid-tick (shutdown(SHUT_RD)): the
# daemon's next request to it fails inside the epoch tick. The VM is detached
# once, after the tick, with a reason; the daemon keeps running; no extra
# empty epoch is closed after the detach; a bystander VM keeps its figures.
# In every mode, and in ring+bitmap mode (where a failed RESET_RINGS was
# followed by a SYNC_BITMAP on the freed connection: SIGSEGV) above all.
source "$(dirname "$0")/../lib/common.sh"
EPOCH_MS=100
start_daemon --epoch ${EPOCH_MS}ms

"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name bystander --memory 64M --vcpus 1 --mode ring \
	--pattern uniform --rate 5000 --wss 2048 --duration 30 --seed 3 >"$TMP/bystander.log" 2>&1 &
BG_PIDS+=($!)
wait_until 20 vm_state_is bystander attached || fail "bystander did not attach"

PYTHONUNBUFFERED=1 PYTHONPATH="$(dirname "$0")/../lib" API_SOCK="$API_SOCK" ATTACH_SOCK="$ATTACH_SOCK" \
	EPOCH_US=$((EPOCH_MS * 1000)) DAEMON_PID="$DAEMON_PID" python3 - <<'PY'
import json, os, socket, struct, subprocess, time
from dtpeer import *

A = os.environ["ATTACH_SOCK"]
EPOCH_US = int(os.environ["EPOCH_US"])
PID = int(os.environ["DAEMON_PID"])

def api(path):
    out = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                          "http://localhost" + path], capture_output=True, check=True)
    return json.loads(out.stdout)

def alive():
    try:
        os.kill(PID, 0)
        return True
    except ProcessLookupError:
        return False

for mode, name in [(3, "ring+bitmap"), (1, "ring"), (2, "bitmap")]:
    p = Peer(A)
    vm = p.attach(f"lost-{mode}", vcpus=1, mode=mode)
    def ok(t, payload, fds=()):
        r = p.request(t, payload, fds)
        assert r and r[0] == T["ACK"], f"{name}: {NAMES[t]}: {r}"
    ok(T["ADD_SLOT"], add_slot(0, 0, 1024))
    ring = None
    if mode & 1:
        ring = Ring(256)
        ok(T["ADD_RING"], add_ring(0, 256), [ring.fd])
    if mode & 2:
        bm = memfd(4096)
        ok(T["ADD_BITMAP"], add_bitmap(0), [bm])
    # A few epochs as a well-behaved VMM: every request answered.
    for i in range(5):
        if ring:
            ring.reset(ring.index)
            ring.push(0, i)
        p.pump(EPOCH_US / 1e6)
    if ring:
        ring.reset(ring.index)
        p.pump(0.05)
        ring.push(0, 100)  # the next tick harvests it and asks for a reset
    p.s.shutdown(socket.SHUT_RD)
    deadline = time.time() + 5
    while time.time() < deadline and alive():
        if api(f"/v1/vms/{vm}")["state"] == "detached":
            break
        time.sleep(0.05)
    assert alive(), f"{name}: the daemon died after the peer's shutdown(SHUT_RD)"
    v = api(f"/v1/vms/{vm}")
    assert v["state"] == "detached", f"{name}: not detached: {v['state']}"
    reason = v.get("detach_reason", "")
    assert "write" in reason or "read" in reason, f"{name}: detach reason {reason!r}"
    time.sleep(3 * EPOCH_US / 1e6)
    n = api(f"/v1/vms/{vm}")["epochs_harvested"]
    assert n == v["epochs_harvested"], f"{name}: epochs closed after the detach ({v['epochs_harvested']} -> {n})"
    h = api(f"/v1/vms/{vm}/history?since=0&limit=100")["epochs"]
    ends = [e["end_us"] for e in h]
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    # Every epoch is a tick's worth (the last may be shorter, never empty of time).
    assert gaps and min(gaps) >= EPOCH_US // 4, f"{name}: an epoch of {min(gaps)} us (extra empty epoch): {gaps}"
    if ring:
        assert sum(e["entries"] for e in h) >= 6, f"{name}: ring entries lost: {h}"
    print(f"ok: {name}: detached ({reason}), {n} epochs, shortest {min(gaps)} us, daemon alive")
    p.s.close()
PY
[ $? -eq 0 ] || fail "lost-peer checks"

daemon_alive || fail "daemon died"
e1=$(vm_field bystander .epochs_harvested)
sleep 0.5
e2=$(vm_field bystander .epochs_harvested)
[ "$e2" -gt "$e1" ] || fail "bystander no longer harvested ($e1 -> $e2)"
[ "$(vm_field bystander .state)" = attached ] || fail "bystander detached"
echo "ok: the bystander kept being harvested ($e1 -> $e2 epochs)"
