#!/usr/bin/env bash
# The event loop during huge epoch closes (issue 15): one simulated 1 TiB
# guest in bitmap mode (dtsim) dirtying a large share of its pages each
# epoch, beside a small probe VM, both at the same epoch. Prints the big VM's
# dirty pages per epoch (the fraction of its 2^28 pages) and close time
# (the daemon's harvest histogram), and the loop's tick lateness over the
# run (dirtytrackd_tick_lateness_seconds, max and histogram): the probe
# attaches half an epoch after the big VM, so a close that holds the loop
# shows up as lateness of the probe's ticks.
# Ratio: worst lateness / epoch.
# Usage: bench/bench-close.sh [BUILD]; RATE=writes/s (default 15000000) EPOCH=10s
#        SECONDS_LOAD=40; STATE=off (no state directory); DAEMON=path (another dirtytrackd, same dtsim)
#        CONFIG=file (the daemon's configuration, e.g. [metrics] reference_links = off)
set -euo pipefail
BUILD=${1:-build}
DAEMON=${DAEMON:-$BUILD/dirtytrackd}
RATE=${RATE:-15000000}
EPOCH=${EPOCH:-10s}
DUR=${SECONDS_LOAD:-40}
# STATE=off: no state directory (its snapshots encode the whole history on the loop)
STATE=${STATE:-}
for c in curl jq; do command -v "$c" >/dev/null || { echo "SKIP: $c is missing"; exit 77; }; done
TMP=$(mktemp -d /tmp/dt-bench-close.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
[ -n "$STATE" ] || STATE=$TMP/state
"$DAEMON" ${CONFIG:+--config "$CONFIG"} --state-dir "$STATE" --runtime-dir "$TMP/run" --listen-tcp off --dbus off \
	--epoch "$EPOCH" >"$TMP/daemon.log" 2>&1 &
PIDS+=($!)
api() { curl -sf --max-time 30 --unix-socket "$TMP/run/api.sock" "http://localhost$1"; }
for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
"$BUILD/dtsim" --connect "$TMP/run/attach.sock" --name big --memory 1T --mode bitmap \
	--rate "$RATE" --seed 7 >"$TMP/big.log" 2>&1 &
PIDS+=($!)
# Half an epoch later: the probe's ticks fall inside the big VM's closes.
for _ in $(seq 200); do api /v1/vms/big >/dev/null 2>&1 && break; sleep 0.1; done
sleep "$(awk -v e="${EPOCH%s}" 'BEGIN { print e / 2 }')"
"$BUILD/dtsim" --connect "$TMP/run/attach.sock" --name probe --memory 64M --rate 1000 \
	--seed 8 >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do
	n=$(api /v1/health | jq .attached 2>/dev/null || echo 0)
	[ "$n" -ge 2 ] && break
	sleep 0.1
done
echo "daemon: $DAEMON; VMs attached: $n; big: 1 TiB bitmap at $RATE writes/s, $EPOCH epochs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 12 # past the first epoch
start=$(api "/v1/vms/big/history?limit=1" | jq '.epochs[-1].epoch // 0')
api /metrics >"$TMP/m0"
sleep "$DUR"
api /metrics >"$TMP/m1"
api "/v1/vms/big/history?since=$start&limit=100000" |
	jq -r '.epochs[] | .pages' | sort -n >"$TMP/pages"
N=$(wc -l <"$TMP/pages")
[ "$N" -gt 0 ] || { echo "FAIL: no epochs of the big VM"; cat "$TMP/daemon.log" "$TMP/big.log"; exit 1; }
med=$(awk -v n="$N" 'NR == int((n + 1) / 2) { print $1 }' "$TMP/pages")
printf 'big VM: %d epochs, median %d dirty pages per epoch (%.1f %% of 2^28)\n' "$N" "$med" \
	"$(echo "100 * $med / 268435456" | bc -l)"
awk 'FNR == 1 { f++ } /^dirtytrackd_(tick_lateness|harvest_duration)_seconds_(bucket|count|sum)/ { v[f, $1] = $2; k[$1] = 1 }
	END { for (x in k) d[x] = v[2, x] - v[1, x]
		c = d["dirtytrackd_tick_lateness_seconds_count"]
		printf "tick lateness over the run: %d ticks, mean %.2f ms, <= 5 ms %.1f %%, <= 25 ms %.1f %%, <= 100 ms %.1f %%\n",
			c, 1000 * d["dirtytrackd_tick_lateness_seconds_sum"] / c,
			100 * d["dirtytrackd_tick_lateness_seconds_bucket{le=\"0.005000\"}"] / c,
			100 * d["dirtytrackd_tick_lateness_seconds_bucket{le=\"0.025000\"}"] / c,
			100 * d["dirtytrackd_tick_lateness_seconds_bucket{le=\"0.100000\"}"] / c
		h = d["dirtytrackd_harvest_duration_seconds_count"]
		if (h) printf "harvest+close per epoch (both VMs): %d, mean %.1f ms\n", h, 1000 * d["dirtytrackd_harvest_duration_seconds_sum"] / h }' "$TMP/m0" "$TMP/m1"
worst=$(awk '/^dirtytrackd_tick_lateness_max_seconds / { print $2 }' "$TMP/m1")
echo "tick lateness max since start: ${worst:-?} s"
api /v1/vms/big | jq -r '.counters | "big VM: \(.harvests) harvests, \(.harvest_seconds / .harvests * 1000 | floor) ms harvest+close each, \(.late_syncs) late syncs"'
grep -E '^dirtytrackd_ticks_skipped_total ' "$TMP/m1" | sed 's/^/  /' || true
printf 'ratio: worst tick lateness / 1 s = %.3f\n' "${worst:-0}"
