#!/usr/bin/env bash
# Harvest delay with the loop's blocking work in play: 20 simulated VMs
# (dtsim, ring mode) at 100 ms epochs, a state directory on the real disk
# with a snapshot every 10 epochs (journal frames in between), and plans
# requested back to back over REST the whole time.
# Prints, from every VM's epoch history (works for any daemon build): the
# gaps between consecutive epoch closes beyond the 100 ms epoch (p50, p99,
# worst, share over 10 ms), and, where the daemon has them, its own
# /metrics figures (dirtytrackd_tick_lateness_seconds, the state writer's
# queue). Ratio: worst delay / epoch against the 10 % limit.
# Usage: bench/bench-loop.sh [BUILD] (default build); VMS=20 SECONDS_LOAD=20 PLANS=0 (no plans)
#        DAEMON=path (another dirtytrackd, e.g. an older build, same dtsim)
set -euo pipefail
BUILD=${1:-build}
DAEMON=${DAEMON:-$BUILD/dirtytrackd}
VMS=${VMS:-20}
DUR=${SECONDS_LOAD:-20}
for c in curl jq; do command -v "$c" >/dev/null || { echo "SKIP: $c is missing"; exit 77; }; done
source "$(dirname "$0")/lib.sh"
bench_init loop /var/tmp # a real disk: /tmp may be tmpfs
cat >"$TMP/conf" <<CONF
[daemon]
snapshot_epochs = 10
[attach]
max_vms = $((VMS + 4))
CONF
"$DAEMON" -c "$TMP/conf" --state-dir "$TMP/state" --runtime-dir "$TMP/run" --listen-tcp off \
	--dbus off --epoch 100ms >"$TMP/daemon.log" 2>&1 &
DPID=$!
PIDS+=($DPID)
wait_attach_socket
for i in $(seq "$VMS"); do
	"$BUILD/dtsim" --connect "$TMP/run/attach.sock" --name "vm$i" --memory 256M --vcpus 2 \
		--rate 20000 --wss 40000 --seed "$i" >/dev/null 2>&1 &
	PIDS+=($!)
done
n=$(wait_attached "$VMS")
echo "daemon: $DAEMON; VMs attached: $n; warming up 3 s"
sleep 3
start=$(api "/v1/vms/vm1/history?limit=1" | jq '.epochs[-1].epoch // 0')
api /metrics >"$TMP/m0" || true
# Plans back to back, one client, round robin over the VMs.
(
	end=$((SECONDS + DUR)) i=0 ok=0
	while [ $SECONDS -lt $end ]; do
		i=$((i % VMS + 1))
		api "/v1/vms/vm$i/plan?bandwidth=1Gbit&downtime=300ms" >/dev/null && ok=$((ok + 1))
	done
	echo "$ok" >"$TMP/plans"
) &
PLANNER=$!
[ "${PLANS:-1}" = 0 ] && { kill $PLANNER; wait $PLANNER 2>/dev/null || true; echo 0 >"$TMP/plans"; }
sleep "$DUR"
wait $PLANNER || true
api /metrics >"$TMP/m1"
for i in $(seq "$VMS"); do
	api "/v1/vms/vm$i/history?since=$start&limit=100000" | jq '[.epochs[].end_us] | . as $e |
		range(1; length) | $e[.] - $e[. - 1] - 100000'
done | sort -n >"$TMP/lags"
N=$(wc -l <"$TMP/lags")
pct() { awk -v p="$1" -v n="$N" 'NR == int((n - 1) * p / 100) + 1 { print int($1 / 1000); exit }' "$TMP/lags"; }
over=$(awk '$1 > 10000' "$TMP/lags" | wc -l)
worst=$(tail -n1 "$TMP/lags")
printf 'epoch closes: %d over %d s, %.1f plans/s answered\n' "$N" "$DUR" "$(echo "$(cat "$TMP/plans") / $DUR" | bc -l)"
echo "delay beyond the 100 ms epoch: p50 $(pct 50) ms, p99 $(pct 99) ms, worst $((worst / 1000)) ms; $over ($((over * 100 / N)) %) more than 10 ms late"
if grep -q '^dirtytrackd_tick_lateness_seconds_count' "$TMP/m1"; then
	awk 'FNR == 1 { f++ } /^dirtytrackd_tick_lateness_seconds_(bucket|count|sum)/ { v[f, $1] = $2; k[$1] = 1 }
		END { for (x in k) d[x] = v[2, x] - v[1, x]
			c = d["dirtytrackd_tick_lateness_seconds_count"]
			printf "daemon /metrics tick lateness over the run: %d ticks, mean %.2f ms, <= 5 ms %.1f %%, <= 25 ms %.1f %%, <= 100 ms %.1f %%\n",
				c, 1000 * d["dirtytrackd_tick_lateness_seconds_sum"] / c,
				100 * d["dirtytrackd_tick_lateness_seconds_bucket{le=\"0.005000\"}"] / c,
				100 * d["dirtytrackd_tick_lateness_seconds_bucket{le=\"0.025000\"}"] / c,
				100 * d["dirtytrackd_tick_lateness_seconds_bucket{le=\"0.100000\"}"] / c }' "$TMP/m0" "$TMP/m1"
	grep -E '^dirtytrackd_(ticks_skipped_total|tick_lateness_max_seconds|state_(frames_written|snapshots_written|frames_coalesced|snapshots_deferred)_total|state_queue_wait_max_seconds) ' "$TMP/m1" | sed 's/^/  /'
else
	echo "daemon /metrics: no tick lateness histogram in this build"
fi
printf 'ratio: worst delay / epoch = %.3f (limit 0.100)\n' "$(echo "$worst / 100000" | bc -l)"
