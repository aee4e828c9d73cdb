#!/usr/bin/env bash
# A flood of RING_FULL notices costs the daemon O(1) each: they are counted
# and coalesced (one harvest per vCPU until the VMM's next RESET_DONE, run
# from a deferred event, one RESET_RINGS), not a harvest plus a scan of the
# whole ring per notice. A peer with two 65536-entry rings sends 40000
# notices without answering the reset; the daemon's CPU time per notice
# stays small, counters.ring_full counts every notice and ring_full_harvests
# stays at one per vCPU per reset; a bystander VM's figures stay exact. On
# the old code each notice scanned the 65536-entry ring (ring resync):
# seconds of CPU for the flood.
source "$(dirname "$0")/../lib/common.sh"
LIB="$(cd "$(dirname "$0")/../lib" && pwd)"
cpu_us() { awk -v t="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000000 / t }' "/proc/$DAEMON_PID/stat"; }
start_daemon --epoch 100ms

PYTHONPATH="$LIB" python3 "$LIB/bystander.py" "$ATTACH_SOCK" bystander 6 >"$TMP/bystander.out" 2>"$TMP/bystander.err" &
BYSTANDER=$!
BG_PIDS+=($BYSTANDER)
wait_until 10 vm_state_is bystander attached || fail "bystander did not attach"

N=40000
PYTHONPATH="$LIB" ATTACH_SOCK="$ATTACH_SOCK" API_SOCK="$API_SOCK" DAEMON_PID="$DAEMON_PID" N=$N python3 - <<'PY' >"$TMP/flood.out"
import json, os, struct, subprocess, time
from dtpeer import *
N = int(os.environ["N"])
PID = os.environ["DAEMON_PID"]
TCK = os.sysconf("SC_CLK_TCK")
def cpu_us():
    f = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000000 // TCK
def api(path):
    out = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                          "http://localhost" + path], capture_output=True, check=True)
    return json.loads(out.stdout)
p = Peer(os.environ["ATTACH_SOCK"])
p.s.settimeout(30)
vm = p.attach("flooder", vcpus=2, mode=1)
assert p.request(T["ADD_SLOT"], add_slot(0, 0, 4096))[0] == T["ACK"]
rings = [Ring(65536), Ring(65536)]
for v, r in enumerate(rings):
    assert p.request(T["ADD_RING"], add_ring(v, 65536), [r.fd])[0] == T["ACK"]
# Some entries are published so the first harvest has work; then the flood.
for i in range(10):
    rings[0].push(0, i)
t0, c0 = time.time(), cpu_us()
for i in range(N):
    p.send(T["RING_FULL"], struct.pack("<II", i % 2, 0))
# Every notice is read once counters.ring_full has them all.
while api(f"/v1/vms/{vm}")["counters"]["ring_full"] < N and time.time() - t0 < 60:
    time.sleep(0.05)
c1 = cpu_us()
v = api(f"/v1/vms/{vm}")
print(N, c1 - c0, v["counters"]["ring_full"], v["counters"].get("ring_full_harvests", -1),
      v["counters"]["resets"], v["counters"]["ring_entries"], v["state"])
p.pump(0.3)  # answer the resets now
PY
read -r n cpu notices harvests resets entries state <"$TMP/flood.out" || fail "flood peer: $(cat "$TMP/flood.out")"
per=$((cpu / n))
echo "flood: $n notices, daemon CPU $((cpu / 1000)) ms ($per us per notice), ring_full $notices, ring_full_harvests $harvests, resets $resets, entries $entries, $state"
daemon_alive || fail "daemon died"
[ "$state" = attached ] || fail "the flooder was dropped ($state)"
[ "$notices" = "$n" ] || fail "not every notice was counted ($notices of $n)"
[ "$entries" = 10 ] || fail "the 10 published entries were not harvested exactly ($entries)"
# No RESET_DONE came during the flood: one harvest per vCPU, plus one per
# vCPU for each reset that completed.
[ "$harvests" -le $((2 * (resets + 1))) ] || fail "notices were not coalesced: $harvests harvests for $resets resets"
# A notice is one datagram read and a bit set; the old code scanned 65536 ring entries per notice.
[ "$per" -le 20 ] || fail "$per us of daemon CPU per RING_FULL notice (a ring scan per notice?)"

wait "$BYSTANDER" || fail "bystander: $(cat "$TMP/bystander.err")"
want=$(cat "$TMP/bystander.out")
wait_until 5 vm_state_is bystander detached || fail "bystander did not detach"
got=$(vm_field bystander .counters.bitmap_pages)
got2=$(vm_field bystander .counters.dirtied_pages)
[ "$got" = "$want" ] && [ "$got2" = "$want" ] || fail "bystander figures: $got bitmap pages, $got2 dirtied, truth $want"
echo "ok: bystander exact: $want pages"
