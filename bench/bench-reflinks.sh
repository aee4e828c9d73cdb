#!/usr/bin/env bash
# /metrics' reference-link gauges and the loop: 3 simulated VMs (dtsim,
# bursty, 8 vCPUs) at 200 ms epochs with 4 [metrics] reference_links,
# /metrics scraped back to back for SECONDS_LOAD seconds.
# Prints the scrape time (p50, p99, worst, from curl) and the daemon's own
# tick lateness over the run (dirtytrackd_tick_lateness_seconds: mean, the
# share of ticks later than 10 ms, and the worst since the start), so a
# build that plans the gauges on the loop can be compared with one that
# does not. Ratio: worst tick lateness / epoch against the 10 % limit.
# Usage: bench/bench-reflinks.sh [BUILD] (default build); SECONDS_LOAD=30 WARMUP=20
#        DAEMON=path (another dirtytrackd build, same dtsim)
#        LINKS=off (the floor: the same load without reference-link gauges)
set -euo pipefail
BUILD=${1:-build}
DAEMON=${DAEMON:-$BUILD/dirtytrackd}
DUR=${SECONDS_LOAD:-30}
WARMUP=${WARMUP:-20}
for c in curl jq; do command -v "$c" >/dev/null || { echo "SKIP: $c is missing"; exit 77; }; done
source "$(dirname "$0")/lib.sh"
bench_init reflinks
cat >"$TMP/conf" <<CONF
[metrics]
reference_links = ${LINKS:-1Gbit/300ms, 10Gbit/300ms, 25Gbit/100ms, 100Mbit/1s}
CONF
"$DAEMON" -c "$TMP/conf" --state-dir "" --runtime-dir "$TMP/run" --listen-tcp off \
	--dbus off --epoch 200ms >"$TMP/daemon.log" 2>&1 &
PIDS+=($!)
wait_attach_socket
for i in 1 2 3; do
	"$BUILD/dtsim" --connect "$TMP/run/attach.sock" --name "vm$i" --memory 1G --vcpus 8 \
		--pattern bursty --rate 50000 --seed "$i" >/dev/null 2>&1 &
	PIDS+=($!)
done
n=$(wait_attached 3)
echo "daemon: $DAEMON; VMs attached: $n; history grows for ${WARMUP} s"
sleep "$WARMUP"
api /metrics >"$TMP/m0"
end=$((SECONDS + DUR))
while [ $SECONDS -lt $end ]; do
	curl -sf --max-time 30 -o "$TMP/last" -w '%{time_total}\n' --unix-socket "$TMP/run/api.sock" \
		http://localhost/metrics >>"$TMP/times"
done
api /metrics >"$TMP/m1"
gauges=$(grep -c '^dirtytrackd_vm_precopy_converges{' "$TMP/last" || true)
sort -n "$TMP/times" | awk -v g="$gauges" '{t[NR] = $1} END {
	p99 = int(NR * 0.99) + 1; if (p99 > NR) p99 = NR
	printf "scrapes %d (%d converges gauges each): p50 %.1f ms, p99 %.1f ms, worst %.1f ms\n",
		NR, g, t[int(NR * 0.5) + 1] * 1000, t[p99] * 1000, t[NR] * 1000 }'
val() { awk -v k="$2" '$1 == k {print $2}' "$1"; }
c0=$(val "$TMP/m0" dirtytrackd_tick_lateness_seconds_count)
c1=$(val "$TMP/m1" dirtytrackd_tick_lateness_seconds_count)
s0=$(val "$TMP/m0" dirtytrackd_tick_lateness_seconds_sum)
s1=$(val "$TMP/m1" dirtytrackd_tick_lateness_seconds_sum)
b0=$(val "$TMP/m0" 'dirtytrackd_tick_lateness_seconds_bucket{le="0.010000"}')
b1=$(val "$TMP/m1" 'dirtytrackd_tick_lateness_seconds_bucket{le="0.010000"}')
worst=$(val "$TMP/m1" dirtytrackd_tick_lateness_max_seconds)
awk -v c="$((c1 - c0))" -v s0="$s0" -v s1="$s1" -v b="$((b1 - b0))" -v w="$worst" 'BEGIN {
	printf "ticks %d: mean lateness %.2f ms, %.1f %% later than 10 ms, worst since start %.1f ms\n",
		c, c ? (s1 - s0) / c * 1000 : 0, c ? (c - b) * 100 / c : 0, w * 1000
	printf "ratio worst lateness / epoch: %.3f (limit 0.10)\n", w / 0.2 }'
