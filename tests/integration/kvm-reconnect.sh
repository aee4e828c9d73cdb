#!/usr/bin/env bash
# The daemon dies (SIGKILL) under a running real-KVM VMM that is in a
# ring-full storm: no vCPU stays stuck (a ring-full wait falls back to
# harvesting and resetting itself), dirty logging goes off, and when a new
# daemon comes up dtvm --reconnect attaches again and figures resume.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/kvm-lib.inc"
kvm_preflight
start_daemon --epoch 100ms

dtvm_start kvm-phoenix --mode ring --memory 64M --vcpus 2 --rate 60000 --ring-entries 256 \
	--duration 7 --wss 12000 --reconnect --truth-pages -v
P1=$DTVM_PID
wait_until 5 api /v1/vms/kvm-phoenix || fail "dtvm did not attach"
sleep 1.5
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
wait_until 3 grep -q "lost the daemon" "$TMP/kvm-phoenix.log" || fail "dtvm did not notice"
echo "ok: dtvm noticed the daemon's death: $(grep -m1 'lost the daemon' "$TMP/kvm-phoenix.log")"
sleep 1
kill -0 $P1 || fail "dtvm died with the daemon: $(cat "$TMP/kvm-phoenix.log")"
rm -f "$TMP/run/attach.sock" "$TMP/run/api.sock"
start_daemon --epoch 100ms
wait_until 4 vm_state_is kvm-phoenix attached || fail "dtvm did not reattach"
echo "ok: dtvm reattached to the new daemon"
e0=$(vm_field kvm-phoenix .epochs_harvested)
sleep 1
e1=$(vm_field kvm-phoenix .epochs_harvested)
n=$(vm_field kvm-phoenix '.wss[] | select(.window_seconds == 1) | .pages')
[ "$e1" -gt "$e0" ] && [ "$n" -gt 0 ] || fail "figures do not resume (epochs $e0 -> $e1, 1 s window $n pages)"
echo "ok: figures resume after reattach: epochs $e0 -> $e1, $n pages in the last second"
dtvm_wait $P1 kvm-phoenix

# No vCPU got stuck: each kept completing batches up to the end of the run,
# including across the daemon's death.
python3 - "$TMP/kvm-phoenix.json" <<'PY' || fail "a vCPU stalled"
import json, sys
t = json.load(open(sys.argv[1]))
for v in range(t["vcpus"]):
    ts = sorted(b["t_us"] for b in t["batches"] if b["vcpu"] == v)
    gap = max(b - a for a, b in zip(ts, ts[1:]))
    tail = t["end_us"] - ts[-1]
    print(f"vCPU {v}: {len(ts)} batches, longest gap {gap / 1000:.1f} ms, last {tail / 1000:.1f} ms before the end")
    if gap > 1_000_000 or tail > 1_000_000:
        sys.exit(1)
PY
echo "ok: no vCPU stalled across the daemon's death"
